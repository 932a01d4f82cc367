//! One function per client command. Each returns the process exit code.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use clap::Args;
use clap::builder::TypedValueParser as _;
use enroll_core::{CountryCode, OrgCode, RequestKind, SubjectFields, SubjectInput};
use enroll_pki::profile::subject_of;
use enroll_pki::{CertInfo, KeyType, Profile};
use enroll_proto as proto;
use serde_json::json;

use crate::api::{Api, ApiError};
use crate::eventlog::EventLog;
use crate::identity::Identity;
use crate::package::Package;
use crate::store::{LocalRequest, LocalStore, write_atomic};
use crate::testconn;
use crate::{Cli, Command};

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Locality / city (goes into the certificate as L).
    #[arg(long, required_unless_present = "external")]
    locality: Option<String>,
    /// State / province (ST).
    #[arg(long, required_unless_present = "external")]
    state: Option<String>,
    /// Email address (E).
    #[arg(long, required_unless_present = "external")]
    email: Option<String>,
    /// RSA key length in bits.
    #[arg(long, default_value_t = 2048, value_parser = clap::builder::PossibleValuesParser::new(["2048", "3072", "4096"]).map(|s| s.parse::<u32>().unwrap_or(2048)))]
    key_length: u32,
    /// Phone number for the approver.
    #[arg(long)]
    phone: Option<String>,
    /// Free text that helps the manager identify the request (office, purpose…).
    #[arg(long)]
    description: Option<String>,
    /// The server's public host name (server packages and --external; a
    /// workstation's common name is its hardware identity).
    #[arg(long, value_name = "HOST")]
    common_name: Option<String>,
    /// Requests a certificate for another server from its CSR file (PEM,
    /// base64 or DER), where the package allows it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["locality", "state", "email"])]
    external: Option<std::path::PathBuf>,
    /// With --external: the other server's fully qualified name.
    #[arg(long, requires = "external")]
    fqdn: Option<String>,
    /// With --external: the other server's MAC address.
    #[arg(long, requires = "external")]
    mac: Option<String>,
    /// With --external: the other server's network-interface id.
    #[arg(long, requires = "external")]
    nic: Option<String>,
    /// With --external: the other server's processor id.
    #[arg(long, requires = "external")]
    processor_id: Option<String>,
    /// With --external: the other server's OS version.
    #[arg(long, requires = "external")]
    os_version: Option<String>,
    /// With --external: 64-bit or 32-bit.
    #[arg(long, requires = "external", value_parser = ["64-bit", "32-bit"])]
    os_type: Option<String>,
    /// Check everything and show what would be requested; make no key,
    /// send nothing.
    #[arg(long)]
    dry_run: bool,
}

struct Ctx {
    pkg: Package,
    store: LocalStore,
    log: EventLog,
    json: bool,
}

pub fn run(cli: Cli) -> Result<u8> {
    let pkg = Package::locate(cli.package.as_deref(), cli.env.as_deref())?;
    let store = LocalStore::for_package(&pkg)?;
    let log = EventLog::new(&pkg.root, pkg.env());
    let ctx = Ctx {
        pkg,
        store,
        log,
        json: cli.json,
    };
    match cli.command {
        Command::Info => info(&ctx),
        Command::Submit(a) => submit(&ctx, *a),
        Command::Status => status(&ctx),
        Command::Get => get(&ctx),
        Command::Test => test(&ctx),
        Command::SubjectName { id } => subject_name(&ctx, id),
    }
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn fmt_time(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

fn kind(pkg: &Package) -> RequestKind {
    if pkg.file.server {
        RequestKind::Server
    } else {
        RequestKind::Workstation
    }
}

fn info(ctx: &Ctx) -> Result<u8> {
    let p = &ctx.pkg.file;
    let id = Identity::detect()?;
    let cn = if p.server {
        "(the server's public host name, given with --common-name)".to_owned()
    } else {
        id.hardware_id()
    };
    if ctx.json {
        print_json(&json!({
            "environment": p.environment,
            "service_url": p.url,
            "package": ctx.pkg.root,
            "package_id": p.package_id,
            "environment_folder": ctx.pkg.env_dir,
            "store": ctx.store.dir,
            "certificate_request": {
                "organization": {"code": p.org_code, "name": p.org_name},
                "country": p.country,
                "locality": null, "state": null, "email": null,
                "key_length": 2048,
                "key_lengths_allowed": [2048, 3072, 4096],
                "organization_unit": ctx.pkg.ou(),
                "key_usage": ["DigitalSignature", "KeyEncipherment", "DataEncipherment"],
                "extended_key_usage": ["ClientAuth"],
                "common_name": cn,
                "common_name_editable": p.server,
            },
            "client_details": {
                "fqdn": id.fqdn, "mac": id.mac, "nic_id": id.nic_id,
                "processor_id": id.processor_id, "os_version": id.os_version,
                "os_type": id.os_type, "requester": id.requester,
                "ip_address": "(as the service sees it)",
                "enrollment_type": p.enrollment_type,
                "phone": null, "description": null,
            },
            "allow_external": p.allow_external,
        }))?;
    } else {
        say!("Environment:          {}", p.environment);
        say!("Enrollment service:   {}", p.url);
        say!(
            "Package:              {} ({})",
            ctx.pkg.env_dir.display(),
            p.package_id
        );
        say!();
        say!("Certificate request");
        say!("  Organization:       [{}, {}]", p.org_code, p.org_name);
        say!("  Country:            {}", p.country);
        say!("  Locality / City:    (editable: --locality)");
        say!("  State / Province:   (editable: --state)");
        say!("  Email:              (editable: --email)");
        say!("  Key length:         2048 (editable: --key-length 2048|3072|4096)");
        say!("  Organization unit:  {}", ctx.pkg.ou());
        say!("  Key usage:          DigitalSignature, KeyEncipherment, DataEncipherment");
        say!("  Extended key usage: ClientAuth");
        say!("  Common name:        {cn}");
        say!();
        say!("Client details");
        say!("  Machine FQDN:       {}", id.fqdn);
        say!("  MAC address:        {}", id.mac);
        say!("  NIC id:             {}", id.nic_id);
        say!("  Processor id:       {}", id.processor_id);
        say!("  OS version:         {}", id.os_version);
        say!("  OS type:            {}", id.os_type);
        say!("  Requester:          {}", id.requester);
        say!("  IP address:         (as the service sees it)");
        say!("  Enrollment type:    {}", p.enrollment_type);
        say!("  Phone:              (editable: --phone)");
        say!("  Description:        (editable: --description)");
        say!();
        say!("Certificate store:    {}", ctx.store.dir.display());
    }
    ctx.log.record("info", "ok");
    Ok(0)
}

/// Shows a spinner on a terminal while a long step runs.
fn with_progress<T>(label: &str, f: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return f();
    }
    // The spinner waits on a channel, not a sleep, so it stops the
    // moment the work is done rather than at its next frame.
    let (done, stopped) = std::sync::mpsc::channel::<()>();
    let label = label.to_owned();
    let spinner = std::thread::spawn(move || {
        let frames = ['|', '/', '-', '\\'];
        let mut i = 0usize;
        loop {
            eprint!("\r{label} {}", frames.get(i % 4).copied().unwrap_or('-'));
            i += 1;
            match stopped.recv_timeout(std::time::Duration::from_millis(120)) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                _ => break,
            }
        }
        eprint!("\r{label} done\n");
    });
    let out = f();
    let _ = done.send(());
    let _ = spinner.join();
    out
}

fn problem_exit(ctx: &Ctx, action: &str, e: ApiError) -> Result<u8> {
    ctx.log.record(action, &format!("failed: {e}"));
    if ctx.json {
        match &e {
            ApiError::Problem(p) => print_json(&serde_json::to_value(&**p)?)?,
            other => print_json(&json!({"success": false, "error": other.to_string()}))?,
        }
    }
    match &e {
        ApiError::Problem(p) if !p.problems.is_empty() => {
            eprintln!("error: {}", p.title);
            for item in &p.problems {
                eprintln!("  - {}: {}", item.code, item.message);
            }
        }
        _ => eprintln!("error: {e}"),
    }
    Ok(1)
}

fn submit(ctx: &Ctx, a: SubmitArgs) -> Result<u8> {
    if a.external.is_some() {
        return submit_external(ctx, a);
    }
    let p = &ctx.pkg.file;
    let id = Identity::detect()?;
    let kind = kind(&ctx.pkg);
    let common_name = match (kind, a.common_name) {
        (RequestKind::Server, Some(cn)) => cn,
        (RequestKind::Server, None) => {
            bail!("this is a server package: give the server's public host name with --common-name")
        }
        (_, Some(_)) => bail!(
            "a workstation's common name is its hardware identity ({}); --common-name is for server packages",
            id.hardware_id()
        ),
        (_, None) => id.hardware_id(),
    };
    // The same policy the service applies, for feedback before any key is made.
    for (flag, v) in [
        ("--locality", &a.locality),
        ("--state", &a.state),
        ("--email", &a.email),
    ] {
        if v.as_deref().is_none_or(|v| v.trim().is_empty()) {
            bail!("{flag} must not be empty: it goes into the certificate's subject");
        }
    }
    let subject_input = SubjectInput {
        common_name,
        email: a.email,
        locality: a.locality,
        state: a.state,
    };
    let org = OrgCode::parse(&p.org_code).map_err(|e| anyhow::anyhow!("package: {e}"))?;
    let country = CountryCode::parse(&p.country).map_err(|e| anyhow::anyhow!("package: {e}"))?;
    let fields = match SubjectFields::build(&subject_input, org, country, kind) {
        Ok(f) => f,
        Err(problems) => {
            let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
            ctx.log.record(
                "submit",
                &format!("refused locally: invalid {}", fields.join(", ")),
            );
            if ctx.json {
                print_json(&json!({
                    "success": false,
                    "error": "the request was not sent: some fields are invalid",
                    "problems": problems.iter().map(|p| json!({"code": p.field, "message": p.reason})).collect::<Vec<_>>(),
                }))?;
            }
            for pr in &problems {
                eprintln!("error: {pr}");
            }
            return Ok(1);
        }
    };
    if a.dry_run {
        ctx.log
            .record("submit", "dry run: fields accepted, nothing sent");
        if ctx.json {
            print_json(&json!({
                "dry_run": true, "accepted": true, "common_name": fields.common_name,
                "subject_name": fields.subject_name(), "key": format!("RSA {}", a.key_length),
                "kind": kind.as_str(),
            }))?;
        } else {
            say!("Would request: {}", fields.subject_name());
            say!(
                "  key: RSA {} bits, made here when you submit",
                a.key_length
            );
            say!("Nothing was sent (--dry-run).");
        }
        return Ok(0);
    }
    ctx.store.ensure()?;
    let key_type =
        KeyType::rsa(a.key_length).context("the key length must be 2048, 3072 or 4096")?;
    let key = with_progress(
        &format!("Generating an RSA {}-bit key", a.key_length),
        || key_type.generate(),
    )
    .context("key generation failed")?;
    let csr_pem = enroll_pki::csr::build_request(&subject_of(&fields), Profile::ClientAuth, &key)
        .context("cannot build the certificate request")?;
    // The key is on disk, owner-only, before the request leaves the machine.
    let tmp_key = ctx
        .store
        .dir
        .join("pending")
        .join(format!("new-{}.key", std::process::id()));
    write_atomic(&tmp_key, key.serialize_pem().as_bytes(), 0o600)?;
    let req = proto::SubmitRequest {
        csr_pem,
        key_length: Some(a.key_length),
        subject: proto::SubjectInput {
            common_name: subject_input.common_name.clone(),
            email: subject_input.email.clone(),
            locality: subject_input.locality.clone(),
            state: subject_input.state.clone(),
        },
        details: proto::Details {
            fqdn: Some(id.fqdn.clone()),
            mac: Some(id.mac.clone()),
            nic_id: Some(id.nic_id.clone()),
            processor_id: Some(id.processor_id.clone()),
            os_version: Some(id.os_version.clone()),
            os_type: Some(id.os_type.clone()),
            requester: Some(id.requester.clone()),
            phone: a.phone,
            description: a.description,
        },
    };
    let api = Api::new(&ctx.pkg)?;
    let resp = match api.submit(&req) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp_key);
            return problem_exit(ctx, "submit", e);
        }
    };
    std::fs::rename(&tmp_key, ctx.store.pending_key(resp.id))
        .context("cannot keep the pending key")?;
    let mut state = ctx.store.load()?;
    for r in state.requests.iter_mut() {
        if resp.cancelled.contains(&r.id) {
            r.status = "Cancelled".into();
            r.reason = Some(format!("superseded by request {}", resp.id));
        }
    }
    state.requests.push(LocalRequest {
        id: resp.id,
        status: resp.status.clone(),
        common_name: fields.common_name.clone(),
        kind: kind.as_str().into(),
        enrollment_type: p.enrollment_type.clone(),
        submitted_at: now(),
        requested_by: Some(id.requester.clone()),
        downloaded_at: None,
        downloaded_by: None,
        reason: None,
        subject_name: Some(fields.subject_name()),
        certificate_path: None,
        key_path: None,
        key_lost: false,
        package_id: Some(ctx.pkg.file.package_id.clone()),
    });
    ctx.store.save(&state)?;
    for c in &resp.cancelled {
        ctx.log
            .record("submit", &format!("request {c} cancelled (superseded)"));
    }
    ctx.log.record(
        "submit",
        &format!("request {} submitted, {}", resp.id, resp.status),
    );
    if ctx.json {
        print_json(&json!({
            "id": resp.id, "status": resp.status, "cancelled": resp.cancelled,
            "common_name": fields.common_name, "subject_name": fields.subject_name(),
        }))?;
    } else {
        say!("Request {} submitted: {}", resp.id, resp.status);
        for c in &resp.cancelled {
            say!("  your earlier pending request {c} is now Cancelled");
        }
        say!(
            "Run `enroll get` once {} has approved it.",
            if kind == RequestKind::Server {
                "the central administrator"
            } else {
                "a manager or the central administrator"
            }
        );
    }
    Ok(0)
}

/// What the intake read from an external CSR, for people and for --json.
fn read_json(csr: &enroll_pki::intake::ExternalCsr) -> serde_json::Value {
    json!({
        "locality": csr.locality, "state": csr.state, "email": csr.email,
        "key": csr.key.describe(), "key_length": csr.key.rsa_bits(),
        "signature_algorithm": csr.signature_algorithm,
        "subject": csr.subject.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "dns_names": csr.dns_names,
        "ip_addresses": csr.ip_addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "key_usage": csr.key_usage, "extended_key_usage": csr.extended_key_usage,
    })
}

fn submit_external(ctx: &Ctx, a: SubmitArgs) -> Result<u8> {
    let p = &ctx.pkg.file;
    let Some(file) = a.external else {
        bail!("--external FILE is missing");
    };
    if !p.allow_external {
        bail!(
            "this package does not allow requests for other servers; ask the central \
             administrator for a package created with --allow-external"
        );
    }
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    // Everything the service would refuse, found at once: the file, the
    // entered host name, the subject read from the file, the details.
    let mut problems: Vec<(String, String)> = Vec::new();
    let intake = enroll_pki::intake::check_external(&bytes);
    if let Err(e) = &intake {
        problems.extend(e.0.iter().map(|p| (p.code.to_owned(), p.message.clone())));
    }
    // The service answers these with request.policy; say where each
    // value came from, the file or the command line.
    let policy = |problems: &mut Vec<(String, String)>, v: Vec<enroll_core::PolicyViolation>| {
        problems.extend(v.into_iter().map(|p| {
            let label = match p.field {
                "email" => "the CSR's emailAddress".to_owned(),
                "locality" => "the CSR's L (locality)".to_owned(),
                "state" => "the CSR's ST (state)".to_owned(),
                "nic_id" => "--nic".to_owned(),
                other => format!("--{}", other.replace('_', "-")),
            };
            ("request.policy".to_owned(), format!("{label} {}", p.reason))
        }));
    };
    let cn = match &a.common_name {
        None => {
            problems.push((
                "common_name".into(),
                "give the other server's public host name with --common-name HOST".into(),
            ));
            None
        }
        Some(cn) => match enroll_core::subject::check_host_name(cn) {
            Ok(cn) => Some(cn),
            Err(e) => {
                policy(&mut problems, vec![e]);
                None
            }
        },
    };
    if let (Ok(csr), Some(cn)) = (&intake, &cn) {
        let input = enroll_core::SubjectInput {
            common_name: cn.clone(),
            email: csr.email.clone(),
            locality: csr.locality.clone(),
            state: csr.state.clone(),
        };
        if let (Ok(org), Ok(country)) = (
            enroll_core::OrgCode::parse(&p.org_code),
            enroll_core::CountryCode::parse(&p.country),
        ) && let Err(v) = enroll_core::SubjectFields::build(
            &input,
            org,
            country,
            enroll_core::RequestKind::External,
        ) {
            policy(&mut problems, v);
        }
    }
    let details = proto::Details {
        fqdn: a.fqdn,
        mac: a.mac,
        nic_id: a.nic,
        processor_id: a.processor_id,
        os_version: a.os_version,
        os_type: a.os_type,
        requester: Some(crate::identity::requester()),
        phone: a.phone,
        description: a.description,
    };
    let local = enroll_core::ClientDetails {
        fqdn: details.fqdn.clone(),
        mac: details.mac.clone(),
        nic_id: details.nic_id.clone(),
        processor_id: details.processor_id.clone(),
        os_version: details.os_version.clone(),
        os_type: details.os_type.clone(),
        requester: details.requester.clone(),
        phone: details.phone.clone(),
        description: details.description.clone(),
    };
    if let Err(v) = local.validate() {
        policy(&mut problems, v);
    }
    let (Ok(csr), Some(cn), true) = (intake, cn, problems.is_empty()) else {
        ctx.log.record(
            "submit-external",
            &format!(
                "refused locally: {}",
                problems
                    .iter()
                    .map(|p| p.0.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        if ctx.json {
            print_json(&json!({
                "accepted": false,
                "problems": problems.iter().map(|(c, m)| json!({"code": c, "message": m})).collect::<Vec<_>>(),
            }))?;
        } else {
            eprintln!("The request in {} cannot be used:", file.display());
            for (code, message) in &problems {
                eprintln!("  - {message} ({code})");
            }
        }
        return Ok(1);
    };
    if !ctx.json {
        say!("Read from {}:", file.display());
        say!(
            "  Locality:      {}",
            csr.locality.as_deref().unwrap_or("-")
        );
        say!("  State:         {}", csr.state.as_deref().unwrap_or("-"));
        say!("  Email:         {}", csr.email.as_deref().unwrap_or("-"));
        say!("  Key:           {}", csr.key.describe());
        say!("  Signature:     {}", csr.signature_algorithm);
        let mut names: Vec<String> = csr.dns_names.iter().map(|d| format!("DNS:{d}")).collect();
        names.extend(csr.ip_addresses.iter().map(|i| format!("IP:{i}")));
        say!(
            "  Names:         {}",
            if names.is_empty() {
                "-".into()
            } else {
                names.join(", ")
            }
        );
        say!("  Common name:   {cn} (entered)");
    }
    if a.dry_run {
        ctx.log
            .record("submit-external", "dry run: the request is acceptable");
        if ctx.json {
            print_json(
                &json!({"dry_run": true, "accepted": true, "common_name": cn, "read": read_json(&csr)}),
            )?;
        } else {
            say!("The request is acceptable (dry run: nothing was sent).");
        }
        return Ok(0);
    }
    let req = proto::ExternalSubmitRequest {
        // Only the request itself leaves this machine, never the rest of
        // the file.
        csr_file_base64: base64::engine::general_purpose::STANDARD
            .encode(enroll_pki::intake::decode(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?),
        common_name: cn.clone(),
        details,
    };
    let api = Api::new(&ctx.pkg)?;
    let resp = match api.submit_external(&req) {
        Ok(r) => r,
        Err(e) => return problem_exit(ctx, "submit-external", e),
    };
    let mut state = ctx.store.load()?;
    for r in state.requests.iter_mut() {
        if resp.cancelled.contains(&r.id) {
            r.status = "Cancelled".into();
        }
    }
    state.requests.push(LocalRequest {
        id: resp.id,
        status: resp.status.clone(),
        common_name: cn.clone(),
        kind: "external".into(),
        enrollment_type: "external".into(),
        submitted_at: now(),
        requested_by: Some(crate::identity::requester()),
        downloaded_at: None,
        downloaded_by: None,
        reason: None,
        subject_name: None,
        certificate_path: None,
        key_path: None,
        key_lost: false,
        package_id: Some(ctx.pkg.file.package_id.clone()),
    });
    ctx.store.ensure()?;
    ctx.store.save(&state)?;
    ctx.log.record(
        "submit-external",
        &format!("request {} for {cn} submitted, {}", resp.id, resp.status),
    );
    if ctx.json {
        print_json(&json!({
            "id": resp.id, "status": resp.status, "cancelled": resp.cancelled,
            "common_name": cn, "read": read_json(&csr),
        }))?;
    } else {
        say!(
            "Request {} submitted: {} (a central administrator decides it)",
            resp.id,
            resp.status
        );
        say!(
            "Run `enroll get` once it is approved: the certificate is saved in {}.",
            ctx.pkg.env_dir.display()
        );
    }
    Ok(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn merge(local: &mut LocalRequest, s: &proto::RequestState) {
    local.status = s.status.clone();
    local.common_name = s.common_name.clone();
    local.kind = s.kind.clone();
    local.enrollment_type = s.enrollment_type.clone();
    local.submitted_at = s.submitted_at;
    local.requested_by = s.requested_by.clone();
    local.downloaded_at = s.downloaded_at;
    local.downloaded_by = s.downloaded_by.clone();
    local.reason = s.reason.clone();
    local.subject_name = Some(s.subject_name.clone());
}

/// A Rejected or Cancelled request will never get a certificate: its
/// pending key is useless and is removed.
fn forget_dead_key(ctx: &Ctx, r: &LocalRequest) {
    if matches!(r.status.as_str(), "Rejected" | "Cancelled") {
        let _ = std::fs::remove_file(ctx.store.pending_key(r.id));
    }
}

fn table_json(reqs: &[LocalRequest]) -> serde_json::Value {
    json!(
        reqs.iter()
            .map(|r| json!({
                "id": r.id, "status": r.status, "common_name": r.common_name,
                "submitted_at": r.submitted_at, "requested_by": r.requested_by,
                "downloaded_at": r.downloaded_at, "downloaded_by": r.downloaded_by,
                "enrollment_type": r.enrollment_type, "kind": r.kind, "reason": r.reason,
                "subject_name": r.subject_name,
                "certificate_path": r.certificate_path, "key_path": r.key_path,
            }))
            .collect::<Vec<_>>()
    )
}

fn print_table(reqs: &[LocalRequest]) {
    if reqs.is_empty() {
        say!("No requests yet: `enroll submit` makes one.");
        return;
    }
    let header = [
        "ID",
        "STATUS",
        "COMMON NAME",
        "SUBMITTED",
        "REQUESTED BY",
        "DOWNLOADED",
        "DOWNLOADED BY",
        "TYPE",
    ];
    let rows: Vec<[String; 8]> = reqs
        .iter()
        .map(|r| {
            let mut cn = r.common_name.clone();
            if cn.chars().count() > 28 {
                cn = format!("{}…", cn.chars().take(27).collect::<String>());
            }
            [
                r.id.to_string(),
                r.status.clone(),
                cn,
                fmt_time(r.submitted_at),
                r.requested_by.clone().unwrap_or_else(|| "-".into()),
                r.downloaded_at.map(fmt_time).unwrap_or_else(|| "-".into()),
                r.downloaded_by.clone().unwrap_or_else(|| "-".into()),
                r.enrollment_type.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    say!("{}", line(header.to_vec()));
    for row in &rows {
        say!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Refreshes the local table from the service, without installing.
fn status(ctx: &Ctx) -> Result<u8> {
    let mut state = ctx.store.load()?;
    let mut offline = None;
    if !state.requests.is_empty() {
        let api = Api::new(&ctx.pkg)?;
        for r in state.requests.iter_mut() {
            match api.state(r.id) {
                Ok(s) => {
                    merge(r, &s);
                    forget_dead_key(ctx, r);
                }
                Err(e @ ApiError::Unreachable { .. }) => {
                    offline = Some(e.to_string());
                    break;
                }
                Err(e) => eprintln!("warning: request {}: {e}", r.id),
            }
        }
        if offline.is_none() {
            ctx.store.save(&state)?;
        }
    }
    if let Some(why) = &offline {
        eprintln!("warning: showing the last known statuses: {why}");
    }
    if ctx.json {
        print_json(&table_json(&state.requests))?;
    } else {
        print_table(&state.requests);
    }
    ctx.log
        .record("status", &format!("{} requests", state.requests.len()));
    Ok(0)
}

fn get(ctx: &Ctx) -> Result<u8> {
    let mut state = ctx.store.load()?;
    if state.requests.is_empty() {
        if ctx.json {
            print_json(&json!([]))?;
        } else {
            say!("No requests yet: `enroll submit` makes one.");
        }
        return Ok(0);
    }
    let api = Api::new(&ctx.pkg)?;
    let mut failures = 0;
    let mut lines = Vec::new();
    state.requests.sort_by_key(|r| r.id);
    let own = &ctx.pkg.file.package_id;
    for r in state
        .requests
        .iter_mut()
        .filter(|r| r.package_id.as_ref().is_none_or(|p| p == own))
    {
        let s = match api.state(r.id) {
            Ok(s) => s,
            // Nothing else can work either: say it once.
            Err(e @ (ApiError::Unreachable { .. } | ApiError::Untrusted { .. })) => {
                ctx.log.record("get", &format!("failed: {e}"));
                bail!("{e}");
            }
            Err(ApiError::Problem(p)) if p.code == "auth.unauthenticated" => {
                ctx.log
                    .record("get", &format!("failed: {} ({})", p.detail, p.code));
                bail!("{} ({})", p.detail, p.code);
            }
            Err(e) => {
                failures += 1;
                lines.push(format!("request {}: {e}", r.id));
                continue;
            }
        };
        let before = r.status.clone();
        merge(r, &s);
        forget_dead_key(ctx, r);
        let line = match s.status.as_str() {
            "Approved" if s.kind == "external" => match save_external(ctx, &api, r, &s) {
                Ok(path) => format!(
                    "request {}: certificate for {} saved to {}",
                    r.id,
                    r.common_name,
                    path.display()
                ),
                Err(e) => {
                    failures += 1;
                    format!("request {}: approved, but not saved: {e:#}", r.id)
                }
            },
            // Saved earlier but the file is gone (folder cleaned, another
            // copy of the package): write it again from the service.
            "Downloaded"
                if s.kind == "external"
                    && r.certificate_path.as_ref().is_none_or(|p| !p.exists()) =>
            {
                match save_external(ctx, &api, r, &s) {
                    Ok(path) => format!(
                        "request {}: certificate for {} saved again to {}",
                        r.id,
                        r.common_name,
                        path.display()
                    ),
                    Err(e) => {
                        failures += 1;
                        format!("request {}: downloaded, but not saved: {e:#}", r.id)
                    }
                }
            }
            "Approved" if r.key_lost => format!(
                "request {}: approved, but its private key is not on this machine; submit a new request",
                r.id
            ),
            "Approved" => match install(ctx, &api, r, &s) {
                Ok(()) => format!(
                    "request {}: certificate installed in {}",
                    r.id,
                    ctx.store.dir.display()
                ),
                Err(e) => {
                    failures += 1;
                    format!("request {}: approved, but not installed: {e:#}", r.id)
                }
            },
            "Rejected" => format!(
                "request {}: rejected: {}",
                r.id,
                s.reason.as_deref().unwrap_or("no reason given")
            ),
            "Cancelled" => format!(
                "request {}: cancelled ({})",
                r.id,
                s.reason.as_deref().unwrap_or("superseded")
            ),
            other if other != before => format!("request {}: {before} -> {other}", r.id),
            other => format!("request {}: {other}", r.id),
        };
        ctx.log.record("get", &line);
        lines.push(line);
    }
    ctx.store.save(&state)?;
    if ctx.json {
        print_json(&table_json(&state.requests))?;
    } else {
        for l in &lines {
            say!("{l}");
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}

/// Installs an approved certificate with its pending key, then tells the
/// service. The pending key is removed only once the service knows.
fn install(ctx: &Ctx, api: &Api, r: &mut LocalRequest, s: &proto::RequestState) -> Result<()> {
    let cert_pem = s
        .certificate_pem
        .as_deref()
        .context("the service sent no certificate")?;
    let chain_pem = s.chain_pem.as_deref().unwrap_or_default();
    let pending = ctx.store.pending_key(r.id);
    if !pending.exists() {
        // Said once; later runs report it without failing.
        r.key_lost = true;
    }
    let key_pem = std::fs::read_to_string(&pending).with_context(|| {
        format!(
            "the private key of request {} is not on this machine ({}); it was requested \
             elsewhere or the store was wiped: submit a new request",
            r.id,
            pending.display()
        )
    })?;
    let key = enroll_pki::keys::load_key_pem(&key_pem)?;
    let info = CertInfo::from_pem(cert_pem)?;
    if info.spki_der != enroll_pki::keys::spki_der(&key) {
        bail!("the certificate does not match this request's key; refusing to install it");
    }
    write_atomic(&ctx.store.key_path(), key_pem.as_bytes(), 0o600)?;
    write_atomic(&ctx.store.cert_path(), cert_pem.as_bytes(), 0o644)?;
    write_atomic(&ctx.store.chain_path(), chain_pem.as_bytes(), 0o644)?;
    let issuing = enroll_pki::pem::decode_all(chain_pem, "CERTIFICATE")
        .ok()
        .and_then(|v| v.into_iter().next())
        .map(|der| enroll_pki::pem::encode("CERTIFICATE", &der))
        .unwrap_or_default();
    write_atomic(
        &ctx.store.fullchain_path(),
        format!("{cert_pem}{issuing}").as_bytes(),
        0o644,
    )?;
    r.certificate_path = Some(ctx.store.cert_path());
    r.key_path = Some(ctx.store.key_path());
    let done = api.installed(r.id).map_err(|e| anyhow::anyhow!("{e}"))?;
    merge(r, &done);
    let _ = std::fs::remove_file(&pending);
    Ok(())
}

/// Saves an approved external certificate, with its chain, in the
/// package's environment folder (PEM, and DER for Windows users), then
/// tells the service it was downloaded.
fn save_external(
    ctx: &Ctx,
    api: &Api,
    r: &mut LocalRequest,
    s: &proto::RequestState,
) -> Result<std::path::PathBuf> {
    let cert_pem = s
        .certificate_pem
        .as_deref()
        .context("the service sent no certificate")?;
    let chain_pem = s.chain_pem.as_deref().unwrap_or_default();
    let der = enroll_pki::inspect::first_cert_der(cert_pem)?;
    let base = format!("{}-{}", s.common_name, r.id);
    let pem_path = ctx.pkg.env_dir.join(format!("{base}.pem"));
    let der_path = ctx.pkg.env_dir.join(format!("{base}.der"));
    let cannot = || {
        format!(
            "cannot write into the environment folder {}; run enroll as a user who may write there",
            ctx.pkg.env_dir.display()
        )
    };
    write_atomic(
        &pem_path,
        format!("{cert_pem}{chain_pem}").as_bytes(),
        0o644,
    )
    .with_context(cannot)?;
    write_atomic(&der_path, &der, 0o644).with_context(cannot)?;
    r.certificate_path = Some(pem_path.clone());
    if s.status == "Approved" {
        let done = api.downloaded(r.id).map_err(|e| anyhow::anyhow!("{e}"))?;
        merge(r, &done);
    }
    Ok(pem_path)
}

fn test(ctx: &Ctx) -> Result<u8> {
    let outcome = testconn::run(&ctx.pkg, &ctx.store);
    let code = outcome.exit_code();
    ctx.log.record(
        "test",
        &format!("{}: {}", outcome.name(), outcome.message()),
    );
    if ctx.json {
        print_json(&json!({
            "success": code == 0, "outcome": outcome.name(), "exit_code": code,
            "message": outcome.message(),
        }))?;
    } else if code == 0 {
        say!("{}", outcome.message());
    } else {
        eprintln!("test failed ({}): {}", outcome.name(), outcome.message());
    }
    Ok(code)
}

fn subject_name(ctx: &Ctx, id: i64) -> Result<u8> {
    let mut state = ctx.store.load()?;
    let known = state.requests.iter().position(|r| r.id == id);
    let name = match known
        .and_then(|i| state.requests.get(i))
        .and_then(|r| r.subject_name.clone())
    {
        Some(n) => n,
        None => {
            let api = Api::new(&ctx.pkg)?;
            let s = api.state(id).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(r) = known.and_then(|i| state.requests.get_mut(i)) {
                merge(r, &s);
                ctx.store.save(&state)?;
            }
            s.subject_name
        }
    };
    let copied = copy_to_clipboard(&name);
    if ctx.json {
        print_json(&json!({"id": id, "subject_name": name, "copied_to_clipboard": copied}))?;
    } else {
        say!("{name}");
        if copied {
            eprintln!("(copied to the clipboard)");
        }
    }
    ctx.log.record("subject-name", &format!("request {id}"));
    Ok(0)
}

/// Tries the platform's clipboard tools; never fails for lack of one.
fn copy_to_clipboard(text: &str) -> bool {
    let candidates: &[(&str, &[&str], Option<&str>)] = &[
        ("wl-copy", &[], Some("WAYLAND_DISPLAY")),
        ("xclip", &["-selection", "clipboard"], Some("DISPLAY")),
        ("xsel", &["--clipboard", "--input"], Some("DISPLAY")),
        ("pbcopy", &[], None),
        ("clip.exe", &[], None),
    ];
    for (cmd, args, needs) in candidates {
        if let Some(var) = needs
            && std::env::var_os(var).is_none()
        {
            continue;
        }
        if cfg!(not(target_os = "macos")) && *cmd == "pbcopy" {
            continue;
        }
        let child = std::process::Command::new(cmd)
            .args(*args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            use std::io::Write;
            let wrote = child
                .stdin
                .take()
                .map(|mut s| s.write_all(text.as_bytes()).is_ok())
                .unwrap_or(false);
            if wrote && child.wait().map(|s| s.success()).unwrap_or(false) {
                return true;
            }
        }
    }
    false
}
