//! `enrolld init`: a new data directory with its CA, TLS certificate,
//! database and first administrator credential, built in a staging folder
//! and moved into place whole, so a failure leaves nothing half-written.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use enroll_core::Role;
use enroll_pki::pkcs12::Protection;
use enroll_pki::profile::DnAttr;
use enroll_pki::{CaMaterial, KeyInfo, KeyType, Profile};
use enroll_ra::OperatorSpec;
use enroll_ra::UnboundCert;

use crate::app::{App, SystemClock, cli_actor};
use crate::config::{Config, DEFAULT_LISTEN, DataDir, private_dir, write_private, write_public};
use enroll_core::Clock;

#[derive(Debug)]
pub struct InitOptions {
    pub hostnames: Vec<String>,
    pub key_type: KeyType,
    pub listen: String,
    pub validity_days: u32,
    pub ca_name: String,
    /// A database URL (PostgreSQL) instead of the embedded SQLite file.
    pub database: Option<String>,
    pub http_listen: String,
    /// Base URL of the plain-HTTP listener, as written into certificates.
    pub public_http_url: Option<String>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            hostnames: vec!["localhost".into(), "127.0.0.1".into()],
            key_type: KeyType::Rsa2048,
            listen: DEFAULT_LISTEN.into(),
            validity_days: 365,
            ca_name: "Enroll".into(),
            database: None,
            http_listen: crate::config::DEFAULT_HTTP_LISTEN.into(),
            public_http_url: None,
        }
    }
}

fn key_info(kt: KeyType) -> KeyInfo {
    match kt {
        KeyType::EcdsaP256 => KeyInfo::EcdsaP256,
        KeyType::Rsa2048 => KeyInfo::Rsa { bits: 2048 },
        KeyType::Rsa3072 => KeyInfo::Rsa { bits: 3072 },
        KeyType::Rsa4096 => KeyInfo::Rsa { bits: 4096 },
    }
}

fn key_type_name(kt: KeyType) -> &'static str {
    match kt {
        KeyType::EcdsaP256 => "ecdsa-p256",
        KeyType::Rsa2048 => "rsa-2048",
        KeyType::Rsa3072 => "rsa-3072",
        KeyType::Rsa4096 => "rsa-4096",
    }
}

/// Refuses a directory that holds anything: an existing service above
/// all, but also unrelated files we would mix our keys into.
fn check_target(dir: &Path) -> Result<()> {
    if DataDir::new(dir).is_initialised() {
        bail!(
            "{} already holds an Enroll service; init never touches an existing one \
             (start it with `enrolld serve --data {}`)",
            dir.display(),
            dir.display()
        );
    }
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} exists and is not empty; give init a new or empty directory",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Refuses options that would make a service that cannot start or a CA
/// with a name nobody can read.
fn check_options(opts: &InitOptions) -> Result<()> {
    if opts.hostnames.is_empty() {
        bail!("give at least one --hostname");
    }
    for h in &opts.hostnames {
        let dns_ok = !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !dns_ok && h.parse::<IpAddr>().is_err() {
            bail!("--hostname {h:?} is neither a DNS name nor an IP address");
        }
    }
    for (flag, addr) in [
        ("--listen", &opts.listen),
        ("--http-listen", &opts.http_listen),
    ] {
        let ok = addr
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            bail!("{flag} {addr:?} is not an address: use HOST:PORT, e.g. 127.0.0.1:8443");
        }
    }
    if let Some(url) = &opts.public_http_url
        && !(url.starts_with("http://") && url.len() > "http://".len())
    {
        bail!(
            "--public-http-url {url:?} must be http://HOST[:PORT] (CRLs and OCSP are fetched without TLS)"
        );
    }
    let name = enroll_core::subject::check_text("--ca-name", &opts.ca_name, 48)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if name.is_empty() {
        bail!("--ca-name must not be empty");
    }
    Ok(())
}

pub async fn init(dir: &Path, opts: InitOptions) -> Result<()> {
    check_options(&opts)?;
    check_target(dir)?;
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "enroll".into());
    let staging: PathBuf = parent.join(format!(".{name}.init-{}", std::process::id()));
    let result = build(&staging, &opts).await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::rename(&staging, dir)
        .with_context(|| format!("cannot move {} to {}", staging.display(), dir.display()))?;
    Ok(())
}

pub fn key_type_of(name: &str) -> KeyType {
    match name {
        "ecdsa-p256" => KeyType::EcdsaP256,
        _ => KeyType::Rsa2048,
    }
}

async fn build(staging: &Path, opts: &InitOptions) -> Result<()> {
    private_dir(staging)?;
    for sub in ["ca", "tls", "admin", "ocsp"] {
        private_dir(&staging.join(sub))?;
    }
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let now = SystemClock.now();
    let material = CaMaterial::create(opts.key_type, &opts.ca_name, now, &rng)
        .context("cannot create the CA")?;
    write_public(
        &staging.join("ca/root.pem"),
        material.root_cert_pem.as_bytes(),
    )?;
    write_private(
        &staging.join("ca/root.key"),
        material.root_key_pem.as_bytes(),
    )?;
    write_public(
        &staging.join("ca/issuing.pem"),
        material.issuing_cert_pem.as_bytes(),
    )?;
    write_private(
        &staging.join("ca/issuing.key"),
        material.issuing_key_pem.as_bytes(),
    )?;

    let config = Config {
        version: 1,
        listen: opts.listen.clone(),
        database: opts.database.clone(),
        hostnames: opts.hostnames.clone(),
        validity_days: opts.validity_days,
        key_type: key_type_name(opts.key_type).into(),
        public_http_url: opts.public_http_url.clone().unwrap_or_else(|| {
            let host = opts
                .hostnames
                .first()
                .map(String::as_str)
                .unwrap_or("localhost");
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            let port = opts
                .http_listen
                .rsplit_once(':')
                .map(|(_, p)| p)
                .unwrap_or("8080");
            format!("http://{host}:{port}")
        }),
        http_listen: opts.http_listen.clone(),
        crl_period_hours: 24,
    };
    let text = format!(
        "# Enroll service configuration. Unknown keys are errors.\n\
         # database: absent means enroll.db here; or e.g. \"postgres://enroll@db.example/enroll\".\n{}",
        toml::to_string(&config).context("cannot write the configuration")?
    );
    write_public(&staging.join("enrolld.toml"), text.as_bytes())?;

    let app = App::open(DataDir::new(staging), None).await?;
    let actor = cli_actor();
    // A database another service already uses keeps its own CA's
    // certificates: storing a second CA's there would make its OCSP
    // responder vouch for certificates it never issued.
    let found = app.ra.check_consistency(&actor).await?;
    if found.certificates + found.requests + found.audit_events > 0 {
        bail!(
            "the database given with --database already holds a service ({} certificates, \
             {} requests); nothing was written. Give an empty database, or copy that \
             service's data directory to add a node to it (README, \"Your own PostgreSQL\")",
            found.certificates,
            found.requests
        );
    }

    // The service's TLS certificate.
    let (dns, ips): (Vec<String>, Vec<IpAddr>) = {
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for h in &opts.hostnames {
            match h.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) => dns.push(h.to_ascii_lowercase()),
            }
        }
        (dns, ips)
    };
    let first = opts
        .hostnames
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    let tls_key = opts.key_type.generate()?;
    let tls = app
        .ra
        .issue_unbound(UnboundCert {
            profile: Profile::ServiceTls,
            subject: vec![
                (DnAttr::Organization, opts.ca_name.clone()),
                (DnAttr::CommonName, first),
            ],
            spki_der: enroll_pki::keys::spki_der(&tls_key),
            key: key_info(opts.key_type),
            dns_names: dns,
            ip_addresses: ips,
            validity_days: 397,
        })
        .await
        .context("cannot issue the service's TLS certificate")?;
    let chain = format!("{}{}", tls.pem, app.ra.ca().cert_pem());
    write_public(&staging.join("tls/server.pem"), chain.as_bytes())?;
    write_private(
        &staging.join("tls/server.key"),
        tls_key.serialize_pem().as_bytes(),
    )?;

    // The first central administrator: PEM files for curl and OpenSSL, a
    // PKCS#12 for browsers and keytool.
    let admin = app
        .ra
        .issue_operator(
            &actor,
            OperatorSpec {
                name: "admin".into(),
                role: Role::CentralAdmin,
                protection: Protection::Modern,
                pickup: false,
            },
            None,
        )
        .await
        .context("cannot issue the administrator credential")?;
    let admin_chain = format!("{}{}", admin.cert_pem, app.ra.ca().cert_pem());
    write_public(&staging.join("admin/admin.pem"), admin_chain.as_bytes())?;
    write_private(&staging.join("admin/admin.key"), admin.key_pem.as_bytes())?;
    write_private(&staging.join("admin/admin.p12"), &admin.p12)?;
    write_private(
        &staging.join("admin/admin.p12.passphrase"),
        format!("{}\n", admin.passphrase).as_bytes(),
    )?;
    write_public(
        &staging.join("admin/ca.pem"),
        app.ra.ca().root_pem().as_bytes(),
    )?;
    issue_ocsp_signer(&app, staging, opts.key_type).await?;
    crate::config::web_form_key(&DataDir::new(staging))?;
    app.ra.store().close().await;
    Ok(())
}

/// The delegated OCSP responder's certificate: short-lived, renewed by
/// `serve` when a month or less is left.
pub const OCSP_SIGNER_DAYS: u32 = 90;

pub async fn issue_ocsp_signer(app: &App, dir: &Path, key_type: KeyType) -> Result<()> {
    let key = key_type.generate()?;
    let issued = app
        .ra
        .issue_unbound(UnboundCert {
            profile: Profile::OcspSigning,
            subject: vec![
                (DnAttr::Organization, "Enroll".into()),
                (DnAttr::CommonName, "Enroll OCSP Responder".into()),
            ],
            spki_der: enroll_pki::keys::spki_der(&key),
            key: key_info(key_type),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            validity_days: OCSP_SIGNER_DAYS,
        })
        .await
        .context("cannot issue the OCSP responder certificate")?;
    let ocsp = dir.join("ocsp");
    crate::config::private_dir(&ocsp)?;
    crate::config::replace_file(
        &ocsp.join("ocsp.key"),
        key.serialize_pem().as_bytes(),
        0o600,
    )?;
    crate::config::replace_file(&ocsp.join("ocsp.pem"), issued.pem.as_bytes(), 0o644)?;
    Ok(())
}
