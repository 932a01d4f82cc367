//! The web application's authorization table: every route against every
//! kind of visitor, through the real `enrolld` over real TLS, with curl
//! presenting the client certificates (the PKCS#12 files Enroll issued,
//! so OpenSSL reads them too). Each case gets fresh resources, so an
//! allowed action really happens; each refusal must be on the audit
//! trail.
//!
//! Needs `openssl` and `curl` on PATH; a missing tool fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use kit::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    ManagerA,
    ManagerB,
    RevokedManager,
    NoCertificate,
    ForeignCa,
}

const EVERYONE: [Who; 6] = [
    Who::Admin,
    Who::ManagerA,
    Who::ManagerB,
    Who::RevokedManager,
    Who::NoCertificate,
    Who::ForeignCa,
];

struct Env {
    tmp: TempDir,
    data: PathBuf,
    base: String,
    openssl: PathBuf,
    curl: PathBuf,
    ws_credential: String,
    srv_credential: String,
    csr_key: PathBuf,
    /// Certificates and keys (or PKCS#12 and passphrase) per visitor.
    admin: (PathBuf, PathBuf),
    manager_a: (PathBuf, String),
    manager_b: (PathBuf, String),
    revoked: (PathBuf, String),
    foreign: (PathBuf, PathBuf),
    counter: Cell<u32>,
}

impl Env {
    fn d(&self, args: &[&str]) -> Command {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&self.data);
        c
    }

    fn next(&self) -> u32 {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        n
    }

    /// curl as `who`: returns (status, body).
    fn call(&self, who: Who, method: &str, path: &str, form: &[(&str, String)]) -> (u16, String) {
        let body = self.tmp.path(&format!("body-{}", self.next()));
        let mut c = Command::new(&self.curl);
        c.args(["-s", "-o"])
            .arg(&body)
            .args(["-w", "%{http_code}", "--cacert"])
            .arg(self.data.join("admin/ca.pem"))
            .args(["-X", method]);
        match who {
            Who::Admin => {
                c.arg("--cert")
                    .arg(&self.admin.0)
                    .arg("--key")
                    .arg(&self.admin.1);
            }
            Who::ForeignCa => {
                c.arg("--cert")
                    .arg(&self.foreign.0)
                    .arg("--key")
                    .arg(&self.foreign.1);
            }
            Who::ManagerA | Who::ManagerB | Who::RevokedManager => {
                let (p12, pass) = match who {
                    Who::ManagerA => &self.manager_a,
                    Who::ManagerB => &self.manager_b,
                    _ => &self.revoked,
                };
                c.args(["--cert-type", "P12", "--cert"])
                    .arg(format!("{}:{pass}", p12.display()));
            }
            Who::NoCertificate => {}
        }
        for (k, v) in form {
            c.arg("--data-urlencode").arg(format!("{k}={v}"));
        }
        if method == "POST" && form.is_empty() {
            c.args(["-d", ""]);
        }
        c.arg(format!("{}{path}", self.base));
        let code = ok(&mut c);
        let text = std::fs::read_to_string(&body).unwrap_or_default();
        (code.trim().parse().expect("status"), text)
    }

    /// The form token of `who`, read from a page of theirs with a form.
    fn token(&self, who: Who, page: &str) -> String {
        let (status, page) = self.call(who, "GET", page, &[]);
        assert_eq!(status, 200, "{who:?} cannot read the page: {page}");
        let s = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page[s..].split('"').next().unwrap().to_owned()
    }

    fn submit(&self, server: bool) -> i64 {
        self.submit_as(
            if server {
                &self.srv_credential
            } else {
                &self.ws_credential
            },
            server,
        )
    }

    fn submit_as(&self, credential: &str, server: bool) -> i64 {
        let n = self.next();
        let cn = if server {
            format!("h{n}.a.example")
        } else {
            format!("{:060X}", u128::from(n) * 7919 + 0xA0_0000)
        };
        let csr = self.tmp.path(&format!("r{n}.csr"));
        ok(Command::new(&self.openssl)
            .args(["req", "-new", "-key"])
            .arg(&self.csr_key)
            .args(["-subj", &format!("/CN={cn}"), "-out"])
            .arg(&csr));
        let body = serde_json::json!({
            "csr_pem": std::fs::read_to_string(&csr).unwrap(),
            "key_length": 2048,
            "subject": {"common_name": cn, "email": "it@a.example", "locality": "Paris", "state": "IDF"},
            "details": {"requester": "alice", "description": format!("case {n}")},
        });
        let out = ok(Command::new(&self.curl)
            .args(["-s", "--fail-with-body", "--cacert"])
            .arg(self.data.join("admin/ca.pem"))
            .args(["-H", "Content-Type: application/json", "-H"])
            .arg(format!("Authorization: Bearer {credential}"))
            .args(["-d", &body.to_string()])
            .arg(format!("{}/api/v1/requests", self.base)));
        json(&out)["id"].as_i64().expect("id")
    }

    fn approved(&self) -> i64 {
        let id = self.submit(false);
        ok(&mut self.d(&["request", "approve", &id.to_string()]));
        id
    }

    fn package(&self) -> String {
        let out = self.tmp.path(&format!("pkg-{}", self.next()));
        let o = ok(self
            .d(&[
                "package", "create", "--org", "AAA", "--env", "Prod", "--type", "user", "--url",
                &self.base, "--json",
            ])
            .arg("--out")
            .arg(&out));
        json(&o)["package_id"].as_str().unwrap().to_owned()
    }

    fn operator_id(&self) -> i64 {
        let name = format!("op{}", self.next());
        let out = self.tmp.path(&format!("{name}.p12"));
        let o = ok(self
            .d(&["manager", "add", "--name", &name, "--org", "AAA", "--json"])
            .arg("--out")
            .arg(&out));
        json(&o)["id"].as_i64().unwrap()
    }

    /// A credential waiting for its one download (issued through the
    /// pages, as the administrator does).
    fn waiting_credential(&self, admin_token: &str) -> i64 {
        let name = format!("web{}", self.next());
        let (status, page) = self.call(
            Who::Admin,
            "POST",
            "/managers",
            &[
                ("csrf", admin_token.to_owned()),
                ("name", name),
                ("role", "org_manager".into()),
                ("org", "AAA".into()),
            ],
        );
        assert_eq!(status, 200, "{page}");
        let s = page.find("/managers/").unwrap() + 10;
        page[s..].split('/').next().unwrap().parse().unwrap()
    }

    fn newest_refusal(&self) -> i64 {
        let out = ok(&mut self.d(&[
            "audit", "list", "--action", "refused:", "--limit", "1", "--json",
        ]));
        json(&out)
            .as_array()
            .unwrap()
            .first()
            .map(|e| e["id"].as_i64().unwrap())
            .unwrap_or(0)
    }
}

fn pem_pair(dir: &Path, openssl: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("foreign.pem");
    let key = dir.join("foreign.key");
    ok(Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/O=Elsewhere/CN=admin", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

fn manager(
    env_d: &dyn Fn(&[&str]) -> Command,
    tmp: &TempDir,
    name: &str,
    org: &str,
) -> (PathBuf, String, i64) {
    let out = tmp.path(&format!("{name}.p12"));
    let o = ok(
        env_d(&["manager", "add", "--name", name, "--org", org, "--json"])
            .arg("--out")
            .arg(&out),
    );
    let v = json(&o);
    (
        out,
        v["passphrase"].as_str().unwrap().to_owned(),
        v["id"].as_i64().unwrap(),
    )
}

#[test]
fn every_route_against_every_visitor() {
    let openssl = tool("openssl");
    let curl = tool("curl");
    let tmp = TempDir::new("authz");
    let data = tmp.path("data");
    init_service(&data, &[]);
    let server = Server::start(&data);
    let base = format!("https://localhost:{}", server.port);
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&data);
        c
    };
    for (code, country) in [("AAA", "FR"), ("BBB", "DE")] {
        ok(&mut d(&[
            "org",
            "add",
            "--code",
            code,
            "--name",
            &format!("Org {code}"),
            "--country",
            country,
        ]));
    }
    let credential = |server_pkg: bool, org: &str| {
        let out = tmp.path(&format!("pkg-{org}-{server_pkg}"));
        let mut c = d(&[
            "package", "create", "--org", org, "--env", "Prod", "--type", "user", "--url", &base,
        ]);
        if server_pkg {
            c.arg("--server");
        }
        ok(c.arg("--out").arg(&out));
        let toml = std::fs::read_to_string(out.join("config/Prod/package.toml")).unwrap();
        toml.lines()
            .find_map(|l| l.strip_prefix("credential = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_owned()
    };
    let ws_credential = credential(false, "AAA");
    let srv_credential = credential(true, "AAA");
    let ws_b_credential = credential(false, "BBB");
    let csr_key = tmp.path("csr.key");
    ok(Command::new(&openssl)
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&csr_key));
    let (a_p12, a_pass, _) = manager(&d, &tmp, "manager-a", "AAA");
    let (b_p12, b_pass, _) = manager(&d, &tmp, "manager-b", "BBB");
    let (r_p12, r_pass, r_id) = manager(&d, &tmp, "gone-a", "AAA");
    ok(&mut d(&[
        "manager",
        "revoke",
        &r_id.to_string(),
        "--reason",
        "keyCompromise",
    ]));
    let foreign = pem_pair(&tmp.path(""), &openssl);
    let env = Env {
        data: data.clone(),
        base,
        openssl,
        curl,
        ws_credential,
        srv_credential,
        csr_key,
        admin: (data.join("admin/admin.pem"), data.join("admin/admin.key")),
        manager_a: (a_p12, a_pass),
        manager_b: (b_p12, b_pass),
        revoked: (r_p12, r_pass),
        foreign,
        counter: Cell::new(0),
        tmp,
    };
    let ws_a = env.submit(false);
    let srv_a = env.submit(true);
    let ws_b = env.submit_as(&ws_b_credential, false);
    let tokens: Vec<(Who, String)> = vec![
        (Who::Admin, env.token(Who::Admin, "/orgs")),
        (
            Who::ManagerA,
            env.token(Who::ManagerA, &format!("/requests/{ws_a}")),
        ),
        (
            Who::ManagerB,
            env.token(Who::ManagerB, &format!("/requests/{ws_b}")),
        ),
    ];
    // A visitor who cannot sign in has no token of their own; they get the
    // administrator's, which must not help them.
    let token_of = |who: Who| {
        tokens
            .iter()
            .find(|(w, _)| *w == who)
            .or_else(|| tokens.first())
            .map(|(_, t)| t.clone())
            .unwrap()
    };

    use Who::*;
    let admin_only: &[Who] = &[Admin];
    let deciders_of_a: &[Who] = &[Admin, ManagerA];
    let signed_in: &[Who] = &[Admin, ManagerA, ManagerB];
    // (route, who may, how to make a fresh case)
    type Make<'a> =
        Box<dyn Fn(&Env, Who) -> (&'static str, String, Vec<(&'static str, String)>) + 'a>;
    let tok = |who: Who| vec![("csrf", token_of(who))];
    let routes: Vec<(&str, &[Who], Make)> = vec![
        (
            "GET /",
            signed_in,
            Box::new(|_, _| ("GET", "/".into(), vec![])),
        ),
        (
            "GET /requests",
            signed_in,
            Box::new(|_, _| ("GET", "/requests".into(), vec![])),
        ),
        (
            "GET /requests/{workstation of A}",
            deciders_of_a,
            Box::new(move |_, _| ("GET", format!("/requests/{ws_a}"), vec![])),
        ),
        (
            "GET /requests/{server of A}",
            admin_only,
            Box::new(move |_, _| ("GET", format!("/requests/{srv_a}"), vec![])),
        ),
        (
            "POST /requests/{workstation of A}/approve",
            deciders_of_a,
            Box::new(move |e, w| {
                (
                    "POST",
                    format!("/requests/{}/approve", e.submit(false)),
                    tok(w),
                )
            }),
        ),
        (
            "POST /requests/{server of A}/approve",
            admin_only,
            Box::new(move |e, w| {
                (
                    "POST",
                    format!("/requests/{}/approve", e.submit(true)),
                    tok(w),
                )
            }),
        ),
        (
            "POST /requests/{workstation of A}/reject",
            deciders_of_a,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("reason", "unknown machine".into()));
                ("POST", format!("/requests/{}/reject", e.submit(false)), f)
            }),
        ),
        (
            "POST /requests/{approved workstation of A}/revoke",
            deciders_of_a,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("reason", "superseded".into()));
                ("POST", format!("/requests/{}/revoke", e.approved()), f)
            }),
        ),
        (
            "GET /orgs",
            admin_only,
            Box::new(|_, _| ("GET", "/orgs".into(), vec![])),
        ),
        (
            "POST /orgs",
            admin_only,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("code", format!("ZZ{}", e.next())));
                f.push(("name", "New org".into()));
                f.push(("country", "BE".into()));
                ("POST", "/orgs".into(), f)
            }),
        ),
        (
            "GET /packages",
            admin_only,
            Box::new(|_, _| ("GET", "/packages".into(), vec![])),
        ),
        (
            "POST /packages",
            admin_only,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("org", "AAA".into()));
                f.push(("environment", "Test".into()));
                f.push(("enrollment_type", "machine".into()));
                f.push(("url", e.base.clone()));
                ("POST", "/packages".into(), f)
            }),
        ),
        (
            "POST /packages/{id}/rotate",
            admin_only,
            Box::new(move |e, w| ("POST", format!("/packages/{}/rotate", e.package()), tok(w))),
        ),
        (
            "POST /packages/{id}/revoke",
            admin_only,
            Box::new(move |e, w| ("POST", format!("/packages/{}/revoke", e.package()), tok(w))),
        ),
        (
            "GET /managers",
            admin_only,
            Box::new(|_, _| ("GET", "/managers".into(), vec![])),
        ),
        (
            "POST /managers",
            admin_only,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("name", format!("new{}", e.next())));
                f.push(("role", "org_manager".into()));
                f.push(("org", "BBB".into()));
                ("POST", "/managers".into(), f)
            }),
        ),
        (
            "POST /managers/{id}/credential",
            admin_only,
            Box::new(move |e, w| {
                let id = e.waiting_credential(&token_of(Admin));
                ("POST", format!("/managers/{id}/credential"), tok(w))
            }),
        ),
        (
            "POST /managers/{id}/revoke",
            admin_only,
            Box::new(move |e, w| {
                let mut f = tok(w);
                f.push(("reason", "cessationOfOperation".into()));
                ("POST", format!("/managers/{}/revoke", e.operator_id()), f)
            }),
        ),
        (
            "GET /audit",
            signed_in,
            Box::new(|_, _| ("GET", "/audit".into(), vec![])),
        ),
        (
            "GET /static/app.css",
            &EVERYONE,
            Box::new(|_, _| ("GET", "/static/app.css".into(), vec![])),
        ),
    ];

    let mut cases = 0;
    let mut allowed = 0;
    let mut failures = Vec::new();
    for (route, allow, make) in &routes {
        for who in EVERYONE {
            let (method, path, form) = make(&env, who);
            let before = env.newest_refusal();
            let (status, body) = env.call(who, method, &path, &form);
            cases += 1;
            let want_allow = allow.contains(&who);
            let got_allow = status < 400;
            if want_allow != got_allow {
                failures.push(format!(
                    "{route} as {who:?}: HTTP {status}, expected {}: {}",
                    if want_allow { "allow" } else { "deny" },
                    body.chars().take(300).collect::<String>()
                ));
                continue;
            }
            if want_allow {
                allowed += 1;
            } else {
                if !matches!(status, 403 | 404) {
                    failures.push(format!(
                        "{route} as {who:?}: refused with HTTP {status}, expected 403 or 404"
                    ));
                }
                if !body.contains("<!doctype html>") {
                    failures.push(format!("{route} as {who:?}: the refusal is not a page"));
                }
                if env.newest_refusal() <= before {
                    failures.push(format!(
                        "{route} as {who:?}: the refusal is not on the audit trail"
                    ));
                }
            }
        }
    }
    println!(
        "authorization table: {} routes x {} visitors = {cases} cases, {allowed} allowed, {} refused",
        routes.len(),
        EVERYONE.len(),
        cases - allowed
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(cases, routes.len() * EVERYONE.len());

    // A form that did not come from our pages changes nothing, even with
    // a valid certificate: no token, another certificate's token, or a
    // cross-site browser request.
    let id = env.submit(false);
    let forged: [Vec<(&str, String)>; 2] = [vec![], vec![("csrf", token_of(ManagerB))]];
    for form in forged {
        let before = env.newest_refusal();
        let (status, _) = env.call(ManagerA, "POST", &format!("/requests/{id}/approve"), &form);
        assert_eq!(status, 403, "{form:?}");
        assert!(
            env.newest_refusal() > before,
            "{form:?}: not on the audit trail"
        );
    }
    let out = ok(Command::new(&env.curl)
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(env.data.join("admin/ca.pem"))
        .args(["--cert-type", "P12", "--cert"])
        .arg(format!("{}:{}", env.manager_a.0.display(), env.manager_a.1))
        .args([
            "-H",
            "Sec-Fetch-Site: cross-site",
            "-H",
            "Origin: https://evil.example",
        ])
        .args(["--data-urlencode", &format!("csrf={}", token_of(ManagerA))])
        .arg(format!("{}/requests/{id}/approve", env.base)));
    assert_eq!(out.trim(), "403");
    let shown = ok(&mut env.d(&["request", "show", &id.to_string(), "--json"]));
    assert_eq!(
        json(&shown)["status"],
        "Pending",
        "a forged form approved a request"
    );

    // The headers every page carries.
    let headers = ok(Command::new(&env.curl)
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(env.data.join("admin/ca.pem"))
        .arg("--cert")
        .arg(&env.admin.0)
        .arg("--key")
        .arg(&env.admin.1)
        .arg(format!("{}/requests", env.base)))
    .to_ascii_lowercase();
    for h in [
        "content-security-policy: default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
        "strict-transport-security: max-age=31536000",
        "cache-control: no-store",
    ] {
        assert!(headers.contains(h), "missing `{h}` in\n{headers}");
    }
    // Whatever happened above, the database's invariants hold.
    let check = json(&ok(&mut env.d(&["check", "--json"])));
    assert_eq!(check["consistent"], true, "{check}");
    server.stop();
}
