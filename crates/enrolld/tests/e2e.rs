//! End to end: the real `enrolld` on a free loopback port, driven by the
//! real `enroll` binary, checked by outside oracles (OpenSSL, curl).
//!
//! Needs `openssl` and `curl` on PATH; a missing tool fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::path::PathBuf;
use std::process::Command;

use kit::*;

#[test]
fn workstation_enrollment_end_to_end() {
    let openssl = tool("openssl");
    let curl = tool("curl");
    let tmp = TempDir::new("ws");
    let data = tmp.path("data");
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&data);
        c
    };

    let http_port = init_service(&data, &[]);
    // init never touches an existing service.
    let again = run(&mut d(&["init"]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds an Enroll service"));
    for key in [
        "ca/root.key",
        "ca/issuing.key",
        "tls/server.key",
        "admin/admin.key",
    ] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(data.join(key))
                .expect("key")
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{key} is readable by others");
    }

    let server = Server::start(&data);
    assert_eq!(server.http_port, http_port);
    let url = format!("https://localhost:{}", server.port);
    let http = format!("http://127.0.0.1:{http_port}");
    ok(&mut d(&[
        "org",
        "add",
        "--code",
        "J1CFRA",
        "--name",
        "France - La Poste",
        "--country",
        "FR",
    ]));
    let pkg = tmp.path("pkg");
    let out = ok(d(&[
        "package", "create", "--org", "J1CFRA", "--env", "Prod", "--type", "machine", "--url",
        &url, "--json",
    ])
    .arg("--out")
    .arg(&pkg));
    let package_id = json(&out)["package_id"].as_str().expect("id").to_owned();
    let store = tmp.path("store");
    let client = Client {
        pkg: &pkg,
        store: &store,
    };

    // info shows the package and a 60-hex-digit identity.
    let info = client.json(&["info"]);
    assert_eq!(info["environment"], "Prod");
    assert_eq!(info["service_url"], url.as_str());
    let cn = info["certificate_request"]["common_name"]
        .as_str()
        .expect("cn")
        .to_owned();
    assert_eq!(cn.len(), 60);

    // Submit, then submit again: the first becomes Cancelled.
    let first = client.submit(&["--description", "Office 12"]);
    let id1 = first["id"].as_i64().expect("id");
    assert_eq!(first["status"], "Pending");
    let second = client.submit(&["--key-length", "3072"]);
    let id2 = second["id"].as_i64().expect("id");
    assert_eq!(second["cancelled"], serde_json::json!([id1]));
    let table = client.json(&["status"]);
    assert_eq!(by_id(&table, id1)["status"], "Cancelled");
    assert_eq!(by_id(&table, id2)["status"], "Pending");

    // Oracle: the CSR the client built verifies in OpenSSL.
    let shown = json(&ok(&mut d(&[
        "request",
        "show",
        &id2.to_string(),
        "--json",
    ])));
    let csr = tmp.path("req.csr");
    std::fs::write(&csr, shown["csr_pem"].as_str().expect("csr")).expect("write csr");
    let verify = run(Command::new(&openssl)
        .args(["req", "-verify", "-noout", "-in"])
        .arg(&csr));
    assert!(verify.status.success(), "openssl req -verify: {verify:?}");
    assert_eq!(shown["details"]["ip_address"], "127.0.0.1");
    assert_eq!(shown["details"]["phone"], "+33 1 23 45 67 89");
    assert_eq!(shown["key"], "RSA 3072");

    // No certificate yet: test says so with its own exit code.
    let none = run(&mut client.cmd(&["test"]));
    assert_eq!(none.status.code(), Some(10), "{none:?}");

    // Approve from the operator's command line while the service runs.
    ok(&mut d(&["request", "approve", &id2.to_string()]));
    let got = client.json(&["get"]);
    let installed = by_id(&got, id2);
    assert_eq!(installed["status"], "Installed");
    let cert = PathBuf::from(installed["certificate_path"].as_str().expect("cert path"));
    let key = PathBuf::from(installed["key_path"].as_str().expect("key path"));
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key").permissions(),
    );
    assert_eq!(
        key_mode & 0o077,
        0,
        "the installed key is readable by others"
    );
    let chain = store.join("Prod/chain.pem");
    let ca = pkg.join("config/Prod/ca.pem");

    // Oracle: OpenSSL verifies the chain and shows the profile.
    let v = ok(Command::new(&openssl)
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(&ca)
        .arg("-untrusted")
        .arg(&chain)
        .arg(&cert));
    assert!(v.contains(": OK"), "{v}");
    let text = ok(Command::new(&openssl)
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert));
    assert!(
        text.contains(&format!(
            "Subject: emailAddress = it@laposte.example, C = FR, ST = Ile-de-France, L = Paris, O = J1CFRA, OU = Workstation, CN = {cn}"
        )),
        "{text}"
    );
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(
        text.contains("Digital Signature, Key Encipherment, Data Encipherment"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("X509v3 Authority Key Identifier"), "{text}");
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(
        text.contains(&format!("URI:{http}/crl/issuing.crl")),
        "{text}"
    );
    assert!(text.contains(&format!("OCSP - URI:{http}/ocsp")), "{text}");
    assert!(
        text.contains(&format!("CA Issuers - URI:{http}/ca/issuing.crt")),
        "{text}"
    );

    // Mutual TLS: the client's own test, and curl as an outside client.
    let tested = client.json(&["test"]);
    assert_eq!(tested["success"], true, "{tested}");
    let body = ok(Command::new(&curl)
        .args(["-sS", "--fail-with-body", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!("{url}/api/v1/test")));
    let seen = json(&body);
    assert!(
        seen["subject"].as_str().expect("subject").ends_with(&cn),
        "{seen}"
    );
    assert_eq!(seen["status"], "Installed");
    // Without a certificate the test endpoint refuses with a problem.
    let anon = ok(Command::new(&curl)
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
            "--cacert",
        ])
        .arg(&ca)
        .arg(format!("{url}/api/v1/test")));
    assert_eq!(anon, "401 application/problem+json");

    // The subject name in the provider's order.
    let name = ok(&mut client.cmd(&["subject-name", &id2.to_string()]));
    assert_eq!(
        name.trim(),
        format!(
            "E=it@laposte.example,C=FR,ST=Ile-de-France,L=Paris,O=J1CFRA,OU=Workstation,CN={cn}"
        )
    );

    // Reject with a reason: the client sees it.
    let third = client.submit(&[]);
    let id3 = third["id"].as_i64().expect("id");
    ok(&mut d(&[
        "request",
        "reject",
        &id3.to_string(),
        "--reason",
        "unknown machine, call the help desk",
    ]));
    let got = client.json(&["get"]);
    assert_eq!(by_id(&got, id3)["status"], "Rejected");
    assert_eq!(
        by_id(&got, id3)["reason"],
        "unknown machine, call the help desk"
    );
    // A decided request cannot be decided again.
    let twice = run(&mut d(&["request", "approve", &id3.to_string()]));
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("Rejected"),
        "{twice:?}"
    );

    // The audit trail has every change of request 2, with who and from where.
    let shown = json(&ok(&mut d(&[
        "request",
        "show",
        &id2.to_string(),
        "--json",
    ])));
    let actions: Vec<&str> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().expect("action"))
        .collect();
    assert_eq!(actions, ["submit", "approve", "install"]);
    assert_eq!(shown["history"][2]["source"], "127.0.0.1");
    assert_eq!(shown["environment"], "Prod");
    let first_hist = json(&ok(&mut d(&[
        "request",
        "show",
        &id1.to_string(),
        "--json",
    ])));
    assert_eq!(first_hist["history"][1]["action"], "cancel");

    // A wrong credential is refused with 401 and nothing is stored.
    let before = json(&ok(&mut d(&["request", "list", "--json"])))
        .as_array()
        .expect("list")
        .len();
    let bad_pkg = tmp.path("badpkg");
    copy_dir(&pkg, &bad_pkg);
    let toml_path = bad_pkg.join("config/Prod/package.toml");
    let text = std::fs::read_to_string(&toml_path).expect("toml");
    let cred_line = text
        .lines()
        .find(|l| l.starts_with("credential"))
        .expect("credential");
    let forged = format!("credential = \"enr1.{package_id}.{}\"", "0".repeat(64));
    std::fs::write(&toml_path, text.replace(cred_line, &forged)).expect("write");
    let bad_store = tmp.path("badstore");
    let bad = Client {
        pkg: &bad_pkg,
        store: &bad_store,
    };
    let refused = run(&mut bad.cmd(&[
        "submit",
        "--locality",
        "L",
        "--state",
        "S",
        "--email",
        "a@b.example",
    ]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown package credential"),
        "{refused:?}"
    );
    let raw = ok(Command::new(&curl)
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer nonsense",
            "-d",
            "{}",
            "--cacert",
        ])
        .arg(&ca)
        .arg(format!("{url}/api/v1/requests")));
    assert_eq!(raw, "401 application/problem+json");
    let after = json(&ok(&mut d(&["request", "list", "--json"])))
        .as_array()
        .expect("list")
        .len();
    assert_eq!(before, after, "a refused submission was stored");

    // An oversized body is refused as a problem too.
    let big = tmp.path("big.json");
    std::fs::write(&big, vec![b'x'; 300 * 1024]).expect("write");
    let cred = text
        .lines()
        .find(|l| l.starts_with("credential"))
        .and_then(|l| l.split('"').nth(1))
        .expect("cred")
        .to_owned();
    let raw = ok(Command::new(&curl)
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
            "-X",
            "POST",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {cred}"))
        .arg("--data-binary")
        .arg(format!("@{}", big.display()))
        .arg("--cacert")
        .arg(&ca)
        .arg(format!("{url}/api/v1/requests")));
    assert_eq!(raw, "413 application/problem+json");

    // A revoked package credential is refused.
    ok(&mut d(&["package", "revoke", &package_id]));
    let revoked = run(&mut client.cmd(&[
        "submit",
        "--locality",
        "L",
        "--state",
        "S",
        "--email",
        "a@b.example",
    ]));
    assert!(
        String::from_utf8_lossy(&revoked.stderr).contains("revoked"),
        "{revoked:?}"
    );

    // A package whose trust anchor is another CA: the service is untrusted.
    let other = tmp.path("other");
    ok(Command::new(enrolld_bin())
        .args(["init", "--data"])
        .arg(&other));
    let untrusted_pkg = tmp.path("untrusted");
    copy_dir(&pkg, &untrusted_pkg);
    std::fs::copy(
        other.join("ca/root.pem"),
        untrusted_pkg.join("config/Prod/ca.pem"),
    )
    .expect("copy");
    let u = Client {
        pkg: &untrusted_pkg,
        store: &store,
    };
    assert_eq!(run(&mut u.cmd(&["test"])).status.code(), Some(13));

    // Revocation: the CA certificates, CRL and OCSP as relying parties see them.
    let issuing = tmp.path("issuing.pem");
    ok(Command::new(&curl)
        .args(["-sSf", "-o"])
        .arg(tmp.path("issuing.der"))
        .arg(format!("{http}/ca/issuing.crt")));
    ok(Command::new(&openssl)
        .args(["x509", "-inform", "DER", "-in"])
        .arg(tmp.path("issuing.der"))
        .arg("-out")
        .arg(&issuing));
    let ocsp = |cert_args: &[&str]| {
        let mut c = Command::new(&openssl);
        c.args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&issuing)
            .args(cert_args)
            .arg("-CAfile")
            .arg(&ca)
            .args(["-url", &format!("{http}/ocsp")]);
        let out = run(&mut c);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let cert_s = cert.to_str().unwrap().to_owned();
    let before = ocsp(&["-cert", &cert_s]);
    assert!(
        before.contains(": good") && before.contains("Response verify OK"),
        "{before}"
    );
    let unknown = ocsp(&["-serial", "0x4242424242"]);
    assert!(unknown.contains(": unknown"), "{unknown}");
    // Asked only about another issuer's certificate (here the root's),
    // the responder says it is not authoritative, unsigned and uncached.
    let foreign = run(Command::new(&openssl)
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(&ca)
        .args(["-serial", "0x42", "-url", &format!("{http}/ocsp")]));
    let foreign = String::from_utf8_lossy(&foreign.stderr).into_owned()
        + &String::from_utf8_lossy(&foreign.stdout);
    assert!(foreign.contains("unauthorized"), "{foreign}");
    let crl_check = |label: &str| {
        let der = tmp.path(&format!("{label}.crl"));
        ok(Command::new(&curl)
            .args(["-sSf", "-o"])
            .arg(&der)
            .arg(format!("{http}/crl/issuing.crl")));
        let pem = tmp.path(&format!("{label}.crl.pem"));
        ok(Command::new(&openssl)
            .args(["crl", "-inform", "DER", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&pem));
        let out = run(Command::new(&openssl)
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(&ca)
            .arg("-untrusted")
            .arg(&chain)
            .arg("-CRLfile")
            .arg(&pem)
            .arg(&cert));
        let text = ok(Command::new(&openssl)
            .args(["crl", "-noout", "-text", "-in"])
            .arg(&pem));
        (
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            text,
        )
    };
    let (v, first_crl) = crl_check("before");
    assert!(v.contains(": OK"), "{v}");
    ok(&mut d(&[
        "request",
        "revoke",
        &id2.to_string(),
        "--reason",
        "keyCompromise",
    ]));
    let (v, crl_text) = crl_check("after");
    assert!(v.contains("certificate revoked"), "{v}");
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    let number = |t: &str| -> u64 {
        let i = t.find("X509v3 CRL Number:").expect("CRL number");
        t[i..].lines().nth(1).unwrap().trim().parse().unwrap()
    };
    assert!(number(&crl_text) > number(&first_crl));
    let after = ocsp(&["-cert", &cert_s]);
    assert!(
        after.contains(": revoked") && after.contains("Reason: keyCompromise"),
        "{after}"
    );
    let refused = client.json_any(&["test"]);
    assert_eq!(refused["outcome"], "revoked", "{refused}");
    assert_eq!(refused["exit_code"], 14);
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("keyCompromise"),
        "{refused}"
    );
    let again = run(&mut d(&[
        "request",
        "revoke",
        &id2.to_string(),
        "--reason",
        "superseded",
    ]));
    assert!(!again.status.success(), "Revoked is final");

    // The event log has a line per action and no secret.
    let log = std::fs::read_to_string(pkg.join("logs/enroll.log")).expect("log");
    assert!(log.lines().any(|l| l.contains("action=submit")));
    assert!(
        log.lines()
            .any(|l| l.contains("action=test") && l.contains("success"))
    );
    assert!(!log.contains(&cred), "the event log holds the credential");

    // Whatever happened above, the database's invariants hold.
    let check = json(&ok(&mut d(&["check", "--json"])));
    assert_eq!(check["consistent"], true, "{check}");
    server.stop();
    // Unreachable once the service is gone.
    assert_eq!(run(&mut client.cmd(&["test"])).status.code(), Some(15));
}
