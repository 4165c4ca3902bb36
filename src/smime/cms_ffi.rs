//! RSA-OAEP enveloping through OpenSSL's CMS, which the safe `openssl` API does not reach: the
//! padding is set per recipient. The crate's CMS unsafe code is all here, each call checked.

use std::ptr;

use foreign_types::ForeignType;
use libc::{c_int, c_uint, c_void};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use openssl_sys as ffi;

extern "C" {
    fn CMS_add1_recipient_cert(cms: *mut ffi::CMS_ContentInfo, recip: *mut ffi::X509, flags: c_uint) -> *mut c_void;
    fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut c_void) -> *mut ffi::EVP_PKEY_CTX;
    fn CMS_final(cms: *mut ffi::CMS_ContentInfo, data: *mut ffi::BIO, dcont: *mut ffi::BIO, flags: c_uint) -> c_int;
}

/// A read-only memory BIO over a slice; freed on drop.
struct ReadBio<'a> {
    bio: *mut ffi::BIO,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> ReadBio<'a> {
    fn new(data: &'a [u8]) -> Result<ReadBio<'a>, ErrorStack> {
        let len = c_int::try_from(data.len()).map_err(|_| ErrorStack::get())?;
        // SAFETY: the BIO reads `len` bytes of `data`, which outlives it (the lifetime 'a).
        let bio = unsafe { ffi::BIO_new_mem_buf(data.as_ptr() as *const c_void, len) };
        if bio.is_null() {
            return Err(ErrorStack::get());
        }
        Ok(ReadBio { bio, _data: std::marker::PhantomData })
    }
}

impl Drop for ReadBio<'_> {
    fn drop(&mut self) {
        // SAFETY: `bio` came from BIO_new_mem_buf, is not null, and is freed only here.
        unsafe { ffi::BIO_free_all(self.bio) };
    }
}

fn owned(cms: *mut ffi::CMS_ContentInfo) -> Result<CmsContentInfo, ErrorStack> {
    if cms.is_null() {
        Err(ErrorStack::get())
    } else {
        // SAFETY: a non-null CMS_ContentInfo we own; the wrapper frees it once.
        Ok(unsafe { CmsContentInfo::from_ptr(cms) })
    }
}

/// An EnvelopedData of `content` to every certificate in `recipients`. Takes the content so it can
/// be freed once encrypted, before the result is encoded (peak memory for large messages).
pub(super) fn encrypt(
    content: Vec<u8>,
    recipients: &[&X509],
    cipher: Cipher,
    oaep: bool,
) -> Result<Vec<u8>, ErrorStack> {
    let flags = (CMSOptions::PARTIAL | CMSOptions::BINARY).bits();
    let empty = Stack::<X509>::new()?;
    // SAFETY: valid pointers (an empty stack, a cipher) for the call; the result is owned or null.
    let cms = owned(unsafe { ffi::CMS_encrypt(empty.as_ptr(), ptr::null_mut(), cipher.as_ptr(), flags) })?;
    let recipient_flags = flags | if oaep { CMSOptions::KEY_PARAM.bits() } else { 0 };
    for cert in recipients {
        // SAFETY: both pointers are alive for the call; CMS takes its own reference to the cert.
        let info = unsafe { CMS_add1_recipient_cert(cms.as_ptr(), cert.as_ptr(), recipient_flags) };
        if info.is_null() {
            return Err(ErrorStack::get());
        }
        if oaep {
            // RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 4055), rather than the SHA-1 default.
            // SAFETY: `info` is a non-null recipient of `cms`; the context is borrowed from it.
            let ctx = unsafe { CMS_RecipientInfo_get0_pkey_ctx(info) };
            if ctx.is_null() {
                return Err(ErrorStack::get());
            }
            // SAFETY: `ctx` is not null and belongs to `info`; the digests are OpenSSL's static ones.
            let set = unsafe {
                ffi::EVP_PKEY_CTX_set_rsa_padding(ctx, ffi::RSA_PKCS1_OAEP_PADDING) > 0
                    && ffi::EVP_PKEY_CTX_set_rsa_oaep_md(ctx, ffi::EVP_sha256() as *mut _) > 0
                    && ffi::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, ffi::EVP_sha256() as *mut _) > 0
            };
            if !set {
                return Err(ErrorStack::get());
            }
        }
    }
    {
        let data = ReadBio::new(&content)?;
        // SAFETY: `cms` and the BIO are alive for the call; no detached content (null).
        if unsafe { CMS_final(cms.as_ptr(), data.bio, ptr::null_mut(), flags) } != 1 {
            return Err(ErrorStack::get());
        }
    }
    drop(content);
    cms.to_der()
}
