//! The data directory and its strict configuration file.
//!
//! ```text
//! DATA/enrolld.toml        configuration (unknown keys are errors)
//! DATA/enroll.db           SQLite database (the embedded default)
//! DATA/ca/root.pem, root.key, issuing.pem, issuing.key
//! DATA/tls/server.pem (certificate + chain), server.key
//! DATA/admin/admin.pem, admin.key, ca.pem   first central-administrator credential
//! DATA/ocsp/ocsp.pem, ocsp.key  the delegated OCSP responder
//! ```
//! Private keys are written owner-only (0600) in owner-only folders.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Config format version; only 1 exists.
    pub version: u32,
    /// Address to listen on, e.g. `127.0.0.1:8443` or `[::]:8443`.
    pub listen: String,
    /// Database URL. Absent: `enroll.db` in the data directory. A
    /// `sqlite://` path that is relative is taken from the data directory.
    #[serde(default)]
    pub database: Option<String>,
    /// Host names and addresses in the service's TLS certificate.
    pub hostnames: Vec<String>,
    /// Validity of issued client certificates, in days.
    pub validity_days: u32,
    /// `rsa-2048` or `ecdsa-p256`: the CA's key type (informational).
    pub key_type: String,
    /// Plain-HTTP address for CRLs, OCSP and CA certificates (relying
    /// parties fetch them without TLS; they are signed).
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// The base URL of that listener as relying parties reach it; written
    /// into every certificate (CRL distribution point, OCSP, CA issuers).
    #[serde(default = "default_public_http_url")]
    pub public_http_url: String,
    /// Hours between a CRL's thisUpdate and nextUpdate.
    #[serde(default = "default_crl_period_hours")]
    pub crl_period_hours: u32,
}

pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

fn default_http_listen() -> String {
    DEFAULT_HTTP_LISTEN.into()
}

fn default_public_http_url() -> String {
    "http://localhost:8080".into()
}

fn default_crl_period_hours() -> u32 {
    24
}

impl Config {
    /// Where relying parties find revocation information.
    pub fn revocation_urls(&self) -> enroll_pki::RevocationUrls {
        let base = self.public_http_url.trim_end_matches('/');
        enroll_pki::RevocationUrls {
            crl: format!("{base}/crl/issuing.crl"),
            ocsp: format!("{base}/ocsp"),
            ca_issuers: format!("{base}/ca/issuing.crt"),
        }
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("enrolld.toml")
    }
    pub fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn is_initialised(&self) -> bool {
        self.config().exists()
    }

    pub fn load_config(&self) -> Result<Config> {
        let path = self.config();
        let text = fs::read_to_string(&path).with_context(|| {
            let non_empty = fs::read_dir(&self.root)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if non_empty {
                format!(
                    "cannot read {}: {} holds other files, not an Enroll data directory; give \
                     --data the folder `enrolld init` made, or a path that does not exist yet \
                     (init and serve create it)",
                    path.display(),
                    self.root.display()
                )
            } else {
                format!(
                    "cannot read {}: is {} an Enroll data directory? Create one with `enrolld init --data {}`",
                    path.display(),
                    self.root.display(),
                    self.root.display()
                )
            }
        })?;
        let cfg: Config = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))?;
        if cfg.version != 1 {
            bail!(
                "{}: configuration version {} is not supported by this enrolld (expected 1)",
                path.display(),
                cfg.version
            );
        }
        Ok(cfg)
    }

    /// The database URL, with relative SQLite paths resolved against the
    /// data directory. `override_url` (from `--database`) wins.
    pub fn database_url(&self, cfg: &Config, override_url: Option<&str>) -> Result<String> {
        let url = override_url
            .map(str::to_owned)
            .or_else(|| cfg.database.clone())
            .unwrap_or_else(|| "sqlite://enroll.db".to_owned());
        if let Some(path) = url.strip_prefix("sqlite://") {
            let (path, query) = match path.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (path, None),
            };
            let p = Path::new(path);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::path::absolute(self.root.join(p))
                    .with_context(|| format!("cannot resolve {}", p.display()))?
            };
            let mut out = format!("sqlite://{}", abs.display());
            if let Some(q) = query {
                out.push('?');
                out.push_str(q);
            }
            return Ok(out);
        }
        Ok(url)
    }
}

/// Writes a file that nobody but the owner may read, creating it new: an
/// existing file is never overwritten.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    write_new(path, contents, 0o600)
}

pub fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    write_new(path, contents, 0o644)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Replaces a file whole (temporary file, then rename), created with
/// `mode` so a key is never readable by others, not even briefly.
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, contents, mode)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// The key that binds the web application's form tokens to a
/// certificate (`DIR/web/form.key`, 32 random bytes, owner-only). Created
/// on first use; nodes that share one database need the same file, like
/// the CA keys.
pub fn web_form_key(data: &DataDir) -> Result<Vec<u8>> {
    let path = data.file("web/form.key");
    match fs::read(&path) {
        Ok(k) if k.len() == 32 => return Ok(k),
        Ok(_) => bail!(
            "{} is not a 32-byte key; remove it and restart to make a new one (open forms then need a reload)",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut key = [0u8; 32];
    aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut key)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    private_dir(&data.file("web"))?;
    match write_private(&path, &key) {
        Ok(()) => Ok(key.to_vec()),
        // Another node or process made it first: use theirs.
        Err(_) if path.exists() => web_form_key(data),
        Err(e) => Err(e),
    }
}

/// Creates a directory readable only by its owner.
pub fn private_dir(path: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}
