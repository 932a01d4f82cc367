//! The client installation package: `PKGDIR/config/<Env>/package.toml`
//! and `ca.pem`, fixed by the central administrator, read-only here.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageFile {
    pub version: u32,
    pub package_id: String,
    pub environment: String,
    pub url: String,
    pub org_code: String,
    pub org_name: String,
    pub country: String,
    pub enrollment_type: String,
    pub server: bool,
    pub allow_external: bool,
    pub credential: String,
}

/// A loaded package for one environment.
#[derive(Debug, Clone)]
pub struct Package {
    pub root: PathBuf,
    pub env_dir: PathBuf,
    pub file: PackageFile,
    pub ca_pem: String,
}

impl Package {
    /// Finds the package: `--package`, else the executable's folder (when
    /// it holds `config/`), else `/etc/enroll`; then the environment:
    /// `--env`, or the only one there is.
    pub fn locate(package: Option<&Path>, env: Option<&str>) -> Result<Package> {
        let root = match package {
            Some(p) => p.to_path_buf(),
            None => {
                let beside_exe = std::env::current_exe()
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf))
                    .filter(|d| d.join("config").is_dir());
                beside_exe.unwrap_or_else(|| PathBuf::from("/etc/enroll"))
            }
        };
        let config = root.join("config");
        if !config.is_dir() {
            bail!(
                "no client package at {} (no config/ folder); run the enroll that sits in the \
                 package folder your administrator gave you, or name that folder with \
                 --package PKGDIR (or ENROLL_PACKAGE)",
                root.display()
            );
        }
        let envs = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&config)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.path().join("package.toml").is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        let env = match env {
            Some(e) => {
                if !envs().iter().any(|x| x == e) {
                    bail!(
                        "{} has no environment {e:?}; it has: {}",
                        config.display(),
                        envs().join(", ")
                    );
                }
                e.to_owned()
            }
            None => {
                let envs = envs();
                match envs.as_slice() {
                    [one] => one.clone(),
                    [] => bail!("{} holds no environment", config.display()),
                    many => bail!(
                        "{} holds several environments ({}); choose one with --env",
                        config.display(),
                        many.join(", ")
                    ),
                }
            }
        };
        let env_dir = config.join(&env);
        let path = env_dir.join("package.toml");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is {env} an environment of this package?)",
                path.display()
            )
        })?;
        let file: PackageFile =
            toml::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
        if file.version != 1 {
            bail!(
                "{}: package version {} needs a newer client",
                path.display(),
                file.version
            );
        }
        let ca_path = env_dir.join("ca.pem");
        let ca_pem = std::fs::read_to_string(&ca_path)
            .with_context(|| format!("cannot read the trust anchor {}", ca_path.display()))?;
        Ok(Package {
            root,
            env_dir,
            file,
            ca_pem,
        })
    }

    pub fn env(&self) -> &str {
        &self.file.environment
    }

    pub fn is_user_store(&self) -> bool {
        self.file.enrollment_type == "user"
    }

    pub fn ou(&self) -> &'static str {
        if self.file.server {
            "Server"
        } else {
            "Workstation"
        }
    }
}
