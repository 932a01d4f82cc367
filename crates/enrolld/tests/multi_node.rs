//! Two real `enrolld` nodes on one PostgreSQL database, sharing nothing
//! but the database and a copy of the data directory (configuration and
//! keys). Both approve the same requests at the same moment: exactly one
//! certificate per request, and the loser is told clearly. Both revoke at
//! once: CRL numbers stay unique and increasing. Both take submissions for
//! the same machine at once: one Pending request remains.
//!
//! Needs PostgreSQL on `$ENROLL_TEST_POSTGRES` (psql on PATH), openssl and
//! curl; anything missing fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::process::Command;
use std::sync::{Arc, Barrier};

use kit::*;

#[test]
fn two_nodes_on_one_postgres() {
    let pg = PgDatabase::new("nodes");
    let tmp = TempDir::new("nodes");
    let data1 = tmp.path("node1");
    init_service(&data1, &["--database", &pg.url]);
    // A second service cannot be initialised on a database in use: its
    // CA's certificates would land beside ours. Nothing is written.
    let count = || pg.query("SELECT COUNT(*) FROM certificates");
    let before = count();
    let other = tmp.path("other");
    let refused = run(Command::new(enrolld_bin())
        .args(["init", "--data"])
        .arg(&other)
        .args(["--database", &pg.url]));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("already holds a service"),
        "{err}"
    );
    assert_eq!(count(), before);
    assert!(!other.exists());
    let data2 = tmp.path("node2");
    ok(Command::new("cp").arg("-a").arg(&data1).arg(&data2));
    let node1 = Server::start(&data1);
    let node2 = Server::start_with(&data2, &["--http-listen", "127.0.0.1:0"]);
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&data1);
        c
    };
    ok(&mut d(&[
        "org",
        "add",
        "--code",
        "J1CFRA",
        "--name",
        "La Poste",
        "--country",
        "FR",
    ]));
    let pkg = tmp.path("pkg");
    let url1 = format!("https://localhost:{}", node1.port);
    let url2 = format!("https://localhost:{}", node2.port);
    ok(d(&[
        "package", "create", "--org", "J1CFRA", "--env", "Prod", "--type", "user", "--url", &url1,
    ])
    .arg("--out")
    .arg(&pkg));
    let credential = package_credential(&pkg, "Prod");
    let ca = data1.join("admin/ca.pem");
    let admin = Some((data1.join("admin/admin.pem"), data1.join("admin/admin.key")));
    let client = |url: &str| {
        Https::new(
            url,
            &ca,
            admin.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
    };
    let (web1, web2) = (client(&url1), client(&url2));
    let token = web1.form_token();
    assert_eq!(token, web2.form_token(), "the nodes share the form key");
    let key = tmp.path("csr.key");
    rsa_key(&key);

    // Requests submitted to either node.
    let mut ids = Vec::new();
    for n in 0..20u32 {
        let cn = format!("40B0343FA07DBFEBFBFF000906E9{n:032X}");
        let csr = csr_pem(&key, &cn, &tmp.path(""));
        let node = if n % 2 == 0 { &web1 } else { &web2 };
        let (status, body) = node.post_json(
            "/api/v1/requests",
            &credential,
            &submission(&csr, &cn, "race"),
        );
        assert_eq!(status, 201, "{body}");
        ids.push(json(&body)["id"].as_i64().unwrap());
    }

    // Both nodes approve every request at the same moment.
    let web1 = Arc::new(web1);
    let web2 = Arc::new(web2);
    let mut outcomes = Vec::new();
    for id in &ids {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [web1.clone(), web2.clone()]
            .into_iter()
            .map(|web| {
                let (barrier, token, id) = (barrier.clone(), token.clone(), *id);
                std::thread::spawn(move || {
                    barrier.wait();
                    web.post_form(&format!("/requests/{id}/approve"), &[("csrf", &token)])
                })
            })
            .collect();
        let results: Vec<(u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        outcomes.push((*id, results));
    }
    let mut serials = Vec::new();
    for (id, results) in &outcomes {
        let won = results.iter().filter(|(s, _)| *s == 303).count();
        let lost: Vec<&(u16, String)> = results.iter().filter(|(s, _)| *s != 303).collect();
        assert_eq!(won, 1, "request {id}: {results:?}");
        let (status, page) = lost[0];
        assert_eq!(*status, 409, "request {id}: the loser got {status}");
        assert!(
            page.contains("Someone else was faster") || page.contains("cannot be approved"),
            "request {id}: the loser's page does not say why: {page}"
        );
        let shown = json(&ok(&mut d(&["request", "show", &id.to_string(), "--json"])));
        assert_eq!(shown["status"], "Approved");
        let approvals = shown["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["action"] == "approve")
            .count();
        assert_eq!(approvals, 1, "request {id} has {approvals} approve events");
        serials.push(shown["certificate"]["serial"].as_str().unwrap().to_owned());
    }
    let mut unique = serials.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "serials are unique");

    // Both nodes revoke at once (different requests): every revocation
    // publishes a CRL, and the numbers never repeat or go back.
    let handles: Vec<_> = ids
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| {
            let web = if i % 2 == 0 {
                web1.clone()
            } else {
                web2.clone()
            };
            let (token, id) = (token.clone(), *id);
            std::thread::spawn(move || {
                web.post_form(
                    &format!("/requests/{id}/revoke"),
                    &[("csrf", &token), ("reason", "superseded")],
                )
            })
        })
        .collect();
    for h in handles {
        let (status, body) = h.join().unwrap();
        assert_eq!(status, 303, "{body}");
    }
    let crl_number = |http_port: u16| {
        let der = tmp.path(&format!("crl-{http_port}.der"));
        ok(Command::new(tool("curl"))
            .args(["-sf", "-o"])
            .arg(&der)
            .arg(format!("http://127.0.0.1:{http_port}/crl/issuing.crl")));
        let text = ok(Command::new(tool("openssl"))
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&der));
        let number = text
            .lines()
            .skip_while(|l| !l.contains("X509v3 CRL Number"))
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        let revoked = text.matches("Serial Number:").count();
        (
            i64::from_str_radix(number.trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| number.parse().unwrap()),
            revoked,
        )
    };
    let (n1, revoked1) = crl_number(node1.http_port);
    let (n2, revoked2) = crl_number(node2.http_port);
    assert_eq!(n1, n2, "both nodes serve the newest CRL");
    assert!(
        n1 >= 11,
        "a CRL per revocation, numbered without repeats (got {n1})"
    );
    assert_eq!((revoked1, revoked2), (10, 10));

    // Both nodes take a submission for the same machine at once.
    let cn = "40B0343FA07DBFEBFBFF000906E9FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF".to_owned();
    let csr = csr_pem(&key, &cn, &tmp.path(""));
    let body = submission(&csr, &cn, "same machine");
    for _ in 0..5 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = [web1.clone(), web2.clone()]
            .into_iter()
            .map(|web| {
                let (barrier, body, cred) = (barrier.clone(), body.clone(), credential.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    web.post_json("/api/v1/requests", &cred, &body)
                })
            })
            .collect();
        for h in handles {
            let (status, text) = h.join().unwrap();
            assert_eq!(status, 201, "{text}");
        }
    }
    let pending = json(&ok(&mut d(&[
        "request", "list", "--status", "Pending", "--json",
    ])));
    let same: Vec<_> = pending
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["common_name"] == cn.as_str())
        .collect();
    assert_eq!(same.len(), 1, "one Pending request per machine: {same:?}");

    let check = json(&ok(&mut d(&["check", "--json"])));
    assert_eq!(check["consistent"], true, "{check}");
    node1.stop();
    node2.stop();
}
