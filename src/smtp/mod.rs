//! SMTP: the server session state machine, the listeners, the outbound client and the queue.

pub mod queue;
pub mod session;
pub mod tls;
