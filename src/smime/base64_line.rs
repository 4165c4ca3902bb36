//! One line of base64 (RFC 4648 §4, the standard alphabet with `=` padding): up to 57 bytes in,
//! up to 76 characters out, as MIME lines carry them (RFC 2045 §6.8). Every sealed message is
//! mostly base64 (its signature part, then the whole encrypted message), so on CPUs with AVX-512
//! VBMI a line is encoded 16 groups of 3 bytes at a time: one byte shuffle puts each group's bytes
//! where one multishift can pick out its four 6-bit values, and one more byte shuffle looks them up
//! in the 64-character alphabet. Elsewhere the `base64` crate does it.

use base64::Engine;

/// The bytes one full line carries.
pub(super) const LINE_BYTES: usize = 57;

/// Encodes `chunk` (at most 57 bytes) into `out` (at least 76 bytes); returns the characters written.
pub(super) fn encode(chunk: &[u8], out: &mut [u8]) -> usize {
    assert!(chunk.len() <= LINE_BYTES && out.len() >= 76);
    #[cfg(target_arch = "x86_64")]
    if vbmi::available() {
        let whole = chunk.len() / 3;
        // SAFETY: the CPU has the features (checked just above); `out` holds 76 >= 4 * whole.
        unsafe { vbmi::encode_groups(&chunk[..3 * whole], out) };
        // The last one or two bytes, with padding, as the crate writes them.
        return 4 * whole + encode_with_crate(&chunk[3 * whole..], &mut out[4 * whole..]);
    }
    encode_with_crate(chunk, out)
}

fn encode_with_crate(bytes: &[u8], out: &mut [u8]) -> usize {
    base64::engine::general_purpose::STANDARD.encode_slice(bytes, out).expect("76 bytes hold 57 encoded")
}

#[cfg(target_arch = "x86_64")]
mod vbmi {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vbmi")
        })
    }

    /// Group j's bytes b0 b1 b2 placed as the little-endian 32-bit word b1 b0 b2 b1, so that its
    /// four 6-bit values sit at bits 10, 4, 22 and 16 of it.
    const fn shuffle() -> [u8; 64] {
        let mut index = [0u8; 64];
        let mut j = 0;
        while j < 16 {
            let first = 3 * j as u8;
            index[4 * j] = first + 1;
            index[4 * j + 1] = first;
            index[4 * j + 2] = first + 2;
            index[4 * j + 3] = first + 1;
            j += 1;
        }
        index
    }
    const SHUFFLE: [u8; 64] = shuffle();
    /// Bit offsets of the four values in each of the two words of a 64-bit lane.
    const OFFSETS: [u8; 8] = [10, 4, 22, 16, 42, 36, 54, 48];

    /// Encodes `groups` (whole groups of 3 bytes, at most 57) into the first 4/3 as many bytes of
    /// `out`, 16 groups per step. Masked loads and stores touch exactly those bytes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, BW and VBMI ([`available`]).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn encode_groups(groups: &[u8], out: &mut [u8]) {
        assert!(groups.len().is_multiple_of(3) && groups.len() <= 57 && out.len() >= groups.len() / 3 * 4);
        let mask = |bytes: usize| if bytes >= 64 { u64::MAX } else { (1u64 << bytes) - 1 };
        // SAFETY: each masked load reads at most the 48 bytes of `groups` from `at`, each masked
        // store writes 4/3 of that into `out` (its length was checked), the tables are 64 bytes.
        unsafe {
            let shuffle = _mm512_loadu_si512(SHUFFLE.as_ptr().cast());
            let offsets = _mm512_set1_epi64(i64::from_le_bytes(OFFSETS));
            let alphabet = _mm512_loadu_si512(ALPHABET.as_ptr().cast());
            for at in (0..groups.len()).step_by(48) {
                let n = (groups.len() - at).min(48);
                let bytes = _mm512_maskz_loadu_epi8(mask(n), groups.as_ptr().add(at).cast());
                let words = _mm512_permutexvar_epi8(shuffle, bytes);
                // Each output byte takes the 8 bits at its offset; the lookup uses only the low 6.
                let values = _mm512_multishift_epi64_epi8(offsets, words);
                let chars = _mm512_permutexvar_epi8(values, alphabet);
                _mm512_mask_storeu_epi8(out.as_mut_ptr().add(at / 3 * 4).cast(), mask(n / 3 * 4), chars);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_length_and_byte_value_matches_the_reference_encoder() {
        let reference = &base64::engine::general_purpose::STANDARD;
        let mut data: Vec<u8> = (0..=255u8).collect();
        data.extend((0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
        for len in 0..=LINE_BYTES {
            for start in (0..data.len() - len).step_by(7) {
                let chunk = &data[start..start + len];
                let mut out = [0u8; 76];
                let n = encode(chunk, &mut out);
                assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), reference.encode(chunk), "{len} bytes at {start}");
                assert!(out[n..].iter().all(|&b| b == 0), "nothing written past the line");
            }
        }
    }
}
