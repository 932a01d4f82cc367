//! Benchmark 2: certificates end to end over HTTPS. One step is what a
//! machine and its approver do for one certificate: the client submits
//! (`POST /api/v1/requests`), the central administrator approves in the
//! web application (`POST /requests/{id}/approve`, signed in by
//! certificate, with the form token), the client fetches the certificate
//! (`GET /api/v1/requests/{id}`) and acknowledges its installation
//! (`POST /api/v1/requests/{id}/installed`), as `enroll get` does. Every
//! answer is checked; every certificate is committed before it is returned.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use enroll_pki::{KeyType, Profile};
use enroll_proto as proto;

use crate::load::{self, Outcome};
use crate::service::{Db, PackageInfo, Service};

/// One request per worker: its own RSA-2048 key and CSR. Each step
/// submits it under a common name of its own (the service certifies the
/// request's key with the subject from validated fields, never the CSR's),
/// so every certificate is for a distinct machine and workers never cancel
/// each other's requests.
pub fn submit_bodies(n: usize) -> Result<Vec<proto::SubmitRequest>> {
    (0..n)
        .map(|i| {
            let cn = machine(i, 0);
            let key = KeyType::Rsa2048.generate()?;
            let subject = crate::signing::workstation_subject(&cn);
            let csr_pem = enroll_pki::csr::build_request(&subject, Profile::ClientAuth, &key)?;
            Ok(proto::SubmitRequest {
                csr_pem,
                key_length: Some(2048),
                subject: proto::SubjectInput {
                    common_name: cn,
                    email: Some("it@laposte.example".into()),
                    locality: Some("Paris".into()),
                    state: Some("Ile-de-France".into()),
                },
                details: proto::Details {
                    fqdn: Some(format!("ws{i}.laposte.example")),
                    mac: Some("40:B0:34:3F:A0:7D".into()),
                    requester: Some("bench".into()),
                    os_version: Some("Debian 12".into()),
                    os_type: Some("64-bit".into()),
                    description: Some("benchmark".into()),
                    ..proto::Details::default()
                },
            })
        })
        .collect()
}

/// A hardware identity (60 hex digits) for worker `w`'s `n`th machine.
pub fn machine(w: usize, n: u64) -> String {
    format!(
        "{:012X}BFEBFBFF000906E9{:016X}{:016X}",
        0x40B0_343F_A000u64 + w as u64,
        std::process::id(),
        n
    )
}

/// One worker's connection and request.
pub struct Flow {
    agent: ureq::Agent,
    base: String,
    bearer: String,
    form: String,
    worker: usize,
    body: proto::SubmitRequest,
    made: u64,
    /// The ids of the certificates this worker got.
    pub ids: Vec<i64>,
}

impl Flow {
    pub fn new(
        svc: &Service,
        pkg: &PackageInfo,
        token: &str,
        worker: usize,
        body: proto::SubmitRequest,
    ) -> Result<Flow> {
        Ok(Flow {
            agent: svc.admin_agent()?,
            base: svc.base(),
            bearer: format!("Bearer {}", pkg.credential),
            form: format!("csrf={token}"),
            worker,
            body,
            made: 0,
            ids: Vec::new(),
        })
    }

    /// Submit, approve, fetch, acknowledge: one certificate.
    pub fn step(&mut self) -> Result<()> {
        self.made += 1;
        self.body.subject.common_name = machine(self.worker, self.made);
        let json = serde_json::to_vec(&self.body)?;
        let mut r = self
            .agent
            .post(format!("{}/api/v1/requests", self.base))
            .header("Authorization", &self.bearer)
            .header("Content-Type", "application/json")
            .send(&json[..])?;
        let text = r.body_mut().read_to_string()?;
        if r.status().as_u16() != 201 {
            bail!("submit: HTTP {}: {text}", r.status());
        }
        let id = serde_json::from_str::<proto::SubmitResponse>(&text)?.id;

        let r = self
            .agent
            .post(format!("{}/requests/{id}/approve", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", &self.base)
            .send(self.form.as_bytes())?;
        if r.status().as_u16() != 303 {
            let status = r.status();
            let text = r.into_body().read_to_string().unwrap_or_default();
            bail!(
                "approve: HTTP {status}: {}",
                text.get(..400).unwrap_or(&text)
            );
        }

        let mut r = self
            .agent
            .get(format!("{}/api/v1/requests/{id}", self.base))
            .header("Authorization", &self.bearer)
            .call()?;
        let text = r.body_mut().read_to_string()?;
        let state: proto::RequestState =
            serde_json::from_str(&text).with_context(|| format!("fetch: {text}"))?;
        if state.status != "Approved" || state.certificate_pem.is_none() {
            bail!(
                "fetch: request {id} is {} without a certificate",
                state.status
            );
        }

        let mut r = self
            .agent
            .post(format!("{}/api/v1/requests/{id}/installed", self.base))
            .header("Authorization", &self.bearer)
            .send_empty()?;
        let text = r.body_mut().read_to_string()?;
        let state: proto::RequestState =
            serde_json::from_str(&text).with_context(|| format!("installed: {text}"))?;
        if state.status != "Installed" {
            bail!("installed: request {id} is {}", state.status);
        }
        self.ids.push(id);
        Ok(())
    }
}

/// A service ready for the flow: organization, package, started.
pub fn prepared(tag: &str, key_type: &str, db: &Db) -> Result<(Service, PackageInfo)> {
    let mut svc = Service::init(tag, key_type, db)?;
    let pkg = svc.org_and_package("J1CFRA", "Prod", &[])?;
    svc.start()?;
    Ok((svc, pkg))
}

/// Runs the flow with `connections` workers.
pub fn load(
    svc: &Service,
    pkg: &PackageInfo,
    bodies: &[proto::SubmitRequest],
    connections: usize,
    warmup: Duration,
    measure: Duration,
) -> Result<Outcome> {
    let admin = svc.admin_agent()?;
    let token = svc.admin_form_token(&admin)?;
    let out = load::run(
        connections,
        warmup,
        measure,
        |w| {
            let body = bodies
                .get(w)
                .cloned()
                .context("fewer request bodies than connections")?;
            Flow::new(svc, pkg, &token, w, body)
        },
        Flow::step,
    )?;
    out.require_clean("end to end")?;
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct E2eRow {
    pub db: &'static str,
    pub ca_key: &'static str,
    pub connections: usize,
    pub outcome: Outcome,
}

pub fn run(
    dbs: &[Db],
    key_types: &[&'static str],
    connections: &[usize],
    warmup: Duration,
    measure: Duration,
) -> Result<Vec<E2eRow>> {
    let max = connections.iter().copied().max().unwrap_or(1);
    let bodies = submit_bodies(max)?;
    let mut rows = Vec::new();
    for db in dbs {
        for kt in key_types {
            let (svc, pkg) = prepared("e2e", kt, db)?;
            for &c in connections {
                let outcome = load(&svc, &pkg, &bodies, c, warmup, measure)?;
                rows.push(E2eRow {
                    db: db.name(),
                    ca_key: key_label(kt),
                    connections: c,
                    outcome,
                });
            }
            verify_consistent(&svc)?;
        }
    }
    Ok(rows)
}

/// `enrolld check` after the load: the database's invariants held.
pub fn verify_consistent(svc: &Service) -> Result<()> {
    svc.operator(&["check"])
        .context("the database is inconsistent after the load")?;
    Ok(())
}

pub fn key_label(kt: &str) -> &'static str {
    if kt.starts_with("ecdsa") {
        "ECDSA P-256"
    } else {
        "RSA-2048"
    }
}

pub fn print(rows: &[E2eRow]) {
    println!(
        "\n### 2. End to end over HTTPS (submit + approve + fetch + installed = one certificate)\n"
    );
    println!("| database | CA key | connections | certificates/s | p50 | p99 |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} | {} | {} |",
            r.db,
            r.ca_key,
            r.connections,
            r.outcome.per_second(),
            load::ms(r.outcome.p50()),
            load::ms(r.outcome.p99())
        );
    }
}
