//! hisp: a DirectTrust (Direct Project) HISP node.

pub mod address;
pub mod admission;
pub mod cli;
pub mod clock;
pub mod config;
pub mod deadline;
pub mod demo;
pub mod der;
pub mod discovery;
pub mod dns;
pub mod dns_server;
pub mod fetch;
pub mod http;
pub mod identities;
pub mod kek;
pub mod login_cache;
pub mod notify;
pub mod onboarding;
pub mod password;
pub mod pki;
pub mod serve;
pub mod smime;
pub mod smtp;
pub mod store;
pub mod trust;
pub mod wiped;
