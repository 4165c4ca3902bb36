//! SMTP: the server session state machine, the listeners and the outbound client.

pub(crate) mod client;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod sessions;
pub(crate) mod spool;
pub(crate) mod tls;
