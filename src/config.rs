//! The TOML configuration file, checked into typed settings at load time.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::smime::{ContentCipher, KeyTransport};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0} is not valid: {1}")]
    Parse(PathBuf, String),
    #[error("config file {0}: {1}")]
    Invalid(PathBuf, String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub smime: SmimeConfig,
    pub ca: CaConfig,
    pub dns: DnsSettings,
    pub trust: TrustSettings,
    pub server: ServerConfig,
    pub queue: QueueConfig,
    pub delivery: DeliveryConfig,
    pub dns_server: DnsServerConfig,
    pub notify: NotifyConfig,
    pub onboarding: OnboardingConfig,
    pub invitations: InvitationsConfig,
    pub http: HttpConfig,
    pub portal: PortalConfig,
    pub webhooks: WebhooksConfig,
    pub xdr: XdrConfig,
}

/// Webhooks: the HTTPS callbacks EHRs register through the API (`/v1/webhooks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct WebhooksConfig {
    /// Callbacks at loopback, private or link-local addresses are refused unless this is true
    /// (an EHR on the node's own network; tests). Default: false.
    pub allow_private_addresses: bool,
    /// More anchors (PEM) for the callbacks' TLS certificates, besides the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Per POST, all of it.
    pub timeout_secs: u64,
    /// A delivery not accepted is tried again after `retry_secs`, then twice as long each time
    /// (at most an hour apart)...
    pub retry_secs: u64,
    /// ...until it has been failing this long: then it is given up (its log says so).
    pub give_up_secs: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            allow_private_addresses: false,
            tls_ca_file: None,
            timeout_secs: 10,
            retry_secs: 30,
            give_up_secs: 24 * 3600,
        }
    }
}

/// Invitations (Refer & Share): practices invite patients and colleagues by e-mail or fax.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct InvitationsConfig {
    /// At most this many invitations per practice in any hour (against abuse; users are not
    /// otherwise limited).
    pub per_practice_per_hour: usize,
    /// Where an invitee enters the code: the link in every notice is this URL with `?code=`.
    /// Unset: the portal's page, <portal.public_url>/invitations/accept.
    pub accept_url: Option<String>,
    /// A notice that could not be sent is tried again after this many seconds, then after twice
    /// as long each time (at most 6 hours apart)...
    pub notice_retry_secs: u64,
    /// ...until it has been failing this long: then the invitation shows "notification failed".
    pub notice_give_up_secs: u64,
    /// An NPI registry that pre-fills a registering practice's details from its NPI, `{npi}`
    /// standing for the number (NPPES: "https://npiregistry.cms.hhs.gov/api/?version=2.1&number={npi}").
    /// Unset (the default): none is asked.
    pub npi_registry_url: Option<String>,
}

impl Default for InvitationsConfig {
    fn default() -> Self {
        InvitationsConfig {
            per_practice_per_hour: 100,
            accept_url: None,
            notice_retry_secs: 60,
            notice_give_up_secs: 24 * 3600,
            npi_registry_url: None,
        }
    }
}

impl Config {
    /// The URL invitees are sent to (see `InvitationsConfig::accept_url`).
    /// Where browsers reach the portal (no trailing slash).
    pub(crate) fn portal_url(&self) -> String {
        match &self.portal.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("https://{}", self.server.hostname),
        }
    }

    pub(crate) fn accept_url(&self) -> String {
        match &self.invitations.accept_url {
            Some(url) => url.clone(),
            None => format!("{}/invitations/accept", self.portal_url()),
        }
    }
}

/// The web portal (`hisp serve`): staff, invited colleagues and patients sign in with a browser.
/// HTTPS only (TLS 1.2+).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PortalConfig {
    /// `IP:PORT` to listen on; "" (the default) runs no portal.
    pub listen: String,
    /// The portal's TLS certificate and key (PEM); by default the API's, else the node's.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Where browsers reach it, for the links in e-mails (a set-password link). Unset:
    /// https://<server.hostname>.
    pub public_url: Option<String>,
    /// The name authenticator apps show beside the account's code.
    pub name: String,
    /// A session ends after this many seconds without a request...
    pub idle_timeout_secs: u64,
    /// ...and this many after its sign-in, whatever happens.
    pub session_max_secs: u64,
    /// A one-time link to set a password works this long.
    pub link_valid_secs: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            listen: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            public_url: None,
            name: "hisp".into(),
            idle_timeout_secs: 15 * 60,
            session_max_secs: 12 * 3600,
            link_valid_secs: 72 * 3600,
        }
    }
}

/// The REST API EHRs integrate with (`hisp serve`): HTTPS only, bearer tokens from `hisp token create`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    /// `IP:PORT` to listen on; "" (the default) runs no API.
    pub listen: String,
    /// The API's TLS certificate and key (PEM); by default the node's (server.tls_cert_file), else
    /// the self-signed one made at start.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The largest request body (a message's attachments travel base64-encoded in it).
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's whole body (its header: at most 30 of them).
    pub request_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            max_body_bytes: 70 * 1024 * 1024,
            request_timeout_secs: 120,
        }
    }
}

/// The XDR edge (IHE ITI-41 over SOAP 1.2 with MTOM): EHRs submit documents for Direct
/// delivery, and recipients whose EHR takes XDR get their mail forwarded to it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct XdrConfig {
    /// `IP:PORT` of the HTTPS endpoint (POST /xdr; mutual TLS); "" (the default) runs none.
    pub listen: String,
    /// Its certificate and key (PEM); by default the REST API's ([http]), else the node's.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The largest request (the documents travel in it).
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's whole body.
    pub request_timeout_secs: u64,
    /// The EHRs that may submit: each by its client certificate and the practice it sends for.
    pub clients: Vec<XdrClient>,
    /// Recipients whose mail goes to their EHR's XDR endpoint instead of into a mailbox.
    pub destinations: Vec<XdrDestination>,
    /// Seconds a forward to an XDR endpoint may take (connect, send, answer).
    pub timeout_secs: u64,
}

impl Default for XdrConfig {
    fn default() -> Self {
        XdrConfig {
            listen: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            max_body_bytes: 70 * 1024 * 1024,
            request_timeout_secs: 120,
            clients: Vec::new(),
            destinations: Vec::new(),
            timeout_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XdrClient {
    /// The SHA-256 fingerprint of the client's certificate (hex, colons allowed), as `openssl
    /// x509 -fingerprint -sha256` prints it: the certificate is pinned, not chained.
    pub certificate_sha256: String,
    /// The practice whose addresses it sends from.
    pub practice: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct XdrDestination {
    /// A hosted Direct address.
    pub address: String,
    /// The EHR's ITI-41 endpoint (https://).
    pub url: String,
    /// Our client certificate and key for it (PEM).
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    /// The anchors its server certificate must chain to (PEM); without it, the system's.
    pub ca_file: Option<PathBuf>,
}

impl XdrClient {
    /// The fingerprint as lowercase hex without separators.
    pub(crate) fn fingerprint(&self) -> String {
        self.certificate_sha256.chars().filter(char::is_ascii_hexdigit).collect::<String>().to_ascii_lowercase()
    }
}

/// Practice onboarding and identity proofing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct OnboardingConfig {
    /// Practices' Direct domains are one label under this (e.g. direct.example.org); without it a
    /// practice is added with an explicit --domain.
    pub parent_domain: Option<String>,
    /// Who decides a submitted enrollment after the rules pass: "manual" (an admin, with `hisp
    /// proofing approve`), "http" (an identity-verification service) or "rules" (the rules alone:
    /// for development and demonstrations, never the decision in production). Unset: "http" when
    /// verifier_url is set, else "manual".
    pub verifier: Option<VerifierKind>,
    /// For "http": the identity-verification service's URL (http:// or https://).
    pub verifier_url: Option<String>,
    pub verifier_timeout_secs: u64,
    /// For an https:// verifier: trust anchors (PEM) instead of the system's.
    pub verifier_tls_ca_file: Option<PathBuf>,
    /// How the confirmation code reaches the representative: "email", or "log" (development only:
    /// the code is written to the node's log). Unset: no code is sent (an admin is told why).
    pub code_channel: Option<CodeChannelKind>,
    /// For "email": the relay `HOST:PORT` (STARTTLS required; unset: the node's smarthost,
    /// `[notify.email]`, with its AUTH), the From address (unset: the smarthost's), and the To
    /// address, where {email} is the representative's personal e-mail and {phone} the phone
    /// number's digits (for an e-mail-to-SMS gateway: "{phone}@sms.example.net").
    pub code_smtp: String,
    pub code_from: String,
    pub code_to: String,
    /// Check the relay's TLS certificate.
    pub code_smtp_verify_tls: bool,
}

impl OnboardingConfig {
    /// Who decides: the configured verifier, else the service when one is configured, else an admin.
    pub(crate) fn effective_verifier(&self) -> VerifierKind {
        match (self.verifier, &self.verifier_url) {
            (Some(kind), _) => kind,
            (None, Some(_)) => VerifierKind::Http,
            (None, None) => VerifierKind::Manual,
        }
    }
}

impl Default for OnboardingConfig {
    fn default() -> Self {
        OnboardingConfig {
            parent_domain: None,
            verifier: None,
            verifier_url: None,
            verifier_timeout_secs: 30,
            verifier_tls_ca_file: None,
            code_channel: None,
            code_smtp: String::new(),
            code_from: String::new(),
            code_to: "{email}".into(),
            code_smtp_verify_tls: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum VerifierKind {
    Rules,
    Manual,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CodeChannelKind {
    Log,
    Email,
}

/// Delivery notification (MDNs and DSNs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct NotifyConfig {
    /// A recipient with no processed MDN this long after the message left gets one failure DSN.
    pub processed_timeout_secs: u64,
    /// For timely-and-reliable messages: no dispatched MDN this long after the message left.
    pub dispatched_timeout_secs: u64,
    /// Which MDNs and DSNs from peers reach the sender's mailbox: "all", or "timely-reliable"
    /// (those about plain messages are recorded and consumed here).
    pub pass_to_sender: PassNotifications,
    /// The smarthost notices to people go through (invitations and their reminders). Unset: no
    /// e-mail is sent, and invitations by e-mail show "notification failed".
    pub email: Option<SmarthostConfig>,
    /// The HTTP gateway that sends faxes (and text messages). Unset: nothing is faxed.
    pub gateway: Option<GatewayConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            processed_timeout_secs: 3600,
            dispatched_timeout_secs: 3600,
            pass_to_sender: PassNotifications::All,
            email: None,
            gateway: None,
        }
    }
}

/// `[notify.email]`: an SMTP relay. STARTTLS is always required (TLS 1.2+); AUTH only over it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmarthostConfig {
    /// `HOST:PORT`, e.g. "smtp.example.org:587".
    pub relay: String,
    /// The From address of every notice, e.g. "no-reply@hisp.example.org".
    pub from: String,
    /// AUTH user name; its password is the first line of `password_file`.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Check the relay's certificate (against the system's anchors and `tls_ca_file`).
    #[serde(default = "yes")]
    pub verify_tls: bool,
    /// Trust anchors (PEM) for the relay's certificate besides the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Seconds each reply of the relay may take.
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
}

/// `[notify.gateway]`: a fax and SMS provider's HTTP API, or a bridge to one. Each notice is
/// a JSON POST: {"channel": "fax", "to": "+15555550123", "text": ..., "reference": ...}, with
/// `Authorization: Bearer <token>`; the gateway renders the text as the fax's page. The code of a
/// document shared by link goes the same way with "channel": "sms". A 2xx answer is sent; 429 and
/// 5xx are retried (a code is not: its reader asks for another); any other answer is a permanent
/// failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    /// http:// or https://.
    pub url: String,
    /// The bearer token: the first line of this file.
    pub token_file: Option<PathBuf>,
    /// Trust anchors (PEM) for an https:// gateway instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Seconds one request may take in all.
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
}

fn yes() -> bool {
    true
}

fn thirty() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PassNotifications {
    All,
    TimelyReliable,
}

/// `hisp serve` publishing the hosted domains in DNS: CERT for every hosted address and domain,
/// MX for each domain, A for the MX host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DnsServerConfig {
    /// UDP and TCP `IP:PORT`; "" (the default) publishes nothing.
    pub listen: String,
    /// The MX host of the hosted domains (default: server.hostname).
    pub mx_host: Option<String>,
    /// The IPv4 address published for the MX host.
    pub mx_address: std::net::Ipv4Addr,
    pub ttl: u32,
}

impl Default for DnsServerConfig {
    fn default() -> Self {
        DnsServerConfig { listen: String::new(), mx_host: None, mx_address: std::net::Ipv4Addr::LOCALHOST, ttl: 300 }
    }
}

/// `hisp serve`: the listeners and the mail store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Our host name: in the SMTP greeting, EHLO, Received headers and the TLS certificate.
    pub hostname: String,
    /// Submission listener for EHRs (STARTTLS + AUTH); "" disables it.
    pub submission: String,
    /// Backbone listener for peer HISPs (mail for hosted domains only); "" disables it.
    pub backbone: String,
    /// HTTP listener publishing the development CA's certificate (/ca.cer) and current CRL
    /// (/ca.crl), where ca.base_url should point; "" (the default) disables it.
    pub http: String,
    /// TLS certificate and key (PEM) for STARTTLS; without them a self-signed certificate for
    /// `hostname` is made at start (peers that check TLS certificates will refuse it).
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_connections: usize,
    /// Of those, how many one peer address may hold (on each listener: SMTP, the API, DNS over
    /// TCP, CA publishing).
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send each whole command line (or finish a TLS handshake); and in
    /// DATA, the grace after which the message must keep coming at 16 KiB/s on average.
    pub idle_timeout_secs: u64,
    pub data_timeout_secs: u64,
    /// Seconds a verified AUTH is remembered (as an HMAC under a key that lives only in memory), so
    /// an EHR connecting per message does not pay argon2id each time; 0 verifies every login.
    pub login_cache_secs: u64,
    /// Seconds an orderly stop (SIGTERM, SIGINT) waits for the messages being processed, the SMTP
    /// sessions receiving one and the API requests under way; what is still being processed then
    /// goes back to the queue (it is not counted as a crash).
    pub stop_grace_secs: u64,
    /// Log one line per processed recipient (queue id, Message-ID, addresses, outcome) to stderr.
    pub log_outcomes: bool,
    /// How the daemon writes its log on stderr: "text" (a line per event, for a person) or
    /// "json" (an object per line, for a log shipper). HISP_LOG filters it.
    pub log_format: String,
    /// Mailboxes: <mail_dir>/<domain>/<user>/ in Maildir layout.
    pub mail_dir: PathBuf,
    /// Below this many MiB free where the database or the mailboxes live, the backbone answers
    /// peers 421 (they retry later); submission goes on. 0 turns the check off.
    pub min_free_disk_mb: u64,
    /// Peers must start TLS before MAIL on the backbone (530 otherwise), as hisp always does
    /// when it delivers. Off by default: RFC 3207 §4 forbids requiring it of a publicly
    /// referenced server, and some HISPs still deliver in clear.
    pub backbone_require_tls: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".into(),
            submission: "127.0.0.1:587".into(),
            backbone: "0.0.0.0:25".into(),
            http: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            max_connections: 200,
            max_connections_per_ip: 20,
            idle_timeout_secs: 300,
            data_timeout_secs: 180,
            login_cache_secs: 300,
            stop_grace_secs: 30,
            log_outcomes: true,
            log_format: "text".into(),
            mail_dir: PathBuf::from("./data/mail"),
            min_free_disk_mb: 256,
            backbone_require_tls: false,
        }
    }
}

/// The durable queue and its scheduler.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct QueueConfig {
    /// Messages processed at once (discovery, sealing, delivery).
    pub workers: usize,
    /// First retry after this many seconds, doubling each time up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// A message still undelivered after this long fails (and the sender is told).
    pub max_age_secs: u64,
    /// A message whose processing crashed the daemon this many times is quarantined.
    pub max_crashes: u32,
    /// A message whose every recipient is finished (delivered, sent or failed) is kept this long
    /// after its last change (for `hisp queue show` and `retry`), then removed with its
    /// encrypted copy.
    pub keep_finished_secs: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            workers: 4,
            retry_base_secs: 60,
            retry_max_secs: 3600,
            max_age_secs: 2 * 86_400,
            max_crashes: 3,
            keep_finished_secs: 7 * 86_400,
        }
    }
}

/// Outbound delivery to peer HISPs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DeliveryConfig {
    /// The SMTP port of peers' MX hosts.
    pub port: u16,
    pub timeout_secs: u64,
    /// Check the peer's TLS certificate (chain and host name). STARTTLS itself is always required.
    pub verify_tls: bool,
    /// Seconds a session to a peer stays open, idle, for the next message to it; it is then
    /// closed with QUIT rather than left for the peer to time out.
    pub session_idle_secs: u64,
    /// Settings for particular destination domains.
    pub destinations: Vec<DestinationConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig { port: 25, timeout_secs: 60, verify_tls: false, session_idle_secs: 5, destinations: Vec::new() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationConfig {
    pub domain: String,
    /// Overrides delivery.port for this domain.
    pub port: Option<u16>,
    /// Overrides delivery.verify_tls for this domain.
    pub verify_tls: Option<bool>,
    /// Trust anchors (PEM) for this domain's TLS certificates, instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
}

impl DeliveryConfig {
    /// The settings for `domain`: its destination entry, if any, over the defaults.
    pub(crate) fn for_domain(&self, domain: &str) -> (u16, bool, Option<&Path>) {
        let entry = self.destinations.iter().find(|d| d.domain.eq_ignore_ascii_case(domain));
        (
            entry.and_then(|d| d.port).unwrap_or(self.port),
            entry.and_then(|d| d.verify_tls).unwrap_or(self.verify_tls),
            entry.and_then(|d| d.tls_ca_file.as_deref()),
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TrustSettings {
    /// When a certificate's revocation cannot be checked (its CRL unreachable, stale or badly
    /// signed): "hard" (the default) refuses the certificate, "soft" uses it and reports why.
    pub revocation: crate::trust::revocation::FailMode,
    /// How often `hisp serve` refreshes the trust bundles, in seconds.
    pub bundle_refresh_secs: u64,
    /// PEM files of the anchors every new practice's domain trusts, both ways, from its creation
    /// (by `hisp practice add` or the API's POST /v1/practice): the trust framework the node's
    /// operator has joined, say. Each file may hold several certificates.
    pub new_practice_anchors: Vec<PathBuf>,
    /// A new practice also trusts the node's own development CA, when the node runs one (so its
    /// practices can reach one another at once). Default: true.
    pub new_practice_own_ca: bool,
    /// Trust bundles every new practice's domain subscribes to (incoming and outgoing): each is
    /// fetched when the practice is made, then refreshed with the others.
    pub new_practice_bundles: Vec<DefaultBundle>,
}

/// A trust bundle new practices subscribe to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultBundle {
    /// An http(s):// URL, or a file.
    pub url: String,
    /// The certificate that signs it (PEM); a signed bundle is refused without it.
    pub signer: Option<PathBuf>,
}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            revocation: Default::default(),
            bundle_refresh_secs: 6 * 3600,
            new_practice_anchors: Vec::new(),
            new_practice_own_ca: true,
            new_practice_bundles: Vec::new(),
        }
    }
}

/// The one resolver of the node (DESIGN.md §2): every CERT, SRV, MX and A/AAAA lookup, including
/// those for LDAP and HTTP hosts, is asked of these servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DnsSettings {
    /// `IP` or `IP:PORT`; empty means the nameservers of /etc/resolv.conf.
    pub servers: Vec<String>,
    /// Per server and attempt, in milliseconds.
    pub timeout_ms: u64,
    pub attempts: u32,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings { servers: Vec::new(), timeout_ms: 2000, attempts: 2 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DatabaseConfig {
    pub path: PathBuf,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { path: PathBuf::from("./data/hisp.db") }
    }
}

/// Where the key-encryption key (KEK) comes from. `HISP_KEK` in the environment wins over both.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct KeysConfig {
    /// The KEK itself. Only for throwaway nodes: it puts the secret in the config file.
    pub kek: Option<String>,
    /// A file holding the KEK (its first line); keep it 0600 and apart from the database.
    pub kek_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SmimeConfig {
    pub content_cipher: ContentCipher,
    pub key_transport: KeyTransport,
    /// The Subject of the outer, unencrypted message: a neutral text (the real subject, which may
    /// name a patient, travels only inside, encrypted). "" leaves the field out.
    pub outer_subject: String,
}

impl Default for SmimeConfig {
    fn default() -> Self {
        SmimeConfig {
            content_cipher: ContentCipher::default(),
            key_transport: KeyTransport::default(),
            outer_subject: crate::smime::seal::NEUTRAL_SUBJECT.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CaConfig {
    /// Base URL where the development CA's certificate (`ca.cer`) and CRL (`ca.crl`) are published;
    /// issued certificates point there (AIA caIssuers and CRL distribution point).
    pub base_url: String,
    pub validity_days: u32,
    pub key_bits: u32,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig { base_url: "http://ca.hisp.invalid".into(), validity_days: 365, key_bits: 2048 }
    }
}

impl Config {
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
        Config::parse(&text, path)
    }

    pub(crate) fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(origin.into(), e.to_string()))?;
        config.validate().map_err(|why| ConfigError::Invalid(origin.into(), why))?;
        Ok(config)
    }

    fn validate_xdr(&self) -> Result<(), String> {
        let x = &self.xdr;
        if !x.listen.is_empty() && x.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("xdr.listen must be IP:PORT (or \"\" to disable), not '{}'", x.listen));
        }
        if x.tls_cert_file.is_some() != x.tls_key_file.is_some() {
            return Err("give xdr.tls_cert_file and xdr.tls_key_file together".into());
        }
        for client in &x.clients {
            if client.fingerprint().len() != 64 {
                return Err(format!(
                    "xdr.clients: certificate_sha256 {:?} is not a SHA-256 fingerprint (64 hex digits)",
                    client.certificate_sha256
                ));
            }
        }
        for d in &x.destinations {
            crate::address::DirectAddress::parse(&d.address).map_err(|e| format!("xdr.destinations: {e}"))?;
            if !d.url.starts_with("https://") {
                return Err(format!("xdr.destinations: {} is not an https:// URL", d.url));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        crate::logging::Format::parse(&self.server.log_format).map_err(|e| format!("server.{e}"))?;
        let o = &self.onboarding;
        if let Some(parent) = &o.parent_domain {
            crate::address::Domain::parse(parent).map_err(|e| format!("onboarding.parent_domain: {e}"))?;
        }
        if o.verifier == Some(VerifierKind::Http) {
            let url = o.verifier_url.as_deref().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err("onboarding.verifier = \"http\" needs onboarding.verifier_url (http:// or https://)".into());
            }
        }
        // The code e-mail goes through code_smtp, or else the node's smarthost ([notify.email]).
        if o.code_channel == Some(CodeChannelKind::Email) && (!o.code_smtp.is_empty() || self.notify.email.is_none()) {
            if o.code_smtp.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                return Err("onboarding.code_channel = \"email\" needs onboarding.code_smtp as HOST:PORT, or \
                            [notify.email]"
                    .into());
            }
            if crate::address::DirectAddress::parse(&o.code_from).is_err() {
                return Err("onboarding.code_channel = \"email\" needs onboarding.code_from, an e-mail address".into());
            }
        }
        if self.invitations.per_practice_per_hour == 0 {
            return Err("invitations.per_practice_per_hour must be at least 1".into());
        }
        if let Some(url) = &self.invitations.npi_registry_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) || !url.contains("{npi}") {
                return Err("invitations.npi_registry_url must be an http(s):// URL with {npi} in it".into());
            }
        }
        if self.invitations.notice_retry_secs == 0 || self.invitations.notice_give_up_secs == 0 {
            return Err("invitations.notice_retry_secs and notice_give_up_secs must be at least 1".into());
        }
        if let Some(url) = &self.invitations.accept_url {
            let clean = !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !(url.starts_with("https://") || url.starts_with("http://")) || !clean {
                return Err("invitations.accept_url must be an https:// (or http://) URL".into());
            }
        }
        if !(2048..=8192).contains(&self.ca.key_bits) {
            return Err(format!("ca.key_bits must be 2048 to 8192, not {}", self.ca.key_bits));
        }
        if self.ca.validity_days == 0 || self.ca.validity_days > 3 * 366 {
            return Err(
                "ca.validity_days must be 1 to 1098 (DirectTrust caps end-entity certificates at 3 years)".into()
            );
        }
        if !(self.ca.base_url.starts_with("http://") || self.ca.base_url.starts_with("https://")) {
            return Err("ca.base_url must be an http:// or https:// URL".into());
        }
        for server in &self.dns.servers {
            crate::dns::parse_server(server).map_err(|e| format!("dns.servers: {e}"))?;
        }
        if self.dns.timeout_ms == 0 || self.dns.timeout_ms > 60_000 {
            return Err("dns.timeout_ms must be 1 to 60000".into());
        }
        for (name, listen) in
            [("server.submission", &self.server.submission), ("server.backbone", &self.server.backbone)]
        {
            if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!("{name} must be IP:PORT (or \"\" to disable), not '{listen}'"));
            }
        }
        if !self.dns_server.listen.is_empty() && self.dns_server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("dns_server.listen must be IP:PORT, not '{}'", self.dns_server.listen));
        }
        if !self.server.http.is_empty() && self.server.http.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("server.http must be IP:PORT (or \"\" to disable), not '{}'", self.server.http));
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("http.listen must be IP:PORT (or \"\" to disable), not '{}'", self.http.listen));
        }
        if self.http.tls_cert_file.is_some() != self.http.tls_key_file.is_some() {
            return Err("give http.tls_cert_file and http.tls_key_file together".into());
        }
        self.validate_xdr()?;
        if !self.portal.listen.is_empty() && self.portal.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("portal.listen must be IP:PORT (or \"\" to disable), not '{}'", self.portal.listen));
        }
        if self.portal.tls_cert_file.is_some() != self.portal.tls_key_file.is_some() {
            return Err("give portal.tls_cert_file and portal.tls_key_file together".into());
        }
        if let Some(url) = &self.portal.public_url {
            if !url.starts_with("https://") || url.contains(char::is_whitespace) {
                return Err("portal.public_url must be an https:// URL".into());
            }
        }
        if self.portal.idle_timeout_secs < 60 || self.portal.session_max_secs < self.portal.idle_timeout_secs {
            return Err(
                "portal.idle_timeout_secs must be at least 60, and portal.session_max_secs at least that".into()
            );
        }
        if !(300..=30 * 86_400).contains(&self.portal.link_valid_secs) {
            return Err("portal.link_valid_secs must be 300 (5 minutes) to 2592000 (30 days)".into());
        }
        if self.portal.name.trim().is_empty() || self.portal.name.len() > 64 {
            return Err("portal.name must be 1 to 64 characters".into());
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return Err("give server.tls_cert_file and server.tls_key_file together".into());
        }
        if self.trust.bundle_refresh_secs == 0 {
            return Err("trust.bundle_refresh_secs must be at least 1".into());
        }
        if self.notify.processed_timeout_secs == 0 || self.notify.dispatched_timeout_secs == 0 {
            return Err("notify timeouts must be at least 1 second".into());
        }
        if let Some(email) = &self.notify.email {
            if email.relay.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).is_none() {
                return Err("notify.email.relay must be HOST:PORT".into());
            }
            if crate::address::DirectAddress::parse(&email.from).is_err() {
                return Err("notify.email.from must be an e-mail address".into());
            }
            if email.username.is_some() != email.password_file.is_some() {
                return Err("give notify.email.username and notify.email.password_file together".into());
            }
            if email.timeout_secs == 0 || email.timeout_secs > 600 {
                return Err("notify.email.timeout_secs must be 1 to 600".into());
            }
        }
        if let Some(gateway) = &self.notify.gateway {
            if !(gateway.url.starts_with("http://") || gateway.url.starts_with("https://")) {
                return Err("notify.gateway.url must be an http:// or https:// URL".into());
            }
            if gateway.timeout_secs == 0 || gateway.timeout_secs > 600 {
                return Err("notify.gateway.timeout_secs must be 1 to 600".into());
            }
        }
        if self.queue.workers == 0 || self.queue.workers > 256 {
            return Err("queue.workers must be 1 to 256".into());
        }
        if self.queue.retry_base_secs == 0 || self.queue.retry_max_secs < self.queue.retry_base_secs {
            return Err("queue.retry_base_secs must be at least 1 and no more than queue.retry_max_secs".into());
        }
        if self.keys.kek.is_some() && self.keys.kek_file.is_some() {
            return Err("give keys.kek or keys.kek_file, not both".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hisp.example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.smime.content_cipher, ContentCipher::Aes256Cbc);
        assert_eq!(config.smime.key_transport, KeyTransport::RsaPkcs1);
        assert!(config.keys.kek_file.is_some());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::parse("[database]\npath = \"x.db\"\nsurprise = 1\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("surprise"), "{err}");
        let err = Config::parse("[nonsense]\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_named() {
        let err = Config::parse("[smime]\ncontent_cipher = \"des-ede3-cbc\"\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("des-ede3-cbc"), "{err}");
        let err = Config::parse("[ca]\nkey_bits = 1024\n", Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("key_bits"), "{err}");
    }
}
