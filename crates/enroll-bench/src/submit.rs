//! Benchmark 5: the client's `enroll submit` (generate an RSA-2048 key,
//! write it owner-only, build the CSR, send it over HTTPS, record the
//! request) beside `openssl req -newkey rsa:2048` (generate the key, build
//! the CSR, write both; nothing sent), run alternately on the same machine.
//! RSA key generation time varies widely from key to key, so both are run
//! many times and compared by mean and median.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::e2e;
use crate::load::ms;
use crate::service::{Db, need, run_ok};

#[derive(Debug, Clone)]
pub struct SubmitRow {
    pub runs: usize,
    pub ours_mean: Duration,
    pub ours_median: Duration,
    pub openssl_mean: Duration,
    pub openssl_median: Duration,
    /// RSA-2048 key generation alone, in this process (aws-lc, as the
    /// client does it): what the rest of `enroll submit` adds is the
    /// difference.
    pub keygen_mean: Duration,
    pub keygen_median: Duration,
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    let mean = v.iter().sum::<Duration>() / u32::try_from(v.len().max(1)).unwrap_or(1);
    let median = v.get(v.len() / 2).copied().unwrap_or_default();
    (mean, median)
}

pub fn run(runs: usize) -> Result<SubmitRow> {
    need("openssl", "openssl")?;
    let (svc, _pkg) = e2e::prepared("submit", "rsa-2048", &Db::Sqlite)?;
    let client = svc.scratch.join("pkg-J1CFRA-Prod/enroll");
    let store = svc.scratch.join("store");
    let out = svc.scratch.join("openssl");
    std::fs::create_dir_all(&out)?;
    let (mut ours, mut theirs, mut keygen) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        enroll_pki::KeyType::Rsa2048.generate()?;
        keygen.push(t.elapsed());
        let t = Instant::now();
        run_ok(
            Command::new(&client)
                .env("ENROLL_STORE_DIR", &store)
                .args(["submit", "--locality", "Paris", "--state", "Ile-de-France"])
                .args([
                    "--email",
                    "it@laposte.example",
                    "--description",
                    "benchmark",
                ]),
        )?;
        ours.push(t.elapsed());
        let t = Instant::now();
        run_ok(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
                .arg("-keyout")
                .arg(out.join("key.pem"))
                .arg("-out")
                .arg(out.join("req.pem"))
                .args(["-subj", "/emailAddress=it@laposte.example/C=FR/ST=Ile-de-France/L=Paris/O=J1CFRA/OU=Workstation/CN=bench"]),
        )?;
        theirs.push(t.elapsed());
    }
    let (ours_mean, ours_median) = stats(ours);
    let (openssl_mean, openssl_median) = stats(theirs);
    let (keygen_mean, keygen_median) = stats(keygen);
    Ok(SubmitRow {
        keygen_mean,
        keygen_median,
        runs,
        ours_mean,
        ours_median,
        openssl_mean,
        openssl_median,
    })
}

pub fn print(r: &SubmitRow) {
    println!(
        "\n### 5. `enroll submit` beside `openssl req -newkey rsa:2048` ({} runs each, alternating)\n",
        r.runs
    );
    println!("| command | mean | median |");
    println!("|---|---:|---:|");
    println!(
        "| `enroll submit` (key, CSR, HTTPS submission) | {} | {} |",
        ms(r.ours_mean),
        ms(r.ours_median)
    );
    println!(
        "| `openssl req -new -newkey rsa:2048 -nodes` (key and CSR only) | {} | {} |",
        ms(r.openssl_mean),
        ms(r.openssl_median)
    );
    println!(
        "| RSA-2048 key generation alone (aws-lc, in process) | {} | {} |",
        ms(r.keygen_mean),
        ms(r.keygen_median)
    );
    let ratio = r.ours_mean.as_secs_f64() / r.openssl_mean.as_secs_f64().max(1e-9);
    println!(
        "| ratio of means | {:.2} | target ≤ 0.5: {} |",
        ratio,
        if ratio <= 0.5 { "met" } else { "**missed**" }
    );
}
