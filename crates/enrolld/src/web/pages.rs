//! The pages: each handler takes the signed-in [`Session`], calls one use
//! case with its actor, and renders the answer. View models hold text
//! only; templates escape all of it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use enroll_core::{EnrollmentType, OrgCode, RequestId, RequestKind, RequestStatus, Role};
use enroll_pki::inspect::{CertSummary, describe};
use enroll_pki::lint::Level;
use enroll_pki::pkcs12::Protection;
use enroll_pki::revocation::Reason;
use enroll_ra::{OperatorSpec, PackageSpec, RaError};
use enroll_store::{AuditFilter, RequestFilter, RequestRecord};
use serde::Deserialize;

use super::{CheckedForm, Session, WebError, WebResult, WebState, WithToken};
use crate::package::PackageFiles;

const PAGE: u32 = 50;

/// The header every page shows: who is signed in, and the menu.
pub struct Nav {
    pub who: String,
    pub role: String,
    pub admin: bool,
    pub csrf: String,
    pub current: &'static str,
}

impl Nav {
    fn of(s: &Session, current: &'static str) -> Nav {
        let name = s.actor.name.strip_prefix("web:").unwrap_or(&s.actor.name);
        let role = match &s.actor.role {
            Role::CentralAdmin => "central administrator".to_owned(),
            Role::OrgManager(o) => format!("manager of {o}"),
            Role::Client(o) => format!("client of {o}"),
        };
        Nav {
            who: name.to_owned(),
            role,
            admin: s.is_admin(),
            csrf: s.csrf.clone(),
            current,
        }
    }
}

fn html(t: &impl Template) -> WebResult<Response> {
    t.render().map(|h| Html(h).into_response()).map_err(|e| {
        tracing::error!(error = %e, "cannot render a page");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The service failed",
            "the page could not be rendered",
        )
    })
}

/// `2026-12-04 10:15 UTC`: precise enough to act on, short enough to scan.
fn when(t: enroll_core::UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| t.0.to_string())
}

fn or_dash(v: &Option<String>) -> String {
    v.clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "—".into())
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

fn parse_opt<T>(raw: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> WebResult<Option<T>> {
    if raw.is_empty() || raw == "any" {
        return Ok(None);
    }
    parse(raw)
        .map(Some)
        .ok_or_else(|| WebError::bad_request(format!("{raw:?} is not a valid {what}")))
}

fn parse_id(raw: &str) -> WebResult<RequestId> {
    raw.parse::<i64>()
        .map(RequestId)
        .map_err(|_| WebError::bad_request(format!("{raw:?} is not a request id")))
}

// ---------- home ----------

pub async fn home(_s: Session) -> Redirect {
    Redirect::to("/requests")
}

// ---------- the queue ----------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct QueueQuery {
    status: Option<String>,
    org: String,
    kind: String,
    q: String,
    before: String,
}

pub struct QueueRow {
    id: i64,
    status: &'static str,
    kind: &'static str,
    org: String,
    common_name: String,
    requester: String,
    description: String,
    submitted: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    nav: Nav,
    rows: Vec<QueueRow>,
    orgs: Vec<(String, String)>,
    status: String,
    org: String,
    kind: String,
    q: String,
    statuses: Vec<&'static str>,
    kinds: Vec<&'static str>,
    next: Option<String>,
    first_page: Option<String>,
}

pub async fn queue(
    State(web): State<WebState>,
    s: Session,
    Query(q): Query<QueueQuery>,
) -> WebResult<Response> {
    // The queue is of Pending requests unless asked otherwise.
    let status_raw = q.status.clone().unwrap_or_else(|| "Pending".into());
    let status = parse_opt(&status_raw, "status", |v| v.parse::<RequestStatus>().ok())?;
    let org = parse_opt(&q.org, "organization code", |v| OrgCode::parse(v).ok())?;
    let kind = parse_opt(&q.kind, "kind", RequestKind::parse)?;
    let before = parse_opt(&q.before, "page position", |v| {
        v.parse::<i64>().ok().map(RequestId)
    })?;
    let text = q.q.trim();
    if text.chars().count() > 100 {
        return Err(WebError::bad_request("search for at most 100 characters"));
    }
    let filter = RequestFilter {
        status,
        org,
        kinds: kind.into_iter().collect(),
        text: (!text.is_empty()).then(|| text.to_owned()),
        before,
        // One more than a page tells whether there is a next one.
        limit: PAGE + 1,
    };
    let mut list = web.ra.list(&s.actor, filter).await?;
    let more = list.len() > PAGE as usize;
    list.truncate(PAGE as usize);
    let status_value = status.map(|s| s.as_str()).unwrap_or("any");
    let pairs = |before: &str| {
        query_string(&[
            ("status", status_value),
            ("org", &q.org),
            ("kind", &q.kind),
            ("q", text),
            ("before", before),
        ])
    };
    let next = more
        .then(|| {
            list.last()
                .map(|r| format!("/requests?{}", pairs(&r.id.0.to_string())))
        })
        .flatten();
    let first_page = before.map(|_| format!("/requests?{}", pairs("")));
    let orgs = web
        .ra
        .list_orgs(&s.actor)
        .await?
        .into_iter()
        .map(|o| (o.code.as_str().to_owned(), o.name))
        .collect();
    let page = QueuePage {
        nav: Nav::of(&s, "queue"),
        rows: list.iter().map(row).collect(),
        orgs,
        status: status_value.to_owned(),
        org: q.org.clone(),
        kind: q.kind.clone(),
        q: text.to_owned(),
        statuses: RequestStatus::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: ["workstation", "server", "external", "mobile"].to_vec(),
        next,
        first_page,
    };
    html(&page)
}

fn row(r: &RequestRecord) -> QueueRow {
    let mut description = r.details.description.clone().unwrap_or_default();
    if description.chars().count() > 80 {
        description = description.chars().take(79).collect::<String>() + "…";
    }
    QueueRow {
        id: r.id.0,
        status: r.status.as_str(),
        kind: r.kind.as_str(),
        org: r.subject.organization.as_str().to_owned(),
        common_name: r.subject.common_name.clone(),
        requester: or_dash(&r.details.requester),
        description,
        submitted: when(r.submitted_at),
    }
}

// ---------- one request ----------

pub struct Field {
    label: &'static str,
    value: String,
}

fn field(label: &'static str, value: impl Into<String>) -> Field {
    let value = value.into();
    Field {
        label,
        value: if value.is_empty() {
            "—".into()
        } else {
            value
        },
    }
}

pub struct ExtRow {
    name: String,
    critical: bool,
    value: String,
}

pub struct CertView {
    fields: Vec<Field>,
    extensions: Vec<ExtRow>,
    pem: String,
}

fn cert_view(s: &CertSummary, der: &[u8]) -> CertView {
    CertView {
        fields: vec![
            field("Subject", s.subject.clone()),
            field("Issuer", s.issuer.clone()),
            field("Serial", s.serial.clone()),
            field("Valid from", when(s.not_before)),
            field("Valid until", when(s.not_after)),
            field("Key", s.key.clone()),
        ],
        extensions: s
            .extensions
            .iter()
            .map(|e| ExtRow {
                name: e.name.clone(),
                critical: e.critical,
                value: e.value.clone(),
            })
            .collect(),
        pem: enroll_pki::pem::encode("CERTIFICATE", der),
    }
}

pub struct LintRow {
    level: &'static str,
    code: &'static str,
    message: String,
}

pub struct HistoryRow {
    at: String,
    action: String,
    actor: String,
    role: String,
    source: String,
    change: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    nav: Nav,
    id: i64,
    status: &'static str,
    kind: &'static str,
    done: String,
    request_fields: Vec<Field>,
    client_details: Vec<Field>,
    decision: Vec<Field>,
    csr_fields: Vec<Field>,
    csr_pem: String,
    preview: Option<CertView>,
    lint: Vec<LintRow>,
    lint_errors: bool,
    preview_error: String,
    certificate: Option<CertView>,
    history: Vec<HistoryRow>,
    can_decide: bool,
    can_revoke: bool,
    reasons: Vec<&'static str>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DoneQuery {
    done: String,
}

pub async fn request(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    Query(dq): Query<DoneQuery>,
) -> WebResult<Response> {
    let id = parse_id(&id)?;
    let (view, history) = web.ra.show(&s.actor, id, Some(&s.source)).await?;
    let r = &view.request;
    let org_name = web
        .ra
        .org(&s.actor, &r.subject.organization)
        .await
        .map(|o| o.name)
        .unwrap_or_default();
    let subj = &r.subject;
    let (ku, eku) = match (r.kind, r.key_desc.starts_with("RSA")) {
        (RequestKind::External, true) => (
            "digitalSignature, keyEncipherment, dataEncipherment",
            "serverAuth",
        ),
        (RequestKind::External, false) => ("digitalSignature", "serverAuth"),
        (_, true) => (
            "digitalSignature, keyEncipherment, dataEncipherment",
            "clientAuth",
        ),
        (_, false) => ("digitalSignature", "clientAuth"),
    };
    let mut names: Vec<String> = Vec::new();
    if r.kind == RequestKind::External {
        names.push(format!("DNS:{}", subj.common_name));
    }
    for n in r.alt_names.iter().map(|n| n.to_text()) {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if let Some(e) = &subj.email {
        names.push(format!("email:{e}"));
    }
    let request_fields = vec![
        field(
            "Organization",
            format!("[{}, {}]", subj.organization, org_name),
        ),
        field("Country", subj.country.as_str()),
        field("Locality / City", or_dash(&subj.locality)),
        field("State / Province", or_dash(&subj.state)),
        field("Email", or_dash(&subj.email)),
        field("Key", r.key_desc.clone()),
        field("Organization unit", subj.organization_unit.clone()),
        field("Key usage", ku),
        field("Extended key usage", eku),
        field("Common name", subj.common_name.clone()),
        field("Alternative names", names.join(", ")),
        field("Subject name", subj.subject_name()),
    ];
    let d = &r.details;
    let client_details = vec![
        field("Fully qualified name", or_dash(&d.fqdn)),
        field("MAC address", or_dash(&d.mac)),
        field("NIC id", or_dash(&d.nic_id)),
        field("Processor id", or_dash(&d.processor_id)),
        field("OS version", or_dash(&d.os_version)),
        field("OS type", or_dash(&d.os_type)),
        field("Requester", or_dash(&d.requester)),
        field("IP address", or_dash(&r.source_addr)),
        field("Enrollment type", r.enrollment_type.as_str()),
        field("Phone", or_dash(&d.phone)),
        field("Description", or_dash(&d.description)),
        field("Package", r.package_id.clone()),
        field("Environment", r.environment.clone()),
    ];
    let mut decision = vec![field("Submitted", when(r.submitted_at))];
    if let Some(at) = r.decided_at {
        decision.push(field("Decided", when(at)));
        decision.push(field("Decided by", or_dash(&r.decided_by)));
    }
    if let Some(reason) = &r.reason {
        decision.push(field("Reason", reason.clone()));
    }
    if let Some(at) = r.downloaded_at {
        decision.push(field("Downloaded", when(at)));
        decision.push(field("Downloaded by", or_dash(&r.downloaded_by)));
    }
    let csr_fields = match enroll_pki::intake::read_stored(&r.csr_der) {
        Ok(c) => {
            let mut f = vec![
                field(
                    "Subject (as requested)",
                    c.subject
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                field("Key", c.key.describe()),
                field("Signature", c.signature_algorithm),
                field("Key usage requested", c.key_usage.join(", ")),
                field(
                    "Extended key usage requested",
                    c.extended_key_usage
                        .iter()
                        .map(|o| match o.as_str() {
                            "1.3.6.1.5.5.7.3.1" => "serverAuth".to_owned(),
                            "1.3.6.1.5.5.7.3.2" => "clientAuth".to_owned(),
                            other => other.to_owned(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ];
            let mut alt: Vec<String> = c.dns_names.iter().map(|d| format!("DNS:{d}")).collect();
            alt.extend(c.ip_addresses.iter().map(|i| format!("IP:{i}")));
            f.push(field("Names requested", alt.join(", ")));
            f
        }
        Err(e) => vec![field("Parsed request", format!("not readable: {e}"))],
    };
    let pending = r.status == RequestStatus::Pending;
    let (preview, lint, preview_error) = if pending {
        match web.ra.preview(&s.actor, id, Some(&s.source)).await {
            Ok(p) => match describe(&p.der) {
                Ok(sum) => (
                    Some(cert_view(&sum, &p.der)),
                    p.findings
                        .iter()
                        .map(|f| LintRow {
                            level: match f.level {
                                Level::Error => "error",
                                Level::Warning => "warning",
                            },
                            code: f.code,
                            message: f.message.clone(),
                        })
                        .collect(),
                    String::new(),
                ),
                Err(e) => (None, Vec::new(), e.to_string()),
            },
            Err(RaError::Pki(e)) => (None, Vec::new(), e.to_string()),
            Err(e) => return Err(e.into()),
        }
    } else {
        (None, Vec::new(), String::new())
    };
    let certificate = view
        .certificate
        .as_ref()
        .and_then(|c| describe(&c.der).ok().map(|sum| (sum, c)))
        .map(|(sum, c)| {
            let mut v = cert_view(&sum, &c.der);
            if let Some(at) = c.revoked_at {
                v.fields.push(field(
                    "Revoked",
                    format!(
                        "{} ({})",
                        when(at),
                        c.revocation_reason.as_deref().unwrap_or("unspecified")
                    ),
                ));
            }
            v
        });
    let history = history
        .iter()
        .map(|h| HistoryRow {
            at: when(h.at),
            action: h.action.clone(),
            actor: h.actor.clone(),
            role: h.role.clone(),
            source: h.source_addr.clone().unwrap_or_else(|| "local".into()),
            change: match (h.from_status, h.to_status) {
                (Some(f), Some(t)) => format!("{f} → {t}"),
                (None, Some(t)) => t.to_string(),
                _ => String::new(),
            },
            detail: h.detail.clone().unwrap_or_default(),
        })
        .collect();
    let done = match dq.done.as_str() {
        "approved" => format!("Request {id} approved: the certificate is issued."),
        "rejected" => {
            format!("Request {id} rejected: the requester sees the reason at the next refresh.")
        }
        "revoked" => format!("Request {id} revoked: the CRL and OCSP say so now."),
        _ => String::new(),
    };
    let page = RequestPage {
        nav: Nav::of(&s, "queue"),
        id: r.id.0,
        status: r.status.as_str(),
        kind: r.kind.as_str(),
        done,
        request_fields,
        client_details,
        decision,
        csr_fields,
        csr_pem: enroll_pki::pem::encode("CERTIFICATE REQUEST", &r.csr_der),
        preview,
        lint_errors: lint.iter().any(|l| l.level == "error"),
        lint,
        preview_error,
        can_decide: pending,
        can_revoke: matches!(
            r.status,
            RequestStatus::Approved | RequestStatus::Installed | RequestStatus::Downloaded
        ),
        certificate,
        history,
        reasons: revocation_reasons(),
    };
    html(&page)
}

fn revocation_reasons() -> Vec<&'static str> {
    Reason::ALL
        .iter()
        .filter(|r| **r != Reason::CertificateHold)
        .map(|r| r.name())
        .collect()
}

#[derive(Debug, Deserialize)]
pub struct TokenOnly {
    csrf: String,
}

impl WithToken for TokenOnly {
    fn token(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

impl WithToken for ReasonForm {
    fn token(&self) -> &str {
        &self.csrf
    }
}

pub async fn approve(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(_f): CheckedForm<TokenOnly>,
) -> WebResult<Redirect> {
    let id = parse_id(&id)?;
    web.ra.approve(&s.actor, id, Some(&s.source)).await?;
    Ok(Redirect::to(&format!("/requests/{id}?done=approved")))
}

pub async fn reject(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<ReasonForm>,
) -> WebResult<Redirect> {
    let id = parse_id(&id)?;
    web.ra
        .reject(&s.actor, id, f.reason.trim(), Some(&s.source))
        .await?;
    Ok(Redirect::to(&format!("/requests/{id}?done=rejected")))
}

pub async fn revoke(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<ReasonForm>,
) -> WebResult<Redirect> {
    let id = parse_id(&id)?;
    let reason = parse_reason(&f.reason)?;
    web.ra.revoke(&s.actor, id, reason, Some(&s.source)).await?;
    Ok(Redirect::to(&format!("/requests/{id}?done=revoked")))
}

fn parse_reason(raw: &str) -> WebResult<Reason> {
    Reason::parse(raw).ok_or_else(|| {
        WebError::bad_request(format!(
            "{raw:?} is not an RFC 5280 revocation reason; choose one from the list"
        ))
    })
}

// ---------- organizations ----------

pub struct OrgRow {
    code: String,
    name: String,
    country: String,
    created: String,
}

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    nav: Nav,
    orgs: Vec<OrgRow>,
    done: String,
}

pub async fn orgs(
    State(web): State<WebState>,
    s: Session,
    Query(dq): Query<DoneQuery>,
) -> WebResult<Response> {
    if !s.is_admin() {
        // The use case would show a manager their own organization only;
        // the page is the central administrator's, and refusing is audited.
        web.ra
            .record_refusal(&s.actor, Some(&s.source), "orgs", "GET /orgs")
            .await?;
        return Err(not_yours());
    }
    let orgs = web
        .ra
        .list_orgs(&s.actor)
        .await?
        .into_iter()
        .map(|o| OrgRow {
            code: o.code.as_str().to_owned(),
            name: o.name,
            country: o.country.as_str().to_owned(),
            created: when(o.created_at),
        })
        .collect();
    let done = if dq.done.is_empty() {
        String::new()
    } else {
        format!("Organization {} added.", dq.done)
    };
    html(&OrgsPage {
        nav: Nav::of(&s, "orgs"),
        orgs,
        done,
    })
}

fn not_yours() -> WebError {
    WebError::new(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "this page is the central administrator's",
    )
}

#[derive(Debug, Deserialize)]
pub struct OrgForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    country: String,
}

impl WithToken for OrgForm {
    fn token(&self) -> &str {
        &self.csrf
    }
}

pub async fn add_org(
    State(web): State<WebState>,
    s: Session,
    CheckedForm(f): CheckedForm<OrgForm>,
) -> WebResult<Redirect> {
    let org = web
        .ra
        .add_org(
            &s.actor,
            &f.code.trim().to_ascii_uppercase(),
            f.name.trim(),
            &f.country.trim().to_ascii_uppercase(),
        )
        .await?;
    Ok(Redirect::to(&format!(
        "/orgs?{}",
        query_string(&[("done", org.code.as_str())])
    )))
}

// ---------- client packages ----------

pub struct PackageRow {
    id: String,
    org: String,
    environment: String,
    enrollment_type: &'static str,
    server: bool,
    allow_external: bool,
    url: String,
    created: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    nav: Nav,
    packages: Vec<PackageRow>,
    orgs: Vec<(String, String)>,
    default_url: String,
    done: String,
}

pub async fn packages(
    State(web): State<WebState>,
    s: Session,
    Query(dq): Query<DoneQuery>,
) -> WebResult<Response> {
    let list = web.ra.list_packages(&s.actor).await?;
    let orgs = web
        .ra
        .list_orgs(&s.actor)
        .await?
        .into_iter()
        .map(|o| (o.code.as_str().to_owned(), o.name))
        .collect();
    let packages = list
        .into_iter()
        .rev()
        .map(|p| PackageRow {
            id: p.id,
            org: p.org.as_str().to_owned(),
            environment: p.environment,
            enrollment_type: p.enrollment_type.as_str(),
            server: p.server,
            allow_external: p.allow_external,
            url: p.url,
            created: when(p.created_at),
            revoked: p.revoked_at.map(when).unwrap_or_default(),
        })
        .collect();
    let done = if dq.done.is_empty() {
        String::new()
    } else {
        format!(
            "Package {} revoked: its copies can no longer submit.",
            dq.done
        )
    };
    html(&PackagesPage {
        nav: Nav::of(&s, "packages"),
        packages,
        orgs,
        default_url: web.public_url.clone(),
        done,
    })
}

#[derive(Debug, Deserialize)]
pub struct PackageForm {
    csrf: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    enrollment_type: String,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    allow_external: Option<String>,
    #[serde(default)]
    url: String,
}

impl WithToken for PackageForm {
    fn token(&self) -> &str {
        &self.csrf
    }
}

/// The package as a download: the server keeps only the credential's
/// hash, so this response is the one chance to hand it out.
fn archive_response(
    web: &WebState,
    created: &enroll_ra::NewPackage,
    org: &enroll_store::OrgRecord,
) -> WebResult<Response> {
    let top = format!(
        "enroll-{}-{}",
        created.package.org, created.package.environment
    );
    let archive = PackageFiles::new(created, org, web.ra.ca().root_pem())
        .and_then(|f| f.archive(&top, &created.package.url))
        .map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "cannot build a package archive");
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The package could not be built",
                "the service failed to build the archive; the operator's log has the details",
            )
        })?;
    let mut resp = (StatusCode::OK, archive).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{top}.tar.gz\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

pub async fn create_package(
    State(web): State<WebState>,
    s: Session,
    CheckedForm(f): CheckedForm<PackageForm>,
) -> WebResult<Response> {
    let org = OrgCode::parse(&f.org.trim().to_ascii_uppercase())
        .map_err(|e| WebError::bad_request(format!("organization: {}", e.reason)))?;
    let enrollment_type = EnrollmentType::parse(&f.enrollment_type)
        .filter(|t| *t != EnrollmentType::External)
        .ok_or_else(|| WebError::bad_request("choose where certificates go: machine or user"))?;
    let created = web
        .ra
        .create_package(
            &s.actor,
            PackageSpec {
                org: org.clone(),
                environment: f.environment.trim().to_owned(),
                enrollment_type,
                server: f.server.is_some(),
                allow_external: f.allow_external.is_some(),
                url: f.url.trim().to_owned(),
            },
        )
        .await?;
    let orgrec = web.ra.org(&s.actor, &org).await?;
    match archive_response(&web, &created, &orgrec) {
        Ok(r) => Ok(r),
        Err(e) => {
            // Nobody holds this credential: it must not stay usable.
            let _ = web.ra.revoke_package(&s.actor, &created.package.id).await;
            Err(e)
        }
    }
}

pub async fn rotate_package(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(_f): CheckedForm<TokenOnly>,
) -> WebResult<Response> {
    let rotated = web.ra.rotate_package(&s.actor, &id).await?;
    let orgrec = web.ra.org(&s.actor, &rotated.package.org).await?;
    archive_response(&web, &rotated, &orgrec)
}

pub async fn revoke_package(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(_f): CheckedForm<TokenOnly>,
) -> WebResult<Redirect> {
    web.ra.revoke_package(&s.actor, &id).await?;
    Ok(Redirect::to(&format!(
        "/packages?{}",
        query_string(&[("done", &id)])
    )))
}

// ---------- managers ----------

pub struct ManagerRow {
    id: i64,
    name: String,
    role: String,
    serial: String,
    created: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "managers.html")]
struct ManagersPage {
    nav: Nav,
    managers: Vec<ManagerRow>,
    orgs: Vec<(String, String)>,
    reasons: Vec<&'static str>,
    done: String,
}

pub async fn managers(
    State(web): State<WebState>,
    s: Session,
    Query(dq): Query<DoneQuery>,
) -> WebResult<Response> {
    let list = web.ra.list_operators(&s.actor).await?;
    let orgs = web
        .ra
        .list_orgs(&s.actor)
        .await?
        .into_iter()
        .map(|o| (o.code.as_str().to_owned(), o.name))
        .collect();
    let managers = list
        .into_iter()
        .rev()
        .map(|o| ManagerRow {
            id: o.id,
            name: o.name,
            role: match (o.role.as_str(), o.org) {
                ("central_admin", _) => "central administrator".into(),
                (_, Some(org)) => format!("manager of {org}"),
                (r, None) => r.to_owned(),
            },
            serial: o.cert_serial,
            created: when(o.created_at),
            revoked: o.revoked_at.map(when).unwrap_or_default(),
        })
        .collect();
    let done = if dq.done.is_empty() {
        String::new()
    } else {
        format!(
            "Operator {} revoked: their certificate is on the CRL now.",
            dq.done
        )
    };
    html(&ManagersPage {
        nav: Nav::of(&s, "managers"),
        managers,
        orgs,
        reasons: revocation_reasons(),
        done,
    })
}

#[derive(Debug, Deserialize)]
pub struct ManagerForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    org: String,
    #[serde(default)]
    legacy: Option<String>,
}

impl WithToken for ManagerForm {
    fn token(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "manager_issued.html")]
struct IssuedPage {
    nav: Nav,
    id: i64,
    name: String,
    role: String,
    passphrase: String,
}

pub async fn issue_manager(
    State(web): State<WebState>,
    s: Session,
    CheckedForm(f): CheckedForm<ManagerForm>,
) -> WebResult<Response> {
    let role = match f.role.as_str() {
        "central_admin" => Role::CentralAdmin,
        "org_manager" => Role::OrgManager(
            OrgCode::parse(&f.org.trim().to_ascii_uppercase())
                .map_err(|e| WebError::bad_request(format!("organization: {}", e.reason)))?,
        ),
        _ => {
            return Err(WebError::bad_request(
                "choose a role: organization manager or central administrator",
            ));
        }
    };
    let issued = web
        .ra
        .issue_operator(
            &s.actor,
            OperatorSpec {
                name: f.name.trim().to_owned(),
                role: role.clone(),
                protection: if f.legacy.is_some() {
                    Protection::Legacy
                } else {
                    Protection::Modern
                },
                pickup: true,
            },
            Some(&s.source),
        )
        .await?;
    html(&IssuedPage {
        nav: Nav::of(&s, "managers"),
        id: issued.record.id,
        name: issued.record.name.clone(),
        role: match role {
            Role::OrgManager(o) => format!("manager of {o}"),
            _ => "central administrator".into(),
        },
        passphrase: issued.passphrase.clone(),
    })
}

pub async fn manager_credential(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(_f): CheckedForm<TokenOnly>,
) -> WebResult<Response> {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::bad_request(format!("{id:?} is not an operator id")))?;
    let (op, p12) = web
        .ra
        .take_operator_credential(&s.actor, id, Some(&s.source))
        .await?;
    let mut resp = (StatusCode::OK, p12).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pkcs12"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.p12\"", op.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

pub async fn revoke_manager(
    State(web): State<WebState>,
    s: Session,
    Path(id): Path<String>,
    CheckedForm(f): CheckedForm<ReasonForm>,
) -> WebResult<Redirect> {
    let id: i64 = id
        .parse()
        .map_err(|_| WebError::bad_request(format!("{id:?} is not an operator id")))?;
    let reason = parse_reason(&f.reason)?;
    let op = web
        .ra
        .revoke_operator(&s.actor, id, reason, Some(&s.source))
        .await?;
    Ok(Redirect::to(&format!(
        "/managers?{}",
        query_string(&[("done", &op.name)])
    )))
}

// ---------- the audit trail ----------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AuditQuery {
    org: String,
    request: String,
    actor: String,
    action: String,
    before: String,
}

pub struct AuditRow {
    id: i64,
    at: String,
    org: String,
    actor: String,
    role: String,
    source: String,
    action: String,
    request: Option<i64>,
    change: String,
    detail: String,
    refused: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    rows: Vec<AuditRow>,
    orgs: Vec<(String, String)>,
    org: String,
    request: String,
    actor: String,
    action: String,
    next: Option<String>,
    first_page: Option<String>,
}

pub async fn audit(
    State(web): State<WebState>,
    s: Session,
    Query(q): Query<AuditQuery>,
) -> WebResult<Response> {
    let org = parse_opt(&q.org, "organization code", |v| OrgCode::parse(v).ok())?;
    let request_id = parse_opt(q.request.trim(), "request id", |v| {
        v.parse::<i64>().ok().map(RequestId)
    })?;
    let before = parse_opt(&q.before, "page position", |v| v.parse::<i64>().ok())?;
    if q.actor.chars().count() > 100 || q.action.chars().count() > 100 {
        return Err(WebError::bad_request(
            "filter texts are at most 100 characters",
        ));
    }
    let mut list = web
        .ra
        .audit_trail(
            &s.actor,
            AuditFilter {
                org,
                request_id,
                actor: Some(q.actor.trim().to_owned()).filter(|a| !a.is_empty()),
                action: Some(q.action.trim().to_owned()).filter(|a| !a.is_empty()),
                before,
                limit: PAGE + 1,
            },
        )
        .await?;
    let more = list.len() > PAGE as usize;
    list.truncate(PAGE as usize);
    let pairs = |before: &str| {
        query_string(&[
            ("org", &q.org),
            ("request", q.request.trim()),
            ("actor", q.actor.trim()),
            ("action", q.action.trim()),
            ("before", before),
        ])
    };
    let next = more
        .then(|| {
            list.last()
                .map(|e| format!("/audit?{}", pairs(&e.id.to_string())))
        })
        .flatten();
    let first_page = before.map(|_| format!("/audit?{}", pairs("")));
    let rows = list
        .into_iter()
        .map(|e| {
            let ev = e.event;
            AuditRow {
                id: e.id,
                at: when(ev.at),
                org: ev
                    .org
                    .map(|o| o.as_str().to_owned())
                    .unwrap_or_else(|| "—".into()),
                refused: ev.action.starts_with("refused:"),
                actor: ev.actor,
                role: ev.role,
                source: ev.source_addr.unwrap_or_else(|| "local".into()),
                action: ev.action,
                request: ev.request_id.map(|r| r.0),
                change: match (ev.from_status, ev.to_status) {
                    (Some(f), Some(t)) => format!("{f} → {t}"),
                    (None, Some(t)) => t.to_string(),
                    _ => String::new(),
                },
                detail: ev.detail.unwrap_or_default(),
            }
        })
        .collect();
    let orgs = web
        .ra
        .list_orgs(&s.actor)
        .await?
        .into_iter()
        .map(|o| (o.code.as_str().to_owned(), o.name))
        .collect();
    html(&AuditPage {
        nav: Nav::of(&s, "audit"),
        rows,
        orgs,
        org: q.org.clone(),
        request: q.request.trim().to_owned(),
        actor: q.actor.trim().to_owned(),
        action: q.action.trim().to_owned(),
        next,
        first_page,
    })
}

// ---------- assets ----------

pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    )
}

pub async fn icon() -> Response {
    asset("image/svg+xml", include_str!("../../static/icon.svg"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}
