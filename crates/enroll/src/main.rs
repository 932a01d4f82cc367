//! `enroll`: the Enroll client. Requests a certificate for this machine,
//! installs it once a manager approves, and tests it against the service.

/// `println!` that never panics: a closed pipe or a full disk must not
/// turn a completed action into a crash. A full disk is reported once at
/// exit; a reader that stopped reading (`enroll status | head`) is not an
/// error, as for every Unix tool.
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
mod commands;
mod eventlog;
mod identity;
mod package;
mod store;
mod testconn;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "enroll",
    version,
    about = "Request, install and test this machine's client certificate",
    after_help = "Examples:\n  enroll info\n  enroll submit --locality Paris --state Ile-de-France --email it@example.org\n  \
                  enroll get\n  enroll test\n\n\
                  Exit codes: 0 success; 1 error; 2 usage; `enroll test` also 10 no certificate, \
                  11 expired, 12 not yet valid, 13 service untrusted, 14 rejected by the service, \
                  15 unreachable."
)]
pub struct Cli {
    /// The client package folder (default: the executable's folder, then /etc/enroll).
    #[arg(long, global = true, value_name = "PKGDIR", env = "ENROLL_PACKAGE")]
    package: Option<PathBuf>,
    /// The environment, when the package holds several (e.g. Prod, Test).
    #[arg(long, global = true, value_name = "NAME")]
    env: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Shows the environment, the service URL, and every field of the request and client details.
    #[command(after_help = "Example:\n  enroll info --package /opt/enroll")]
    Info,
    /// Submits the certificate request to the enrollment service.
    #[command(
        after_help = "Example:\n  enroll submit --locality Paris --state IDF --email it@laposte.example \\\n      --phone '+33 1 00 00 00 00' --description 'Office 12, front desk'\n\n\
A new request replaces this machine's earlier Pending one (which becomes Cancelled)."
    )]
    Submit(Box<commands::SubmitArgs>),
    /// Shows the status table of every request this client submitted.
    #[command(after_help = "Example:\n  enroll status --json")]
    Status,
    /// Gets certificates: refreshes every request and installs the approved ones.
    #[command(after_help = "Example:\n  enroll get")]
    Get,
    /// Tests the enrollment: mutual TLS to the service with the installed certificate.
    #[command(after_help = "Example:\n  enroll test && echo enrolled\n\n\
Exit codes: 0 success, 10 no certificate, 11 expired, 12 not yet valid, 13 service untrusted, \
14 rejected by the service (revoked, unknown), 15 unreachable, 1 other failure.")]
    Test,
    /// Prints a request's certificate subject as other services expect it, and copies it to the clipboard.
    #[command(
        after_help = "Example:\n  enroll subject-name 42\n  E=it@laposte.example,C=FR,ST=IDF,L=Paris,O=J1CFRA,OU=Workstation,CN=40B0…"
    )]
    SubjectName {
        /// The request id, as `enroll status` shows it.
        id: i64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match commands::run(cli) {
        Ok(code) if OUTPUT_FAILED.load(std::sync::atomic::Ordering::Relaxed) => {
            eprintln!(
                "error: the output could not be written (full disk?); the action itself was done"
            );
            ExitCode::from(code.max(1))
        }
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                // Scripts that asked for JSON get it on failure too.
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
