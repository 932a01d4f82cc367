//! `enroll-bench`: measurements for the README's performance section.
//!
//! - `crl`: time to build and sign a CRL with N revoked entries, in the
//!   PKI layer alone and through the registration authority on a SQLite
//!   store holding N revoked certificates.
//! - `ocsp`: OCSP responses per second from `enrolld` and from
//!   `openssl ocsp` as a responder, same request, same load generator
//!   (`wrk`), same machine.
//!
//! Build in release mode; `enrolld` must sit beside this binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_lc_rs::rand::SystemRandom;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use enroll_core::clock::FixedClock;
use enroll_core::{RequestId, UnixTime};
use enroll_pki::revocation::{Reason, Revoked, build_crl};
use enroll_pki::{CaMaterial, IssuingCa, KeyType, Serial};
use enroll_ra::{IssuePolicy, Ra};
use enroll_store::{CertRecord, SqlStore};

#[derive(Parser, Debug)]
#[command(
    name = "enroll-bench",
    about = "Enroll benchmarks (release build, quiet machine)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// CRL build time with N revoked entries.
    Crl {
        /// Entry counts, comma-separated.
        #[arg(long, default_value = "100000,1000000", value_delimiter = ',')]
        entries: Vec<usize>,
    },
    /// OCSP responses per second, enrolld beside `openssl ocsp`.
    Ocsp {
        #[arg(long, default_value_t = 16)]
        connections: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("machine: {cores} cores");
    match cli.command {
        Cmd::Crl { entries } => crl(&entries),
        Cmd::Ocsp {
            connections,
            seconds,
        } => ocsp(connections, seconds),
    }
}

const NOW: UnixTime = UnixTime(1_800_000_000);

fn ca(kt: KeyType) -> Result<IssuingCa> {
    let m = CaMaterial::create(kt, "Bench", UnixTime(NOW.0 - 86_400), &SystemRandom::new())?;
    let key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem)?;
    Ok(IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key)?)
}

fn crl(counts: &[usize]) -> Result<()> {
    let rng = SystemRandom::new();
    println!(
        "| CA key | revoked entries | build + sign (PKI) | through the RA on SQLite | CRL size |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, kt) in [
        ("RSA-2048", KeyType::Rsa2048),
        ("ECDSA P-256", KeyType::EcdsaP256),
    ] {
        let ca = Arc::new(ca(kt)?);
        for &n in counts {
            let entries: Vec<Revoked> = (0..n)
                .map(|i| {
                    Ok(Revoked {
                        serial: Serial::random(&rng)?,
                        at: UnixTime(NOW.0 - i64::try_from(i % 86_400).unwrap_or(0)),
                        reason: if i % 3 == 0 {
                            Reason::KeyCompromise
                        } else {
                            Reason::Superseded
                        },
                    })
                })
                .collect::<Result<_, enroll_pki::PkiError>>()?;
            let t = Instant::now();
            let der = build_crl(&ca, 1, NOW, UnixTime(NOW.0 + 86_400), &entries)?;
            let pki = t.elapsed();
            let ra_time = crl_through_ra(ca.clone(), &entries)?;
            println!(
                "| {name} | {n} | {:.2} s | {:.2} s | {:.1} MB |",
                pki.as_secs_f64(),
                ra_time.as_secs_f64(),
                der.len() as f64 / 1e6
            );
        }
    }
    Ok(())
}

/// Stores `entries` as revoked certificates in a fresh SQLite file and
/// times `Ra::publish_crl` (query, build, sign, store).
fn crl_through_ra(ca: Arc<IssuingCa>, entries: &[Revoked]) -> Result<Duration> {
    let dir = std::env::temp_dir().join(format!("enroll-bench-crl-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let out = rt.block_on(async {
        let url = format!("sqlite://{}", dir.join("bench.db").display());
        let store = SqlStore::connect(&url).await?;
        let rows: Vec<CertRecord> = entries
            .iter()
            .map(|e| CertRecord {
                serial: e.serial.to_hex(),
                request_id: None::<RequestId>,
                der: vec![0x30, 0x00],
                not_before: UnixTime(NOW.0 - 86_400),
                not_after: UnixTime(NOW.0 + 365 * 86_400),
                revoked_at: Some(e.at),
                revocation_reason: Some(e.reason.name().to_owned()),
            })
            .collect();
        store.bulk_insert_certificates(&rows).await?;
        let ra = Ra::new(store, ca, FixedClock(NOW), IssuePolicy::default());
        let t = Instant::now();
        let crl = ra.publish_crl().await?;
        let took = t.elapsed();
        anyhow::ensure!(crl.number == 1, "unexpected CRL number");
        ra.store().close().await;
        Ok::<_, anyhow::Error>(took)
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_port(port: u16) -> Result<()> {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on port {port}")
}

/// Runs wrk; returns (requests per second, p99 latency as wrk prints it).
fn wrk(url: &str, connections: u32, seconds: u32) -> Result<(f64, String)> {
    let out = run_ok(Command::new("wrk").args([
        "-t",
        "2",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
        url,
    ]))?;
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("wrk printed no Requests/sec")?;
    let p99 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let errors = out
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"));
    if let Some(e) = errors {
        eprintln!("wrk: {}", e.trim());
    }
    Ok((rps, p99))
}

fn bin_beside(name: &str) -> Result<PathBuf> {
    let p = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        p.is_file(),
        "{} is missing: build it (cargo build --release -p enrolld)",
        p.display()
    );
    Ok(p)
}

fn ocsp(connections: u32, seconds: u32) -> Result<()> {
    for tool in ["wrk", "openssl"] {
        run_ok(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
            .with_context(|| format!("{tool} is needed (apt-get install {tool})"))?;
    }
    let dir = std::env::temp_dir().join(format!("enroll-bench-ocsp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let enrolld = bin_beside("enrolld")?;
    let data = dir.join("data");
    let http = free_port()?;
    run_ok(
        Command::new(&enrolld)
            .args(["init", "--data"])
            .arg(&data)
            .args([
                "--http-listen",
                &format!("127.0.0.1:{http}"),
                "--public-http-url",
                &format!("http://127.0.0.1:{http}"),
            ]),
    )?;
    let https = free_port()?;
    let server = Kill(
        Command::new(&enrolld)
            .args(["serve", "--data"])
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{https}")])
            .env("ENROLLD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_port(http)?;
    // The service's own TLS certificate is a real issued certificate: ask
    // about it (status good), as a relying party would.
    let issuing = data.join("ca/issuing.pem");
    let leaf = dir.join("leaf.pem");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-in"])
            .arg(data.join("tls/server.pem"))
            .arg("-out")
            .arg(&leaf),
    )?;
    let req = dir.join("req.der");
    run_ok(
        Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&leaf)
            .arg("-reqout")
            .arg(&req),
    )?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req)?);
    let path = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    // Check the answer once before loading.
    let check = run_ok(
        Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&leaf)
            .args([
                "-url",
                &format!("http://127.0.0.1:{http}/ocsp"),
                "-noverify",
            ]),
    )?;
    anyhow::ensure!(
        check.contains(": good"),
        "enrolld's OCSP answer is wrong: {check}"
    );
    let ours = wrk(
        &format!("http://127.0.0.1:{http}/ocsp/{path}"),
        connections,
        seconds,
    )?;
    drop(server);

    // OpenSSL's responder: same CA, same delegated signer, an index with
    // the same certificate.
    let serial = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(&leaf),
    )?;
    let serial = serial.trim().trim_start_matches("serial=").to_owned();
    let subject = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-nameopt", "compat", "-in"])
            .arg(&leaf),
    )?;
    let subject = subject.trim().trim_start_matches("subject=").to_owned();
    let index = dir.join("index.txt");
    std::fs::write(
        &index,
        format!("V\t301231000000Z\t\t{serial}\tunknown\t{subject}\n"),
    )?;
    let port = free_port()?;
    let _openssl = Kill(
        Command::new("openssl")
            .args(["ocsp", "-port", &port.to_string(), "-index"])
            .arg(&index)
            .arg("-CA")
            .arg(&issuing)
            .arg("-rsigner")
            .arg(data.join("ocsp/ocsp.pem"))
            .arg("-rkey")
            .arg(data.join("ocsp/ocsp.key"))
            .args(["-nmin", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_port(port)?;
    let check = run_ok(
        Command::new("openssl")
            .args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&leaf)
            .args(["-url", &format!("http://127.0.0.1:{port}/"), "-noverify"]),
    )?;
    anyhow::ensure!(
        check.contains(": good"),
        "openssl's OCSP answer is wrong: {check}"
    );
    let theirs = wrk(
        &format!("http://127.0.0.1:{port}/{path}"),
        connections,
        seconds,
    )?;
    println!("| responder | connections | responses/s | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| enrolld (RSA-2048 signer, SQLite) | {connections} | {:.0} | {} |",
        ours.0, ours.1
    );
    println!(
        "| openssl ocsp (same signer, index file) | {connections} | {:.0} | {} |",
        theirs.0, theirs.1
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Path::new(&dir);
    Ok(())
}
