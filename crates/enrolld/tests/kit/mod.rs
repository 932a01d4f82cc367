//! The test kit shared by `enrolld`'s integration tests: temporary
//! folders, a real `enrolld` on a free loopback port, the real `enroll`
//! client, and outside tools found on PATH.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A folder removed when the test ends.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "enroll-e2e-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn enrolld_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_enrolld"))
}

/// The client is built beside the server by `cargo test --workspace` (its
/// own crate has integration tests, so cargo builds its binary).
pub fn enroll_bin() -> PathBuf {
    let p = enrolld_bin().with_file_name("enroll");
    assert!(
        p.is_file(),
        "{} is missing: run the tests with `cargo test --workspace`",
        p.display()
    );
    p
}

pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is needed by this test and is not installed"))
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

pub fn ok(cmd: &mut Command) -> String {
    let dbg = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{dbg} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// A loopback port free right now (for the plain-HTTP listener, whose
/// URL `init` writes into certificates before the service starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `enrolld init` with the revocation listener on a free port; returns it.
pub fn init_service(data: &Path, extra: &[&str]) -> u16 {
    let port = free_port();
    ok(Command::new(enrolld_bin())
        .args(["init", "--data"])
        .arg(data)
        .args(["--http-listen", &format!("127.0.0.1:{port}")])
        .args(["--public-http-url", &format!("http://127.0.0.1:{port}")])
        .args(extra));
    port
}

pub struct Server {
    child: Child,
    pub port: u16,
    pub http_port: u16,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with(data, &[])
    }

    /// With more `serve` arguments, e.g. `--http-listen 127.0.0.1:0` for a
    /// second node beside the first.
    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(enrolld_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start enrolld");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut port = None;
        let mut http_port = None;
        while port.is_none() || http_port.is_none() {
            let line = lines
                .next()
                .expect("enrolld exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("listening on https://127.0.0.1:") {
                port = rest.trim_end_matches('/').parse().ok();
            }
            if let Some(rest) = line.strip_prefix("revocation on http://127.0.0.1:") {
                http_port = rest.trim_end_matches('/').parse().ok();
            }
        }
        Server {
            child,
            port: port.expect("port"),
            http_port: http_port.expect("http port"),
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the service must stop cleanly.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        ok(Command::new("kill").args(["-TERM", &pid]));
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "enrolld did not stop cleanly: {status:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client<'a> {
    pub pkg: &'a Path,
    pub store: &'a Path,
}

impl Client<'_> {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(enroll_bin());
        c.arg("--package")
            .arg(self.pkg)
            .args(args)
            .env("ENROLL_STORE_DIR", self.store)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        c
    }
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        json(&ok(&mut self.cmd(&all)))
    }
    /// Runs with --json and reads the output whatever the exit code.
    pub fn json_any(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = run(&mut self.cmd(&all));
        json(&String::from_utf8_lossy(&out.stdout))
    }

    pub fn submit(&self, extra: &[&str]) -> Value {
        let mut args = vec![
            "submit",
            "--locality",
            "Paris",
            "--state",
            "Ile-de-France",
            "--email",
            "it@laposte.example",
            "--phone",
            "+33 1 23 45 67 89",
        ];
        args.extend_from_slice(extra);
        self.json(&args)
    }
}

pub fn by_id(table: &Value, id: i64) -> Value {
    table
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("request {id} not in {table}"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).expect("copy");
        }
    }
}

/// The credential line of a package folder's `package.toml`.
pub fn package_credential(pkg: &Path, env: &str) -> String {
    let toml = std::fs::read_to_string(pkg.join("config").join(env).join("package.toml"))
        .expect("package.toml");
    toml.lines()
        .find_map(|l| l.strip_prefix("credential = \""))
        .expect("a credential line")
        .trim_end_matches('"')
        .to_owned()
}

/// Submits a workstation (60 hex digits) or server (host name) request
/// straight to the client API with curl, from a CSR OpenSSL makes with
/// `key`. Returns the request id.
pub fn api_submit(
    base: &str,
    ca: &Path,
    credential: &str,
    key: &Path,
    common_name: &str,
    description: &str,
    scratch: &Path,
) -> i64 {
    let csr = scratch.join(format!("{}.csr", common_name.replace(['/', '<', '>'], "_")));
    ok(Command::new(tool("openssl"))
        .args(["req", "-new", "-key"])
        .arg(key)
        .args(["-subj", &format!("/CN={common_name}"), "-out"])
        .arg(&csr));
    let body = serde_json::json!({
        "csr_pem": std::fs::read_to_string(&csr).expect("csr"),
        "key_length": 2048,
        "subject": {"common_name": common_name, "email": "it@a.example", "locality": "Paris", "state": "IDF"},
        "details": {"requester": "alice", "description": description, "fqdn": "ws12.a.example"},
    });
    let out = ok(Command::new(tool("curl"))
        .args(["-s", "--fail-with-body", "--cacert"])
        .arg(ca)
        .args(["-H", "Content-Type: application/json", "-H"])
        .arg(format!("Authorization: Bearer {credential}"))
        .args(["-d", &body.to_string()])
        .arg(format!("{base}/api/v1/requests")));
    json(&out)["id"].as_i64().expect("id")
}

/// An RSA-2048 key made by OpenSSL, for CSRs the tests submit.
pub fn rsa_key(path: &Path) {
    ok(Command::new(tool("openssl"))
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(path));
}

/// `enrolld manager add` into `out`; returns (passphrase, operator id).
pub fn manager_add(data: &Path, name: &str, org: Option<&str>, out: &Path) -> (String, i64) {
    let mut c = Command::new(enrolld_bin());
    c.args(["manager", "add", "--data"])
        .arg(data)
        .args(["--name", name, "--json", "--out"])
        .arg(out);
    match org {
        Some(o) => c.args(["--org", o]),
        None => c.arg("--central-admin"),
    };
    let v = json(&ok(&mut c));
    (
        v["passphrase"].as_str().expect("passphrase").to_owned(),
        v["id"].as_i64().expect("id"),
    )
}

/// An HTTPS client for load from inside a test: the service's CA pinned,
/// optionally a client certificate (PEM files). Transport failures come
/// back as status 0 with the error, so a test can count them.
pub struct Https {
    agent: ureq::Agent,
    pub base: String,
}

impl Https {
    pub fn new(base: &str, ca_pem: &Path, client: Option<(&Path, &Path)>) -> Https {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let pem = std::fs::read(ca_pem).expect("ca.pem");
        let roots = vec![Certificate::from_pem(&pem).expect("a CA certificate")];
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(std::sync::Arc::new(roots)));
        if let Some((cert, key)) = client {
            let chain: Vec<Certificate<'static>> =
                ureq::tls::parse_pem(&std::fs::read(cert).expect("cert"))
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
            let key = PrivateKey::from_pem(&std::fs::read(key).expect("key")).expect("a key");
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .into();
        Https {
            agent,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn done(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, String) {
        match r {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.into_body().read_to_string().unwrap_or_default();
                (status, body)
            }
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn get(&self, path: &str, bearer: Option<&str>) -> (u16, String) {
        let mut r = self.agent.get(format!("{}{path}", self.base));
        if let Some(b) = bearer {
            r = r.header("Authorization", format!("Bearer {b}"));
        }
        Self::done(r.call())
    }

    pub fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        Self::done(
            self.agent
                .post(format!("{}{path}", self.base))
                .send_form(form.iter().copied()),
        )
    }

    pub fn post_json(&self, path: &str, bearer: &str, body: &Value) -> (u16, String) {
        Self::done(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {bearer}"))
                .send_json(body),
        )
    }

    /// The web application's form token of this client's certificate.
    pub fn form_token(&self) -> String {
        let (status, page) = self.get("/orgs", None);
        assert_eq!(status, 200, "cannot read the organizations page: {page}");
        let s = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page[s..].split('"').next().expect("a token").to_owned()
    }
}

/// A CSR (PEM) for `common_name` from an OpenSSL key.
pub fn csr_pem(key: &Path, common_name: &str, scratch: &Path) -> String {
    let csr = scratch.join(format!("{common_name}.csr"));
    ok(Command::new(tool("openssl"))
        .args(["req", "-new", "-key"])
        .arg(key)
        .args(["-subj", &format!("/CN={common_name}"), "-out"])
        .arg(&csr));
    std::fs::read_to_string(&csr).expect("csr")
}

/// The JSON body of a workstation submission.
pub fn submission(csr_pem: &str, common_name: &str, description: &str) -> Value {
    serde_json::json!({
        "csr_pem": csr_pem,
        "key_length": 2048,
        "subject": {"common_name": common_name, "email": "it@a.example", "locality": "Paris", "state": "IDF"},
        "details": {"requester": "alice", "description": description},
    })
}

/// A fresh PostgreSQL database on `$ENROLL_TEST_POSTGRES` (default the
/// machine's `test` database), dropped when the value goes.
pub struct PgDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn new(tag: &str) -> PgDatabase {
        let admin = std::env::var("ENROLL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!(
            "enroll_{tag}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        let out = run(Command::new(tool("psql")).arg(&admin).args([
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            &format!("CREATE DATABASE {name}"),
        ]));
        assert!(
            out.status.success(),
            "PostgreSQL at {admin} is needed by this test: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("a database URL");
        PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl PgDatabase {
    /// One value of a query, as psql prints it unaligned.
    pub fn query(&self, sql: &str) -> String {
        ok(Command::new(tool("psql"))
            .arg(&self.url)
            .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql]))
        .trim()
        .to_owned()
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new(tool("psql"))
            .arg(&self.admin)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}
