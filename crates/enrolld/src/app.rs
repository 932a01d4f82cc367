//! Wiring: a data directory becomes a ready registration authority.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use enroll_core::{Actor, Clock, Role, UnixTime};
use enroll_pki::IssuingCa;
use enroll_pki::revocation::OcspResponder;
use enroll_ra::{IssuePolicy, Ra};
use enroll_store::SqlStore;

use crate::config::{Config, DataDir};

/// The real clock, read only here at the edge.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

pub type AppRa = Ra<SqlStore, SystemClock>;

pub struct App {
    pub data: DataDir,
    pub config: Config,
    pub ra: AppRa,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("data", &self.data).finish()
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

impl App {
    pub async fn open(data: DataDir, database: Option<&str>) -> Result<App> {
        let config = data.load_config()?;
        let url = data.database_url(&config, database)?;
        let store = SqlStore::connect(&url)
            .await
            .with_context(|| format!("cannot open the database {}", redact(&url)))?;
        let key = enroll_pki::keys::load_key_pem(&read(&data.file("ca/issuing.key"))?)
            .context("the issuing CA key is unusable")?;
        let ca = IssuingCa::new(
            &read(&data.file("ca/issuing.pem"))?,
            &read(&data.file("ca/root.pem"))?,
            key,
        )
        .context("the issuing CA certificate is unusable")?;
        let cert_der = ca.cert_der();
        let mut ra = Ra::new(
            store,
            Arc::new(ca),
            SystemClock,
            IssuePolicy {
                validity_days: config.validity_days,
                revocation: Some(config.revocation_urls()),
                crl_period: i64::from(config.crl_period_hours.max(1)) * 3600,
                ..IssuePolicy::default()
            },
        );
        // Missing during `init`, before the responder is issued.
        let ocsp_pem = data.file("ocsp/ocsp.pem");
        if ocsp_pem.exists() {
            let cert = enroll_pki::inspect::first_cert_der(&read(&ocsp_pem)?)
                .context("the OCSP responder certificate is unusable")?;
            let key = enroll_pki::keys::load_key_pem(&read(&data.file("ocsp/ocsp.key"))?)
                .context("the OCSP responder key is unusable")?;
            let responder = OcspResponder::new(cert, key, &cert_der)
                .context("the OCSP responder certificate is unusable")?;
            ra = ra.with_ocsp(responder);
        }
        Ok(App { data, config, ra })
    }
}

/// The operator at the command line acts as central administrator. The
/// audit trail names the account the process really runs as (its uid, not
/// `$USER`, which anyone can set), and who called sudo, if anyone did.
pub fn cli_actor() -> Actor {
    let name = process_user();
    let sudo = std::env::var("SUDO_USER")
        .ok()
        .filter(|s| !s.is_empty() && *s != name);
    let who = match sudo {
        Some(s) => format!("cli:{name} (sudo by {s})"),
        None => format!("cli:{name}"),
    };
    Actor::new(Role::CentralAdmin, who)
}

/// The name of the account this process runs as, from its uid.
fn process_user() -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
            let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
                p.lines().find_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    (f.nth(1)? == uid.to_string()).then(|| name.to_owned())
                })
            });
            return name.unwrap_or_else(|| format!("uid {uid}"));
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// A database URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_actor_is_the_real_account() {
        // Whatever $USER says, the name comes from the uid.
        let actor = super::cli_actor();
        assert!(actor.name.starts_with("cli:"));
        assert!(!actor.name.contains("unknown"), "{}", actor.name);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            super::redact("sqlite:///x/enroll.db"),
            "sqlite:///x/enroll.db"
        );
    }
}
