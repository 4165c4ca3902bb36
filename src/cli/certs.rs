//! `hisp ca ...` and `hisp cert ...`: the development CA, issuing, importing and exporting.

use std::path::PathBuf;

use clap::Subcommand;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::json;

use super::output::{self, table};
use super::provision::done;
use super::{Context, Failure};
use crate::address::Owner;
use crate::clock::iso8601;
use crate::dev_ca::DevCa;
use crate::identities;
use crate::pki::binding;
use crate::pki::{self, ca};
use crate::smime::policy;
use crate::store::{CertRecord, NewCert, Store};

#[derive(Subcommand, Debug)]
pub(crate) enum CaCommand {
    /// Create the development CA (a self-signed RSA root kept in the database, key encrypted).
    Init {
        /// Common name of the CA (default: "hisp development CA" and a random tag, so two nodes'
        /// development CAs never share a name).
        #[arg(long)]
        name: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace an existing development CA (certificates it issued will no longer chain).
        #[arg(long)]
        force: bool,
    },
    /// Show the development CA.
    Show,
    /// Write the CA certificate (to publish, or to give peers as a trust anchor).
    Export {
        /// DER instead of PEM.
        #[arg(long)]
        der: bool,
        /// A new file to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Write the CA's current CRL (DER, as CRL distribution points serve it; --pem for PEM),
    /// listing every certificate revoked with `hisp cert revoke`. Publish it at <ca.base_url>/ca.crl
    /// (`hisp serve` does so itself).
    Crl {
        /// How many days the CRL is good for (its nextUpdate); publish a new one before then.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// PEM instead of DER.
        #[arg(long)]
        pem: bool,
        /// Where to write the CRL (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Issue a certificate from the development CA: OWNER is an address (address-bound) or a
    /// domain (domain-bound). DirectTrust end-entity profile, new RSA key stored encrypted.
    Issue {
        /// The hosted address (address-bound) or domain (domain-bound) to issue for.
        owner: String,
        /// Validity in days (default ca.validity_days from the config).
        #[arg(long)]
        days: Option<u32>,
        /// RSA key size, 2048 or more (default ca.key_bits from the config).
        #[arg(long)]
        bits: Option<u32>,
    },
    /// Import a certificate and its key: --pkcs12 FILE, or --cert FILE [--key FILE]. Without
    /// --key, the key made by `hisp cert csr` is used.
    Import {
        /// The address or domain the certificate is for.
        owner: String,
        /// A PKCS#12 file holding the certificate and its key (its password on standard input with --password-stdin).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["cert", "key"])]
        pkcs12: Option<PathBuf>,
        /// Read the PKCS#12 password from the first line of standard input (default: empty).
        #[arg(long, requires = "pkcs12")]
        password_stdin: bool,
        /// The certificate (PEM or DER), e.g. the one a CA signed from `hisp cert csr`.
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// Its private key (PEM), when not kept here already (from `hisp cert csr`).
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
    },
    /// List certificates.
    List {
        /// Only those of this address or domain.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Write a certificate (public part only) by SHA-256 fingerprint, or the newest of an owner.
    Export {
        /// A SHA-256 fingerprint, an address or a domain.
        selector: String,
        /// DER instead of PEM.
        #[arg(long)]
        der: bool,
        /// A new file to write (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace FILE if it exists.
        #[arg(long, requires = "out")]
        force: bool,
    },
    /// Make a new key (stored encrypted) and a CSR for it, to send to a DirectTrust CA; then
    /// `hisp cert import OWNER --cert SIGNED.pem`.
    Csr {
        /// The address or domain the certificate is for.
        owner: String,
        /// The RSA key size (2048 to 8192; default: [ca] key_bits).
        #[arg(long)]
        bits: Option<u32>,
        /// Where to write the CSR (PEM; default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Remove a certificate (and its key, if nothing else uses it).
    Remove {
        /// The certificate's SHA-256 fingerprint (`hisp cert list`).
        sha256: String,
    },
    /// Revoke a certificate the development CA issued (by SHA-256 fingerprint, 8+ hex digits):
    /// it goes on the CA's CRL and is no longer used to sign or published.
    Revoke {
        /// The certificate's SHA-256 fingerprint (`hisp cert list`).
        sha256: String,
        /// Why (kept in the store and the audit log).
        #[arg(long, default_value = "unspecified", value_parser = output::plain_line)]
        reason: String,
    },
}

pub(super) fn ca(ctx: &Context, command: CaCommand) -> Result<(), Failure> {
    let store = ctx.store()?;
    match command {
        CaCommand::Init { name, days, force } => {
            if store.ca()?.is_some() && !force {
                return Err(Failure::new("exists", "the development CA already exists (pass --force to replace it)"));
            }
            let name = name.unwrap_or_else(|| {
                let mut tag = [0u8; 4];
                openssl::rand::rand_bytes(&mut tag).expect("the OpenSSL RNG is available");
                format!("hisp development CA {}", hex::encode(tag))
            });
            let cert = DevCa::create(store, &ctx.kek()?, &name, ctx.config.ca.key_bits, ctx.now(), days, force)?.cert;
            let fp = pki::fingerprint(&cert);
            done(
                ctx,
                &format!("created development CA '{name}' ({fp})\nnext: `hisp ca export --out ca.pem`, then `hisp anchor add ca.pem --domain D --incoming --outgoing`"),
                json!({ "subject": pki::name_line(cert.subject_name()), "sha256": fp }),
            );
        }
        CaCommand::Show => {
            let cert = dev_ca_cert(store)?;
            let info = json!({
                "subject": pki::name_line(cert.subject_name()),
                "sha256": pki::fingerprint(&cert),
                "not_after": iso8601(pki::unix_time(cert.not_after())),
                "base_url": ctx.config.ca.base_url,
            });
            if ctx.json {
                output::json(&info);
            } else {
                println!(
                    "subject:   {}\nsha256:    {}\nexpires:   {}\npublished: {}/ca.cer, CRL {}/ca.crl",
                    info["subject"].as_str().unwrap_or(""),
                    info["sha256"].as_str().unwrap_or(""),
                    info["not_after"].as_str().unwrap_or(""),
                    ctx.config.ca.base_url.trim_end_matches('/'),
                    ctx.config.ca.base_url.trim_end_matches('/')
                );
            }
        }
        CaCommand::Export { der, out, force } => write_cert(ctx, &dev_ca_cert(store)?, der, out.as_deref(), force)?,
        CaCommand::Crl { days, pem, out } => {
            if days == 0 || days > 366 {
                return Err(Failure::usage("--days must be 1 to 366"));
            }
            let crl = DevCa::load(store, &ctx.kek()?)?.crl(store, ctx.now(), days)?;
            output::write_output(out.as_deref(), &if pem { crl.to_pem()? } else { crl.to_der()? })?;
            if let Some(path) = out {
                let entries = crl.get_revoked().map_or(0, |r| r.len());
                done(
                    ctx,
                    &format!("wrote the CRL ({entries} revoked) to {}, good for {days} days", path.display()),
                    json!({ "revoked": entries, "out": path, "days": days }),
                );
            }
        }
    }
    Ok(())
}

fn dev_ca_cert(store: &dyn Store) -> Result<X509, Failure> {
    DevCa::certificate(store).map_err(|e| Failure::new("no-ca", e.to_string()))
}

/// A certificate to standard output, or to a new file (0644: it is public), saying what was written.
pub(super) fn write_cert(
    ctx: &Context,
    cert: &X509,
    der: bool,
    out: Option<&std::path::Path>,
    force: bool,
) -> Result<(), Failure> {
    let bytes = if der { cert.to_der()? } else { cert.to_pem()? };
    let Some(path) = out.filter(|p| p.as_os_str() != "-") else {
        output::write_output(None, &bytes)?;
        return Ok(());
    };
    output::write_new_file(path, &bytes, force, 0o644)?;
    let (subject, sha256) = (pki::name_line(cert.subject_name()), pki::fingerprint(cert));
    done(
        ctx,
        &format!("wrote the certificate of {subject} (SHA-256 {sha256}) to {}", path.display()),
        json!({ "file": path, "subject": subject, "sha256": sha256 }),
    );
    Ok(())
}

/// A certificate we hold for `owner` must be bound to it, valid now, and carry an allowed key.
fn check_own_cert(cert: &X509, owner: &Owner, now: i64) -> Result<(), Failure> {
    let bound = match owner {
        Owner::Address(a) => binding::binding_for(cert, a) == Some(crate::address::Binding::Address),
        Owner::Domain(d) => binding::is_domain_bound(cert, d),
    };
    if !bound {
        return Err(Failure::new(
            "not-bound",
            format!(
                "certificate '{}' is bound to [{}], not to {owner} (an address-bound certificate needs subjectAltName \
                 rfc822Name={owner}; a domain-bound one dNSName={owner})",
                pki::name_line(cert.subject_name()),
                binding::bound_names(cert).join(", ")
            ),
        ));
    }
    if pki::unix_time(cert.not_after()) < now {
        return Err(Failure::new(
            "expired",
            format!("certificate expired on {}", iso8601(pki::unix_time(cert.not_after()))),
        ));
    }
    policy::check_key(&*cert.public_key()?, "the certificate", true)?;
    Ok(())
}

pub(super) fn cert(ctx: &Context, command: CertCommand) -> Result<(), Failure> {
    let store = ctx.store()?;
    match command {
        CertCommand::Issue { owner, days, bits } => issue(ctx, store, owner, days, bits),
        CertCommand::Import { owner, pkcs12, password_stdin, cert, key } => {
            import(ctx, store, owner, pkcs12, password_stdin, cert, key)
        }
        CertCommand::List { owner } => list(ctx, store, owner),
        CertCommand::Export { selector, der, out, force } => export(ctx, store, selector, der, out, force),
        CertCommand::Csr { owner, bits, out } => csr(ctx, store, owner, bits, out),
        CertCommand::Revoke { sha256, reason } => revoke(ctx, store, sha256, reason),
        CertCommand::Remove { sha256 } => remove(ctx, store, sha256),
    }
}

/// Issues a certificate and key for `owner` from the development CA.
fn issue(ctx: &Context, store: &dyn Store, owner: String, days: Option<u32>, bits: Option<u32>) -> Result<(), Failure> {
    let owner = Owner::parse(&owner)?;
    let days = days.unwrap_or(ctx.config.ca.validity_days);
    if days == 0 || days > 3 * 366 {
        return Err(Failure::usage("--days must be 1 to 1098"));
    }
    let kek = ctx.kek()?;
    let dev_ca = DevCa::load(store, &kek)?;
    let bits = bits.unwrap_or(ctx.config.ca.key_bits);
    let (sha, cert) = dev_ca.issue_stored(store, &kek, &owner, bits, ctx.now(), days, &ctx.config.ca.base_url)?;
    let not_after = pki::unix_time(cert.not_after());
    done(
        ctx,
        &format!(
            "issued {}-bound certificate for {owner} ({sha}), valid until {}",
            owner.binding().as_str(),
            iso8601(not_after)
        ),
        json!({ "owner": owner.to_string(), "binding": owner.binding(), "sha256": sha, "not_after": iso8601(not_after) }),
    );
    Ok(())
}

/// Imports a certificate for `owner`, with its key (PKCS#12, or PEM files) or for a key made by `cert csr`.
fn import(
    ctx: &Context,
    store: &dyn Store,
    owner: String,
    pkcs12: Option<PathBuf>,
    password_stdin: bool,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<(), Failure> {
    let owner = Owner::parse(&owner)?;
    let (cert, key): (X509, Option<PKey<Private>>) = if let Some(path) = pkcs12 {
        let bytes =
            std::fs::read(&path).map_err(|e| Failure::new("io", format!("cannot read {}: {e}", path.display())))?;
        let password = if password_stdin { output::read_secret_line()? } else { String::new() };
        let (cert, key, _chain) = pki::load_pkcs12(&bytes, &password, &path.display().to_string())?;
        (cert, Some(key))
    } else if let Some(path) = cert {
        let cert = pki::load_cert_file(&path)?;
        (cert, key.as_deref().map(pki::load_key_file).transpose()?)
    } else {
        return Err(Failure::usage("give --pkcs12 FILE, or --cert FILE [--key FILE]"));
    };
    check_own_cert(&cert, &owner, ctx.now())?;
    let sha = match key {
        Some(key) => {
            pki::check_key_matches(&cert, &key)?;
            identities::store_with_key(store, &ctx.kek()?, &owner, &cert, &key)?
        }
        None => {
            let public = pki::public_key_sha256(&*cert.public_key()?)?;
            let stored = store.key_for_public(&public)?.ok_or_else(|| {
                Failure::new(
                    "no-key",
                    "no private key for this certificate: give --key FILE, or make the key with `hisp cert csr` first",
                )
            })?;
            let record = NewCert::of(&cert)?;
            store.add_certificate(&owner, &record, Some(stored.id))?;
            record.sha256
        }
    };
    done(
        ctx,
        &format!("imported certificate for {owner} ({sha})"),
        json!({ "owner": owner.to_string(), "sha256": sha }),
    );
    Ok(())
}

/// Lists the certificates (of `owner` only, if given).
fn list(ctx: &Context, store: &dyn Store, owner: Option<String>) -> Result<(), Failure> {
    let owner = owner.as_deref().map(Owner::parse).transpose()?;
    let certs = store.certificates(owner.as_ref())?;
    let now = ctx.now();
    if ctx.json {
        let list: Vec<_> = certs.iter().map(|c| cert_json(c, now)).collect();
        output::json(&list);
    } else {
        let rows: Vec<Vec<String>> = certs
            .iter()
            .map(|c| {
                vec![
                    c.owner.clone(),
                    c.binding.as_str().into(),
                    if c.key_id.is_some() { "yes" } else { "no" }.into(),
                    format!(
                        "{}{}",
                        iso8601(c.not_after),
                        if c.revoked_at.is_some() {
                            " (revoked)"
                        } else if c.not_after < now {
                            " (expired)"
                        } else {
                            ""
                        }
                    ),
                    c.issuer.clone(),
                    c.sha256.clone(),
                ]
            })
            .collect();
        table(&["OWNER", "BINDING", "KEY", "EXPIRES", "ISSUER", "SHA256"], &rows, "no certificates");
    }
    Ok(())
}

/// Writes one certificate, PEM or DER.
fn export(
    ctx: &Context,
    store: &dyn Store,
    selector: String,
    der: bool,
    out: Option<PathBuf>,
    force: bool,
) -> Result<(), Failure> {
    let record = select(store, &selector)?;
    write_cert(ctx, &X509::from_der(&record.der)?, der, out.as_deref(), force)
}

/// Makes a key for `owner` (stored encrypted) and writes its certificate signing request.
fn csr(
    ctx: &Context,
    store: &dyn Store,
    owner: String,
    bits: Option<u32>,
    out: Option<PathBuf>,
) -> Result<(), Failure> {
    let owner = Owner::parse(&owner)?;
    if !store.has_domain(owner.domain())? {
        return Err(Failure::new("store", format!("domain {} is not hosted here", owner.domain())));
    }
    let kek = ctx.kek()?;
    let key = ca::generate_rsa(bits.unwrap_or(ctx.config.ca.key_bits))?;
    let request = ca::csr(&owner, &key)?;
    store.add_key(&owner, &pki::public_key_sha256(&key)?, &kek.seal_key(&key)?)?;
    output::write_output(out.as_deref(), &request.to_pem()?)?;
    if let Some(path) = out {
        done(
            ctx,
            &format!("wrote CSR for {owner} to {}; its key is stored encrypted", path.display()),
            json!({ "owner": owner.to_string(), "csr": path }),
        );
    }
    Ok(())
}

/// Revokes a certificate the development CA issued.
fn revoke(ctx: &Context, store: &dyn Store, sha256: String, reason: String) -> Result<(), Failure> {
    if Owner::parse(&sha256).is_ok() {
        return Err(Failure::usage("give the certificate's SHA-256 fingerprint (`hisp cert list`), not its owner"));
    }
    let record = select(store, &sha256)?;
    let dev_ca = DevCa::load(store, &ctx.kek()?)?;
    let cert = X509::from_der(&record.der)?;
    let revoked = dev_ca.revoke(store, &cert, &reason, ctx.now())?;
    done(
        ctx,
        &format!(
            "revoked {} ({}); publish the new CRL: `hisp ca crl --out ca.crl` (hisp serve publishes it itself)",
            revoked.subject, revoked.sha256
        ),
        json!({ "sha256": revoked.sha256, "serial": revoked.serial, "reason": revoked.reason }),
    );
    Ok(())
}

/// Removes a certificate from the store.
fn remove(ctx: &Context, store: &dyn Store, sha256: String) -> Result<(), Failure> {
    store.remove_certificate(&sha256.to_ascii_lowercase())?;
    done(ctx, &format!("removed certificate {sha256}"), json!({ "sha256": sha256 }));
    Ok(())
}

fn cert_json(c: &CertRecord, now: i64) -> serde_json::Value {
    json!({
        "owner": c.owner, "binding": c.binding, "subject": c.subject, "issuer": c.issuer, "sha256": c.sha256,
        "not_before": iso8601(c.not_before), "not_after": iso8601(c.not_after), "expired": c.not_after < now,
        "has_key": c.key_id.is_some(), "revoked": c.revoked_at.map(iso8601),
    })
}

/// A certificate by fingerprint (full or a unique prefix of 8+ hex digits), or the newest of an owner.
fn select(store: &dyn Store, selector: &str) -> Result<CertRecord, Failure> {
    if let Ok(owner) = Owner::parse(selector) {
        return store
            .certificates(Some(&owner))?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::new("not-found", format!("no certificate for {owner}")));
    }
    let prefix = selector.to_ascii_lowercase();
    if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "'{selector}' is neither an address, a domain, nor a SHA-256 fingerprint (8+ hex digits)"
        )));
    }
    let matches: Vec<CertRecord> =
        store.certificates(None)?.into_iter().filter(|c| c.sha256.starts_with(&prefix)).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().expect("one")),
        0 => Err(Failure::new("not-found", format!("no certificate with fingerprint {selector}"))),
        n => Err(Failure::usage(format!("{n} certificates start with {selector}; give more digits"))),
    }
}
