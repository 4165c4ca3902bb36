//! `hisp discover` and `hisp address verify` against real servers on loopback: knot serving CERT,
//! SRV and A records, slapd directories, and an HTTP server for IPKIX URLs.

mod common;

use base64::Engine;
use common::pki::Pki;
use common::servers::{self, Server};
use common::*;
use hisp::dns::{DnsClient, DnsConfig, Resolver};

fn b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn cert_line(name: &str, id: &Identity) -> String {
    format!("{name} IN CERT PKIX 0 0 {}\n", b64(&id.cert.to_der().unwrap()))
}

fn sha(id: &Identity) -> String {
    hisp::pki::fingerprint(&id.cert)
}

struct Env {
    files: Files,
    dns: Server,
}

impl Env {
    fn discover(&self, address: &str) -> Run {
        self.discover_with(address, &[])
    }

    fn discover_with(&self, address: &str, extra: &[&str]) -> Run {
        let dns = format!("127.0.0.1:{}", self.dns.port);
        let anchor = self.files.p("anchor.pem");
        let mut args = vec!["discover", address, "--json", "--anchor", &anchor, "--dns", &dns];
        args.extend_from_slice(extra);
        hisp(&args, None, &[])
    }

    fn verify(&self, address: &str) -> Run {
        let dns = format!("127.0.0.1:{}", self.dns.port);
        let anchor = self.files.p("anchor.pem");
        hisp(&["address", "verify", address, "--anchor", &anchor, "--dns", &dns], None, &[])
    }
}

/// Knot serving `zones` and the pki.test zone, and `anchor` written as anchor.pem.
fn env(anchor: &Ca, zones: &[(&str, String)]) -> Env {
    let files = Files::new();
    files.ca("anchor", anchor);
    let mut all = zones.to_vec();
    all.push(("pki.test", "crl IN A 127.0.0.1\n".to_string()));
    Env { files, dns: servers::knot(&all) }
}

fn selected(run: &Run) -> Vec<String> {
    run.json()["selected"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

fn problems_of(run: &Run, id: &Identity) -> Vec<String> {
    let j = run.json();
    let cert = j["certificates"].as_array().unwrap().iter().find(|c| c["sha256"] == sha(id).as_str()).cloned();
    let cert = cert.unwrap_or_else(|| panic!("{} not reported: {j}", sha(id)));
    cert["problems"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn dns_steps_find_address_then_domain_certificates_and_never_fall_back() {
    let other = Pki::named("Someone else's CA");
    let pki = Pki::named("Discovery CA");
    let bob = pki.issue("bob@a1.test");
    let a1_domain = pki.issue("a1.test");
    let d1_domain = pki.issue("d1.test");
    let valid = pki.issue("bob@mix.test");
    let expired = pki.issue_with("bob@mix.test", 2048, *NOW - 400 * DAY, *NOW - 10 * DAY);
    let stale = pki.issue_with("bob@nofall.test", 2048, *NOW - 400 * DAY, *NOW - 10 * DAY);
    let nofall_domain = pki.issue("nofall.test");
    let stranger = other.issue("bob@un.test");
    let alice = pki.issue("alice@a1.test");
    let e = env(
        &pki.ca,
        &[
            ("a1.test", cert_line("bob", &bob) + &cert_line("@", &a1_domain) + &cert_line("carol", &alice)),
            ("d1.test", cert_line("@", &d1_domain)),
            ("mix.test", cert_line("bob", &valid) + &cert_line("bob", &expired)),
            ("nofall.test", cert_line("bob", &stale) + &cert_line("@", &nofall_domain)),
            ("un.test", cert_line("bob", &stranger)),
            ("none.test", String::new()),
        ],
    );

    // Step 1: the address's own record; the domain record is not used.
    let run = e.discover("bob@a1.test");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["step"], "dns-address");
    assert_eq!(selected(&run), [sha(&bob)]);
    assert_eq!(run.json()["certificates"][0]["source"], "dns");
    assert_eq!(run.json()["certificates"][0]["binding"], "address");

    // Step 2: no address record, the domain-bound certificate.
    let run = e.discover("anyone@d1.test");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.json()["step"], "dns-domain");
    assert_eq!(run.json()["certificates"][0]["binding"], "domain");
    assert_eq!(selected(&run), [sha(&d1_domain)]);

    // Valid and expired in one RRset (too large for UDP: answered over TCP): only the valid one.
    let run = e.discover("bob@mix.test");
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(selected(&run), [sha(&valid)]);
    assert_eq!(problems_of(&run, &expired), ["expired"]);

    // A step that finds only unusable certificates ends the search: no domain fallback.
    let run = e.discover("bob@nofall.test");
    assert_eq!(run.status, 3);
    assert_eq!(run.json()["step"], "dns-address");
    assert!(selected(&run).is_empty());
    assert_eq!(problems_of(&run, &stale), ["expired"]);
    let verdict = e.verify("bob@nofall.test");
    assert_eq!((verdict.status, verdict.text().trim()), (3, "invalid: expired (expired)"));

    // Another CA's certificate is untrusted; a certificate for someone else is not bound.
    let run = e.discover("bob@un.test");
    assert_eq!(run.status, 3);
    assert_eq!(problems_of(&run, &stranger), ["untrusted"]);
    assert!(e.verify("bob@un.test").text().starts_with("invalid: none trusted"));
    let run = e.discover("carol@a1.test");
    assert_eq!(problems_of(&run, &alice), ["not-bound"]);

    // Nothing published anywhere.
    let run = e.discover("bob@none.test");
    assert_eq!(run.status, 3);
    assert_eq!(run.json()["step"], serde_json::Value::Null);
    assert_eq!(e.verify("bob@none.test").text().trim(), "invalid: no certificate published");
    assert_eq!(e.verify("bob@a1.test").text().trim(), "valid");

    // The readable report says why.
    let dns = format!("127.0.0.1:{}", e.dns.port);
    let text = hisp(&["discover", "bob@nofall.test", "--anchor", &e.files.p("anchor.pem"), "--dns", &dns], None, &[]);
    assert!(text.text().contains("expired: expired on"), "{}", text.text());
    assert!(text.text().contains("later steps are not asked"), "{}", text.text());
}

#[test]
fn truncated_udp_answers_are_asked_again_over_tcp() {
    let ca = ca("Discovery CA");
    let big = issue_with(&ca, "big@tcp.test", 4096, *NOW - DAY, *NOW + 365 * DAY);
    let second = issue(&ca, "big@tcp.test");
    let dns = servers::knot(&[("tcp.test", cert_line("big", &big) + &cert_line("big", &second))]);
    let client = DnsClient::new(DnsConfig {
        servers: vec![format!("127.0.0.1:{}", dns.port).parse().unwrap()],
        ..DnsConfig::default()
    });
    let answer = client.cert("big.tcp.test").unwrap();
    assert_eq!(answer.records.len(), 2, "both records, though the answer exceeds the UDP size");
    assert_eq!(answer.ttl, 300);
    let ders: Vec<&[u8]> = answer.records.iter().map(|r| r.data.as_slice()).collect();
    assert!(ders.contains(&big.cert.to_der().unwrap().as_slice()));
    // A name with nothing: an empty answer with the SOA's negative TTL.
    let none = client.cert("nobody.tcp.test").unwrap();
    assert!(none.records.is_empty());
    assert_eq!(none.ttl, 60);
}

#[test]
fn an_unreachable_dns_server_is_a_bounded_clear_failure() {
    let ca = ca("Discovery CA");
    let files = Files::new();
    files.ca("anchor", &ca);
    // Nothing listens on this port: the lookup must end (timeouts), exit 3, and say why.
    let dead = format!("127.0.0.1:{}", servers::free_port());
    let started = std::time::Instant::now();
    let run = hisp(
        &["address", "verify", "bob@a1.test", "--json", "--anchor", &files.p("anchor.pem"), "--dns", &dead],
        None,
        &[],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(run.status, 3, "{}", run.stderr);
    assert_eq!(run.json()["valid"], false);
    assert!(run.json()["reason"].as_str().unwrap().starts_with("DNS/LDAP unreachable"), "{}", run.text());

    // Neither --anchor nor a database: a usage error (exit 2) that says what to give.
    let run = hisp(&["discover", "bob@a1.test", "--db", &files.p("none.db"), "--dns", &dead], None, &[]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--anchor"), "{}", run.stderr);
}

#[test]
fn ipkix_records_are_fetched_over_http_through_the_resolver() {
    let pki = Pki::named("Discovery CA");
    let bob = pki.issue("bob@ipkix.test");
    let web = servers::http();
    std::fs::write(web.path("bob.cer"), bob.cert.to_der().unwrap()).unwrap();
    let url = format!("http://pki.ipkix.test:{}/bob.cer", web.port);
    let zone = format!("bob IN CERT IPKIX 0 0 {}\npki IN A 127.0.0.1\n", b64(url.as_bytes()));
    let e = env(&pki.ca, &[("ipkix.test", zone)]);
    let run = e.discover("bob@ipkix.test");
    assert_eq!(run.status, 0, "{} {}", run.text(), run.stderr);
    assert_eq!(selected(&run), [sha(&bob)]);
}

#[test]
fn ldap_servers_from_srv_by_priority_then_weight_past_an_unreachable_one() {
    let pki = Pki::named("Discovery CA");
    let bob = pki.issue("bob@ldap.test");
    let wrong = pki.issue("bob@ldap.test");
    let domain = pki.issue("ldap.test");
    // ldap2 (weight 50) is asked before ldap1 (weight 10) at the same priority; the first record
    // (priority 0) points at a port where nothing listens.
    let ldap1 = servers::slapd(
        "ldap1",
        &servers::ldap_entry("bob", "ldap1", "bob@ldap.test", "userSMIMECertificate", &wrong.cert.to_der().unwrap()),
    );
    let ldap2 = servers::slapd(
        "ldap2",
        &(servers::ldap_entry("bob", "ldap2", "bob@ldap.test", "userCertificate;binary", &bob.cert.to_der().unwrap())
            + &servers::ldap_entry(
                "practice",
                "ldap2",
                "ldap.test",
                "userSMIMECertificate",
                &domain.cert.to_der().unwrap(),
            )),
    );
    let dead = servers::free_port();
    let zone = format!(
        "_ldap._tcp IN SRV 0 0 {dead} down\n_ldap._tcp IN SRV 10 10 {} ldap1\n_ldap._tcp IN SRV 10 50 {} ldap2\n\
         down IN A 127.0.0.1\nldap1 IN A 127.0.0.1\nldap2 IN A 127.0.0.1\n",
        ldap1.port, ldap2.port
    );
    let e = env(&pki.ca, &[("ldap.test", zone)]);

    let run = e.discover("bob@ldap.test");
    assert_eq!(run.status, 0, "{} {}", run.text(), run.stderr);
    assert_eq!(run.json()["step"], "ldap-address");
    assert_eq!(run.json()["certificates"][0]["source"], "ldap");
    assert_eq!(selected(&run), [sha(&bob)]);
    assert!(run.json()["notes"].to_string().contains("skipped"), "the dead server is reported");

    // No entry for carol: the domain's entry, step 4.
    let run = e.discover("carol@ldap.test");
    assert_eq!(run.status, 0, "{} {}", run.text(), run.stderr);
    assert_eq!(run.json()["step"], "ldap-domain");
    assert_eq!(selected(&run), [sha(&domain)]);

    // A filter metacharacter in the address is escaped, not interpreted: (mail=b*@ldap.test) would
    // match bob's entry; escaped it matches nothing, and the domain's entry answers.
    let run = e.discover("b*@ldap.test");
    assert_eq!(run.json()["step"], "ldap-domain", "{}", run.text());
}

#[test]
fn revoked_certificates_and_unavailable_crls_are_refused() {
    let pki = Pki::named("Discovery CA");
    let revoked = pki.issue("bob@rev.test");
    let good = pki.issue("carol@rev.test");
    pki.publish_crl(&[&revoked]);
    // A certificate whose CRL is published nowhere (nothing listens on that port).
    let dead = format!("http://crl.pki.test:{}/ca.crl", servers::free_port());
    let orphan = issue_at(&pki.ca, "dave@rev.test", 2048, *NOW - DAY, *NOW + 365 * DAY, &dead, &pki.url("ca.cer"));
    let zone = cert_line("bob", &revoked) + &cert_line("carol", &good) + &cert_line("dave", &orphan);
    let e = env(&pki.ca, &[("rev.test", zone)]);

    let run = e.discover("bob@rev.test");
    assert_eq!(run.status, 3, "{}", run.text());
    assert_eq!(problems_of(&run, &revoked), ["revoked"]);
    assert_eq!(e.verify("bob@rev.test").text().trim(), "invalid: revoked (revoked)");
    assert_eq!(e.discover("carol@rev.test").status, 0, "the CRL does not list carol");

    // Hard fail by default; soft fail when configured, with the reason reported.
    let run = e.discover("dave@rev.test");
    assert_eq!(run.status, 3);
    assert_eq!(problems_of(&run, &orphan), ["revocation-unknown"]);
    let config = e.files.write("soft.toml", b"[trust]\nrevocation = \"soft\"\n");
    let run = e.discover_with("dave@rev.test", &["--config", &config]);
    assert_eq!(run.status, 0, "{}", run.text());
    assert!(run.json()["notes"].to_string().contains("soft fail"), "{}", run.text());
}

#[test]
fn a_stale_crl_is_not_trusted() {
    let pki = Pki::named("Discovery CA");
    let bob = pki.issue("bob@stale.test");
    std::fs::write(pki.web.path("ca.crl"), crl(&pki.ca, &[], *NOW - 20 * DAY, *NOW - 10 * DAY)).unwrap();
    let e = env(&pki.ca, &[("stale.test", cert_line("bob", &bob))]);
    let dns = format!("127.0.0.1:{}", e.dns.port);
    let text = hisp(&["discover", "bob@stale.test", "--anchor", &e.files.p("anchor.pem"), "--dns", &dns], None, &[]);
    assert_eq!(text.status, 3);
    assert!(text.text().contains("the CRL is stale"), "{}", text.text());
}

#[test]
fn an_intermediate_only_published_through_aia_is_fetched_and_its_revocation_checked() {
    let root = Pki::named("Discovery Root");
    let inter = intermediate(&root.ca, "Discovery Intermediate", &root.url("ca.crl"));
    let url = |f: &str| root.url(f);
    let bob =
        issue_at(&inter, "bob@aia.test", 2048, *NOW - DAY, *NOW + 365 * DAY, &url("inter.crl"), &url("inter.cer"));
    std::fs::write(root.web.path("inter.crl"), crl(&inter, &[], *NOW - DAY, *NOW + 7 * DAY)).unwrap();
    let e = env(&root.ca, &[("aia.test", cert_line("bob", &bob))]);

    // Not yet published: no path to the root.
    let run = e.discover("bob@aia.test");
    assert_eq!(problems_of(&run, &bob), ["untrusted"]);
    // Published as DER at the AIA caIssuers URL: fetched, the path builds, both CRLs check.
    std::fs::write(root.web.path("inter.cer"), inter.cert.to_der().unwrap()).unwrap();
    let run = e.discover_with("bob@aia.test", &["--no-cache"]);
    assert_eq!(run.status, 0, "{}", run.text());
    assert_eq!(selected(&run), [sha(&bob)]);

    // The root revokes the intermediate: bob's certificate, itself not revoked, is no longer usable.
    let inter_id = Identity { address: bob.address.clone(), cert: inter.cert.clone(), key: inter.key.clone() };
    root.publish_crl(&[&inter_id]);
    let run = e.discover_with("bob@aia.test", &["--no-cache"]);
    assert_eq!(run.status, 3, "{}", run.text());
    assert_eq!(problems_of(&run, &bob), ["revoked"]);
}
