//! pkilint (Digicert's RFC 5280 / RFC 6960 linter, from PyPI) on what we
//! issue: a certificate of every profile, a CRL with a revoked entry, and
//! OCSP responses, for RSA and ECDSA CAs. Zero findings of ERROR or FATAL.
//! `.ci/run` installs pkilint; a missing linter fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::path::{Path, PathBuf};
use std::process::Command;

use kit::*;

fn corpus(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/csr/generated")
        .join(file)
}

/// Runs a pkilint command; returns its ERROR and FATAL findings.
fn lint(tool: &Path, args: &[&str], file: &Path) -> Vec<String> {
    let out = run(Command::new(tool)
        .arg("lint")
        .args(args)
        .args(["-s", "ERROR"])
        .arg(file));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Traceback"),
        "{} could not read {}: {text}",
        tool.display(),
        file.display()
    );
    text.lines()
        .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)"))
        .map(|l| format!("{}: {}", file.display(), l.trim()))
        .collect()
}

#[test]
fn everything_we_sign_is_lint_clean() {
    let lint_cert = tool("lint_pkix_cert");
    let lint_crl = tool("lint_crl");
    let lint_ocsp = tool("lint_ocsp_response");
    let openssl = tool("openssl");
    let curl = tool("curl");
    let mut findings = Vec::new();
    for key_type in ["rsa-2048", "ecdsa-p256"] {
        let tmp = TempDir::new(&format!("lint-{key_type}"));
        let data = tmp.path("data");
        let http_port = init_service(
            &data,
            &[
                "--key-type",
                key_type,
                "--hostname",
                "enroll.example",
                "--hostname",
                "127.0.0.1",
            ],
        );
        let http = format!("http://127.0.0.1:{http_port}");
        let d = |args: &[&str]| {
            let mut c = Command::new(enrolld_bin());
            c.args(args).arg("--data").arg(&data);
            c
        };
        let server = Server::start(&data);
        let url = format!("https://127.0.0.1:{}", server.port);
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
        let store = tmp.path("store");
        let client = Client {
            pkg: &pkg,
            store: &store,
        };
        // Own server (client certificate) and two external servers (RSA, EC).
        let own = client.submit(&["--common-name", "app.laposte.example"])["id"]
            .as_i64()
            .unwrap();
        let mut ids = vec![own];
        for (file, host) in [
            ("g01_openssl_rsa2048_server_ok.pem", "rsa.partner.example"),
            ("g10_openssl_ec_p384_ku_ds_only.pem", "ec.partner.example"),
        ] {
            let f = corpus(file);
            let sent = client.json(&[
                "submit",
                "--external",
                f.to_str().unwrap(),
                "--common-name",
                host,
            ]);
            ids.push(sent["id"].as_i64().unwrap());
        }
        for id in &ids {
            ok(&mut d(&["request", "approve", &id.to_string()]));
        }
        let got = client.json(&["get"]);
        let mut certs: Vec<PathBuf> = ids
            .iter()
            .map(|id| PathBuf::from(by_id(&got, *id)["certificate_path"].as_str().unwrap()))
            .collect();
        for f in [
            "ca/root.pem",
            "ca/issuing.pem",
            "tls/server.pem",
            "admin/admin.pem",
            "ocsp/ocsp.pem",
        ] {
            certs.push(data.join(f));
        }
        for (i, c) in certs.iter().enumerate() {
            // Files may hold a chain: lint the first certificate alone.
            let one = tmp.path(&format!("cert{i}.pem"));
            ok(Command::new(&openssl)
                .args(["x509", "-in"])
                .arg(c)
                .arg("-out")
                .arg(&one));
            findings.extend(lint(&lint_cert, &[], &one));
        }

        ok(&mut d(&[
            "request",
            "revoke",
            &ids[1].to_string(),
            "--reason",
            "keyCompromise",
        ]));
        let crl = tmp.path("issuing.crl");
        ok(Command::new(&curl)
            .args(["-sSf", "-o"])
            .arg(&crl)
            .arg(format!("{http}/crl/issuing.crl")));
        findings.extend(lint(&lint_crl, &["-t", "CRL", "-p", "PKIX"], &crl));

        let issuing = data.join("ca/issuing.pem");
        for (label, cert) in [("good", &certs[0]), ("revoked", &certs[1])] {
            let resp = tmp.path(&format!("{label}.ocsp"));
            ok(Command::new(&openssl)
                .args(["ocsp", "-issuer"])
                .arg(&issuing)
                .arg("-cert")
                .arg(cert)
                .args(["-url", &format!("{http}/ocsp"), "-noverify", "-respout"])
                .arg(&resp));
            findings.extend(lint(&lint_ocsp, &[], &resp));
        }
        server.stop();
    }
    assert!(
        findings.is_empty(),
        "pkilint findings:\n{}",
        findings.join("\n")
    );
}
