//! The operator's command line for the web application's people and the
//! audit trail: `enrolld manager add|list|revoke`, `enrolld audit list`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use enroll_core::{OrgCode, RequestId, Role};
use enroll_pki::pkcs12::Protection;
use enroll_pki::revocation::Reason;
use enroll_ra::OperatorSpec;
use enroll_store::AuditFilter;
use serde_json::json;

use crate::DataArgs;
use crate::app::{App, cli_actor};
use crate::config::{DataDir, write_private};
use crate::fmt_time;

#[derive(Subcommand, Debug)]
pub enum ManagerCommand {
    /// Issues a sign-in credential for the web application (PKCS#12, one-time passphrase).
    #[command(
        after_help = "Examples:\n  enrolld manager add --data DIR --name alice.martin --org J1CFRA --out alice.p12\n  \
enrolld manager add --data DIR --name bob --central-admin --out bob.p12\n\n\
The passphrase is printed once and kept nowhere. Import the file into a browser, or use it\n\
with curl --cert-type P12 --cert alice.p12:PASSPHRASE."
    )]
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// Login-like name, unique among active operators (letters, digits, . _ - @).
        #[arg(long)]
        name: String,
        /// The organization an organization manager decides for.
        #[arg(
            long,
            value_name = "CODE",
            required_unless_present = "central_admin",
            conflicts_with = "central_admin"
        )]
        org: Option<String>,
        /// A central administrator instead of an organization manager.
        #[arg(long)]
        central_admin: bool,
        /// Where to write the PKCS#12 file (created owner-only, never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// 3DES and a SHA-1 MAC, for old Windows and Java importers.
        #[arg(long)]
        legacy: bool,
        /// Machine-readable output (includes the passphrase).
        #[arg(long)]
        json: bool,
    },
    /// Lists managers and administrators.
    #[command(after_help = "Example:\n  enrolld manager list --data DIR --json")]
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revokes an operator: the certificate is revoked and sign-in refused at once.
    #[command(
        after_help = "Example:\n  enrolld manager revoke --data DIR 3 --reason cessationOfOperation"
    )]
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// Operator id, as `manager list` shows it.
        id: i64,
        /// The RFC 5280 reason name, e.g. keyCompromise or cessationOfOperation.
        #[arg(long, default_value = "cessationOfOperation")]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Lists audit events, newest first.
    #[command(
        after_help = "Examples:\n  enrolld audit list --data DIR --request 42\n  enrolld audit list --data DIR --action refused: --json"
    )]
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Only events of this organization.
        #[arg(long, value_name = "CODE")]
        org: Option<String>,
        /// Only events of this request.
        #[arg(long, value_name = "ID")]
        request: Option<i64>,
        /// Only actors whose name contains this.
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, or actions starting with it (`refused:`).
        #[arg(long)]
        action: Option<String>,
        /// Only events older than this event id (paging).
        #[arg(long, value_name = "ID")]
        before: Option<i64>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

async fn open(d: &DataArgs) -> Result<App> {
    App::open(DataDir::new(&d.data), d.database.as_deref()).await
}

fn ra_err(e: enroll_ra::RaError) -> anyhow::Error {
    anyhow::anyhow!("{}", crate::chain(&e))
}

pub async fn manager(c: ManagerCommand) -> Result<()> {
    match c {
        ManagerCommand::Add {
            data,
            name,
            org,
            central_admin,
            out,
            legacy,
            json,
        } => {
            let role = match (central_admin, org) {
                (true, _) => Role::CentralAdmin,
                (false, Some(o)) => Role::OrgManager(
                    OrgCode::parse(&o.to_ascii_uppercase())
                        .map_err(|e| anyhow::anyhow!("--org: {}", e.reason))?,
                ),
                (false, None) => anyhow::bail!("give --org CODE or --central-admin"),
            };
            if out.exists() {
                anyhow::bail!("{} exists; choose another --out", out.display());
            }
            let app = open(&data).await?;
            let issued = app
                .ra
                .issue_operator(
                    &cli_actor(),
                    OperatorSpec {
                        name,
                        role,
                        protection: if legacy {
                            Protection::Legacy
                        } else {
                            Protection::Modern
                        },
                        pickup: false,
                    },
                    None,
                )
                .await
                .map_err(ra_err)?;
            let r = &issued.record;
            if let Err(e) = write_private(&out, &issued.p12) {
                // Nobody can hold a credential whose file was not written.
                let _ = app
                    .ra
                    .revoke_operator(&cli_actor(), r.id, Reason::CessationOfOperation, None)
                    .await;
                return Err(e.context(format!(
                    "operator {} was not written and is revoked",
                    r.name
                )));
            }
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "id": r.id, "name": r.name, "role": r.role, "org": r.org,
                        "serial": r.cert_serial, "p12": out, "passphrase": issued.passphrase,
                    }))?
                );
            } else {
                say!(
                    "Operator {} ({}{}) issued: {}",
                    r.name,
                    r.role,
                    r.org
                        .as_ref()
                        .map(|o| format!(" of {o}"))
                        .unwrap_or_default(),
                    out.display()
                );
                say!(
                    "One-time passphrase (shown once, kept nowhere): {}",
                    issued.passphrase
                );
            }
        }
        ManagerCommand::List { data, json } => {
            let app = open(&data).await?;
            let list = app.ra.list_operators(&cli_actor()).await.map_err(ra_err)?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|o| {
                        json!({"id": o.id, "name": o.name, "role": o.role, "org": o.org,
                               "serial": o.cert_serial, "created_at": o.created_at.0,
                               "revoked_at": o.revoked_at.map(|t| t.0)})
                    })
                    .collect();
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!(
                    "{:>4}  {:<24} {:<14} {:<10} STATE",
                    "ID",
                    "NAME",
                    "ROLE",
                    "ORG"
                );
                for o in list {
                    say!(
                        "{:>4}  {:<24} {:<14} {:<10} {}",
                        o.id,
                        o.name,
                        o.role,
                        o.org.as_ref().map(|c| c.as_str()).unwrap_or("-"),
                        o.revoked_at
                            .map(|t| format!("revoked {}", fmt_time(t)))
                            .unwrap_or_else(|| "active".into())
                    );
                }
            }
        }
        ManagerCommand::Revoke { data, id, reason } => {
            let reason = Reason::parse(&reason).with_context(|| {
                format!("--reason {reason:?} is not an RFC 5280 reason, e.g. keyCompromise")
            })?;
            let app = open(&data).await?;
            let op = app
                .ra
                .revoke_operator(&cli_actor(), id, reason, None)
                .await
                .map_err(ra_err)?;
            say!(
                "Operator {} revoked ({}): sign-in is refused and the certificate is on the CRL",
                op.name,
                reason.name()
            );
        }
    }
    Ok(())
}

/// Terminal output must not carry escape sequences from stored fields.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub async fn audit(c: AuditCommand) -> Result<()> {
    let AuditCommand::List {
        data,
        org,
        request,
        actor,
        action,
        before,
        limit,
        json,
    } = c;
    let org = org
        .map(|o| OrgCode::parse(&o.to_ascii_uppercase()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--org: {}", e.reason))?;
    let app = open(&data).await?;
    let list = app
        .ra
        .audit_trail(
            &cli_actor(),
            AuditFilter {
                org,
                request_id: request.map(RequestId),
                actor,
                action,
                before,
                limit: limit.clamp(1, 1000),
            },
        )
        .await
        .map_err(ra_err)?;
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|e| {
                let ev = &e.event;
                json!({"id": e.id, "at": ev.at.0, "org": ev.org, "actor": ev.actor, "role": ev.role,
                       "source": ev.source_addr, "request_id": ev.request_id.map(|r| r.0),
                       "action": ev.action, "from": ev.from_status.map(|s| s.as_str()),
                       "to": ev.to_status.map(|s| s.as_str()), "detail": ev.detail})
            })
            .collect();
        say!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for e in list {
            let ev = e.event;
            say!(
                "{:>7}  {}  {:<8} {} ({}) from {}: {}{}{}",
                e.id,
                fmt_time(ev.at),
                ev.org.as_ref().map(|o| o.as_str()).unwrap_or("-"),
                clean(&ev.actor),
                ev.role,
                ev.source_addr.as_deref().unwrap_or("local"),
                ev.action,
                ev.request_id
                    .map(|r| format!(" request {r}"))
                    .unwrap_or_default(),
                ev.detail
                    .map(|d| format!(" — {}", clean(&d)))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
