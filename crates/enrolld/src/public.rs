//! The plain-HTTP side: what relying parties fetch without TLS because it
//! is signed. CRLs, OCSP (RFC 6960 GET and POST), and the CA certificates
//! named in every certificate's authority information access.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;

use crate::api::Shared;

pub fn router(ra: Shared) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/crl/issuing.crl", get(crl))
        .route("/ca/issuing.crt", get(issuing))
        .route("/ca/root.crt", get(root))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(ra)
}

fn http_date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn der_response(
    content_type: &'static str,
    body: Vec<u8>,
    headers: &[(header::HeaderName, String)],
) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k.clone(), v);
        }
    }
    resp
}

async fn crl(State(ra): State<Shared>) -> Response {
    match ra.current_crl().await {
        Ok(c) => der_response(
            "application/pkix-crl",
            c.der,
            &[
                (header::LAST_MODIFIED, http_date(c.this_update.0)),
                (header::EXPIRES, http_date(c.next_update.0)),
                // Short: a revocation publishes a new CRL at once.
                (
                    header::CACHE_CONTROL,
                    "public, max-age=60, no-transform".into(),
                ),
            ],
        ),
        Err(e) => {
            tracing::error!(error = %crate::chain(&e), "cannot build the CRL");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the CRL cannot be built now\n",
            )
                .into_response()
        }
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    enroll_pki::inspect::first_cert_der(pem).unwrap_or_default()
}

async fn issuing(State(ra): State<Shared>) -> Response {
    der_response("application/pkix-cert", pem_to_der(ra.ca().cert_pem()), &[])
}

async fn root(State(ra): State<Shared>) -> Response {
    der_response("application/pkix-cert", pem_to_der(ra.ca().root_pem()), &[])
}

async fn ocsp_answer(ra: &Shared, request: &[u8]) -> Response {
    let der = ra.ocsp(request).await;
    if enroll_pki::revocation::is_ocsp_error(&der) {
        // Unsigned: a cache must not keep it for others.
        return der_response(
            "application/ocsp-response",
            der,
            &[(header::CACHE_CONTROL, "no-store".into())],
        );
    }
    let now = ra.now().0;
    let period = ra.policy().ocsp_period;
    der_response(
        "application/ocsp-response",
        der,
        &[
            (header::LAST_MODIFIED, http_date(now)),
            (header::EXPIRES, http_date(now + period)),
            (
                header::CACHE_CONTROL,
                format!("public, max-age={period}, no-transform, must-revalidate"),
            ),
        ],
    )
}

async fn ocsp_post(State(ra): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let ok_type = headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"application/ocsp-request"));
    if !ok_type {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send an application/ocsp-request\n",
        )
            .into_response();
    }
    ocsp_answer(&ra, &body).await
}

/// RFC 6960 appendix A.1: GET {url}/{url-encoding of base-64 of the DER}.
async fn ocsp_get(State(ra): State<Shared>, Path(request): Path<String>) -> Response {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let b64: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    // Some clients send base64url (RFC 4648 §5) instead of base64.
    let der = STANDARD
        .decode(b64.as_bytes())
        .or_else(|_| URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=').as_bytes()));
    match der {
        Ok(der) => ocsp_answer(&ra, &der).await,
        Err(_) => der_response(
            "application/ocsp-response",
            enroll_pki::revocation::ocsp_error(enroll_pki::revocation::OcspError::Malformed),
            &[(header::CACHE_CONTROL, "no-store".into())],
        ),
    }
}

/// Keeps a fresh CRL published even when nothing is revoked.
pub async fn crl_scheduler(ra: Arc<crate::app::AppRa>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = ra.current_crl().await {
            tracing::warn!(error = %crate::chain(&e), "scheduled CRL build failed");
        }
    }
}
