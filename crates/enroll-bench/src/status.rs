//! Benchmark 3: status refresh. 10,000 machines are enrolled through the
//! real flow (submit, approve, fetch, acknowledge over HTTPS); then `wrk`
//! asks for random ones of them as `enroll get` does
//! (`GET /api/v1/requests/{id}` with the package credential), every answer
//! carrying the certificate and its chain.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::e2e::{self, Flow};
use crate::service::{Db, Service, need};

#[derive(Debug, Clone)]
pub struct StatusRow {
    pub db: &'static str,
    pub clients: usize,
    pub connections: usize,
    pub per_second: f64,
    pub p99: Duration,
}

/// Enrolls `n` machines with `workers` concurrent flows; their request ids.
fn enroll_machines(svc: &Service, pkg: &crate::service::PackageInfo, n: usize) -> Result<Vec<i64>> {
    let workers = 16;
    let bodies = e2e::submit_bodies(workers)?;
    let admin = svc.admin_agent()?;
    let token = svc.admin_form_token(&admin)?;
    let per = n.div_ceil(workers);
    let ids = std::thread::scope(|s| -> Result<Vec<i64>> {
        let handles: Vec<_> = bodies
            .into_iter()
            .enumerate()
            .map(|(w, body)| {
                let token = &token;
                s.spawn(move || -> Result<Vec<i64>> {
                    let mut f = Flow::new(svc, pkg, token, w, body)?;
                    for _ in 0..per {
                        f.step()?;
                    }
                    Ok(f.ids)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("an enrolling thread panicked"))??,
            );
        }
        Ok(all)
    })?;
    Ok(ids)
}

pub fn run(
    dbs: &[Db],
    clients: usize,
    connections: &[usize],
    seconds: u32,
) -> Result<Vec<StatusRow>> {
    need("wrk", "wrk")?;
    let mut rows = Vec::new();
    for db in dbs {
        let (svc, pkg) = e2e::prepared("status", "rsa-2048", db)?;
        let ids = enroll_machines(&svc, &pkg, clients)?;
        anyhow::ensure!(ids.len() >= clients, "only {} machines enrolled", ids.len());
        let script = svc.scratch.join("status.lua");
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        std::fs::write(
            &script,
            format!(
                "local ids = {{{list}}}\n\
                 wrk.headers[\"Authorization\"] = \"Bearer {}\"\n\
                 request = function()\n  \
                   return wrk.format(\"GET\", \"/api/v1/requests/\" .. ids[math.random(#ids)])\n\
                 end\n{}",
                pkg.credential,
                crate::wrk::CHECK_BODY.replace("NEEDLE", "BEGIN CERTIFICATE"),
            ),
        )?;
        for &c in connections {
            let (per_second, p99, errors) =
                crate::wrk::run(&svc.base(), Some(&script), c, seconds).context("wrk")?;
            if let Some(e) = errors {
                bail!("status refresh answered with errors: {e}");
            }
            rows.push(StatusRow {
                db: db.name(),
                clients: ids.len(),
                connections: c,
                per_second,
                p99,
            });
        }
        e2e::verify_consistent(&svc)?;
    }
    Ok(rows)
}

pub fn print(rows: &[StatusRow]) {
    println!(
        "\n### 3. Status refresh (`GET /api/v1/requests/{{id}}` over HTTPS, wrk, keep-alive)\n"
    );
    println!(
        "| database | enrolled clients | connections | requests/s | p99 | target ≥ 20,000/s, p99 < 10 ms |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for r in rows {
        let met = r.per_second >= 20_000.0 && r.p99 < Duration::from_millis(10);
        println!(
            "| {} | {} | {} | {:.0} | {} | {} |",
            r.db,
            r.clients,
            r.connections,
            r.per_second,
            crate::load::ms(r.p99),
            if met { "met" } else { "**missed**" }
        );
    }
}
