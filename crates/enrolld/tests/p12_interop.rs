//! The operator credentials Enroll hands out as PKCS#12 import into the
//! tools people use: OpenSSL and Java's keytool read both the modern
//! (AES-256, HMAC-SHA256) and the legacy (3DES, SHA-1) files with the
//! one-time passphrase, find the key with its chain, and refuse a wrong
//! passphrase. (Browsers are covered by the Chromium tests.)
//!
//! Needs `openssl` and `keytool` on PATH; a missing tool fails the test.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::process::Command;

use kit::*;

#[test]
fn credentials_import_into_openssl_and_keytool() {
    let openssl = tool("openssl");
    let keytool = tool("keytool");
    let tmp = TempDir::new("p12");
    let data = tmp.path("data");
    init_service(&data, &["--key-type", "ecdsa-p256"]);
    ok(Command::new(enrolld_bin())
        .args([
            "org",
            "add",
            "--code",
            "J1CFRA",
            "--name",
            "La Poste",
            "--country",
            "FR",
            "--data",
        ])
        .arg(&data));
    let modern = tmp.path("alice.p12");
    let (pass_modern, _) = manager_add(&data, "alice", Some("J1CFRA"), &modern);
    let legacy = tmp.path("bob.p12");
    let (pass_legacy, _) = {
        let v = json(&ok(Command::new(enrolld_bin())
            .args([
                "manager",
                "add",
                "--name",
                "bob",
                "--central-admin",
                "--legacy",
                "--json",
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&legacy)));
        (
            v["passphrase"].as_str().unwrap().to_owned(),
            v["id"].as_i64().unwrap(),
        )
    };
    let admin = data.join("admin/admin.p12");
    let admin_pass = std::fs::read_to_string(data.join("admin/admin.p12.passphrase"))
        .unwrap()
        .trim()
        .to_owned();
    for (file, pass, cn) in [
        (&modern, &pass_modern, "alice"),
        (&legacy, &pass_legacy, "bob"),
        (&admin, &admin_pass, "admin"),
    ] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{} is readable by others", file.display());
        // OpenSSL: the key and three certificates, the leaf named for the operator.
        let out = ok(Command::new(&openssl)
            .args(["pkcs12", "-in"])
            .arg(file)
            .args(["-passin", &format!("pass:{pass}"), "-nodes"]));
        assert_eq!(
            out.matches("BEGIN CERTIFICATE").count(),
            3,
            "{cn}: leaf, issuing CA, root"
        );
        assert!(out.contains("PRIVATE KEY"), "{cn}: no key");
        assert!(
            out.contains(&format!("CN={cn}")) || out.contains(&format!("CN = {cn}")),
            "{cn}: {out}"
        );
        let wrong = run(Command::new(&openssl)
            .args(["pkcs12", "-in"])
            .arg(file)
            .args(["-passin", "pass:wrong", "-nokeys"]));
        assert!(
            !wrong.status.success(),
            "{cn}: a wrong passphrase was accepted"
        );
        // keytool: one private-key entry with its chain.
        let list = ok(Command::new(&keytool)
            .args(["-list", "-v", "-storetype", "PKCS12", "-keystore"])
            .arg(file)
            .args(["-storepass", pass]));
        assert!(list.contains("PrivateKeyEntry"), "{cn}: {list}");
        assert!(list.contains("Certificate chain length: 3"), "{cn}: {list}");
    }
}
