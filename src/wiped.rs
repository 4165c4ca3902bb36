//! Secrets wiped from memory when dropped (content keys, decrypted private keys, padded RSA blocks):
//! best effort, so a freed buffer does not keep a key for whoever allocates it next.

/// Overwrites `items` with zeros in a way the compiler may not drop as a dead store.
pub(crate) fn wipe<T: Copy + Default>(items: &mut [T]) {
    for item in items.iter_mut() {
        // SAFETY: a plain write to a valid, initialized element of the slice.
        unsafe { std::ptr::write_volatile(item, T::default()) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// A byte buffer wiped when dropped.
pub(crate) struct Wiped(pub Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// A secret string wiped when dropped.
pub(crate) struct WipedString(pub String);

impl Drop for WipedString {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8, so the string stays a string.
        wipe(unsafe { self.0.as_bytes_mut() });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn wipe_zeroes_every_byte() {
        let mut bytes = [0xa5u8; 37];
        super::wipe(&mut bytes);
        assert_eq!(bytes, [0u8; 37]);
        let mut digits = vec![u64::MAX; 40];
        super::wipe(&mut digits);
        assert!(digits.iter().all(|&d| d == 0));
    }
}
