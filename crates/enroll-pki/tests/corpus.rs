//! The CSR corpus (`testdata/csr/`) through the intake function: every
//! file gets the outcome `expected.tsv` gives it. The same corpus goes
//! through the real server in `enrolld`'s tests.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/csr")
}

#[test]
fn every_corpus_file_gets_its_expected_outcome() {
    let expected = std::fs::read_to_string(corpus().join("expected.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for line in expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("file\t"))
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, verdict, codes) = (cols[0], cols[1], cols.get(2).copied().unwrap_or(""));
        let bytes = std::fs::read(corpus().join(file)).unwrap();
        count += 1;
        let got = enroll_pki::intake::check_external(&bytes);
        match (verdict, &got) {
            ("accept", Ok(csr)) => {
                for field in codes.split(',').filter(|f| !f.is_empty()) {
                    let v = match field {
                        "L" => &csr.locality,
                        "ST" => &csr.state,
                        "E" => &csr.email,
                        other => panic!("unknown field {other}"),
                    };
                    if v.is_none() {
                        failures.push(format!("{file}: accepted but {field} not read"));
                    }
                }
            }
            ("reject", Err(e)) => {
                let want: Vec<&str> = codes.split('|').collect();
                if !e.0.iter().any(|p| want.contains(&p.code)) {
                    failures.push(format!("{file}: want one of {want:?}, got {:?}", e.0));
                }
            }
            (v, got) => failures.push(format!("{file}: want {v}, got {got:?}")),
        }
    }
    assert_eq!(count, 97, "the corpus has 97 files");
    // An Ed25519 key is refused for its type, not again for the signature
    // algorithm that comes with it.
    let ed = std::fs::read(corpus().join("public/cfssl__ed25519.csr")).unwrap();
    let e = enroll_pki::intake::check_external(&ed).unwrap_err();
    assert!(
        e.0.iter().any(|p| p.code == "key.unsupported-type"),
        "{e:?}"
    );
    assert!(!e.0.iter().any(|p| p.code == "csr.bad-signature"), "{e:?}");
    assert!(
        failures.is_empty(),
        "{} of {count} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
