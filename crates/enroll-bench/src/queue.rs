//! Benchmark 4: the approvers' queue with a million stored requests. The
//! rows (20 organizations; mostly Installed, 2 % Pending, the rest
//! Rejected, Cancelled, Revoked; 80 % workstations, the rest servers and
//! external requests; each with a real 2048-bit CSR) are bulk-loaded into
//! a fresh database; then each page the web application asks for is timed
//! twice: the query alone through the store, and the whole page over HTTPS
//! as the central administrator's browser gets it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use enroll_core::{
    ClientDetails, CountryCode, EnrollmentType, OrgCode, RequestId, RequestKind, RequestStatus,
    SubjectFields, UnixTime,
};
use enroll_pki::profile::DnAttr;
use enroll_pki::{KeyType, ParsedCsr, Profile};
use enroll_store::{NewRequest, RequestFilter, SqlStore, Store};

use crate::load::ms;
use crate::service::{Db, Service};

const ORGS: usize = 20;
const SURNAMES: [&str; 8] = [
    "martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand",
];

#[derive(Debug, Clone)]
pub struct QueueRow {
    pub db: &'static str,
    pub rows: usize,
    pub page: &'static str,
    pub query_p50: Duration,
    pub query_p99: Duration,
    pub page_p50: Duration,
    pub page_p99: Duration,
}

fn org(i: usize) -> String {
    format!("ORG{:02}", i % ORGS)
}

/// The `i`th fixture row: deterministic, so every run stores the same.
fn fixture(i: usize, f: &Fixtures, now: i64) -> (NewRequest, RequestStatus) {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let kind = match h % 10 {
        0 => RequestKind::Server,
        1 => RequestKind::External,
        _ => RequestKind::Workstation,
    };
    let status = match (h >> 8) % 100 {
        0..=1 => RequestStatus::Pending,
        2..=6 => RequestStatus::Rejected,
        7..=11 => RequestStatus::Cancelled,
        12 => RequestStatus::Revoked,
        _ if kind == RequestKind::External => RequestStatus::Downloaded,
        _ => RequestStatus::Installed,
    };
    let o = i % ORGS;
    let common_name = match kind {
        RequestKind::Workstation | RequestKind::Mobile => {
            format!("{:012X}BFEBFBFF000906E9{:032X}", h & 0xFFFF_FFFF_FFFF, i)
        }
        _ => format!("srv{i}.org{o:02}.example"),
    };
    let who = SURNAMES
        .get((h >> 20) as usize % SURNAMES.len())
        .copied()
        .unwrap_or("martin");
    let subject = SubjectFields {
        email: Some(format!("{who}@org{o:02}.example")),
        country: f.country.clone(),
        state: Some("Ile-de-France".into()),
        locality: Some("Paris".into()),
        organization: f
            .orgs
            .get(o)
            .cloned()
            .unwrap_or_else(|| f.country_org.clone()),
        organization_unit: if kind == RequestKind::Workstation {
            "Workstation".into()
        } else {
            "Server".into()
        },
        common_name,
    };
    let new = NewRequest {
        package_id: f.packages.get(o).cloned().unwrap_or_default(),
        environment: "Prod".into(),
        kind,
        enrollment_type: if kind == RequestKind::External {
            EnrollmentType::External
        } else {
            EnrollmentType::User
        },
        subject,
        key_desc: "RSA 2048".into(),
        key_length: Some(2048),
        csr_der: f.csr.der.clone(),
        spki_der: f.csr.spki_der.clone(),
        alt_names: Vec::new(),
        details: ClientDetails {
            fqdn: Some(format!("ws{i}.org{o:02}.example")),
            mac: Some(format!("{:012X}", h & 0xFFFF_FFFF_FFFF)),
            os_version: Some("Windows 11 Pro 23H2".into()),
            os_type: Some("64-bit".into()),
            requester: Some(format!("{who}.{i}")),
            description: Some(format!("Office {} desk {}", i % 997, i % 13)),
            ..ClientDetails::default()
        },
        source_addr: Some("10.1.2.3".into()),
        // A request every 30 seconds: a million cover about a year.
        submitted_at: UnixTime(now - 30 * (1_000_000 - i as i64)),
    };
    (new, status)
}

/// What every fixture row shares.
struct Fixtures {
    country: CountryCode,
    orgs: Vec<OrgCode>,
    country_org: OrgCode,
    packages: Vec<String>,
    csr: ParsedCsr,
}

/// Loads `rows` fixture requests into the service's database.
fn load_rows(svc: &Service, packages: &[String], rows: usize) -> Result<Duration> {
    let key = KeyType::Rsa2048.generate()?;
    let subject = [(DnAttr::CommonName, "fixture".to_owned())];
    let pem = enroll_pki::csr::build_request(&subject, Profile::ClientAuth, &key)?;
    let csr = ParsedCsr::parse(pem.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let orgs = (0..ORGS)
        .map(|o| OrgCode::parse(&org(o)).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<Result<Vec<_>>>()?;
    let fixtures = Fixtures {
        country: CountryCode::parse("FR").map_err(|e| anyhow::anyhow!("{e}"))?,
        country_org: orgs.first().cloned().context("no organization")?,
        orgs,
        packages: packages.to_vec(),
        csr,
    };
    let now = 1_800_000_000;
    let rt = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    rt.block_on(async {
        let store = SqlStore::connect(&svc.database_url).await?;
        let mut i = 0;
        while i < rows {
            let batch: Vec<_> = (i..(i + 50_000).min(rows))
                .map(|n| fixture(n, &fixtures, now))
                .collect();
            store.bulk_insert_requests(&batch).await?;
            i += batch.len();
            eprint!("\r  {}: {i} / {rows} requests stored", svc.db.name());
        }
        eprintln!();
        store.close().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(started.elapsed())
}

/// The pages an approver asks for: (label, store filter, page query string).
fn pages(middle: i64) -> Vec<(&'static str, RequestFilter, String)> {
    let f = |status: Option<RequestStatus>,
             org: Option<&str>,
             kinds: Vec<RequestKind>,
             text: Option<&str>,
             before: Option<i64>| RequestFilter {
        status,
        org: org.and_then(|o| OrgCode::parse(o).ok()),
        kinds,
        text: text.map(str::to_owned),
        before: before.map(RequestId),
        limit: 51,
    };
    vec![
        (
            "Pending, newest first (the default queue)",
            f(Some(RequestStatus::Pending), None, vec![], None, None),
            "status=Pending".into(),
        ),
        (
            "every status, newest first",
            f(None, None, vec![], None, None),
            "status=".into(),
        ),
        (
            "Pending of one organization",
            f(
                Some(RequestStatus::Pending),
                Some("ORG07"),
                vec![],
                None,
                None,
            ),
            "status=Pending&org=ORG07".into(),
        ),
        (
            "Pending server requests",
            f(
                Some(RequestStatus::Pending),
                None,
                vec![RequestKind::Server],
                None,
                None,
            ),
            "status=Pending&kind=server".into(),
        ),
        (
            "Pending, text matching many (requester)",
            f(
                Some(RequestStatus::Pending),
                None,
                vec![],
                Some("durand"),
                None,
            ),
            "status=Pending&q=durand".into(),
        ),
        (
            "every status, text matching one request",
            f(None, None, vec![], Some("srv500000.org00"), None),
            "status=&q=srv500000.org00".into(),
        ),
        (
            "Pending, a page in the middle (keyset)",
            f(
                Some(RequestStatus::Pending),
                None,
                vec![],
                None,
                Some(middle),
            ),
            format!("status=Pending&before={middle}"),
        ),
    ]
}

fn quantiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len().max(1)) - 1;
        v.get(i).copied().unwrap_or_default()
    };
    (at(0.5), at(0.99))
}

pub fn run(dbs: &[Db], rows: usize, samples: usize) -> Result<Vec<QueueRow>> {
    let mut out = Vec::new();
    for db in dbs {
        let mut svc = Service::init("queue", "ecdsa-p256", db)?;
        let mut packages = Vec::new();
        for o in 0..ORGS {
            packages.push(svc.org_and_package(&org(o), "Prod", &[])?.id);
        }
        let took = load_rows(&svc, &packages, rows)?;
        eprintln!("  loaded in {:.0} s", took.as_secs_f64());
        svc.start()?;
        let admin = svc.admin_agent()?;
        let rt = tokio::runtime::Runtime::new()?;
        let store = rt.block_on(SqlStore::connect(&svc.database_url))?;
        // On PostgreSQL, fresh statistics, as autovacuum would have them.
        if matches!(db, Db::Postgres(_)) {
            crate::service::run_ok(std::process::Command::new("psql").args([
                "-q",
                &svc.database_url,
                "-c",
                "ANALYZE",
            ]))?;
        }
        for (label, filter, query) in pages(i64::try_from(rows / 2)?) {
            // Both once unmeasured, so caches are as an approver finds them.
            let found = rt.block_on(store.list_requests(&filter))?;
            anyhow::ensure!(
                !found.is_empty() || label.contains("one request"),
                "{label}: no rows"
            );
            let mut q = Vec::with_capacity(samples);
            for _ in 0..samples {
                let t = Instant::now();
                rt.block_on(store.list_requests(&filter))?;
                q.push(t.elapsed());
            }
            let url = format!("{}/requests?{query}", svc.base());
            let mut p = Vec::with_capacity(samples);
            for n in 0..=samples {
                let t = Instant::now();
                let mut r = admin.get(&url).call()?;
                let body = r.body_mut().read_to_string()?;
                anyhow::ensure!(
                    r.status().as_u16() == 200,
                    "{label}: HTTP {}: {}",
                    r.status(),
                    body.get(..300).unwrap_or(&body)
                );
                if n > 0 {
                    p.push(t.elapsed());
                }
            }
            let (query_p50, query_p99) = quantiles(q);
            let (page_p50, page_p99) = quantiles(p);
            out.push(QueueRow {
                db: db.name(),
                rows,
                page: label,
                query_p50,
                query_p99,
                page_p50,
                page_p99,
            });
        }
        rt.block_on(store.close());
        svc.stop();
    }
    Ok(out)
}

pub fn print(rows: &[QueueRow]) {
    println!("\n### 4. The approvers' queue (50 rows a page)\n");
    println!(
        "| database | stored requests | page | query p50 | query p99 | page over HTTPS p50 | page p99 | target p99 < 20 ms |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.db,
            r.rows,
            r.page,
            ms(r.query_p50),
            ms(r.query_p99),
            ms(r.page_p50),
            ms(r.page_p99),
            if r.page_p99 < Duration::from_millis(20) {
                "met"
            } else {
                "**missed**"
            }
        );
    }
}

/// Sequential primary-key reads through the store, one task: the cost of
/// one query, which the HTTPS benchmarks pay several times a request.
pub fn point_reads(db: &Db, n: u32) -> Result<Duration> {
    let svc = Service::init("reads", "ecdsa-p256", db)?;
    let pkg = svc.org_and_package("ORG00", "Prod", &[])?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = SqlStore::connect(&svc.database_url).await?;
        store
            .package(&pkg.id)
            .await?
            .context("the package is missing")?;
        let t = Instant::now();
        for _ in 0..n {
            store.package(&pkg.id).await?;
        }
        let per = t.elapsed() / n;
        store.close().await;
        Ok(per)
    })
}
