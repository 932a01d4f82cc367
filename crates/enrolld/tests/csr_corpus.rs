//! The CSR corpus (`testdata/csr/`, 97 requests from many tools) through
//! the real server over HTTPS, as external server requests: every file
//! gets the outcome `expected.tsv` gives it, no file causes a 500, and a
//! refused file stores nothing. Then one RSA and one ECDSA request go all
//! the way to Downloaded with the real client, checked by OpenSSL.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use kit::*;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/csr")
}

#[test]
fn every_corpus_file_through_the_server() {
    let curl = tool("curl");
    let openssl = tool("openssl");
    let tmp = TempDir::new("corpus");
    let data = tmp.path("data");
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&data);
        c
    };
    init_service(&data, &[]);
    let server = Server::start(&data);
    let url = format!("https://localhost:{}", server.port);
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
    ok(d(&[
        "package",
        "create",
        "--org",
        "J1CFRA",
        "--env",
        "Prod",
        "--type",
        "machine",
        "--server",
        "--allow-external",
        "--url",
        &url,
    ])
    .arg("--out")
    .arg(&pkg));
    let toml = std::fs::read_to_string(pkg.join("config/Prod/package.toml")).unwrap();
    let cred = toml
        .lines()
        .find(|l| l.starts_with("credential"))
        .and_then(|l| l.split('"').nth(1))
        .unwrap()
        .to_owned();
    let ca = pkg.join("config/Prod/ca.pem");

    let expected = std::fs::read_to_string(corpus().join("expected.tsv")).unwrap();
    let mut failures = Vec::new();
    let (mut count, mut accepted) = (0, 0);
    for (n, line) in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
        .enumerate()
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, verdict, codes) = (cols[0], cols[1], cols.get(2).copied().unwrap_or(""));
        count += 1;
        let bytes = std::fs::read(corpus().join(file)).unwrap();
        // A distinct host per file, so no file cancels another.
        let body = serde_json::json!({
            "csr_file_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "common_name": format!("srv{n}.corpus.example"),
            "details": {"fqdn": format!("srv{n}.corpus.example"), "description": file},
        });
        let body_path = tmp.path("body.json");
        std::fs::write(&body_path, body.to_string()).unwrap();
        let out = ok(Command::new(&curl)
            .args([
                "-sS",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-H",
            ])
            .arg(format!("Authorization: Bearer {cred}"))
            .arg("--data-binary")
            .arg(format!("@{}", body_path.display()))
            .arg("--cacert")
            .arg(&ca)
            .arg(format!("{url}/api/v1/external-requests")));
        let (resp, status) = out.rsplit_once('\n').unwrap();
        let resp = json(resp);
        match (verdict, status) {
            ("accept", "201") => accepted += 1,
            ("reject", "422") => {
                let want: Vec<&str> = codes.split('|').collect();
                let got: Vec<&str> = resp["problems"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["code"].as_str().unwrap())
                    .collect();
                if !got.iter().any(|c| want.contains(c)) {
                    failures.push(format!("{file}: want one of {want:?}, got {got:?}"));
                }
                // Every problem comes with a sentence.
                for p in resp["problems"].as_array().unwrap() {
                    assert!(p["message"].as_str().unwrap().len() > 20, "{file}: {p}");
                }
            }
            (_, "500") => failures.push(format!("{file}: 500 {resp}")),
            (v, s) => failures.push(format!("{file}: want {v}, got HTTP {s} {resp}")),
        }
    }
    assert_eq!(count, 97, "the corpus has 97 files");
    assert!(
        failures.is_empty(),
        "{} of {count} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Refused files stored nothing: exactly the accepted ones are there.
    let list = json(&ok(&mut d(&[
        "request", "list", "--limit", "1000", "--json",
    ])));
    assert_eq!(list.as_array().unwrap().len(), accepted);
    // The challenge password is never stored.
    for r in list.as_array().unwrap() {
        let shown = ok(&mut d(&["request", "show", &r["id"].to_string(), "--json"]));
        assert!(
            !shown.contains("placeholder-otp"),
            "a challenge password was stored"
        );
    }

    // One RSA and one ECDSA request all the way, with the real client.
    let store = tmp.path("store");
    let client = Client {
        pkg: &pkg,
        store: &store,
    };
    for (file, host, want_ku, want_san) in [
        (
            "generated/g01_openssl_rsa2048_server_ok.pem",
            "rsa.partner.example",
            "Digital Signature, Key Encipherment, Data Encipherment",
            "DNS:rsa.partner.example, DNS:srv01.example.test",
        ),
        (
            "generated/g10_openssl_ec_p384_ku_ds_only.pem",
            "ec.partner.example",
            "Digital Signature\n",
            "DNS:ec.partner.example, email:pki-admin@example.test\n",
        ),
    ] {
        let csr = corpus().join(file);
        let dry = client.json(&[
            "submit",
            "--external",
            csr.to_str().unwrap(),
            "--common-name",
            host,
            "--dry-run",
        ]);
        assert_eq!(dry["accepted"], true, "{dry}");
        assert_eq!(dry["read"]["locality"], "Berlin");
        let sent = client.json(&[
            "submit",
            "--external",
            csr.to_str().unwrap(),
            "--common-name",
            host,
            "--fqdn",
            host,
            "--mac",
            "02:00:00:00:00:01",
            "--nic",
            "eth0",
            "--processor-id",
            "X",
            "--os-version",
            "Debian 12",
            "--os-type",
            "64-bit",
            "--description",
            "partner API",
        ]);
        let id = sent["id"].as_i64().unwrap();
        ok(&mut d(&["request", "approve", &id.to_string()]));
        let got = client.json(&["get"]);
        let r = by_id(&got, id);
        assert_eq!(r["status"], "Downloaded", "{got}");
        let pem = PathBuf::from(r["certificate_path"].as_str().unwrap());
        assert_eq!(pem, pkg.join(format!("config/Prod/{host}-{id}.pem")));
        assert!(pkg.join(format!("config/Prod/{host}-{id}.der")).is_file());
        let v = ok(Command::new(&openssl)
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(&ca)
            .arg("-untrusted")
            .arg(&pem)
            .arg(&pem));
        assert!(v.contains(": OK"), "{v}");
        let text = ok(Command::new(&openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&pem));
        assert!(
            text.contains(&format!("O = J1CFRA, OU = Server, CN = {host}")),
            "{text}"
        );
        assert!(text.contains("L = Berlin"), "{text}");
        assert!(text.contains(want_ku), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(text.contains(want_san), "{text}");
    }
    // A file that the policy refuses is refused by the client before sending.
    let bad = corpus().join("generated/g05_openssl_ku_0xA0_no_dataEncipherment.pem");
    let out = run(&mut client.cmd(&[
        "submit",
        "--external",
        bad.to_str().unwrap(),
        "--common-name",
        "x.example",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dataEncipherment") && err.contains("ku.missing"),
        "{err}"
    );
    server.stop();
}
