//! The client's command line as a user meets it: every command's help
//! carries its one-line description (the original's tooltip) and an
//! example, and usage errors exit 2 with a message.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::process::Command;

fn enroll() -> Command {
    Command::new(env!("CARGO_BIN_EXE_enroll"))
}

#[test]
fn every_command_has_a_description_and_an_example() {
    let cases = [
        ("info", "Shows the environment"),
        (
            "submit",
            "Submits the certificate request to the enrollment service",
        ),
        ("status", "Shows the status table"),
        ("get", "Gets certificates"),
        ("test", "Tests the enrollment"),
        ("subject-name", "Prints a request's certificate subject"),
    ];
    let top = enroll().arg("--help").output().expect("runs");
    let top = String::from_utf8_lossy(&top.stdout).into_owned();
    for (cmd, description) in cases {
        assert!(
            top.contains(description),
            "top-level help lacks {cmd}: {top}"
        );
        let out = enroll().args([cmd, "--help"]).output().expect("runs");
        assert!(out.status.success(), "{cmd} --help failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(description), "{cmd}: {text}");
        assert!(text.contains("Example:"), "{cmd} has no example: {text}");
        assert!(text.contains("--json"), "{cmd} has no --json: {text}");
    }
}

#[test]
fn a_missing_package_is_explained() {
    let dir = std::env::temp_dir().join(format!("enroll-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = enroll()
        .args(["--package"])
        .arg(&dir)
        .arg("info")
        .output()
        .expect("runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no client package"), "{err}");
    assert!(err.contains("--package"), "{err}");
}

#[test]
fn a_bad_key_length_is_a_usage_error() {
    let out = enroll()
        .args([
            "submit",
            "--locality",
            "L",
            "--state",
            "S",
            "--email",
            "a@b.example",
            "--key-length",
            "1024",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2048"));
}
