//! A client installation package as files: `config/<Env>/package.toml`
//! (with the credential), `config/<Env>/ca.pem` (the pinned trust anchor)
//! and the `enroll` client beside them. Written into a folder by the
//! command line, or packed as a `.tar.gz` by the web application.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use enroll_core::EnrollmentType;
use enroll_ra::NewPackage;
use enroll_store::OrgRecord;

use crate::config::{write_private, write_public};

/// The package file a client reads (`config/<Env>/package.toml`).
#[derive(serde::Serialize)]
struct PackageFile<'a> {
    version: u32,
    package_id: &'a str,
    environment: &'a str,
    url: &'a str,
    org_code: &'a str,
    org_name: &'a str,
    country: &'a str,
    enrollment_type: &'a str,
    server: bool,
    allow_external: bool,
    credential: &'a str,
}

/// One file of a package, relative to the package folder.
pub struct PackageEntry {
    pub path: PathBuf,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// The files of one environment of a package. Its `Debug` hides the
/// credential.
pub struct PackageFiles {
    pub environment: String,
    /// A server package: its submit needs the server's host name.
    pub server: bool,
    pub entries: Vec<PackageEntry>,
}

impl std::fmt::Debug for PackageFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackageFiles")
            .field("environment", &self.environment)
            .finish_non_exhaustive()
    }
}

/// The `enroll` client beside this executable, if it is there.
pub fn client_binary() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("enroll")))
        .filter(|p| p.is_file())
}

impl PackageFiles {
    pub fn new(created: &NewPackage, org: &OrgRecord, root_pem: &str) -> Result<PackageFiles> {
        let p = &created.package;
        let secret = created.credential.expose();
        let file = PackageFile {
            version: 1,
            package_id: &p.id,
            environment: &p.environment,
            url: &p.url,
            org_code: p.org.as_str(),
            org_name: &org.name,
            country: org.country.as_str(),
            enrollment_type: p.enrollment_type.as_str(),
            server: p.server,
            allow_external: p.allow_external,
            credential: &secret,
        };
        let text = format!(
            "# Enroll client package ({}). Read-only for the client.\n{}",
            p.environment,
            toml::to_string(&file)?
        );
        let env = Path::new("config").join(&p.environment);
        // A machine package is used by root only; a user package must be
        // readable by every user who enrolls from it.
        let mode = match p.enrollment_type {
            EnrollmentType::Machine => 0o600,
            _ => 0o644,
        };
        Ok(PackageFiles {
            environment: p.environment.clone(),
            server: p.server,
            entries: vec![
                PackageEntry {
                    path: env.join("package.toml"),
                    mode,
                    contents: text.into_bytes(),
                },
                PackageEntry {
                    path: env.join("ca.pem"),
                    mode: 0o644,
                    contents: root_pem.as_bytes().to_vec(),
                },
            ],
        })
    }

    /// Writes the environment into `out`, never over an existing one. On
    /// failure nothing of it stays behind.
    pub fn write_into(&self, out: &Path) -> Result<()> {
        let env_dir = out.join("config").join(&self.environment);
        if self.entries.iter().any(|e| out.join(&e.path).exists()) {
            bail!(
                "{} already holds a {} package; choose another --out or --env",
                env_dir.display(),
                self.environment
            );
        }
        std::fs::create_dir_all(&env_dir)
            .with_context(|| format!("cannot create {}", env_dir.display()))?;
        let mut written = Vec::new();
        for e in &self.entries {
            let path = out.join(&e.path);
            let r = if e.mode & 0o044 == 0 {
                write_private(&path, &e.contents)
            } else {
                write_public(&path, &e.contents)
            };
            if let Err(err) = r {
                for w in &written {
                    let _ = std::fs::remove_file(w);
                }
                return Err(err);
            }
            written.push(path);
        }
        Ok(())
    }

    /// Copies the `enroll` client into `out` unless one is there already.
    pub fn copy_client(out: &Path) -> bool {
        let Some(src) = client_binary() else {
            return false;
        };
        let dst = out.join("enroll");
        !dst.exists() && std::fs::copy(&src, &dst).is_ok()
    }

    /// The package as a gzip-compressed tar archive under the folder
    /// `top`, with the client binary when it sits beside this executable
    /// and a README saying how to use it.
    pub fn archive(&self, top: &str, url: &str) -> Result<Vec<u8>> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut add = |path: &Path, mode: u32, data: &[u8]| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_size(u64::try_from(data.len()).unwrap_or(u64::MAX));
            h.set_mode(mode);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, Path::new(top).join(path), data)
                .context("cannot build the package archive")
        };
        let client = client_binary();
        let readme = format!(
            "Enroll client package: environment {env}, service {url}.\n\n\
             Copy this folder to the machines that enroll (for a machine package, as root,\n\
             e.g. to /etc/enroll), then run from it:\n\n\
             \x20 ./enroll info      what will be requested\n\
             \x20 ./enroll submit {cn}--locality CITY --state STATE --email ADDRESS\n\
             \x20 ./enroll get       after approval: installs the certificate\n\
             \x20 ./enroll test      mutual TLS with the installed certificate\n\n\
             config/{env}/package.toml holds this package's credential: keep it to the\n\
             machines of your organization. {client}\n",
            env = self.environment,
            cn = if self.server {
                "--common-name HOST.EXAMPLE "
            } else {
                ""
            },
            client = if client.is_some() {
                "The enroll client for Linux x86-64 is included."
            } else {
                "The enroll client was not beside the service; get it from your administrator."
            },
        );
        add(Path::new("README.txt"), 0o644, readme.as_bytes())?;
        for e in &self.entries {
            add(&e.path, e.mode, &e.contents)?;
        }
        if let Some(path) = client {
            let bin =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            add(Path::new("enroll"), 0o755, &bin)?;
        }
        let gz = tar
            .into_inner()
            .context("cannot build the package archive")?;
        gz.finish().context("cannot compress the package archive")
    }
}
