//! The SMTP smarthost the node hands its own notices to (invitations, confirmation codes), with
//! lettre as the client: STARTTLS required before anything is sent (TLS 1.2 or later), AUTH
//! only over that TLS, the relay's name resolved by the node's resolver and its certificate
//! checked against that name. Every reply waits at most `timeout`, and a session is a fixed
//! handful of commands, so one notice takes a bounded time.

use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};

use crate::dns::Resolver;
use crate::failure::{Code, Failure};

pub(crate) struct Smarthost {
    /// `HOST:PORT`.
    pub relay: String,
    /// Our name in EHLO.
    pub hello: String,
    /// AUTH user name and password, when the relay wants them.
    pub credentials: Option<(String, String)>,
    /// Check the relay's certificate (off only for a test relay with no certificate to check).
    pub verify_tls: bool,
    /// Trust anchors (PEM) for the relay's certificate besides the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub resolver: Box<dyn Resolver>,
    pub timeout: Duration,
}

impl Smarthost {
    /// Sends `message` (a whole RFC 5322 message) from `from` to `to`. A refusal the relay
    /// says is permanent is permanent; anything else may clear and is temporary.
    pub(crate) fn send(&self, from: &str, to: &str, message: &[u8]) -> Result<(), Failure> {
        let envelope = Envelope::new(
            Some(from.parse::<Address>().map_err(|e| Failure::local(format!("the sender {from:?}: {e}")))?),
            vec![to.parse::<Address>().map_err(|e| Failure::permanent(Code::BAD_ADDRESS, format!("{to}: {e}")))?],
        )
        .map_err(|e| Failure::permanent(Code::BAD_ADDRESS, e.to_string()))?;
        self.transport()?.send_raw(&envelope, message).map(drop).map_err(|e| {
            let text = format!("smarthost {}: {e}", self.relay);
            if e.is_permanent() {
                Failure::permanent(Code::OTHER, text)
            } else {
                Failure::temporary(Code::CONNECTION, text)
            }
        })
    }

    fn transport(&self) -> Result<SmtpTransport, Failure> {
        let bad = |why: String| Failure::local(format!("smarthost {}: {why}", self.relay));
        let (host, port) = self.relay.rsplit_once(':').ok_or_else(|| bad("not HOST:PORT".into()))?;
        let port: u16 = port.parse().map_err(|_| bad("not HOST:PORT".into()))?;
        let ip = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                let found = self.resolver.addresses(host).map_err(|e| {
                    Failure::temporary(Code::DIRECTORY, format!("smarthost {host}: cannot resolve: {e}"))
                })?;
                let first = found.records.first().copied();
                first.ok_or_else(|| Failure::temporary(Code::DIRECTORY, format!("smarthost {host}: no address")))?
            }
        };
        let mut tls = TlsParameters::builder(host.to_string())
            .set_min_tls_version(TlsVersion::Tlsv12)
            .dangerous_accept_invalid_certs(!self.verify_tls)
            .dangerous_accept_invalid_hostnames(!self.verify_tls);
        if let Some(pem) = &self.ca_pem {
            tls = tls.add_root_certificate(Certificate::from_pem(pem).map_err(|e| bad(e.to_string()))?);
        }
        let tls = tls.build_native().map_err(|e| bad(e.to_string()))?;
        let mut builder = SmtpTransport::builder_dangerous(ip.to_string())
            .port(port)
            .tls(Tls::Required(tls))
            .hello_name(ClientId::Domain(self.hello.clone()))
            .timeout(Some(self.timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}
