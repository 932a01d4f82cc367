//! A real `enrolld` for a benchmark: a data directory on SQLite or on a
//! fresh PostgreSQL database, an organization and a package made with the
//! operator's command line, the service on free loopback ports, and HTTPS
//! agents for the package and the central administrator.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Which database a benchmark runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Db {
    /// The embedded default: a SQLite file in the data directory.
    Sqlite,
    /// A fresh database created beside the one this URL names (which must
    /// accept `CREATE DATABASE`), dropped afterwards.
    Postgres(String),
}

impl Db {
    pub fn name(&self) -> &'static str {
        match self {
            Db::Sqlite => "SQLite",
            Db::Postgres(_) => "PostgreSQL",
        }
    }
}

/// The databases `--db` names: `sqlite`, `postgres` or both.
pub fn databases(which: &str, postgres: &str) -> Result<Vec<Db>> {
    let mut out = Vec::new();
    for w in which.split(',') {
        match w.trim() {
            "sqlite" => out.push(Db::Sqlite),
            "postgres" | "postgresql" => out.push(Db::Postgres(postgres.to_owned())),
            other => bail!("unknown database {other:?}: use sqlite, postgres or sqlite,postgres"),
        }
    }
    Ok(out)
}

/// A PostgreSQL database that exists for one benchmark.
#[derive(Debug)]
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(admin_url: &str, tag: &str) -> Result<PgDatabase> {
        let name = format!("enroll_bench_{tag}_{}", std::process::id());
        psql(admin_url, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        let base = admin_url.split('?').next().unwrap_or(admin_url);
        let cut = base
            .rfind('/')
            .context("the PostgreSQL URL names no database")?;
        let url = format!("{}/{name}", base.get(..cut).unwrap_or(base));
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) -> Result<()> {
    run_ok(Command::new("psql").args(["-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql]))
        .with_context(|| format!("psql could not run {sql:?} (is PostgreSQL at {url}?)"))?;
    Ok(())
}

/// Runs a command; its standard output, or an error with its standard error.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails unless `tool` is on PATH, saying how to install it.
pub fn need(tool: &str, package: &str) -> Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| d.join(tool).is_file()) {
        Ok(())
    } else {
        bail!("`{tool}` is needed for this benchmark: apt-get install {package}")
    }
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn wait_port(port: u16) -> Result<()> {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on port {port} after 30 s")
}

/// A binary built beside this one (`cargo build --release` builds all).
pub fn bin_beside(name: &str) -> Result<PathBuf> {
    let p = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        p.is_file(),
        "{} is missing: build everything first (cargo build --release --workspace)",
        p.display()
    );
    Ok(p)
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scratch folder removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Result<Scratch> {
        let p = std::env::temp_dir().join(format!("enroll-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)?;
        Ok(Scratch(p))
    }
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client package's credential and identity.
#[derive(Debug, Clone)]
pub struct PackageInfo {
    pub id: String,
    pub credential: String,
}

#[derive(serde::Deserialize)]
struct PackageToml {
    package_id: String,
    credential: String,
}

/// An `enrolld` with its data directory (and database).
#[derive(Debug)]
pub struct Service {
    pub data: PathBuf,
    pub https: u16,
    pub http: u16,
    pub database_url: String,
    pub db: Db,
    enrolld: PathBuf,
    child: Option<Kill>,
    // Dropped after the service: the database outlives its clients.
    _pg: Option<PgDatabase>,
    pub scratch: Scratch,
}

impl Service {
    /// `enrolld init` with a CA of `key_type` on `db`.
    pub fn init(tag: &str, key_type: &str, db: &Db) -> Result<Service> {
        let scratch = Scratch::new(tag)?;
        let enrolld = bin_beside("enrolld")?;
        let data = scratch.join("data");
        let http = free_port()?;
        let https = free_port()?;
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres(admin) => Some(PgDatabase::create(admin, tag)?),
        };
        let database_url = match &pg {
            Some(p) => p.url.clone(),
            None => format!("sqlite://{}", data.join("enroll.db").display()),
        };
        let mut init = Command::new(&enrolld);
        init.args(["init", "--data"])
            .arg(&data)
            .args(["--key-type", key_type])
            .args(["--listen", &format!("127.0.0.1:{https}")])
            .args(["--http-listen", &format!("127.0.0.1:{http}")])
            .args(["--public-http-url", &format!("http://127.0.0.1:{http}")]);
        if let Some(p) = &pg {
            init.args(["--database", &p.url]);
        }
        run_ok(&mut init)?;
        Ok(Service {
            data,
            https,
            http,
            database_url,
            db: db.clone(),
            enrolld,
            child: None,
            _pg: pg,
            scratch,
        })
    }

    /// An operator command (`org add …`) on this data directory.
    pub fn operator(&self, args: &[&str]) -> Result<String> {
        let (verb, rest) = args.split_at(2.min(args.len()));
        run_ok(
            Command::new(&self.enrolld)
                .args(verb)
                .arg("--data")
                .arg(&self.data)
                .args(rest),
        )
    }

    /// An organization and a user-type package for it.
    pub fn org_and_package(&self, code: &str, env: &str, extra: &[&str]) -> Result<PackageInfo> {
        if !self.operator(&["org", "list"])?.contains(code) {
            self.operator(&[
                "org",
                "add",
                "--code",
                code,
                "--name",
                code,
                "--country",
                "FR",
            ])?;
        }
        let out = self.scratch.join(&format!("pkg-{code}-{env}"));
        let url = format!("https://127.0.0.1:{}", self.https);
        let out_s = out.display().to_string();
        let mut args = vec![
            "package", "create", "--org", code, "--env", env, "--type", "user", "--url", &url,
            "--out", &out_s,
        ];
        args.extend_from_slice(extra);
        self.operator(&args)?;
        let toml_path = out.join("config").join(env).join("package.toml");
        let text = std::fs::read_to_string(&toml_path)
            .with_context(|| format!("cannot read {}", toml_path.display()))?;
        let p: PackageToml = toml::from_str(&text)?;
        Ok(PackageInfo {
            id: p.package_id,
            credential: p.credential,
        })
    }

    /// Starts `enrolld serve`, its log in the scratch folder.
    pub fn start(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.scratch.join("enrolld.log"))?;
        let child = Command::new(&self.enrolld)
            .args(["serve", "--data"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.child = Some(Kill(child));
        wait_port(self.https)?;
        wait_port(self.http)
    }

    pub fn stop(&mut self) {
        self.child = None;
    }

    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }

    fn ca(&self) -> Result<Vec<Certificate<'static>>> {
        pem_certs(&self.data.join("admin/ca.pem"))
    }

    /// An agent that signs in as the first central administrator.
    pub fn admin_agent(&self) -> Result<ureq::Agent> {
        let certs = pem_certs(&self.data.join("admin/admin.pem"))?;
        let key_pem = std::fs::read(self.data.join("admin/admin.key"))?;
        let key = PrivateKey::from_pem(&key_pem)
            .context("the administrator key is unreadable")?
            .to_owned();
        agent(self.ca()?, Some(ClientCert::new_with_certs(&certs, key)))
    }

    /// The administrator's form token, read off one of its pages.
    pub fn admin_form_token(&self, admin: &ureq::Agent) -> Result<String> {
        let mut resp = admin.get(format!("{}/orgs", self.base())).call()?;
        let page = resp.body_mut().read_to_string()?;
        let mark = "name=\"csrf\" value=\"";
        let start = page
            .find(mark)
            .context("the administrator's page carries no form token")?
            + mark.len();
        let rest = page.get(start..).unwrap_or_default();
        let end = rest.find('"').context("unterminated form token")?;
        Ok(rest.get(..end).unwrap_or_default().to_owned())
    }
}

fn pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let PemItem::Certificate(c) = item? {
            out.push(c);
        }
    }
    Ok(out)
}

fn agent(roots: Vec<Certificate<'static>>, client: Option<ClientCert>) -> Result<ureq::Agent> {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .client_cert(client)
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into())
}

/// A plain-HTTP agent (for cfssl).
pub fn plain_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}
