//! The client API under `/api/v1/`, and the mapping of use-case errors to
//! `application/problem+json`. HTTP types stop here.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use enroll_core::{ClientDetails, RequestId, SubjectInput};
use enroll_pki::{CertInfo, pem};
use enroll_proto as proto;
use enroll_ra::{PackageSession, RaError, RequestView, Submission, Submitted};

use crate::app::AppRa;
use crate::tls::ConnInfo;

/// Request bodies are small JSON documents around a CSR of at most 64 KiB.
pub const MAX_BODY: usize = 256 * 1024;

pub type Shared = Arc<AppRa>;

pub fn router(ra: Shared) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/requests", post(submit))
        .route("/api/v1/requests/{id}", get(request_state))
        .route("/api/v1/external-requests", post(submit_external))
        .route("/api/v1/requests/{id}/installed", post(installed))
        .route("/api/v1/requests/{id}/downloaded", post(installed))
        .route("/api/v1/test", get(test))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(problem_for_rejections))
        .with_state(ra)
}

/// An error on its way to becoming a problem document.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    problems: Vec<proto::ProblemItem>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: String) -> Self {
        ApiError {
            status,
            code,
            title,
            detail,
            problems: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            // Codes only: the detail may quote what the client sent.
            let problems: Vec<&str> = self.problems.iter().map(|p| p.code.as_str()).collect();
            tracing::info!(
                status = self.status.as_u16(),
                code = self.code,
                problems = %problems.join(","),
                "refused"
            );
        }
        let body = proto::Problem {
            type_: format!("urn:enroll:problem:{}", self.code),
            title: self.title.into(),
            status: self.status.as_u16(),
            code: self.code.into(),
            detail: self.detail,
            problems: self.problems,
        };
        let mut resp = (
            self.status,
            serde_json::to_string(&body).unwrap_or_default(),
        )
            .into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"enroll\""),
            );
        }
        resp
    }
}

impl From<RaError> for ApiError {
    fn from(e: RaError) -> Self {
        use StatusCode as S;
        match e {
            RaError::Unauthenticated(m) => ApiError::new(
                S::UNAUTHORIZED,
                "auth.unauthenticated",
                "Not authenticated",
                m,
            ),
            RaError::Forbidden(e) => {
                ApiError::new(S::FORBIDDEN, "auth.forbidden", "Forbidden", e.to_string())
            }
            RaError::NotFound(m) => ApiError::new(
                S::NOT_FOUND,
                "request.not-found",
                "Not found",
                format!("{m} not found; check the request id"),
            ),
            RaError::InvalidStatus(e) => ApiError::new(
                S::CONFLICT,
                "request.invalid-status",
                "Not possible in this status",
                e.to_string(),
            ),
            RaError::Conflict(m) => ApiError::new(S::CONFLICT, "request.conflict", "Conflict", m),
            RaError::Duplicate(m) => ApiError::new(S::CONFLICT, "duplicate", "Already exists", m),
            RaError::Policy(v) => {
                let mut e = ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "request.policy",
                    "The request breaks the policy",
                    v.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                e.problems = v
                    .into_iter()
                    .map(|p| proto::ProblemItem {
                        code: p.field.into(),
                        message: p.reason,
                    })
                    .collect();
                e
            }
            RaError::Csr(c) => {
                let code = c.0.first().map(|p| p.code).unwrap_or("csr.malformed");
                let mut e = ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    code,
                    "The certificate request was refused",
                    c.to_string(),
                );
                e.problems =
                    c.0.into_iter()
                        .map(|p| proto::ProblemItem {
                            code: p.code.into(),
                            message: p.message,
                        })
                        .collect();
                e
            }
            e @ (RaError::Store(_) | RaError::Pki(_)) => {
                tracing::error!(error = %crate::chain(&e), "internal error");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "the service failed; the operator's log has the details".into(),
                )
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// axum's own rejections (body too large, wrong method, bad content) come
/// as plain text; clients get a problem document like everywhere else.
async fn problem_for_rejections(resp: Response) -> Response {
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.as_u16() < 400 || is_problem {
        return resp;
    }
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "request.too-large",
            format!("the request body is larger than {} KiB", MAX_BODY / 1024),
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "request.method",
            "this endpoint does not accept that HTTP method".to_owned(),
        ),
        _ => (
            "request.malformed",
            "the request could not be read".to_owned(),
        ),
    };
    ApiError::new(status, code, "Request refused", detail).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such endpoint; the client API is under /api/v1/".into(),
    )
}

async fn authenticate(ra: &AppRa, headers: &HeaderMap) -> ApiResult<PackageSession> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.unauthenticated",
                "Not authenticated",
                "send the package credential as `Authorization: Bearer …`".into(),
            )
        })?;
    Ok(ra.authenticate_package(token).await?)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.malformed",
            "Malformed request",
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

fn parse_id(raw: &str) -> ApiResult<RequestId> {
    raw.parse::<i64>().map(RequestId).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "request.malformed",
            "Malformed request",
            format!("{raw:?} is not a request id; ids are numbers"),
        )
    })
}

async fn submit(
    State(ra): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let session = authenticate(&ra, &headers).await?;
    let req: proto::SubmitRequest = parse_json(&body)?;
    let d = req.details;
    let sub = Submission {
        subject: SubjectInput {
            common_name: req.subject.common_name,
            email: req.subject.email,
            locality: req.subject.locality,
            state: req.subject.state,
        },
        key_length: req.key_length,
        csr: req.csr_pem.into_bytes(),
        details: details(d),
    };
    let source = conn.peer.ip().to_string();
    let done = ra.submit(&session, sub, Some(&source)).await?;
    Ok(created(&session, &done, &source, "request submitted"))
}

/// 201 with the new request's id and the requests it cancelled.
fn created(session: &PackageSession, done: &Submitted, source: &str, what: &str) -> Response {
    tracing::info!(id = %done.id, package = %session.package.id, %source, "{what}");
    let body = proto::SubmitResponse {
        id: done.id.0,
        status: "Pending".into(),
        cancelled: done.cancelled.iter().map(|i| i.0).collect(),
    };
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

fn details(d: proto::Details) -> ClientDetails {
    ClientDetails {
        fqdn: d.fqdn,
        mac: d.mac,
        nic_id: d.nic_id,
        processor_id: d.processor_id,
        os_version: d.os_version,
        os_type: d.os_type,
        requester: d.requester,
        phone: d.phone,
        description: d.description,
    }
}

async fn submit_external(
    State(ra): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let session = authenticate(&ra, &headers).await?;
    let req: proto::ExternalSubmitRequest = parse_json(&body)?;
    let csr = base64::engine::general_purpose::STANDARD
        .decode(req.csr_file_base64.trim())
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.malformed",
                "Malformed request",
                "csr_file_base64 is not base64".into(),
            )
        })?;
    let source = conn.peer.ip().to_string();
    let sub = enroll_ra::ExternalSubmission {
        csr,
        common_name: req.common_name,
        details: details(req.details),
    };
    let done = ra.submit_external(&session, sub, Some(&source)).await?;
    Ok(created(
        &session,
        &done,
        &source,
        "external request submitted",
    ))
}

pub fn state_of(view: &RequestView, chain_pem: &str) -> proto::RequestState {
    let r = &view.request;
    let certificate_pem = view
        .certificate
        .as_ref()
        .map(|c| pem::encode("CERTIFICATE", &c.der));
    proto::RequestState {
        id: r.id.0,
        status: r.status.as_str().into(),
        kind: r.kind.as_str().into(),
        enrollment_type: r.enrollment_type.as_str().into(),
        common_name: r.subject.common_name.clone(),
        subject_name: r.subject.subject_name(),
        submitted_at: r.submitted_at.0,
        requested_by: r.details.requester.clone(),
        downloaded_at: r.downloaded_at.map(|t| t.0),
        downloaded_by: r.downloaded_by.clone(),
        reason: match (&view.certificate, r.status) {
            (Some(c), enroll_core::RequestStatus::Revoked) => c.revocation_reason.clone(),
            _ => r.reason.clone(),
        },
        alt_names: r.alt_names.iter().map(|n| n.to_text()).collect(),
        chain_pem: certificate_pem.as_ref().map(|_| chain_pem.to_owned()),
        certificate_pem,
    }
}

async fn request_state(
    State(ra): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<proto::RequestState>> {
    let session = authenticate(&ra, &headers).await?;
    let view = ra.client_view(&session, parse_id(&id)?).await?;
    Ok(axum::Json(state_of(&view, &ra.ca().chain_pem())))
}

async fn installed(
    State(ra): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<proto::RequestState>> {
    let session = authenticate(&ra, &headers).await?;
    let id = parse_id(&id)?;
    let source = conn.peer.ip().to_string();
    let view = ra.acknowledge(&session, id, Some(&source)).await?;
    Ok(axum::Json(state_of(&view, &ra.ca().chain_pem())))
}

/// The connectivity test. The TLS layer proved the peer holds the key of
/// the certificate it presented; here the certificate must be one we
/// issued, byte for byte, still valid, not revoked, and belong to a
/// request that is Approved, Installed or Downloaded.
async fn test(
    State(ra): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnInfo>,
) -> ApiResult<axum::Json<proto::TestResponse>> {
    let der = conn.client_cert.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "cert.missing",
            "No client certificate",
            "connect with the installed client certificate (mutual TLS)".into(),
        )
    })?;
    let info = CertInfo::from_der(&der).map_err(|_| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "cert.unreadable",
            "Unreadable client certificate",
            "the client certificate could not be parsed".into(),
        )
    })?;
    let found = ra.request_for_certificate(&info.serial).await?;
    let unknown = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cert.unknown",
            "Unknown certificate",
            "this certificate was not issued by this service".into(),
        )
    };
    let (cert, request) = found.ok_or_else(unknown)?;
    if cert.der != der {
        return Err(unknown());
    }
    let now = ra.now();
    if now.0 > cert.not_after.0 {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cert.expired",
            "Certificate expired",
            format!(
                "the certificate expired at {}; request a new one with `enroll submit`",
                crate::fmt_time(cert.not_after)
            ),
        ));
    }
    if now.0 < cert.not_before.0 {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cert.not-yet-valid",
            "Certificate not yet valid",
            format!(
                "the certificate is valid from {}; check this machine's clock",
                crate::fmt_time(cert.not_before)
            ),
        ));
    }
    if let Some(at) = cert.revoked_at {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cert.revoked",
            "Certificate revoked",
            format!(
                "the certificate was revoked at {} ({})",
                crate::fmt_time(at),
                cert.revocation_reason
                    .unwrap_or_else(|| "unspecified".into())
            ),
        ));
    }
    let status = request.as_ref().map(|r| r.status);
    use enroll_core::RequestStatus as St;
    match status {
        Some(St::Approved | St::Installed | St::Downloaded) => {}
        Some(St::Revoked) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cert.revoked",
                "Certificate revoked",
                "the request of this certificate was revoked".into(),
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cert.not-enrolled",
                "Not an enrolled certificate",
                "this certificate belongs to no approved enrollment".into(),
            ));
        }
    }
    Ok(axum::Json(proto::TestResponse {
        subject: info.subject,
        serial: info.serial.to_hex(),
        request_id: request.as_ref().map(|r| r.id.0),
        status: status.map(|s| s.as_str().to_owned()),
    }))
}
