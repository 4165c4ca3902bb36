//! The shared-document viewer's C-CDA page (issue 24): `ccda_view::render` over the HL7 fixtures
//! (the XML read with roxmltree, the header and every section's narrative written as escaped HTML),
//! next to the reference of reading the same XML alone with roxmltree, measured in the same run:
//! what writing the page adds to the parse it cannot do without.
//!
//!   cargo bench --bench ccda_view

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ccda").join(name)).unwrap()
}

fn bench(c: &mut Criterion) {
    for name in ["ccd.xml", "transfer-summary.xml", "referral-note.xml"] {
        let bytes = fixture(name);
        let text = std::str::from_utf8(&bytes).unwrap().to_string();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("reference: roxmltree parse", |b| {
            b.iter(|| roxmltree::Document::parse(std::hint::black_box(&text)).unwrap().descendants().count())
        });
        group.bench_function("ccda_view::render", |b| {
            b.iter(|| hisp::ccda_view::render(std::hint::black_box(&bytes)).unwrap().sections.len())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
