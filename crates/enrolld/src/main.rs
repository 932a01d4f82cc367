//! `enrolld`: the Enroll enrollment service and its operator command line.

/// `println!` that never panics: a closed pipe or a full disk must not
/// turn a completed action into a crash. A full disk is reported once at
/// exit; a reader that stopped reading (`| head`) is not an error.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                crate::OUTPUT_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }};
}

/// Set when standard output could not be written.
pub static OUTPUT_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

mod api;
mod app;
mod config;
mod init;
mod manager_cmd;
mod ops;
mod package;
mod public;
mod tls;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::DataDir;

#[derive(Parser, Debug)]
#[command(
    name = "enrolld",
    version,
    about = "The Enroll certificate enrollment service",
    long_about = "The Enroll certificate enrollment service: a two-level CA, the client API \
                  and the web application over HTTPS, and the operator's command line (acting \
                  as central administrator).",
    after_help = "Examples:\n  enrolld serve --data ./enroll-data\n  \
                  enrolld org add --data ./enroll-data --code J1CFRA --name \"France - La Poste\" --country FR\n  \
                  enrolld request list --data ./enroll-data --status Pending\n\n\
                  Each command's --help has its own example."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct DataArgs {
    /// The service's data directory (configuration, keys, SQLite database).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Database URL, overriding the configuration
    /// (sqlite:///path/enroll.db or postgres://user@host/db).
    #[arg(long, value_name = "URL", env = "ENROLLD_DATABASE")]
    database: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates a data directory: CA, TLS certificate, database, first administrator.
    #[command(
        after_help = "Example:\n  enrolld init --data /var/lib/enrolld --hostname enroll.example --hostname 10.0.0.5"
    )]
    Init {
        /// The data directory to create (it must not exist, or be empty).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Host name or IP address for the service's TLS certificate
        /// (repeatable; default localhost and 127.0.0.1).
        #[arg(long = "hostname", value_name = "NAME")]
        hostnames: Vec<String>,
        /// CA key type: rsa-2048 (default) or ecdsa-p256.
        #[arg(long, default_value = "rsa-2048", value_name = "TYPE")]
        key_type: String,
        /// Address the service listens on.
        #[arg(long, default_value = config::DEFAULT_LISTEN, value_name = "ADDR")]
        listen: String,
        /// Validity of issued client certificates, in days.
        #[arg(long, default_value_t = 365, value_name = "DAYS")]
        validity_days: u32,
        /// Name of the CA (its certificates' O and CN prefix).
        #[arg(long, default_value = "Enroll", value_name = "NAME")]
        ca_name: String,
        /// Plain-HTTP address for CRLs, OCSP and CA certificates.
        #[arg(long, default_value = config::DEFAULT_HTTP_LISTEN, value_name = "ADDR")]
        http_listen: String,
        /// Base URL of that listener as relying parties reach it, written
        /// into every certificate (default http://<first hostname>:<port>).
        #[arg(long, value_name = "URL")]
        public_http_url: Option<String>,
        /// Database URL to record in the configuration, e.g.
        /// postgres://enroll@db.example/enroll (default: SQLite in DIR).
        #[arg(long, value_name = "URL", env = "ENROLLD_DATABASE")]
        database: Option<String>,
    },
    /// Runs the HTTPS service (initialising DIR first if it does not exist).
    #[command(
        after_help = "Example:\n  enrolld serve --data ./enroll-data --listen 127.0.0.1:8443"
    )]
    Serve {
        #[command(flatten)]
        data: DataArgs,
        /// Address to listen on, overriding the configuration.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Plain-HTTP address for CRLs, OCSP and CA certificates,
        /// overriding the configuration.
        #[arg(long, value_name = "ADDR")]
        http_listen: Option<String>,
    },
    /// Member organizations.
    #[command(
        subcommand,
        after_help = "Example:\n  enrolld org add --data DIR --code J1CFRA --name \"France - La Poste\" --country FR"
    )]
    Org(ops::OrgCommand),
    /// Client installation packages.
    #[command(
        subcommand,
        after_help = "Example:\n  enrolld package create --data DIR --org J1CFRA --env Prod --type user \\\n      --url https://enroll.example:8443 --out ./pkg"
    )]
    Package(ops::PackageCommand),
    /// Certificate requests: list, show, approve, reject, revoke (acting as the central administrator).
    #[command(
        subcommand,
        after_help = "Example:\n  enrolld request list --data DIR --status Pending\n  enrolld request approve --data DIR 42"
    )]
    Request(ops::RequestCommand),
    /// Managers and administrators of the web application: add, list, revoke.
    #[command(
        subcommand,
        after_help = "Example:\n  enrolld manager add --data DIR --name alice.martin --org J1CFRA --out alice.p12"
    )]
    Manager(manager_cmd::ManagerCommand),
    /// Checks the database's invariants: certificates, statuses and the audit trail agree.
    #[command(after_help = "Example:\n  enrolld check --data DIR --json\n\n\
Exit 0 when consistent, 1 when anything is wrong (each problem is listed). Safe while serve runs.")]
    Check {
        #[command(flatten)]
        data: DataArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail.
    #[command(
        subcommand,
        after_help = "Example:\n  enrolld audit list --data DIR --action refused:"
    )]
    Audit(manager_cmd::AuditCommand),
}

/// An error with its causes, on one line: "a: b: c".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// RFC 3339 UTC, for people.
pub fn fmt_time(t: enroll_core::UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.0.to_string())
}

// glibc's allocator took a fifth of the status-refresh profile (arenas
// shared by the runtime's and SQLite's threads); mimalloc keeps per-thread
// heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every command that prints JSON takes --json; scripts that asked for
    // it get JSON on failure too.
    let json = std::env::args().skip(1).any(|a| a == "--json");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENROLLD_LOG")
                // PostgreSQL's notices ("already exists, skipping") on
                // every command are noise; its warnings still show.
                .unwrap_or_else(|_| "info,sqlx::postgres::notice=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Both rustls providers can end up in the tree; choose ours explicitly.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) if OUTPUT_FAILED.load(std::sync::atomic::Ordering::Relaxed) => {
            eprintln!(
                "error: the output could not be written (closed pipe or full disk); the action itself was done"
            );
            ExitCode::FAILURE
        }
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                say!(
                    "{}",
                    serde_json::json!({"success": false, "error": format!("{e:#}")})
                );
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            data,
            hostnames,
            key_type,
            listen,
            validity_days,
            ca_name,
            database,
            http_listen,
            public_http_url,
        } => {
            let key_type = enroll_pki::KeyType::parse(&key_type)
                .filter(|k| {
                    matches!(
                        k,
                        enroll_pki::KeyType::Rsa2048 | enroll_pki::KeyType::EcdsaP256
                    )
                })
                .with_context(|| {
                    format!("--key-type {key_type:?} is not supported: use rsa-2048 or ecdsa-p256")
                })?;
            let mut opts = init::InitOptions {
                key_type,
                listen,
                validity_days,
                ca_name,
                database,
                http_listen,
                public_http_url,
                ..Default::default()
            };
            if !hostnames.is_empty() {
                opts.hostnames = hostnames;
            }
            if !(1..=3650).contains(&opts.validity_days) {
                anyhow::bail!("--validity-days must be between 1 and 3650");
            }
            init::init(&data, opts).await?;
            print_init(&data);
            Ok(())
        }
        Command::Serve {
            data,
            listen,
            http_listen,
        } => serve(data, listen, http_listen).await,
        Command::Org(c) => ops::org(c).await,
        Command::Package(c) => ops::package(c).await,
        Command::Request(c) => ops::request(c).await,
        Command::Manager(c) => manager_cmd::manager(c).await,
        Command::Audit(c) => manager_cmd::audit(c).await,
        Command::Check { data, json } => check(data, json).await,
    }
}

async fn check(args: DataArgs, json: bool) -> Result<()> {
    let app = app::App::open(DataDir::new(&args.data), args.database.as_deref()).await?;
    let r = app
        .ra
        .check_consistency(&app::cli_actor())
        .await
        .map_err(|e| anyhow::anyhow!("{}", chain(&e)))?;
    if json {
        say!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "consistent": r.problems.is_empty(), "requests": r.requests,
                "certificates": r.certificates, "audit_events": r.audit_events, "crls": r.crls,
                "problems": r.problems,
            }))?
        );
    } else {
        say!(
            "{} requests, {} certificates, {} audit events, {} CRLs",
            r.requests,
            r.certificates,
            r.audit_events,
            r.crls
        );
        for p in &r.problems {
            say!("  problem: {p}");
        }
        if r.problems.is_empty() {
            say!("consistent");
        }
    }
    if !r.problems.is_empty() {
        anyhow::bail!("{} problems found", r.problems.len());
    }
    Ok(())
}

fn print_init(data: &std::path::Path) {
    let d = DataDir::new(data);
    say!("Initialised {}", data.display());
    say!("  CA root:         {}", d.file("ca/root.pem").display());
    say!("  issuing CA:      {}", d.file("ca/issuing.pem").display());
    say!(
        "  administrator:   {} (key {}, owner-only)",
        d.file("admin/admin.pem").display(),
        d.file("admin/admin.key").display()
    );
    say!(
        "  for a browser:   {} (passphrase in {})",
        d.file("admin/admin.p12").display(),
        d.file("admin/admin.p12.passphrase").display()
    );
}

async fn serve(args: DataArgs, listen: Option<String>, http_listen: Option<String>) -> Result<()> {
    let data = DataDir::new(&args.data);
    if !data.is_initialised() && !args.data.exists() {
        tracing::info!(dir = %args.data.display(), "no data directory yet: initialising");
        init::init(&args.data, init::InitOptions::default()).await?;
        print_init(&args.data);
    }
    let mut app = app::App::open(data, args.database.as_deref()).await?;
    if renew_ocsp_signer(&app).await? {
        app = app::App::open(app.data.clone(), args.database.as_deref()).await?;
    }
    let listen = listen.unwrap_or_else(|| app.config.listen.clone());
    let http_listen = http_listen.unwrap_or_else(|| app.config.http_listen.clone());
    let read = |rel: &str| {
        std::fs::read_to_string(app.data.file(rel))
            .with_context(|| format!("cannot read {}", app.data.file(rel).display()))
    };
    let anchors = format!("{}{}", read("ca/root.pem")?, read("ca/issuing.pem")?);
    let tls_cfg = tls::server_config(&read("tls/server.pem")?, &read("tls/server.key")?, &anchors)?;
    let listener = tls::TlsListener::bind(&listen, tls_cfg).await?;
    let local = axum::serve::Listener::local_addr(&listener)?;
    let http = tokio::net::TcpListener::bind(&http_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {http_listen} for CRLs and OCSP (another enrolld running? choose \
                 another address with --http-listen)"
            )
        })?;
    let http_local = http.local_addr()?;
    let public_port = app
        .config
        .public_http_url
        .parse::<axum::http::Uri>()
        .ok()
        .map(|u| u.port_u16().unwrap_or(80));
    if public_port.is_some_and(|p| p != http_local.port()) {
        tracing::warn!(
            "certificates name {} for their CRL and OCSP (public_http_url in enrolld.toml) \
             but revocation is served on http://{http_local}/: unless a proxy forwards one to \
             the other, set public_http_url to the address clients reach",
            app.config.public_http_url
        );
    }
    tracing::info!(
        address = %local,
        revocation = %http_local,
        database = app.ra.store().backend_name(),
        "enrolld listening on https://{local}/ (CRL and OCSP on http://{http_local}/)"
    );
    // Scripts and tests read these lines to learn the ports when 0 was asked.
    say!("listening on https://{local}/");
    say!("revocation on http://{http_local}/");
    let form_key = config::web_form_key(&app.data)?;
    let public_url = format!(
        "https://{}:{}",
        app.config
            .hostnames
            .first()
            .map(|h| if h.contains(':') {
                format!("[{h}]")
            } else {
                h.clone()
            })
            .unwrap_or_else(|| "localhost".into()),
        local.port()
    );
    let ra = std::sync::Arc::new(app.ra);
    let web = std::sync::Arc::new(web::Web::new(ra.clone(), &form_key, public_url));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let scheduler = tokio::spawn(public::crl_scheduler(ra.clone()));
    let store_ra = ra.clone();
    let stop_deadline = stop_rx.clone();
    let public = axum::serve(http, public::router(ra.clone()).into_make_service())
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    let https = api::router(ra)
        .merge(web::router(web))
        .fallback(fallback)
        .layer(axum::middleware::map_response(web::security_headers));
    let api = axum::serve(
        listener,
        https.into_make_service_with_connect_info::<tls::ConnInfo>(),
    )
    .with_graceful_shutdown(stopped(stop_rx));
    // Connections get ten seconds to finish after the stop signal; a
    // client that holds one open does not keep the service from stopping.
    let servers = async { tokio::join!(api, public) };
    let deadline = async {
        let mut rx = stop_deadline;
        let _ = rx.wait_for(|v| *v).await;
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    };
    let (a, p) = tokio::select! {
        r = servers => r,
        () = deadline => {
            tracing::warn!("connections still open 10 s after the stop signal: closing them");
            (Ok(()), Ok(()))
        }
    };
    scheduler.abort();
    store_ra.store().close().await;
    a.context("the API server failed")?;
    p.context("the CRL and OCSP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Unknown paths: a problem document under the API, a page elsewhere.
async fn fallback(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        api::not_found().await.into_response()
    } else {
        web::not_found().await.into_response()
    }
}

/// Re-issues the OCSP responder's certificate when it expires within 30
/// days (or is missing). Returns whether it did.
async fn renew_ocsp_signer(app: &app::App) -> Result<bool> {
    let pem = app.data.file("ocsp/ocsp.pem");
    let now = enroll_core::Clock::now(&app::SystemClock);
    let fresh = std::fs::read_to_string(&pem)
        .ok()
        .and_then(|p| enroll_pki::CertInfo::from_pem(&p).ok())
        .is_some_and(|c| c.not_after.0 > now.plus_days(30).0);
    if fresh {
        return Ok(false);
    }
    tracing::info!("issuing a new OCSP responder certificate");
    init::issue_ocsp_signer(app, &app.data.root, init::key_type_of(&app.config.key_type)).await?;
    Ok(true)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
