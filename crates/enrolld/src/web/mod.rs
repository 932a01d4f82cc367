//! The web application for organization managers and the central
//! administrator: server-rendered HTML (askama templates compiled into the
//! binary, one embedded stylesheet, no script), on the same HTTPS listener
//! as the client API.
//!
//! - Sign-in is the TLS client certificate, checked on every request by
//!   [`enroll_ra::Ra::authenticate_operator`] (ours byte for byte,
//!   current, not revoked, an active operator). There are no cookies.
//! - Because browsers present the certificate on cross-site requests too,
//!   every state-changing form carries a token bound to the certificate
//!   (HMAC under a key of the data directory), and `Origin` /
//!   `Sec-Fetch-Site` must say the request came from our own pages.
//! - Authorization is the use cases', not the handlers': a handler passes
//!   the actor along and renders what it gets back.
//! - Every response carries a strict Content-Security-Policy and the usual
//!   security headers; pages are never cached.

mod pages;

use std::sync::Arc;

use askama::Template;
use aws_lc_rs::hmac;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use enroll_core::{Actor, Role};
use enroll_ra::RaError;

use crate::api::Shared;
use crate::tls::ConnInfo;

/// What the web application needs beside the registration authority.
pub struct Web {
    pub ra: Shared,
    csrf_key: hmac::Key,
    /// The service URL written into new client packages by default.
    pub public_url: String,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Web {
    pub fn new(ra: Shared, csrf_secret: &[u8], public_url: String) -> Web {
        Web {
            ra,
            csrf_key: hmac::Key::new(hmac::HMAC_SHA256, csrf_secret),
            public_url,
        }
    }

    /// The form token of a certificate: the same on every page for the
    /// same credential, unknowable without the key.
    fn token(&self, cert_der: &[u8]) -> String {
        let mut msg = b"enroll-web-form-v1:".to_vec();
        msg.extend_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der).as_ref(),
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf_key, &msg))
    }

    fn token_matches(&self, cert_der: &[u8], presented: &str) -> bool {
        let mut msg = b"enroll-web-form-v1:".to_vec();
        msg.extend_from_slice(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der).as_ref(),
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(presented)
            .is_ok_and(|tag| hmac::verify(&self.csrf_key, &msg, &tag).is_ok())
    }
}

pub type WebState = Arc<Web>;

/// The pages. Every route but the stylesheet and icon needs a signed-in
/// operator; what each may see and do is decided in the use cases.
pub fn router(web: WebState) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/requests", get(pages::queue))
        .route("/requests/{id}", get(pages::request))
        .route("/requests/{id}/approve", post(pages::approve))
        .route("/requests/{id}/reject", post(pages::reject))
        .route("/requests/{id}/revoke", post(pages::revoke))
        .route("/orgs", get(pages::orgs).post(pages::add_org))
        .route(
            "/packages",
            get(pages::packages).post(pages::create_package),
        )
        .route("/packages/{id}/rotate", post(pages::rotate_package))
        .route("/packages/{id}/revoke", post(pages::revoke_package))
        .route("/managers", get(pages::managers).post(pages::issue_manager))
        .route("/managers/{id}/credential", post(pages::manager_credential))
        .route("/managers/{id}/revoke", post(pages::revoke_manager))
        .route("/audit", get(pages::audit))
        .route("/static/app.css", get(pages::stylesheet))
        .route("/static/icon.svg", get(pages::icon))
        // Forms are a few fields; nothing bigger has a reason to arrive.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::map_response(page_for_rejections))
        .with_state(web)
}

/// axum's own refusals (wrong method, body too large, unreadable path)
/// come as plain text; people get a page like everywhere else.
async fn page_for_rejections(resp: Response) -> Response {
    let status = resp.status();
    let is_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || is_page {
        return resp;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            "this address does not take that kind of request; use the page's links and buttons"
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the form is larger than 64 KiB",
        _ => "the request could not be read",
    };
    WebError::new(status, "Request refused", message).into_response()
}

/// Pages must not be framed, sniffed, cached, or load anything from
/// elsewhere; there is no script to allow.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Not no-referrer: with it Chromium sends `Origin: null` on our own
    // form posts, and the origin check must refuse null (sandboxed frames
    // send it too). same-origin leaks nothing to other sites.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// A refusal or failure, as a page.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    title: &'static str,
    message: String,
    /// Several problems at once (policy violations).
    problems: Vec<String>,
    /// Shown to people who are not signed in.
    sign_in_help: bool,
}

impl WebError {
    fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            title,
            message: message.into(),
            problems: Vec::new(),
            sign_in_help: false,
        }
    }

    fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "The request could not be read",
            message,
        )
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    status: u16,
    message: &'a str,
    problems: &'a [String],
    sign_in_help: bool,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.title,
            status: self.status.as_u16(),
            message: &self.message,
            problems: &self.problems,
            sign_in_help: self.sign_in_help,
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the error page");
                (self.status, self.message).into_response()
            }
        }
    }
}

impl From<RaError> for WebError {
    fn from(e: RaError) -> Self {
        use StatusCode as S;
        match e {
            RaError::Unauthenticated(m) => WebError {
                sign_in_help: true,
                ..WebError::new(S::FORBIDDEN, "Sign-in refused", m)
            },
            RaError::Forbidden(t) => WebError::new(S::FORBIDDEN, "Not allowed", t.to_string()),
            RaError::NotFound(m) => WebError::new(
                S::NOT_FOUND,
                "Not found",
                format!("{m} does not exist, or is not yours to see"),
            ),
            RaError::InvalidStatus(t) => {
                WebError::new(S::CONFLICT, "Not possible in this status", t.to_string())
            }
            RaError::Conflict(m) => WebError::new(
                S::CONFLICT,
                "Someone else was faster",
                format!("{m}; reload the page to see where it stands"),
            ),
            RaError::Duplicate(m) => WebError::new(S::CONFLICT, "Already exists", m),
            RaError::Policy(v) => WebError {
                problems: v.iter().map(ToString::to_string).collect(),
                ..WebError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "Please correct the form",
                    "nothing was changed:",
                )
            },
            RaError::Csr(c) => WebError {
                problems: c
                    .0
                    .iter()
                    .map(|p| format!("{}: {}", p.code, p.message))
                    .collect(),
                ..WebError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "The certificate request was refused",
                    "nothing was changed:",
                )
            },
            e @ (RaError::Store(_) | RaError::Pki(_)) => {
                tracing::error!(error = %crate::chain(&e), "web: internal error");
                WebError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "The service failed",
                    "nothing was changed; the operator's log has the details",
                )
            }
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// The signed-in operator of this request.
#[derive(Debug)]
pub struct Session {
    pub actor: Actor,
    /// The token every form of the pages carries.
    pub csrf: String,
    pub source: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.actor.role == Role::CentralAdmin
    }
}

fn conn_of(parts: &Parts) -> WebResult<ConnInfo> {
    parts
        .extensions
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.clone())
        .ok_or_else(|| {
            WebError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The service failed",
                "the connection has no TLS information",
            )
        })
}

impl FromRequestParts<WebState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &WebState) -> WebResult<Session> {
        let conn = conn_of(parts)?;
        let source = conn.peer.ip().to_string();
        let what = format!("{} {}", parts.method, parts.uri.path());
        let actor = web
            .ra
            .authenticate_operator(conn.client_cert.as_deref(), Some(&source), &what)
            .await?;
        let csrf = conn
            .client_cert
            .as_deref()
            .map(|c| web.token(c))
            .unwrap_or_default();
        Ok(Session {
            actor,
            csrf,
            source,
        })
    }
}

/// A form that carries its `csrf` token.
pub trait WithToken {
    fn token(&self) -> &str;
}

/// A posted form, accepted only from our own pages: the token must be the
/// one of the presented certificate, and the browser must not say the
/// request came from another site.
#[derive(Debug)]
pub struct CheckedForm<T>(pub T);

impl<T> FromRequest<WebState> for CheckedForm<T>
where
    T: serde::de::DeserializeOwned + WithToken + Send,
{
    type Rejection = WebError;

    async fn from_request(req: Request, web: &WebState) -> WebResult<Self> {
        let (parts, body) = req.into_parts();
        let conn = conn_of(&parts)?;
        let h = &parts.headers;
        let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let host = h
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default()
            .to_owned();
        let origin = h
            .get(header::ORIGIN)
            .map(|o| o.to_str().unwrap_or("(unreadable)"));
        let what = format!("{} {}", parts.method, parts.uri.path());
        let cross_site = if site.is_some_and(|s| s != "same-origin" && s != "none") {
            Some(format!(
                "the form was sent from another site (Sec-Fetch-Site: {})",
                site.unwrap_or_default()
            ))
        } else if origin.is_some_and(|o| o != format!("https://{host}")) {
            Some(format!(
                "the form was sent from another origin ({} is not https://{host})",
                origin.unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(why) = cross_site {
            return Err(forged(web, &conn, &what, &why).await);
        }
        let form = match axum::Form::<T>::from_request(Request::from_parts(parts, body), web).await
        {
            Ok(form) => form,
            // No token at all is a forgery like a wrong one, and audited so.
            Err(e) if e.body_text().contains("`csrf`") => {
                return Err(forged(web, &conn, &what, "the form carries no token").await);
            }
            Err(e) => {
                return Err(WebError::bad_request(format!(
                    "the form is incomplete or malformed ({}); reload the page and send it again",
                    e.body_text()
                )));
            }
        };
        let cert = conn.client_cert.as_deref().unwrap_or_default();
        if cert.is_empty() || !web.token_matches(cert, form.0.token()) {
            return Err(forged(
                web,
                &conn,
                &what,
                "the form's token is not the one of your page",
            )
            .await);
        }
        Ok(CheckedForm(form.0))
    }
}

/// Refuses a form that did not come from our pages, on record.
async fn forged(web: &Web, conn: &ConnInfo, what: &str, why: &str) -> WebError {
    let source = conn.peer.ip().to_string();
    if let Ok(actor) = web
        .ra
        .authenticate_operator(conn.client_cert.as_deref(), Some(&source), what)
        .await
        && let Err(e) = web
            .ra
            .record_refusal(&actor, Some(&source), "form", &format!("{what}: {why}"))
            .await
    {
        return WebError::from(e);
    }
    WebError::new(
        StatusCode::FORBIDDEN,
        "Form refused",
        format!("{why}; nothing was changed. Reload the page and submit it again."),
    )
}

/// The HTML page for paths the application does not have.
pub async fn not_found() -> WebError {
    WebError::new(
        StatusCode::NOT_FOUND,
        "Not found",
        "there is no such page; start from the queue",
    )
}
