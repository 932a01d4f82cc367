//! The operator's command line: organizations, packages, requests. It
//! works on the data directory directly, also while `serve` runs (SQLite
//! in WAL mode; PostgreSQL as usual), and acts as central administrator.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use enroll_core::{EnrollmentType, OrgCode, RequestId, RequestStatus};
use enroll_ra::{PackageSpec, RaError};
use enroll_store::{RequestFilter, RequestRecord};
use serde_json::json;

use crate::DataArgs;
use crate::app::{App, cli_actor};
use crate::config::DataDir;
use crate::fmt_time;
use crate::package::PackageFiles;

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Adds a member organization.
    #[command(
        after_help = "Example:\n  enrolld org add --data DIR --code J1CFRA --name \"France - La Poste\" --country FR"
    )]
    Add {
        #[command(flatten)]
        data: DataArgs,
        /// Organization code: 2-16 letters or digits (stored upper case); the certificates' O.
        #[arg(long)]
        code: String,
        /// The organization's name, e.g. "France - La Poste".
        #[arg(long)]
        name: String,
        /// Two-letter country code (ISO 3166).
        #[arg(long)]
        country: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Lists organizations.
    #[command(after_help = "Example:\n  enrolld org list --data DIR --json")]
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PackageCommand {
    /// Writes a client installation package with a fresh submission credential.
    #[command(
        after_help = "Example:\n  enrolld package create --data DIR --org J1CFRA --env Prod --type machine \\\n      --url https://enroll.example:8443 --out ./pkg"
    )]
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// The organization the package is for (its code, as `org list` shows it).
        #[arg(long, value_name = "CODE")]
        org: String,
        /// Environment name, e.g. Prod or Test.
        #[arg(long, value_name = "NAME")]
        env: String,
        /// Where certificates go: machine (system store) or user (the user's own).
        #[arg(long = "type", value_name = "machine|user")]
        enrollment_type: String,
        /// A package for servers: OU=Server and an editable common name.
        #[arg(long)]
        server: bool,
        /// Allows requests for other servers from external CSR files.
        #[arg(long)]
        allow_external: bool,
        /// The enrollment service URL the clients use.
        #[arg(long, value_name = "URL")]
        url: String,
        /// The package folder to write (several environments may share it).
        #[arg(long, value_name = "PKGDIR")]
        out: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Lists packages.
    #[command(after_help = "Example:\n  enrolld package list --data DIR")]
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a package's credential: its copies can no longer submit.
    #[command(
        after_help = "Example:\n  enrolld package revoke --data DIR pkg-0123456789abcdef\n\n\
Certificates already issued stay valid: revoke them with `enrolld request revoke`."
    )]
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// Package id, as `package list` shows it.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// Lists requests, newest first.
    #[command(after_help = "Example:\n  enrolld request list --data DIR --status Pending --json")]
    List {
        #[command(flatten)]
        data: DataArgs,
        /// Only this status (Pending, Approved, Rejected, Cancelled, Installed, Downloaded, Revoked).
        #[arg(long)]
        status: Option<String>,
        /// Only this organization.
        #[arg(long)]
        org: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Shows one request: fields, client details, certificate, history.
    #[command(after_help = "Example:\n  enrolld request show --data DIR 42 --json")]
    Show {
        #[command(flatten)]
        data: DataArgs,
        /// The request id.
        id: i64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Approves a Pending request: the certificate is issued now.
    #[command(after_help = "Example:\n  enrolld request approve --data DIR 42")]
    Approve {
        #[command(flatten)]
        data: DataArgs,
        /// The request id.
        id: i64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revokes the certificate of a request; Revoked is final.
    #[command(
        after_help = "Example:\n  enrolld request revoke --data DIR 42 --reason keyCompromise\n\n\
Reasons (RFC 5280): unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,\n\
cessationOfOperation, privilegeWithdrawn, aACompromise. certificateHold is refused: a\n\
revocation is final."
    )]
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        /// The request id.
        id: i64,
        /// The RFC 5280 reason name, e.g. keyCompromise or superseded.
        #[arg(long)]
        reason: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Rejects a Pending request with a reason the requester will see.
    #[command(
        after_help = "Example:\n  enrolld request reject --data DIR 42 --reason \"unknown machine, call the help desk\""
    )]
    Reject {
        #[command(flatten)]
        data: DataArgs,
        /// The request id.
        id: i64,
        /// Why, in words the requester will see.
        #[arg(long)]
        reason: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

async fn open(d: &DataArgs) -> Result<App> {
    App::open(DataDir::new(&d.data), d.database.as_deref()).await
}

/// Turns use-case errors into one readable line.
fn ra_err(e: RaError) -> anyhow::Error {
    anyhow::anyhow!("{}", crate::chain(&e))
}

pub async fn org(c: OrgCommand) -> Result<()> {
    match c {
        OrgCommand::Add {
            data,
            code,
            name,
            country,
            json,
        } => {
            let app = open(&data).await?;
            let org = app
                .ra
                .add_org(
                    &cli_actor(),
                    &code.to_ascii_uppercase(),
                    &name,
                    &country.to_ascii_uppercase(),
                )
                .await
                .map_err(ra_err)?;
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"code": org.code, "name": org.name, "country": org.country})
                    )?
                );
            } else {
                say!(
                    "Added organization {} ({}, {})",
                    org.code,
                    org.name,
                    org.country
                );
            }
        }
        OrgCommand::List { data, json } => {
            let app = open(&data).await?;
            let orgs = app.ra.list_orgs(&cli_actor()).await.map_err(ra_err)?;
            if json {
                let v: Vec<_> = orgs
                    .iter()
                    .map(|o| json!({"code": o.code, "name": o.name, "country": o.country}))
                    .collect();
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for o in orgs {
                    say!("{:<16} {:<3} {}", o.code, o.country, o.name);
                }
            }
        }
    }
    Ok(())
}

pub async fn package(c: PackageCommand) -> Result<()> {
    match c {
        PackageCommand::Create {
            data,
            org,
            env,
            enrollment_type,
            server,
            allow_external,
            url,
            out,
            json,
        } => {
            let et = EnrollmentType::parse(&enrollment_type)
                .filter(|t| *t != EnrollmentType::External)
                .with_context(|| {
                    format!("--type {enrollment_type:?} is not a package type: use machine or user")
                })?;
            let org = OrgCode::parse(&org.to_ascii_uppercase())
                .map_err(|e| anyhow::anyhow!("--org: {}", e.reason))?;
            let env_dir = out.join("config").join(&env);
            if env_dir.join("package.toml").exists() || env_dir.join("ca.pem").exists() {
                bail!(
                    "{} already holds a {env} package; choose another --out or --env",
                    env_dir.display()
                );
            }
            // The folder must be writable before a credential exists that
            // nobody would ever hold; if anything below fails, the folders
            // made here go again.
            let mut made = MadeDirs(
                [out.clone(), out.join("config"), env_dir.clone()]
                    .into_iter()
                    .filter(|d| !d.exists())
                    .collect(),
            );
            std::fs::create_dir_all(&env_dir)
                .with_context(|| format!("cannot create {}", env_dir.display()))?;
            let app = open(&data).await?;
            let orgrec = app.ra.org(&cli_actor(), &org).await.map_err(|_| {
                anyhow::anyhow!("no organization {org}; add it with `enrolld org add`")
            })?;
            let created = app
                .ra
                .create_package(
                    &cli_actor(),
                    PackageSpec {
                        org,
                        environment: env.clone(),
                        enrollment_type: et,
                        server,
                        allow_external,
                        url: url.clone(),
                    },
                )
                .await
                .map_err(ra_err)?;
            let p = &created.package;
            let written = PackageFiles::new(&created, &orgrec, app.ra.ca().root_pem())
                .and_then(|files| files.write_into(&out));
            if let Err(e) = written {
                // Nothing half-made: the credential nobody holds is revoked.
                let _ = app.ra.revoke_package(&cli_actor(), &p.id).await;
                return Err(e.context(format!("package {} was not written and is revoked", p.id)));
            }
            made.keep();
            let copied = PackageFiles::copy_client(&out);
            if json {
                say!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "package_id": p.id, "org": p.org, "environment": p.environment,
                        "enrollment_type": p.enrollment_type.as_str(), "server": p.server,
                        "allow_external": p.allow_external, "url": p.url,
                        "path": out, "client_copied": copied,
                    }))?
                );
            } else {
                say!(
                    "Package {} for {} ({}) written to {}",
                    p.id,
                    p.org,
                    p.environment,
                    out.display()
                );
                if copied {
                    say!("  the enroll client was copied beside it");
                }
            }
        }
        PackageCommand::List { data, json } => {
            let app = open(&data).await?;
            let list = app.ra.list_packages(&cli_actor()).await.map_err(ra_err)?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|p| {
                        json!({"package_id": p.id, "org": p.org, "environment": p.environment,
                           "enrollment_type": p.enrollment_type.as_str(), "server": p.server,
                           "allow_external": p.allow_external, "url": p.url,
                           "created_at": p.created_at.0, "revoked_at": p.revoked_at.map(|t| t.0)})
                    })
                    .collect();
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!(
                    "{:<22} {:<10} {:<8} {:<8} {:<7} STATE",
                    "ID",
                    "ORG",
                    "ENV",
                    "TYPE",
                    "SERVER"
                );
                for p in list {
                    say!(
                        "{:<22} {:<10} {:<8} {:<8} {:<7} {}",
                        p.id,
                        p.org,
                        p.environment,
                        p.enrollment_type.as_str(),
                        if p.server { "yes" } else { "no" },
                        p.revoked_at
                            .map(|t| format!("revoked {}", fmt_time(t)))
                            .unwrap_or_else(|| "active".into())
                    );
                }
            }
        }
        PackageCommand::Revoke { data, id } => {
            let app = open(&data).await?;
            app.ra
                .revoke_package(&cli_actor(), &id)
                .await
                .map_err(ra_err)?;
            say!("Package {id} revoked: its credential is refused from now on");
        }
    }
    Ok(())
}

/// Folders a command created, removed again (when empty) unless kept.
struct MadeDirs(Vec<PathBuf>);

impl MadeDirs {
    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for MadeDirs {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn request_json(r: &RequestRecord) -> serde_json::Value {
    let s = &r.subject;
    let d = &r.details;
    json!({
        "id": r.id.0,
        "status": r.status.as_str(),
        "kind": r.kind.as_str(),
        "enrollment_type": r.enrollment_type.as_str(),
        "org": s.organization,
        "common_name": s.common_name,
        "subject_name": s.subject_name(),
        "email": s.email, "locality": s.locality, "state": s.state, "country": s.country,
        "organization_unit": s.organization_unit,
        "key": r.key_desc,
        "alt_names": r.alt_names.iter().map(|n| n.to_text()).collect::<Vec<_>>(),
        "details": {
            "fqdn": d.fqdn, "mac": d.mac, "nic_id": d.nic_id, "processor_id": d.processor_id,
            "os_version": d.os_version, "os_type": d.os_type, "requester": d.requester,
            "ip_address": r.source_addr, "phone": d.phone, "description": d.description,
        },
        "package_id": r.package_id,
        "environment": r.environment,
        "csr_pem": enroll_pki::pem::encode("CERTIFICATE REQUEST", &r.csr_der),
        "submitted_at": r.submitted_at.0,
        "decided_at": r.decided_at.map(|t| t.0),
        "decided_by": r.decided_by,
        "reason": r.reason,
        "downloaded_at": r.downloaded_at.map(|t| t.0),
        "downloaded_by": r.downloaded_by,
    })
}

/// Adds a key to a JSON object.
fn with(mut v: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_owned(), value);
    }
    v
}

/// Terminal output must not carry escape sequences from request fields.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub async fn request(c: RequestCommand) -> Result<()> {
    let actor = cli_actor();
    match c {
        RequestCommand::List {
            data,
            status,
            org,
            limit,
            json,
        } => {
            let status = status
                .map(|s| s.parse::<RequestStatus>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("--status: {e}"))?;
            let org = org
                .map(|o| OrgCode::parse(&o.to_ascii_uppercase()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--org: {}", e.reason))?;
            let app = open(&data).await?;
            let list = app
                .ra
                .list(
                    &actor,
                    RequestFilter {
                        status,
                        org,
                        limit,
                        ..RequestFilter::default()
                    },
                )
                .await
                .map_err(ra_err)?;
            if json {
                let v: Vec<_> = list.iter().map(request_json).collect();
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!(
                    "{:>6}  {:<10} {:<11} {:<8} {:<8} {:<20} {:<16} COMMON NAME",
                    "ID",
                    "STATUS",
                    "KIND",
                    "ORG",
                    "ENV",
                    "SUBMITTED",
                    "REQUESTER"
                );
                for r in list {
                    say!(
                        "{:>6}  {:<10} {:<11} {:<8} {:<8} {:<20} {:<16} {}",
                        r.id,
                        r.status,
                        r.kind.as_str(),
                        r.subject.organization,
                        clean(&r.environment),
                        fmt_time(r.submitted_at),
                        clean(r.details.requester.as_deref().unwrap_or("-")),
                        clean(&r.subject.common_name)
                    );
                }
            }
        }
        RequestCommand::Show { data, id, json } => {
            let app = open(&data).await?;
            let (view, history) = app
                .ra
                .show(&actor, RequestId(id), None)
                .await
                .map_err(ra_err)?;
            let r = &view.request;
            let cert = view.certificate.as_ref();
            let hist: Vec<_> = history
                .iter()
                .map(|h| {
                    json!({"at": h.at.0, "actor": h.actor, "role": h.role, "source": h.source_addr,
                       "action": h.action, "from": h.from_status.map(|s| s.as_str()),
                       "to": h.to_status.map(|s| s.as_str()), "detail": h.detail})
                })
                .collect();
            if json {
                let v = request_json(r);
                let c = match cert {
                    Some(c) => json!({"serial": c.serial, "not_before": c.not_before.0,
                                      "not_after": c.not_after.0,
                                      "revoked_at": c.revoked_at.map(|t| t.0),
                                      "revocation_reason": c.revocation_reason,
                                      "pem": enroll_pki::pem::encode("CERTIFICATE", &c.der)}),
                    None => serde_json::Value::Null,
                };
                let v = with(with(v, "certificate", c), "history", json!(hist));
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let d = &r.details;
                let rows: Vec<(&str, String)> = vec![
                    ("Request", r.id.to_string()),
                    ("Status", r.status.to_string()),
                    ("Kind", r.kind.as_str().into()),
                    ("Environment", r.environment.clone()),
                    ("Enrollment type", r.enrollment_type.as_str().into()),
                    ("Subject", r.subject.subject_name()),
                    ("Key", r.key_desc.clone()),
                    ("Names in certificate", {
                        // A server certificate names its host name first,
                        // then what the request asked for.
                        let mut names = Vec::new();
                        if r.kind == enroll_core::RequestKind::External {
                            names.push(format!("DNS:{}", r.subject.common_name));
                        }
                        for n in r.alt_names.iter().map(|n| n.to_text()) {
                            if !names.contains(&n) {
                                names.push(n);
                            }
                        }
                        if let Some(e) = &r.subject.email {
                            names.push(format!("email:{e}"));
                        }
                        names.join(", ")
                    }),
                    ("Submitted", fmt_time(r.submitted_at)),
                    ("Requested by", d.requester.clone().unwrap_or_default()),
                    ("IP address", r.source_addr.clone().unwrap_or_default()),
                    ("FQDN", d.fqdn.clone().unwrap_or_default()),
                    ("MAC", d.mac.clone().unwrap_or_default()),
                    ("NIC id", d.nic_id.clone().unwrap_or_default()),
                    ("Processor id", d.processor_id.clone().unwrap_or_default()),
                    (
                        "OS",
                        format!(
                            "{} {}",
                            d.os_version.clone().unwrap_or_default(),
                            d.os_type.clone().unwrap_or_default()
                        ),
                    ),
                    ("Phone", d.phone.clone().unwrap_or_default()),
                    ("Description", d.description.clone().unwrap_or_default()),
                    ("Reason", r.reason.clone().unwrap_or_default()),
                    (
                        "Certificate",
                        cert.map(|c| match (c.revoked_at, &c.revocation_reason) {
                            (Some(at), reason) => format!(
                                "serial {} revoked {} ({})",
                                c.serial,
                                fmt_time(at),
                                reason.as_deref().unwrap_or("unspecified")
                            ),
                            _ => {
                                format!("serial {} valid until {}", c.serial, fmt_time(c.not_after))
                            }
                        })
                        .unwrap_or_default(),
                    ),
                ];
                for (k, v) in rows {
                    say!("{k:<21} {}", clean(&v));
                }
                say!("History:");
                for h in history {
                    say!(
                        "  {}  {:<10} {} ({}) from {}{}",
                        fmt_time(h.at),
                        h.action,
                        clean(&h.actor),
                        h.role,
                        h.source_addr.as_deref().unwrap_or("local"),
                        h.detail
                            .map(|d| format!(": {}", clean(&d)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        RequestCommand::Approve { data, id, json } => {
            let app = open(&data).await?;
            let view = app
                .ra
                .approve(&actor, RequestId(id), None)
                .await
                .map_err(ra_err)?;
            let serial = view
                .certificate
                .as_ref()
                .map(|c| c.serial.clone())
                .unwrap_or_default();
            if json {
                let v = with(request_json(&view.request), "serial", json!(serial));
                say!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                say!("Request {id} approved; certificate {serial} issued");
            }
        }
        RequestCommand::Revoke {
            data,
            id,
            reason,
            json,
        } => {
            let reason = enroll_pki::revocation::Reason::parse(&reason).with_context(|| {
                format!(
                    "--reason {reason:?} is not an RFC 5280 reason: use one of {}",
                    enroll_pki::revocation::Reason::ALL
                        .iter()
                        .filter(|r| **r != enroll_pki::revocation::Reason::CertificateHold)
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let app = open(&data).await?;
            let done = app
                .ra
                .revoke(&actor, RequestId(id), reason, None)
                .await
                .map_err(ra_err)?;
            let ids = |v: &[RequestId]| v.iter().map(|i| i.0).collect::<Vec<_>>();
            if json {
                let mut out = request_json(&done.request);
                if let Some(o) = out.as_object_mut() {
                    o.insert(
                        "also_revoked".into(),
                        serde_json::json!(ids(&done.also_revoked)),
                    );
                    o.insert(
                        "still_valid".into(),
                        serde_json::json!(ids(&done.still_valid)),
                    );
                }
                say!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                say!(
                    "Request {id} revoked ({}); a new CRL is published",
                    reason.name()
                );
                for other in &done.also_revoked {
                    say!("Request {other} revoked too: its certificate has the same key");
                }
                for other in &done.still_valid {
                    say!(
                        "Request {other} has the same key and is still valid: revoke it with \
                         `enrolld request revoke {other} --reason keyCompromise`"
                    );
                }
            }
        }
        RequestCommand::Reject {
            data,
            id,
            reason,
            json,
        } => {
            let app = open(&data).await?;
            let r = app
                .ra
                .reject(&actor, RequestId(id), &reason, None)
                .await
                .map_err(ra_err)?;
            if json {
                say!("{}", serde_json::to_string_pretty(&request_json(&r))?);
            } else {
                say!("Request {id} rejected");
            }
        }
    }
    Ok(())
}
