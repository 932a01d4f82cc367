//! `enroll test`: a mutual-TLS connection to the service's test endpoint
//! with the installed certificate, and a precise reason when it fails.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use rustls::{AlertDescription, ClientConfig, ClientConnection, StreamOwned};

use crate::package::Package;
use crate::store::LocalStore;

/// The outcomes of a connectivity test, each with its own exit code.
#[derive(Debug)]
pub enum Outcome {
    Success {
        subject: String,
        serial: String,
    },
    NoCertificate(String),
    Expired(String),
    NotYetValid(String),
    /// The service's certificate does not chain to the package's CA.
    Untrusted(String),
    /// The service refused our certificate (unknown, wrong chain).
    Rejected(String),
    /// The service refused our certificate because it is revoked.
    Revoked(String),
    Unreachable(String),
    /// Anything else (damaged files…).
    Failed(String),
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Success { .. } => 0,
            Outcome::Failed(_) => 1,
            Outcome::NoCertificate(_) => 10,
            Outcome::Expired(_) => 11,
            Outcome::NotYetValid(_) => 12,
            Outcome::Untrusted(_) => 13,
            Outcome::Rejected(_) | Outcome::Revoked(_) => 14,
            Outcome::Unreachable(_) => 15,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Success { .. } => "success",
            Outcome::NoCertificate(_) => "no-certificate",
            Outcome::Expired(_) => "expired",
            Outcome::NotYetValid(_) => "not-yet-valid",
            Outcome::Untrusted(_) => "untrusted",
            Outcome::Rejected(_) => "rejected",
            Outcome::Revoked(_) => "revoked",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Outcome::Success { subject, serial } => {
                format!("mutual TLS works: the service accepted {subject} (serial {serial})")
            }
            Outcome::NoCertificate(m)
            | Outcome::Expired(m)
            | Outcome::NotYetValid(m)
            | Outcome::Untrusted(m)
            | Outcome::Rejected(m)
            | Outcome::Revoked(m)
            | Outcome::Unreachable(m)
            | Outcome::Failed(m) => m.clone(),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn fmt(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// `https://host:port/path` → (host, port).
pub fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after
            .strip_prefix(':')
            .map_or(Some(443), |p| p.parse().ok())?;
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Some((h.to_owned(), p.parse().ok()?)),
        None => Some((authority.to_owned(), 443)),
    }
}

pub fn run(pkg: &Package, store: &LocalStore) -> Outcome {
    let read = |p: std::path::PathBuf| std::fs::read_to_string(&p).map_err(|e| (p, e));
    let cert_pem = match read(store.cert_path()) {
        Ok(c) => c,
        Err((p, _)) => {
            return Outcome::NoCertificate(format!(
                "no certificate is installed ({} is missing); run `enroll get` once your request is approved",
                p.display()
            ));
        }
    };
    let (key_pem, chain_pem) = match (read(store.key_path()), read(store.chain_path())) {
        (Ok(k), Ok(ch)) => (k, ch),
        (Err((p, e)), _) | (_, Err((p, e))) => {
            return Outcome::Failed(format!(
                "the installation in {} is incomplete: {} cannot be read ({e}); run `enroll get` again",
                store.dir.display(),
                p.display()
            ));
        }
    };
    let info = match enroll_pki::CertInfo::from_pem(&cert_pem) {
        Ok(i) => i,
        Err(e) => return Outcome::Failed(format!("the installed certificate is damaged: {e}")),
    };
    let t = now();
    if t > info.not_after.0 {
        return Outcome::Expired(format!(
            "the installed certificate expired at {}; submit a new request",
            fmt(info.not_after.0)
        ));
    }
    if t < info.not_before.0 {
        return Outcome::NotYetValid(format!(
            "the installed certificate is valid only from {}; check this machine's clock",
            fmt(info.not_before.0)
        ));
    }
    let Some((host, port)) = host_port(&pkg.file.url) else {
        return Outcome::Failed(format!(
            "the package URL {:?} is not https://HOST:PORT",
            pkg.file.url
        ));
    };
    match connect(pkg, &host, port, &cert_pem, &chain_pem, &key_pem) {
        Ok(o) => o,
        Err(o) => o,
    }
}

fn connect(
    pkg: &Package,
    host: &str,
    port: u16,
    cert_pem: &str,
    chain_pem: &str,
    key_pem: &str,
) -> Result<Outcome, Outcome> {
    let failed = |m: String| Outcome::Failed(m);
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pkg.ca_pem.as_bytes()) {
        let c = c.map_err(|e| failed(format!("the package's ca.pem is damaged: {e}")))?;
        roots
            .add(c)
            .map_err(|e| failed(format!("the package's ca.pem is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(failed(
            "the package's ca.pem holds no certificate; ask the central administrator for the \
             package again"
                .into(),
        ));
    }
    // Leaf, then the issuing CA (the root stays out: the service has it).
    let mut chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .take(1)
            .collect::<Result<_, _>>()
            .map_err(|e| failed(format!("the installed certificate is damaged: {e}")))?;
    let mut rest = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(format!("the installed chain is damaged: {e}")))?;
    if !rest.is_empty() {
        chain.push(rest.remove(0));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| failed(format!("the installed key is damaged: {e}")))?;
    let cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            failed(format!(
                "the installed certificate does not match its key: {e}"
            ))
        })?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| failed(format!("{host:?} is not a valid server name")))?;
    let unreachable = |e: String| Outcome::Unreachable(format!("cannot reach {host}:{port}: {e}"));
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("the name has no address".into()))?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(20)));
    let conn = ClientConnection::new(Arc::new(cfg), name)
        .map_err(|e| failed(format!("cannot start TLS: {e}")))?;
    let mut tls = StreamOwned::new(conn, tcp);
    let request = format!(
        "GET /api/v1/test HTTP/1.1\r\nHost: {host}\r\nUser-Agent: enroll\r\nConnection: close\r\n\r\n"
    );
    let mut response = Vec::new();
    let io = tls
        .write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .and_then(|()| tls.read_to_end(&mut response).map(|_| ()));
    if let Err(e) = io {
        return Err(classify(&e, host, port));
    }
    Ok(interpret(&response))
}

/// Maps a TLS failure to what the user must know: whose certificate was
/// refused, and why.
fn classify(e: &std::io::Error, host: &str, port: u16) -> Outcome {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => Outcome::Untrusted(format!(
            "the service at {host}:{port} presented a certificate this package does not trust: \
             {}; check the package's URL and ca.pem",
            untrusted_because(why, host)
        )),
        Some(rustls::Error::AlertReceived(alert)) => {
            let why = match alert {
                AlertDescription::CertificateRevoked => {
                    return Outcome::Revoked(format!(
                        "the service rejected this machine's certificate: it is revoked (TLS alert {alert:?})"
                    ));
                }
                AlertDescription::CertificateExpired => "the certificate is expired",
                AlertDescription::UnknownCA => {
                    "the certificate's chain is not from this service's CA"
                }
                AlertDescription::CertificateRequired => "no certificate was sent",
                _ => "the service refused the certificate",
            };
            Outcome::Rejected(format!(
                "the service rejected this machine's certificate: {why} (TLS alert {alert:?})"
            ))
        }
        Some(other) => Outcome::Unreachable(format!("TLS with {host}:{port} failed: {other}")),
        None => Outcome::Unreachable(format!("the connection to {host}:{port} failed: {e}")),
    }
}

/// Why the service's certificate was refused, in words.
fn untrusted_because(why: &rustls::CertificateError, host: &str) -> String {
    use rustls::CertificateError as E;
    match why {
        E::UnknownIssuer => "it is not signed by the CA in the package's ca.pem".into(),
        E::BadSignature
        | E::UnsupportedSignatureAlgorithmContext { .. }
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its signature does not verify with the package's ca.pem (another CA, or another \
             key type)"
                .into()
        }
        E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            "it is not valid yet (is this machine's clock right?)".into()
        }
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            format!("it is not issued for the name {host}")
        }
        E::Revoked => "it is revoked".into(),
        other => other.to_string(),
    }
}

fn interpret(raw: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    if status == 200 {
        return match serde_json::from_str::<enroll_proto::TestResponse>(&body) {
            Ok(t) => Outcome::Success {
                subject: t.subject,
                serial: t.serial,
            },
            Err(e) => Outcome::Failed(format!("the service's answer is not understood: {e}")),
        };
    }
    match serde_json::from_str::<enroll_proto::Problem>(&body) {
        Ok(p) if p.code == "cert.revoked" => Outcome::Revoked(format!(
            "the service rejected this machine's certificate: {}; request a new one",
            p.detail
        )),
        Ok(p) => Outcome::Rejected(format!(
            "the service rejected this machine's certificate: {} ({})",
            p.detail, p.code
        )),
        Err(_) => Outcome::Rejected(format!("the service answered HTTP {status}")),
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        let (chunk, tail) = after.split_at(n);
        out.push_str(chunk);
        rest = tail.strip_prefix("\r\n").unwrap_or(tail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_and_port() {
        assert_eq!(
            host_port("https://localhost:8443"),
            Some(("localhost".into(), 8443))
        );
        assert_eq!(
            host_port("https://e.example/"),
            Some(("e.example".into(), 443))
        );
        assert_eq!(host_port("https://[::1]:9/x"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://e.example"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
