//! SMTP: the server session state machine, the listeners, the outbound client and the queue.

pub mod client;
pub mod queue;
pub mod server;
pub mod session;
pub mod sessions;
pub mod spool;
pub mod tls;
