//! The local certificate store and the client's memory of its requests.
//!
//! ```text
//! <store>/<Env>/                    owner-only folder
//!   requests.json                   the requests this client submitted
//!   pending/<id>.key                a key waiting for its certificate
//!   cert.pem, key.pem               the installed certificate and its key
//!   chain.pem                       issuing CA then root
//!   fullchain.pem                   certificate then issuing CA (for servers and curl)
//! ```
//! `<store>` is `/var/lib/enroll` for Machine packages,
//! `$XDG_DATA_HOME/enroll` (or `~/.local/share/enroll`) for User packages,
//! and `$ENROLL_STORE_DIR` when set. Files are replaced by rename, so a
//! crash leaves the old or the new file, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::package::Package;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalRequest {
    pub id: i64,
    pub status: String,
    pub common_name: String,
    pub kind: String,
    pub enrollment_type: String,
    pub submitted_at: i64,
    pub requested_by: Option<String>,
    pub downloaded_at: Option<i64>,
    pub downloaded_by: Option<String>,
    pub reason: Option<String>,
    pub subject_name: Option<String>,
    /// Where the certificate went, once installed or saved.
    pub certificate_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    /// The pending key of this request is gone (store wiped, another
    /// machine): it can never be installed here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_lost: bool,
    /// The package that submitted it. Packages of one environment share
    /// the store; each refreshes only its own requests (another package
    /// may not be allowed to see them). Absent in stores written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub requests: Vec<LocalRequest>,
}

#[derive(Debug, Clone)]
pub struct LocalStore {
    pub dir: PathBuf,
}

impl LocalStore {
    pub fn for_package(pkg: &Package) -> Result<LocalStore> {
        let base = if let Some(d) = std::env::var_os("ENROLL_STORE_DIR").filter(|d| !d.is_empty()) {
            PathBuf::from(d)
        } else if pkg.is_user_store() {
            match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
                Some(x) => PathBuf::from(x).join("enroll"),
                None => {
                    let home = std::env::var_os("HOME")
                        .context("HOME is not set, so the user store cannot be found")?;
                    PathBuf::from(home).join(".local/share/enroll")
                }
            }
        } else {
            PathBuf::from("/var/lib/enroll")
        };
        Ok(LocalStore {
            dir: base.join(pkg.env()),
        })
    }

    pub fn ensure(&self) -> Result<()> {
        private_dir(&self.dir).with_context(|| {
            format!(
                "cannot create the certificate store {} (a Machine package needs root; \
                 ENROLL_STORE_DIR chooses another place)",
                self.dir.display()
            )
        })?;
        private_dir(&self.dir.join("pending"))
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("requests.json")
    }

    pub fn load(&self) -> Result<State> {
        let p = self.state_path();
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                serde_json::from_str(&t).with_context(|| format!("{} is damaged", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    pub fn save(&self, state: &State) -> Result<()> {
        let text = serde_json::to_string_pretty(state)?;
        write_atomic(&self.state_path(), text.as_bytes(), 0o600)
    }

    pub fn pending_key(&self, id: i64) -> PathBuf {
        self.dir.join("pending").join(format!("{id}.key"))
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
    pub fn chain_path(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }
    pub fn fullchain_path(&self) -> PathBuf {
        self.dir.join("fullchain.pem")
    }
}

pub fn private_dir(path: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes `path` through a temporary file and a rename, with `mode` set
/// at creation (a key is never readable by others, not even briefly).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let Some(dir) = path.parent() else {
        bail!("{} has no parent folder", path.display());
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let result = (|| -> std::io::Result<()> {
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
