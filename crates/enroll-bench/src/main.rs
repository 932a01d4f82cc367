//! `enroll-bench`: the measurements behind the README's performance
//! section. Each command prints Markdown tables with the machine they ran
//! on; `all` runs every one of them in one go. Build in release mode with
//! the whole workspace (`enrolld` and `enroll` must sit beside this
//! binary); PostgreSQL runs use a fresh database per benchmark.
//!
//! - `sign`: CA issuances per second beside `openssl speed` (1).
//! - `e2e`: certificates end to end over HTTPS, SQLite and PostgreSQL (2).
//! - `status`: status refresh with 10,000 enrolled clients, wrk (3).
//! - `queue`: the approvers' queue with a million requests (4).
//! - `submit`: `enroll submit` beside `openssl req -newkey` (5).
//! - `cfssl`: side by side with `cfssl serve` (6).
//! - `crl`, `ocsp`: revocation (CRL build, OCSP beside `openssl ocsp`).

mod cfssl;
mod e2e;
mod load;
mod queue;
mod revocation;
mod service;
mod signing;
mod status;
mod submit;
mod wrk;

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::service::Db;

#[derive(Parser, Debug)]
#[command(
    name = "enroll-bench",
    about = "Enroll benchmarks (release build, quiet machine); prints Markdown tables",
    after_help = "Example:\n  cargo build --release --workspace\n  target/release/enroll-bench all"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Databases: sqlite, postgres, or sqlite,postgres.
    #[arg(long, default_value = "sqlite,postgres")]
    db: String,
    /// A PostgreSQL URL allowed to create databases (a fresh one is made
    /// beside it per benchmark and dropped afterwards).
    #[arg(
        long,
        env = "ENROLL_TEST_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Seconds measured per load point (after a warm-up of a fifth of it).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

impl Common {
    fn dbs(&self) -> Result<Vec<Db>> {
        service::databases(&self.db, &self.postgres)
    }
    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.seconds) / 5.0)
    }
    fn measure(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds))
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// 1. CA issuances per second on every core, beside `openssl speed`.
    Sign {
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// 2. Certificates end to end over HTTPS (submit, approve, fetch, installed).
    E2e {
        #[command(flatten)]
        common: Common,
        /// Connection counts, comma-separated.
        #[arg(long, default_value = "1,16,64", value_delimiter = ',')]
        connections: Vec<usize>,
        /// CA key types, comma-separated.
        #[arg(long, default_value = "rsa-2048,ecdsa-p256", value_delimiter = ',')]
        key_type: Vec<String>,
    },
    /// 3. Status refresh requests per second with enrolled clients (wrk).
    Status {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value = "16,64", value_delimiter = ',')]
        connections: Vec<usize>,
    },
    /// 4. Queue pages with a million stored requests.
    Queue {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Timed repetitions of each page.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// 5. `enroll submit` beside `openssl req -newkey rsa:2048`.
    Submit {
        #[arg(long, default_value_t = 30)]
        runs: usize,
    },
    /// 6. Side by side with `cfssl serve` (same load generator).
    Cfssl {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value = "2,16", value_delimiter = ',')]
        connections: Vec<usize>,
        #[arg(long, default_value = "rsa-2048,ecdsa-p256", value_delimiter = ',')]
        key_type: Vec<String>,
    },
    /// CRL build time with N revoked entries.
    Crl {
        /// Entry counts, comma-separated.
        #[arg(long, default_value = "100000,1000000", value_delimiter = ',')]
        entries: Vec<usize>,
    },
    /// OCSP responses per second, enrolld beside `openssl ocsp`.
    Ocsp {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// The time of one primary-key read through the store, per database.
    Reads {
        #[command(flatten)]
        common: Common,
    },
    /// Every benchmark above with its defaults, in one run.
    All {
        #[command(flatten)]
        common: Common,
    },
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The machine, as the tables' heading.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let openssl = service::run_ok(Command::new("openssl").arg("version"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "openssl missing".into());
    format!("{} cores, {cpu}; {openssl}", cores())
}

fn key_types(v: &[String]) -> Vec<&'static str> {
    v.iter()
        .map(|k| {
            if k.starts_with("ecdsa") {
                "ecdsa-p256"
            } else {
                "rsa-2048"
            }
        })
        .collect()
}

fn sign(seconds: u32) -> Result<()> {
    let (rows, parts) = signing::run(cores(), seconds)?;
    signing::print(&rows, cores());
    signing::print_breakdown(&parts);
    Ok(())
}

fn main() -> Result<()> {
    // ureq and enroll-pki both bring rustls providers; choose one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    println!("machine: {}", machine());
    match cli.command {
        Cmd::Sign { seconds } => sign(seconds)?,
        Cmd::E2e {
            common,
            connections,
            key_type,
        } => e2e::print(&e2e::run(
            &common.dbs()?,
            &key_types(&key_type),
            &connections,
            common.warmup(),
            common.measure(),
        )?),
        Cmd::Status {
            common,
            clients,
            connections,
        } => status::print(&status::run(
            &common.dbs()?,
            clients,
            &connections,
            common.seconds,
        )?),
        Cmd::Queue {
            common,
            rows,
            samples,
        } => queue::print(&queue::run(&common.dbs()?, rows, samples)?),
        Cmd::Submit { runs } => submit::print(&submit::run(runs)?),
        Cmd::Cfssl {
            common,
            connections,
            key_type,
        } => cfssl::print(&cfssl::run(
            &key_types(&key_type),
            &connections,
            common.warmup(),
            common.measure(),
        )?),
        Cmd::Reads { common } => {
            for db in common.dbs()? {
                let per = queue::point_reads(&db, 20_000)?;
                println!(
                    "| {} | one read by primary key | {:.1} µs |",
                    db.name(),
                    per.as_secs_f64() * 1e6
                );
            }
        }
        Cmd::Crl { entries } => revocation::crl(&entries)?,
        Cmd::Ocsp {
            connections,
            seconds,
        } => revocation::ocsp(connections, seconds)?,
        Cmd::All { common } => {
            let dbs = common.dbs()?;
            let both = key_types(&["rsa-2048".into(), "ecdsa-p256".into()]);
            sign(common.seconds)?;
            e2e::print(&e2e::run(
                &dbs,
                &both,
                &[1, 16, 64],
                common.warmup(),
                common.measure(),
            )?);
            status::print(&status::run(&dbs, 10_000, &[16, 64], common.seconds)?);
            queue::print(&queue::run(&dbs, 1_000_000, 200)?);
            submit::print(&submit::run(30)?);
            cfssl::print(&cfssl::run(
                &both,
                &[2, 16],
                common.warmup(),
                common.measure(),
            )?);
            revocation::crl(&[100_000, 1_000_000])?;
            revocation::ocsp(16, common.seconds)?;
        }
    }
    Ok(())
}
