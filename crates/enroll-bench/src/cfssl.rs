//! Benchmark 6: a signing service side by side with cfssl. `cfssl serve`
//! (Debian's golang-cfssl) signs CSRs on loopback with a CA of the same key
//! type at `/api/v1/cfssl/sign`; Enroll issues certificates end to end over
//! HTTPS (submit, approve, fetch, acknowledge: one certificate, stored
//! durably before it is returned). The same load generator drives both, at
//! the same connection counts, in the same run. `wrk` loads cfssl once more
//! as a check that the generator is not what limits it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_lc_rs::rand::SystemRandom;
use enroll_core::UnixTime;
use enroll_pki::{CaMaterial, KeyType};

use crate::e2e;
use crate::load::{self, Outcome};
use crate::service::{Db, Kill, Scratch, free_port, need, plain_agent, wait_port};

#[derive(Debug, Clone)]
pub struct SideBySide {
    pub ca_key: &'static str,
    pub connections: usize,
    pub cfssl: Outcome,
    pub cfssl_wrk: Option<f64>,
    pub enroll: Outcome,
}

const CONFIG: &str = r#"{"signing":{"default":{"expiry":"8760h","usages":["digital signature","key encipherment","data encipherment","client auth"]}}}"#;

/// `cfssl serve` with a fresh CA of `kt`, on a free port.
fn start_cfssl(dir: &Path, kt: KeyType) -> Result<(Kill, u16)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let m = CaMaterial::create(
        kt,
        "cfssl",
        UnixTime(i64::try_from(now)? - 3600),
        &SystemRandom::new(),
    )?;
    std::fs::write(dir.join("ca.pem"), &m.issuing_cert_pem)?;
    std::fs::write(dir.join("ca.key"), &m.issuing_key_pem)?;
    std::fs::write(dir.join("config.json"), CONFIG)?;
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("cfssl.log"))?;
    let child = Command::new("cfssl")
        .current_dir(dir)
        .args(["serve", "-address", "127.0.0.1", "-port", &port.to_string()])
        .args([
            "-ca",
            "ca.pem",
            "-ca-key",
            "ca.key",
            "-config",
            "config.json",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start cfssl")?;
    let k = Kill(child);
    wait_port(port)?;
    Ok((k, port))
}

/// The sign request body: the same kind of CSR the clients send.
fn sign_body(bodies: &[enroll_proto::SubmitRequest]) -> Result<Vec<u8>> {
    let first = bodies.first().context("no request body")?;
    Ok(serde_json::to_vec(
        &serde_json::json!({ "certificate_request": first.csr_pem }),
    )?)
}

fn cfssl_step(agent: &ureq::Agent, url: &str, body: &[u8]) -> Result<()> {
    let mut r = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)?;
    let text = r.body_mut().read_to_string()?;
    if r.status().as_u16() != 200 || !text.contains("BEGIN CERTIFICATE") {
        bail!(
            "cfssl sign: HTTP {}: {}",
            r.status(),
            text.get(..300).unwrap_or(&text)
        );
    }
    Ok(())
}

/// wrk against cfssl's sign endpoint: requests per second.
fn wrk_cfssl(dir: &Path, url: &str, body: &[u8], connections: usize, seconds: u32) -> Result<f64> {
    let script = dir.join("sign.lua");
    let body = String::from_utf8(body.to_vec())?;
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = {}\n",
            serde_json::to_string(&body)?
        ),
    )?;
    let (rps, _, errors) = crate::wrk::run(url, Some(&script), connections, seconds)?;
    if let Some(e) = errors {
        bail!("wrk against cfssl: {e}");
    }
    Ok(rps)
}

pub fn run(
    key_types: &[&'static str],
    connections: &[usize],
    warmup: Duration,
    measure: Duration,
) -> Result<Vec<SideBySide>> {
    need("cfssl", "golang-cfssl")?;
    need("wrk", "wrk")?;
    let max = connections.iter().copied().max().unwrap_or(1);
    let bodies = e2e::submit_bodies(max)?;
    let sign = sign_body(&bodies)?;
    let mut rows = Vec::new();
    for kt in key_types {
        let key = if kt.starts_with("ecdsa") {
            KeyType::EcdsaP256
        } else {
            KeyType::Rsa2048
        };
        let scratch = Scratch::new("cfssl")?;
        let (cfssl, port) = start_cfssl(&scratch.0, key)?;
        let url = format!("http://127.0.0.1:{port}/api/v1/cfssl/sign");
        let (svc, pkg) = e2e::prepared("side", kt, &Db::Sqlite)?;
        for &c in connections {
            let theirs = load::run(
                c,
                warmup,
                measure,
                |_| Ok(plain_agent()),
                |a| cfssl_step(a, &url, &sign),
            )?;
            theirs.require_clean("cfssl")?;
            let wrk = wrk_cfssl(&scratch.0, &url, &sign, c, measure.as_secs().max(1) as u32)?;
            let ours = e2e::load(&svc, &pkg, &bodies, c, warmup, measure)?;
            rows.push(SideBySide {
                ca_key: e2e::key_label(kt),
                connections: c,
                cfssl: theirs,
                cfssl_wrk: Some(wrk),
                enroll: ours,
            });
        }
        e2e::verify_consistent(&svc)?;
        drop(cfssl);
    }
    Ok(rows)
}

pub fn print(rows: &[SideBySide]) {
    println!(
        "\n### 6. Side by side with cfssl (same load generator; Enroll end to end over HTTPS on SQLite, cfssl `sign` over plain HTTP)\n"
    );
    println!(
        "| CA key | connections | cfssl signed/s | cfssl p99 | (wrk: cfssl req/s) | Enroll certificates/s | Enroll p99 | ratio | target ≥ 2×, p99 ≤ cfssl's |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        let ratio = r.enroll.per_second() / r.cfssl.per_second().max(1e-9);
        let met = ratio >= 2.0 && r.enroll.p99() <= r.cfssl.p99();
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.0} | {} | {:.2}× | {} |",
            r.ca_key,
            r.connections,
            r.cfssl.per_second(),
            load::ms(r.cfssl.p99()),
            r.cfssl_wrk.map(|v| format!("{v:.0}")).unwrap_or_default(),
            r.enroll.per_second(),
            load::ms(r.enroll.p99()),
            ratio,
            if met { "met" } else { "**missed**" }
        );
    }
}
