//! Delivery notifications: DSNs (RFC 3464) to local senders; MDN handling follows.

pub mod dsn;
