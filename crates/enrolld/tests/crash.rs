//! Crash safety: `enrolld` is killed with SIGKILL at random moments, 24
//! times, while submissions, approvals and certificate fetches run at
//! once; after each kill it is started again on the same data. In the end
//! every acknowledged submission exists, every acknowledged approval and
//! installation holds, no request has two certificates, serials are
//! unique, and every status change has its audit event (`enrolld check`).
//! Once on SQLite, once on PostgreSQL.
//!
//! The kill times come from a seed printed at the start; set
//! `ENROLL_CRASH_SEED` to replay one.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kit::*;

const KILLS: u32 = 24;

/// A small deterministic generator: the schedule is replayable from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// What the service acknowledged, by request id.
#[derive(Default)]
struct Acked {
    submitted: BTreeSet<i64>,
    approved: BTreeSet<i64>,
    installed: BTreeSet<i64>,
    /// Refused approval (409): cancelled by a newer request for the same
    /// machine, or approved just before a kill took the answer away.
    not_approvable: BTreeSet<i64>,
    /// Refused installation acknowledgement: installed just before a kill.
    not_installable: BTreeSet<i64>,
}

fn crash_and_restart(data: &Path, tag: &str) {
    let seed = std::env::var("ENROLL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("{tag}: ENROLL_CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let tmp = TempDir::new(&format!("crash-{tag}-work"));
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(data);
        c
    };
    ok(&mut d(&[
        "org",
        "add",
        "--code",
        "J1CFRA",
        "--name",
        "La Poste",
        "--country",
        "FR",
    ]));
    let pkg = tmp.path("pkg");
    ok(d(&[
        "package",
        "create",
        "--org",
        "J1CFRA",
        "--env",
        "Prod",
        "--type",
        "user",
        "--url",
        "https://localhost:1",
    ])
    .arg("--out")
    .arg(&pkg));
    let credential = Arc::new(package_credential(&pkg, "Prod"));
    let key = tmp.path("csr.key");
    rsa_key(&key);
    // CSRs are made ahead: OpenSSL must not be what the kills interrupt.
    let csrs: Arc<Vec<(String, String)>> = Arc::new(
        (0..400u32)
            .map(|n| {
                let cn = format!("40B0343FA07DBFEBFBFF000906E9{:032X}", n + 1);
                let csr = csr_pem(&key, &cn, &tmp.path(""));
                (cn, csr)
            })
            .collect(),
    );
    let ca = data.join("admin/ca.pem");
    let admin = (data.join("admin/admin.pem"), data.join("admin/admin.key"));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let next_csr = Arc::new(AtomicU32::new(0));
    let mut transport_errors = 0u32;
    let mut requests_sent = 0u32;

    for round in 0..=KILLS {
        let server = Server::start_with(data, &["--http-listen", "127.0.0.1:0"]);
        let base = format!("https://localhost:{}", server.port);
        if round == KILLS {
            // The last start is not killed: it answers the final checks.
            check_everything(data, &base, &ca, &credential, &acked.lock().unwrap());
            server.stop();
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let token = Https::new(&base, &ca, Some((&admin.0, &admin.1))).form_token();
        let mut workers = Vec::new();
        // Two submitters, one approver, one client fetching and installing.
        for role in ["submit", "submit", "approve", "get"] {
            let (stop, acked, csrs, next_csr, credential, token) = (
                stop.clone(),
                acked.clone(),
                csrs.clone(),
                next_csr.clone(),
                credential.clone(),
                token.clone(),
            );
            let web = Https::new(
                &base,
                &ca,
                (role == "approve").then_some((admin.0.as_path(), admin.1.as_path())),
            );
            workers.push(std::thread::spawn(move || {
                let (mut sent, mut failed) = (0u32, 0u32);
                while !stop.load(Ordering::Relaxed) {
                    sent += 1;
                    let status = match role {
                        "submit" => {
                            let n = next_csr.fetch_add(1, Ordering::Relaxed) as usize;
                            let Some((cn, csr)) = csrs.get(n % csrs.len()) else {
                                break;
                            };
                            let (status, body) = web.post_json(
                                "/api/v1/requests",
                                &credential,
                                &submission(csr, cn, "crash"),
                            );
                            if status == 201 {
                                let id = json(&body)["id"].as_i64().unwrap();
                                acked.lock().unwrap().submitted.insert(id);
                            }
                            status
                        }
                        "approve" => {
                            let next = {
                                let a = acked.lock().unwrap();
                                a.submitted
                                    .iter()
                                    .rev()
                                    .find(|i| {
                                        !a.approved.contains(i) && !a.not_approvable.contains(i)
                                    })
                                    .copied()
                            };
                            let Some(id) = next else {
                                std::thread::sleep(Duration::from_millis(5));
                                continue;
                            };
                            let (status, _) = web
                                .post_form(&format!("/requests/{id}/approve"), &[("csrf", &token)]);
                            // 409: cancelled by a newer request, or approved
                            // before a kill that came before the answer.
                            match status {
                                303 => {
                                    acked.lock().unwrap().approved.insert(id);
                                }
                                409 => {
                                    acked.lock().unwrap().not_approvable.insert(id);
                                }
                                _ => {}
                            }
                            status
                        }
                        _ => {
                            let next = {
                                let a = acked.lock().unwrap();
                                a.approved
                                    .iter()
                                    .find(|i| {
                                        !a.installed.contains(i) && !a.not_installable.contains(i)
                                    })
                                    .copied()
                            };
                            let Some(id) = next else {
                                std::thread::sleep(Duration::from_millis(5));
                                continue;
                            };
                            let (status, _) =
                                web.get(&format!("/api/v1/requests/{id}"), Some(&credential));
                            if status == 200 {
                                let (status, _) = web.post_json(
                                    &format!("/api/v1/requests/{id}/installed"),
                                    &credential,
                                    &serde_json::json!({}),
                                );
                                match status {
                                    200 => {
                                        acked.lock().unwrap().installed.insert(id);
                                    }
                                    409 => {
                                        acked.lock().unwrap().not_installable.insert(id);
                                    }
                                    _ => {}
                                }
                            }
                            status
                        }
                    };
                    if status == 0 {
                        failed += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                (sent, failed)
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.between(150, 900)));
        server.kill();
        // Let the workers see the dead service, then stop them.
        std::thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let (sent, failed) = w.join().unwrap();
            requests_sent += sent;
            transport_errors += failed;
        }
    }
    let a = acked.lock().unwrap();
    println!(
        "{tag}: {KILLS} kills, {requests_sent} requests sent, {transport_errors} cut by a kill; \
         acknowledged {} submissions, {} approvals, {} installations",
        a.submitted.len(),
        a.approved.len(),
        a.installed.len()
    );
    assert!(
        a.approved.len() >= 10,
        "the load did too little to prove anything"
    );
}

/// The promises, checked against the restarted service and the database.
fn check_everything(data: &Path, base: &str, ca: &Path, credential: &str, acked: &Acked) {
    let client = Https::new(base, ca, None);
    let mut serials = BTreeMap::new();
    for &id in &acked.submitted {
        let (status, body) = client.get(&format!("/api/v1/requests/{id}"), Some(credential));
        assert_eq!(status, 200, "acknowledged request {id} is gone: {body}");
        let state = json(&body);
        let st = state["status"].as_str().unwrap();
        if acked.installed.contains(&id) {
            assert_eq!(st, "Installed", "request {id} was acknowledged installed");
        } else if acked.approved.contains(&id) {
            assert!(
                matches!(st, "Approved" | "Installed"),
                "request {id} was acknowledged approved, is {st}"
            );
        }
        if let Some(pem) = state["certificate_pem"].as_str() {
            let serial = enroll_pki::CertInfo::from_pem(pem).unwrap().serial.to_hex();
            if let Some(other) = serials.insert(serial.clone(), id) {
                panic!("serial {serial} belongs to requests {other} and {id}");
            }
        }
    }
    let out = run(Command::new(enrolld_bin())
        .args(["check", "--json", "--data"])
        .arg(data));
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["consistent"], true, "after the crashes: {report}");
}

#[test]
fn sigkill_during_traffic_on_sqlite() {
    let tmp = TempDir::new("crash-sqlite");
    let data = tmp.path("data");
    init_service(&data, &[]);
    crash_and_restart(&data, "sqlite");
}

#[test]
fn sigkill_during_traffic_on_postgres() {
    let pg = PgDatabase::new("crash");
    let tmp = TempDir::new("crash-pg");
    let data = tmp.path("data");
    init_service(&data, &["--database", &pg.url]);
    crash_and_restart(&data, "postgres");
}
