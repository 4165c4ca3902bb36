#![no_main]

//! hisp's own reading, decryption and signature check (`open`) against OpenSSL's CMS on the same
//! message: whatever `open` accepts, OpenSSL must accept too.

const KEYS: hisp::fuzzing::Keys<'static> = hisp::fuzzing::Keys {
    ca: include_bytes!("../keys/ca.pem"),
    recipient_cert: include_bytes!("../keys/bob.pem"),
    recipient_key: include_bytes!("../keys/bob.key"),
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| hisp::fuzzing::open_differential(data, &KEYS));
