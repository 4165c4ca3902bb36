//! The RSA public-key operation (RFC 8017 §5.1.1 RSAEP and §5.2.2 RSAVP1: `m^e mod n`) and the two
//! PKCS#1 v1.5 schemes built on it that every Direct message needs: key transport to each recipient
//! and to the sender (§7.2.1), and the signer's signature check (§8.2.2).
//!
//! OpenSSL 3.0 does the private-key operation with AVX-512 IFMA on CPUs that have it, but the
//! public one with its generic code: a seal (one private, two public operations) then spends an
//! eighth of its time on the public ones. With IFMA this module does them in about a third of that
//! time (`ifma`); on other CPUs, or for a modulus it does not cover, it calls OpenSSL.

#[cfg(target_arch = "x86_64")]
mod ifma;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use openssl::bn::{BigNum, BigNumContext};
use openssl::error::ErrorStack;
use openssl::pkey::HasPublic;
use openssl::rsa::{Padding, RsaRef};

use crate::wiped::Wiped;

/// Moduli up to 4,160 bits (10 vectors of 8 digits of 52 bits) take the IFMA path.
#[cfg(target_arch = "x86_64")]
const MAX_VECTORS: usize = 10;
const CAPACITY: usize = 1024;
/// Random bytes drawn beyond the padding, to stand in for its zero bytes.
const SPARE: usize = 16;

/// `input^e mod n` for the key `rsa`: `input` is a big-endian integer of exactly the key's size and
/// below `n` (else OpenSSL's own operation reports the error); the result has the key's size.
pub fn raw<T: HasPublic>(rsa: &RsaRef<T>, input: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    #[cfg(target_arch = "x86_64")]
    if let Some(key) = prepared(rsa)? {
        if input.len() == key.n_bytes.len() && input < &key.n_bytes[..] {
            return Ok(key.power(input));
        }
    }
    openssl_raw(rsa, input)
}

/// OpenSSL's RSAEP/RSAVP1, the reference the fast path is tested against.
pub fn openssl_raw<T: HasPublic>(rsa: &RsaRef<T>, input: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.public_encrypt(input, &mut out, Padding::NONE)?;
    out.truncate(n);
    Ok(out)
}

/// RSAES-PKCS1-v1_5 encryption (RFC 8017 §7.2.1) of a short secret such as a content key.
pub fn encrypt_pkcs1<T: HasPublic>(rsa: &RsaRef<T>, message: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let k = rsa.size() as usize;
    if message.len() + 11 > k {
        // Too long for the key: OpenSSL's own encryption refuses it with its error.
        let mut out = vec![0u8; k];
        let n = rsa.public_encrypt(message, &mut out, Padding::PKCS1)?;
        out.truncate(n);
        return Ok(out);
    }
    // EM = 0x00 || 0x02 || PS (random, no zero byte, at least 8) || 0x00 || M
    let mut em = Wiped(vec![0u8; k]); // it holds the secret
    em.0[1] = 0x02;
    let pad_end = k - message.len() - 1;
    // One draw for the padding and for spares to replace its zero bytes (most blocks have one).
    let mut random = Wiped(vec![0u8; pad_end - 2 + SPARE]);
    openssl::rand::rand_bytes(&mut random.0)?;
    let (drawn, mut spares) = random.0.split_at(pad_end - 2);
    for (byte, &r) in em.0[2..pad_end].iter_mut().zip(drawn) {
        *byte = r;
        while *byte == 0 {
            match spares.split_first() {
                Some((&s, rest)) => (*byte, spares) = (s, rest),
                None => {
                    let mut one = [0u8];
                    openssl::rand::rand_bytes(&mut one)?;
                    *byte = one[0];
                }
            }
        }
    }
    em.0[k - message.len()..].copy_from_slice(message);
    raw(rsa, &em.0)
}

/// RSASSA-PKCS1-v1_5 verification by encode-and-compare (RFC 8017 §8.2.2): `signature` opened with
/// the key must be exactly `0x00 || 0x01 || 0xFF.. || 0x00 || digest_info`.
pub fn verify_pkcs1<T: HasPublic>(rsa: &RsaRef<T>, signature: &[u8], digest_info: &[u8]) -> bool {
    let k = rsa.size() as usize;
    if signature.len() != k || digest_info.len() + 11 > k {
        return false;
    }
    let Ok(opened) = raw(rsa, signature) else {
        return false; // not below the modulus: not a signature
    };
    let pad_end = k - digest_info.len() - 1;
    opened.len() == k
        && opened[0] == 0x00
        && opened[1] == 0x01
        && opened[2..pad_end].iter().all(|&b| b == 0xff)
        && opened[pad_end] == 0x00
        && opened[pad_end + 1..] == *digest_info
}

/// A modulus made ready for the IFMA path: its digits, `-n^-1 mod 2^52`, and `R^2 mod n`.
#[cfg(target_arch = "x86_64")]
struct Prepared {
    n_bytes: Vec<u8>,
    vectors: usize,
    n: Vec<u64>,
    k0: u64,
    rr: Vec<u64>,
    /// The public exponent, big-endian.
    e: Vec<u8>,
}

#[cfg(target_arch = "x86_64")]
type Cache = Mutex<HashMap<(Vec<u8>, Vec<u8>), Option<Arc<Prepared>>>>;

/// The prepared form of `rsa`'s modulus, or None where the IFMA path does not apply. Kept per
/// (modulus, exponent): a HISP encrypts to the same few certificates over and over.
#[cfg(target_arch = "x86_64")]
fn prepared<T: HasPublic>(rsa: &RsaRef<T>) -> Result<Option<Arc<Prepared>>, ErrorStack> {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    if !*AVAILABLE.get_or_init(ifma::available) {
        return Ok(None);
    }
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (rsa.n().to_vec(), rsa.e().to_vec());
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let made = prepare(rsa)?.map(Arc::new);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, made.clone());
    }
    Ok(made)
}

#[cfg(target_arch = "x86_64")]
fn prepare<T: HasPublic>(rsa: &RsaRef<T>) -> Result<Option<Prepared>, ErrorStack> {
    let bits = rsa.n().num_bits() as usize;
    // R = 2^(52 * digits) must exceed 4n for the almost-Montgomery product to stay below 2n.
    let vectors = (bits + 2).div_ceil(ifma::DIGIT_BITS).div_ceil(8);
    if !rsa.n().is_bit_set(0) || bits < 512 || vectors > MAX_VECTORS || rsa.e().num_bits() < 2 {
        return Ok(None);
    }
    let digits = 8 * vectors;
    let k = rsa.size() as usize;
    let n_bytes = rsa.n().to_vec_padded(k as i32)?;
    let n = to_digits(&n_bytes, digits);

    // -n^-1 mod 2^64 by Newton's iteration (each step doubles the correct low bits, 3 to start).
    let n0 = n[0] | (n[1] << ifma::DIGIT_BITS);
    let mut inverse = n0;
    for _ in 0..5 {
        inverse = inverse.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inverse)));
    }
    let k0 = inverse.wrapping_neg() & ifma::DIGIT_MASK;

    let mut r2 = BigNum::new()?;
    r2.set_bit((2 * ifma::DIGIT_BITS * digits) as i32)?;
    let mut rr = BigNum::new()?;
    let mut ctx = BigNumContext::new()?;
    rr.nnmod(&r2, rsa.n(), &mut ctx)?;
    let rr = to_digits(&rr.to_vec_padded(k as i32)?, digits);
    Ok(Some(Prepared { n_bytes, vectors, n, k0, rr, e: rsa.e().to_vec() }))
}

#[cfg(target_arch = "x86_64")]
impl Prepared {
    /// `input^e mod n` by left-to-right square-and-multiply in Montgomery form.
    fn power(&self, input: &[u8]) -> Vec<u8> {
        let digits = self.n.len();
        let mut x = to_digits(input, digits);
        let mut base = vec![0u64; digits];
        self.multiply(&x, &self.rr, &mut base); // x * R mod n
        let mut acc = base.clone();
        let mut scratch = vec![0u64; digits];
        let mut first = true;
        for byte in &self.e {
            for bit in (0..8).rev() {
                let set = byte >> bit & 1 == 1;
                if first {
                    // The leading one bit is `acc = base` itself.
                    first = !set;
                    continue;
                }
                self.multiply(&acc, &acc, &mut scratch);
                std::mem::swap(&mut acc, &mut scratch);
                if set {
                    self.multiply(&acc, &base, &mut scratch);
                    std::mem::swap(&mut acc, &mut scratch);
                }
            }
        }
        let mut one = vec![0u64; digits];
        one[0] = 1;
        self.multiply(&acc, &one, &mut scratch); // out of Montgomery form: at most n
        let mut out = from_digits(&scratch, self.n_bytes.len());
        if out[..] >= self.n_bytes[..] {
            subtract_in_place(&mut out, &self.n_bytes);
        }
        // The input may be a padded content key: leave none of its forms in freed memory.
        for digits in [&mut x, &mut base, &mut acc, &mut scratch] {
            crate::wiped::wipe(digits);
        }
        out
    }

    fn multiply(&self, a: &[u64], b: &[u64], out: &mut [u64]) {
        // SAFETY: a Prepared exists only when `ifma::available()` said the CPU has the features,
        // and every operand has 8 * vectors digits.
        unsafe {
            match self.vectors {
                1 => ifma::almost_montgomery::<1>(a, b, &self.n, self.k0, out),
                2 => ifma::almost_montgomery::<2>(a, b, &self.n, self.k0, out),
                3 => ifma::almost_montgomery::<3>(a, b, &self.n, self.k0, out),
                4 => ifma::almost_montgomery::<4>(a, b, &self.n, self.k0, out),
                5 => ifma::almost_montgomery::<5>(a, b, &self.n, self.k0, out),
                6 => ifma::almost_montgomery::<6>(a, b, &self.n, self.k0, out),
                7 => ifma::almost_montgomery::<7>(a, b, &self.n, self.k0, out),
                8 => ifma::almost_montgomery::<8>(a, b, &self.n, self.k0, out),
                9 => ifma::almost_montgomery::<9>(a, b, &self.n, self.k0, out),
                _ => ifma::almost_montgomery::<MAX_VECTORS>(a, b, &self.n, self.k0, out),
            }
        }
    }
}

/// A big-endian integer as `count` little-endian 52-bit digits (it must fit).
#[cfg(target_arch = "x86_64")]
fn to_digits(bytes: &[u8], count: usize) -> Vec<u64> {
    let limbs: Vec<u64> = bytes
        .rchunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[8 - chunk.len()..].copy_from_slice(chunk);
            u64::from_be_bytes(word)
        })
        .collect();
    let limb = |i: usize| limbs.get(i).copied().unwrap_or(0);
    (0..count)
        .map(|d| {
            let (word, shift) = (d * ifma::DIGIT_BITS / 64, d * ifma::DIGIT_BITS % 64);
            // A digit starting past bit 12 of its limb runs into the next one.
            let spill = if shift > 64 - ifma::DIGIT_BITS { limb(word + 1) << (64 - shift) } else { 0 };
            (limb(word) >> shift | spill) & ifma::DIGIT_MASK
        })
        .collect()
}

/// Normalized digits as a big-endian integer of `len` bytes (it must fit).
#[cfg(target_arch = "x86_64")]
fn from_digits(digits: &[u64], len: usize) -> Vec<u8> {
    let mut limbs = vec![0u64; len.div_ceil(8) + 1];
    for (d, &digit) in digits.iter().enumerate() {
        let (word, shift) = (d * ifma::DIGIT_BITS / 64, d * ifma::DIGIT_BITS % 64);
        if let Some(l) = limbs.get_mut(word) {
            *l |= digit << shift;
        }
        if shift > 64 - ifma::DIGIT_BITS {
            if let Some(l) = limbs.get_mut(word + 1) {
                *l |= digit >> (64 - shift);
            }
        }
    }
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().rev().enumerate() {
        *byte = (limbs[i / 8] >> (8 * (i % 8))) as u8;
    }
    out
}

/// `a -= b` for big-endian integers of one length, `a >= b`.
#[cfg(target_arch = "x86_64")]
fn subtract_in_place(a: &mut [u8], b: &[u8]) {
    let mut borrow = 0i16;
    for (x, &y) in a.iter_mut().zip(b).rev() {
        let d = i16::from(*x) - i16::from(y) - borrow;
        borrow = i16::from(d < 0);
        *x = (d + 256 * borrow) as u8;
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
