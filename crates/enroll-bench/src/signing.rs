//! Benchmark 1: CA signing. Whole issuances (build the certificate from
//! the profile, lint it, sign it) per second on every core, beside
//! `openssl speed` signing the same algorithm on the same cores: the ratio
//! says what building and linting cost on top of the signature.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_lc_rs::rand::SystemRandom;
use enroll_core::UnixTime;
use enroll_pki::profile::DnAttr;
use enroll_pki::{
    CaMaterial, IssueParams, IssuingCa, KeyInfo, KeyType, Profile, RevocationUrls, Serial,
};

use crate::service::run_ok;

const NOW: UnixTime = UnixTime(1_800_000_000);

/// One CA key type's figures.
#[derive(Debug, Clone)]
pub struct SigningRow {
    pub ca_key: &'static str,
    pub ours: f64,
    pub openssl: f64,
}

fn issuing_ca(kt: KeyType) -> Result<IssuingCa> {
    let m = CaMaterial::create(kt, "Bench", UnixTime(NOW.0 - 86_400), &SystemRandom::new())?;
    let key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem)?;
    Ok(IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key)?)
}

/// A workstation's subject, as the policy builds it, in E, C, ST, L, O,
/// OU, CN order.
pub fn workstation_subject(cn: &str) -> Vec<(DnAttr, String)> {
    vec![
        (DnAttr::Email, "it@laposte.example".into()),
        (DnAttr::Country, "FR".into()),
        (DnAttr::State, "Ile-de-France".into()),
        (DnAttr::Locality, "Paris".into()),
        (DnAttr::Organization, "J1CFRA".into()),
        (DnAttr::OrganizationUnit, "Workstation".into()),
        (DnAttr::CommonName, cn.into()),
    ]
}

/// A workstation certificate as approval issues it (subject, profile,
/// revocation URLs), for an RSA-2048 machine key.
fn workstation_params(spki_der: &[u8], serial: Serial) -> IssueParams {
    IssueParams {
        profile: Profile::ClientAuth,
        subject: workstation_subject(
            "40B0343FA07DBFEBFBFF000906E99D09A4C85CB1415B9897660CBA152853",
        ),
        spki_der: spki_der.to_vec(),
        key: KeyInfo::Rsa { bits: 2048 },
        serial,
        not_before: NOW,
        not_after: NOW.plus_days(365),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        revocation: Some(RevocationUrls {
            crl: "http://enroll.example/crl/issuing.crl".into(),
            ocsp: "http://enroll.example/ocsp".into(),
            ca_issuers: "http://enroll.example/ca/issuing.crt".into(),
        }),
    }
}

/// Issuances per second with `threads` threads for `seconds`.
pub fn issue_rate(kt: KeyType, threads: usize, seconds: f64) -> Result<f64> {
    let ca = issuing_ca(kt)?;
    let subject_key = KeyType::Rsa2048.generate()?;
    let spki = enroll_pki::keys::spki_der(&subject_key);
    let rng = SystemRandom::new();
    // Warm up, and prove the certificate is whole before timing it.
    let first = ca.issue(workstation_params(&spki, Serial::random(&rng)?))?;
    anyhow::ensure!(
        first.der.len() > 500,
        "the benchmark certificate is too small"
    );
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let (ca, spki, rng, done) = (&ca, &spki, &rng, &done);
            handles.push(s.spawn(move || -> Result<()> {
                let mut n = 0;
                while Instant::now() < deadline {
                    ca.issue(workstation_params(spki, Serial::random(rng)?))?;
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Microseconds per issuance stage on one thread: building the
/// certificate (rcgen), the pre-issuance lint (x509-parser and our
/// checks), the signature alone, and the whole issuance.
#[derive(Debug, Clone)]
pub struct Breakdown {
    pub ca_key: &'static str,
    pub build: f64,
    pub lint: f64,
    pub sign: f64,
    pub issue: f64,
}

fn micros_per<F: FnMut() -> Result<()>>(iterations: u32, mut f: F) -> Result<f64> {
    f()?;
    let t = Instant::now();
    for _ in 0..iterations {
        f()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / f64::from(iterations))
}

pub fn breakdown(kt: KeyType, ca_key: &'static str) -> Result<Breakdown> {
    let m = CaMaterial::create(kt, "Bench", UnixTime(NOW.0 - 86_400), &SystemRandom::new())?;
    let key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem)?;
    let sign_key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem)?;
    let ca = IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key)?;
    let subject_key = KeyType::Rsa2048.generate()?;
    let spki = enroll_pki::keys::spki_der(&subject_key);
    let rng = SystemRandom::new();
    let n = if kt == KeyType::Rsa2048 {
        2_000
    } else {
        20_000
    };
    let params = workstation_params(&spki, Serial::random(&rng)?);
    let copy = ca.preview(&params)?.der;
    let issuer = enroll_pki::lint::IssuerFacts::from_der(&ca.cert_der());
    let preview = micros_per(n, || {
        ca.preview(&params)?;
        Ok(())
    })?;
    let lint = micros_per(n, || {
        enroll_pki::lint::lint(
            &copy,
            enroll_pki::lint::Expectations {
                profile: Profile::ClientAuth,
                issuer: issuer.as_ref(),
                revocation: true,
            },
        );
        Ok(())
    })?;
    let tbs = copy
        .get(4..copy.len().saturating_sub(20))
        .unwrap_or(&copy)
        .to_vec();
    let sign = micros_per(n, || {
        rcgen::SigningKey::sign(&sign_key, &tbs)?;
        Ok(())
    })?;
    let issue = micros_per(n, || {
        ca.issue(workstation_params(&spki, Serial::random(&rng)?))?;
        Ok(())
    })?;
    Ok(Breakdown {
        ca_key,
        build: preview - lint,
        lint,
        sign,
        issue,
    })
}

/// `openssl speed -multi N` signatures per second for one algorithm.
pub fn openssl_sign_rate(alg: &str, threads: usize, seconds: u32) -> Result<f64> {
    let out = run_ok(Command::new("openssl").args([
        "speed",
        "-seconds",
        &seconds.to_string(),
        "-multi",
        &threads.to_string(),
        alg,
    ]))?;
    // The summary line: "rsa 2048 bits 0.000283s 0.000017s   3532.7  59381.0"
    // or " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  53862.0  17038.0";
    // sign/s is the second number from the end.
    let marker = if alg.starts_with("rsa") {
        "rsa 2048 bits"
    } else {
        "ecdsa (nistp256)"
    };
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains(marker) && l.trim_end().ends_with(|c: char| c.is_ascii_digit()))
        .with_context(|| format!("openssl speed printed no {marker} line:\n{out}"))?;
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    nums.len()
        .checked_sub(2)
        .and_then(|i| nums.get(i))
        .copied()
        .context("openssl speed's line has no sign/s figure")
}

pub fn run(threads: usize, seconds: u32) -> Result<(Vec<SigningRow>, Vec<Breakdown>)> {
    let mut rows = Vec::new();
    let mut parts = Vec::new();
    for (name, kt, alg) in [
        ("RSA-2048", KeyType::Rsa2048, "rsa2048"),
        ("ECDSA P-256", KeyType::EcdsaP256, "ecdsap256"),
    ] {
        let ours = issue_rate(kt, threads, f64::from(seconds))?;
        let openssl = openssl_sign_rate(alg, threads, seconds)?;
        parts.push(breakdown(kt, name)?);
        rows.push(SigningRow {
            ca_key: name,
            ours,
            openssl,
        });
    }
    Ok((rows, parts))
}

pub fn print_breakdown(rows: &[Breakdown]) {
    println!("\nWhere an issuance's time goes (one thread, microseconds):\n");
    println!("| CA key | build (rcgen) | lint | signature | whole issuance |");
    println!("|---|---:|---:|---:|---:|");
    for b in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            b.ca_key, b.build, b.lint, b.sign, b.issue
        );
    }
}

pub fn print(rows: &[SigningRow], threads: usize) {
    println!("\n### 1. CA signing ({threads} threads)\n");
    println!(
        "| CA key | Enroll issuances/s (build + lint + sign) | `openssl speed` signatures/s | ratio | target |"
    );
    println!("|---|---:|---:|---:|---|");
    for r in rows {
        let ratio = r.ours / r.openssl.max(1e-9);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} % | ≥ 90 % {} |",
            r.ca_key,
            r.ours,
            r.openssl,
            ratio * 100.0,
            if ratio >= 0.9 { "met" } else { "**missed**" }
        );
    }
}
