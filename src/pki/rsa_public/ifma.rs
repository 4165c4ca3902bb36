//! Montgomery multiplication with AVX-512 IFMA (52-bit multiply-add), for the RSA public-key
//! operation only (public exponent; no secret-dependent branches either way).
//!
//! Numbers are little-endian arrays of 52-bit digits, `8 * V` digits (V 512-bit vectors). The
//! product is the "almost Montgomery multiplication" of Gueron and Krasnov: for inputs below `2n`
//! and `R = 2^(52 * 8V) > 4n` it returns `a * b / R mod n`, below `2n`, with no final
//! subtraction. Per digit `b_i` of `b`, one pass adds the low halves of `a * b_i` and `m * n` (with
//! `m` chosen so the lowest digit becomes zero), shifts the accumulator down one digit and then
//! adds the high halves, which belong one digit up and so land where the shift put them.

use std::arch::x86_64::*;

pub const DIGIT_BITS: usize = 52;
pub const DIGIT_MASK: u64 = (1 << DIGIT_BITS) - 1;

/// Whether this CPU can run the code here.
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512ifma")
}

/// `out = a * b / R (mod n)` for `V` vectors of digits; `k0 = -n^-1 mod 2^52`. Every slice holds
/// exactly `8 * V` digits, each below `2^52`, and so does `out`.
///
/// # Safety
/// The CPU must have AVX-512F and AVX-512 IFMA (see [`available`]).
#[target_feature(enable = "avx512f,avx512ifma")]
pub unsafe fn almost_montgomery<const V: usize>(a: &[u64], b: &[u64], n: &[u64], k0: u64, out: &mut [u64]) {
    let digits = 8 * V;
    assert!(a.len() == digits && b.len() == digits && n.len() == digits && out.len() == digits);
    let zero = _mm512_setzero_si512();
    let mut av = [zero; V];
    let mut nv = [zero; V];
    for k in 0..V {
        // SAFETY: the lengths were checked above; unaligned loads.
        av[k] = unsafe { _mm512_loadu_si512(a.as_ptr().add(8 * k).cast()) };
        nv[k] = unsafe { _mm512_loadu_si512(n.as_ptr().add(8 * k).cast()) };
    }
    let k0v = _mm512_set1_epi64(k0 as i64);
    let digit = |i: usize| b.get(i).map_or(zero, |&d| _mm512_set1_epi64(d as i64));
    // The accumulator starts with the low halves of a * b_0; each pass then adds the high halves
    // of a * b_i together with the low halves of a * b_(i+1), both independent of the reduction,
    // so only the steps through m wait on each other.
    let mut acc = [zero; V];
    let b0 = digit(0);
    for k in 0..V {
        acc[k] = _mm512_madd52lo_epu64(zero, av[k], b0);
    }
    for i in 0..digits {
        let (bi, next) = (digit(i), digit(i + 1));
        // m = acc_0 * k0 mod 2^52 in every lane: IFMA reads only the low 52 bits of acc_0.
        let m = _mm512_madd52lo_epu64(zero, _mm512_permutexvar_epi64(zero, acc[0]), k0v);
        let mut high = [zero; V];
        for k in 0..V {
            let ab = _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(zero, av[k], bi), av[k], next);
            high[k] = _mm512_madd52hi_epu64(ab, nv[k], m);
            acc[k] = _mm512_madd52lo_epu64(acc[k], nv[k], m);
        }
        // The lowest digit is now a multiple of 2^52: keep its carry, drop the digit, and add
        // what belongs one digit up.
        let carry = _mm512_maskz_srli_epi64::<52>(1, acc[0]);
        high[0] = _mm512_add_epi64(high[0], carry);
        for k in 0..V - 1 {
            acc[k] = _mm512_add_epi64(_mm512_alignr_epi64::<1>(acc[k + 1], acc[k]), high[k]);
        }
        acc[V - 1] = _mm512_add_epi64(_mm512_alignr_epi64::<1>(zero, acc[V - 1]), high[V - 1]);
    }
    for (k, vector) in acc.iter().enumerate() {
        // SAFETY: `out` holds 8 * V digits (checked above).
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(8 * k).cast(), *vector) };
    }
    // Each lane gathered at most 4 * 8V products' halves (< 2^52 each) and carries: below 2^62,
    // so the carries fit and the result, below 2n < R, leaves no carry out of the top digit.
    let mut carry = 0u64;
    for digit in out.iter_mut() {
        let t = *digit + carry;
        *digit = t & DIGIT_MASK;
        carry = t >> DIGIT_BITS;
    }
    debug_assert_eq!(carry, 0);
}
