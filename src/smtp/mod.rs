//! SMTP: the server session state machine, the listeners and the outbound client.

pub mod client;
pub mod server;
pub mod session;
pub mod sessions;
pub mod spool;
pub mod tls;
