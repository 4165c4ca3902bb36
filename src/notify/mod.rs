//! Delivery notifications: what a message asks for (`request`), the MDNs a receiving HISP sends
//! and reads (`mdn`), the DSNs that tell a local sender a recipient failed (`dsn`), and the
//! per-recipient tracking of what was sent (`tracking`).

pub mod dsn;
pub mod mdn;
pub mod receipts;
pub mod request;
pub mod tracking;
