use super::*;
use openssl::rsa::Rsa;

/// A random integer below `n`, of the key's size.
fn below(n: &[u8]) -> Vec<u8> {
    let mut x = vec![0u8; n.len()];
    openssl::rand::rand_bytes(&mut x).unwrap();
    x[0] %= n[0];
    x
}

fn minus(n: &[u8], small: u8) -> Vec<u8> {
    let mut x = n.to_vec();
    let mut b = vec![0u8; n.len()];
    b[n.len() - 1] = small;
    subtract_in_place(&mut x, &b);
    x
}

fn check_against_openssl(rsa: &Rsa<openssl::pkey::Private>, rounds: usize) {
    let n = rsa.n().to_vec_padded(rsa.size() as i32).unwrap();
    let k = n.len();
    let mut one = vec![0u8; k];
    one[k - 1] = 1;
    let mut two = vec![0u8; k];
    two[k - 1] = 2;
    let mut cases = vec![vec![0u8; k], one, two, minus(&n, 1), minus(&n, 2)];
    cases.extend((0..rounds).map(|_| below(&n)));
    for x in cases {
        assert_eq!(raw(rsa, &x).unwrap(), openssl_raw(rsa, &x).unwrap(), "{} bits, input {x:02x?}", rsa.n().num_bits());
    }
}

#[test]
fn the_fast_path_is_taken_where_the_cpu_allows() {
    let rsa = Rsa::generate(2048).unwrap();
    assert_eq!(prepared(&rsa).unwrap().is_some(), ifma::available());
    // Moduli too large for it go to OpenSSL.
    let big = Rsa::generate(4608).unwrap();
    assert!(prepared(&big).unwrap().is_none());
    check_against_openssl(&big, 2);
}

#[test]
fn equals_openssl_for_common_key_sizes() {
    for bits in [2048, 3072, 4096] {
        check_against_openssl(&Rsa::generate(bits).unwrap(), 40);
    }
}

#[test]
fn equals_openssl_for_odd_sizes_and_exponents() {
    check_against_openssl(&Rsa::generate(2047).unwrap(), 20);
    check_against_openssl(&Rsa::generate(2600).unwrap(), 20);
    check_against_openssl(&Rsa::generate(1024).unwrap(), 20);
    for e in [3u32, 17, 0x1_0001 + 2, 0xffff_ffff] {
        let e = BigNum::from_u32(e).unwrap();
        check_against_openssl(&Rsa::generate_with_e(2048, &e).unwrap(), 20);
    }
}

#[test]
fn inputs_not_below_the_modulus_or_of_another_size_are_refused() {
    let rsa = Rsa::generate(2048).unwrap();
    let n = rsa.n().to_vec();
    assert!(raw(&rsa, &n).is_err());
    assert!(raw(&rsa, &[0xff; 256]).is_err());
    assert!(raw(&rsa, &[1; 255]).is_err());
    assert!(raw(&rsa, &[1; 257]).is_err());
}

#[test]
fn digits_round_trip() {
    for len in [1usize, 7, 8, 64, 255, 256, 257, 384, 512] {
        let mut x = vec![0u8; len];
        openssl::rand::rand_bytes(&mut x).unwrap();
        let digits = to_digits(&x, (len * 8).div_ceil(52) + 1);
        assert!(digits.iter().all(|&d| d <= ifma::DIGIT_MASK));
        assert_eq!(from_digits(&digits, len), x);
    }
}

#[test]
fn pkcs1_encryption_opens_with_openssl_and_has_the_block_format() {
    let rsa = Rsa::generate(2048).unwrap();
    for len in [16usize, 32, 245] {
        let mut message = vec![0u8; len];
        openssl::rand::rand_bytes(&mut message).unwrap();
        let c = encrypt_pkcs1(&rsa, &message).unwrap();
        assert_eq!(c.len(), 256);
        let mut out = vec![0u8; 256];
        let n = rsa.private_decrypt(&c, &mut out, Padding::PKCS1).unwrap();
        assert_eq!(out[..n], message[..]);
        // The block itself: 00 02, at least 8 non-zero random bytes, 00, the message.
        let n = rsa.private_decrypt(&c, &mut out, Padding::NONE).unwrap();
        assert_eq!(n, 256);
        let pad_end = 256 - len - 1;
        assert_eq!(out[..2], [0, 2]);
        assert!(pad_end - 2 >= 8 && out[2..pad_end].iter().all(|&b| b != 0));
        assert_eq!(out[pad_end], 0);
    }
    // Two encryptions of one key differ (random padding).
    assert_ne!(encrypt_pkcs1(&rsa, &[7; 32]).unwrap(), encrypt_pkcs1(&rsa, &[7; 32]).unwrap());
    // Too long for the key: an error, as from OpenSSL.
    assert!(encrypt_pkcs1(&rsa, &[7; 246]).is_err());
}

#[test]
fn pkcs1_signatures_are_checked_by_encoding_and_comparing() {
    let rsa = Rsa::generate(2048).unwrap();
    let info = crate::smime::digest_info::of(openssl::hash::MessageDigest::sha256(), b"referral").unwrap();
    let mut signature = vec![0u8; 256];
    rsa.private_encrypt(&info, &mut signature, Padding::PKCS1).unwrap();
    assert!(verify_pkcs1(&rsa, &signature, &info));

    let mut other = info.clone();
    *other.last_mut().unwrap() ^= 1;
    assert!(!verify_pkcs1(&rsa, &signature, &other), "another digest");
    let mut tampered = signature.clone();
    tampered[100] ^= 1;
    assert!(!verify_pkcs1(&rsa, &tampered, &info), "a changed signature");
    assert!(!verify_pkcs1(&rsa, &signature[1..], &info), "a short signature");
    assert!(!verify_pkcs1(&rsa, &rsa.n().to_vec(), &info), "the modulus itself");
    // A block of type 2 (encryption) with the same tail is not a signature.
    let mut block = vec![0x5au8; 256];
    block[0] = 0;
    block[1] = 2;
    block[256 - info.len() - 1] = 0;
    block[256 - info.len()..].copy_from_slice(&info);
    let mut forged = vec![0u8; 256];
    rsa.private_encrypt(&block, &mut forged, Padding::NONE).unwrap();
    assert!(!verify_pkcs1(&rsa, &forged, &info));
}
