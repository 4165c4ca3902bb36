//! Delivery notifications: what a message asks for (`request`), the MDNs a receiving HISP sends
//! and reads (`mdn`), and the DSNs that tell a local sender a recipient failed (`dsn`). What was
//! sent and answered is kept by `store::queue::tracking` and `store::queue::receipts`.

pub(crate) mod dsn;
pub(crate) mod mdn;
pub(crate) mod request;
