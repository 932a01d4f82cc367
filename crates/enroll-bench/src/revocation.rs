//! CRL building and OCSP throughput (the revocation issue's benchmarks).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_lc_rs::rand::SystemRandom;
use base64::Engine as _;
use enroll_core::clock::FixedClock;
use enroll_core::{RequestId, UnixTime};
use enroll_pki::revocation::{Reason, Revoked, build_crl};
use enroll_pki::{CaMaterial, IssuingCa, KeyType, Serial};
use enroll_ra::{IssuePolicy, Ra};
use enroll_store::{CertRecord, SqlStore};

use crate::service::{Kill, Scratch, free_port, need, run_ok};

const NOW: UnixTime = UnixTime(1_800_000_000);

fn ca(kt: KeyType) -> Result<IssuingCa> {
    let m = CaMaterial::create(kt, "Bench", UnixTime(NOW.0 - 86_400), &SystemRandom::new())?;
    let key = enroll_pki::keys::load_key_pem(&m.issuing_key_pem)?;
    Ok(IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key)?)
}

pub fn crl(counts: &[usize]) -> Result<()> {
    let rng = SystemRandom::new();
    println!("\n### CRL build time\n");
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
    let dir = Scratch::new("crl")?;
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
    drop(dir);
    out
}

pub fn ocsp(connections: usize, seconds: u32) -> Result<()> {
    need("wrk", "wrk")?;
    need("openssl", "openssl")?;
    let mut svc = crate::service::Service::init("ocsp", "rsa-2048", &crate::service::Db::Sqlite)?;
    svc.start()?;
    let (dir, data, http) = (svc.scratch.0.clone(), svc.data.clone(), svc.http);
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
    // Each responder's answer is checked once before loading it.
    let good = |url: &str, who: &str| -> Result<()> {
        let answer = run_ok(
            Command::new("openssl")
                .args(["ocsp", "-no_nonce", "-issuer"])
                .arg(&issuing)
                .arg("-cert")
                .arg(&leaf)
                .args(["-url", url, "-noverify", "-timeout", "5"]),
        )?;
        anyhow::ensure!(
            answer.contains(": good"),
            "{who}'s OCSP answer is wrong: {answer}"
        );
        Ok(())
    };
    good(&format!("http://127.0.0.1:{http}/ocsp"), "enrolld")?;

    let ours = ocsp_load(
        &format!("http://127.0.0.1:{http}/ocsp/{path}"),
        connections,
        seconds,
    )?;
    svc.stop();

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
            // `-multi` forks responders that spin at full CPU and answer
            // nothing here (OpenSSL 3.0.19): one process, as documented.
            .args(["-nmin", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // Not `wait_port`: a bare connect and close leaves `openssl ocsp`
    // waiting on that connection. Ask until it answers.
    let url = format!("http://127.0.0.1:{port}/");
    let mut answered = good(&url, "openssl");
    for _ in 0..50 {
        if answered.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        answered = good(&url, "openssl");
    }
    answered?;
    let theirs = ocsp_load(
        &format!("http://127.0.0.1:{port}/{path}"),
        connections,
        seconds,
    )?;
    println!(
        "\n### OCSP responses per second (GET, {connections} workers of the benchmark's load generator)\n"
    );
    println!("| responder | connections | responses/s | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| enrolld (RSA-2048 signer, SQLite) | {connections} | {:.0} | {} |",
        ours.per_second(),
        crate::load::ms(ours.p99())
    );
    println!(
        "| `openssl ocsp` (same signer, index file) | {connections} | {:.0} | {} |",
        theirs.per_second(),
        crate::load::ms(theirs.p99())
    );
    Ok(())
}

/// GETs of one OCSP request for `seconds`. Not wrk: `openssl ocsp`
/// answers HTTP/1.0 without a length and holds the connection, which wrk
/// waits on for ever; this generator reads each answer to its end. Both
/// responders get `Connection: close` (a connection per answer), since
/// `openssl ocsp` keeps none open.
fn ocsp_load(url: &str, workers: usize, seconds: u32) -> Result<crate::load::Outcome> {
    let out = crate::load::run(
        workers,
        Duration::from_secs(1),
        Duration::from_secs(u64::from(seconds)),
        |_| Ok(crate::service::plain_agent()),
        |agent| {
            let mut r = agent.get(url).header("Connection", "close").call()?;
            let body = r.body_mut().read_to_vec()?;
            anyhow::ensure!(
                r.status().as_u16() == 200 && body.first() == Some(&0x30),
                "HTTP {} without an OCSP response",
                r.status()
            );
            Ok(())
        },
    )?;
    out.require_clean(url)?;
    Ok(out)
}
