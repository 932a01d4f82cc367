//! The service's client API over HTTPS, trusting only the package's CA.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use enroll_proto as proto;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::package::Package;

/// Why a call failed, in the client's terms.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service could not be reached or the TLS session failed.
    #[error("the enrollment service at {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    /// The service's certificate does not chain to the package's CA.
    #[error(
        "the enrollment service at {url} presented a certificate this package does not trust \
         ({detail}); check the package's URL and ca.pem"
    )]
    Untrusted { url: String, detail: String },
    /// The service answered with a problem document.
    #[error("{} ({})", .0.detail, .0.code)]
    Problem(Box<proto::Problem>),
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),
}

pub struct Api {
    agent: ureq::Agent,
    base: String,
    credential: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The package's trust anchors: pinned, never the system roots.
pub fn anchors(pkg: &Package) -> Result<Vec<Certificate<'static>>> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pkg.ca_pem.as_bytes()) {
        if let PemItem::Certificate(c) = item.context("the package's ca.pem is damaged")? {
            out.push(c);
        }
    }
    anyhow::ensure!(!out.is_empty(), "the package's ca.pem holds no certificate");
    Ok(out)
}

impl Api {
    pub fn new(pkg: &Package) -> Result<Api> {
        let roots = anchors(pkg)?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Api {
            agent,
            base: pkg.file.url.trim_end_matches('/').to_owned(),
            credential: pkg.file.credential.clone(),
        })
    }

    fn handle<T: serde::de::DeserializeOwned>(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ApiError> {
        let resp = r.map_err(|e| {
            let detail = e.to_string();
            if detail.contains("invalid peer certificate") {
                ApiError::Untrusted {
                    url: self.base.clone(),
                    detail,
                }
            } else {
                ApiError::Unreachable {
                    url: self.base.clone(),
                    detail,
                }
            }
        })?;
        let status = resp.status();
        let text = resp
            .into_body()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| ApiError::Protocol(e.to_string()))?;
        if status.is_success() {
            serde_json::from_str(&text).map_err(|e| ApiError::Protocol(e.to_string()))
        } else {
            match serde_json::from_str::<proto::Problem>(&text) {
                Ok(p) => Err(ApiError::Problem(Box::new(p))),
                Err(_) => Err(ApiError::Protocol(format!("HTTP {status}"))),
            }
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.credential)
    }

    pub fn submit(&self, req: &proto::SubmitRequest) -> Result<proto::SubmitResponse, ApiError> {
        let r = self
            .agent
            .post(format!("{}/api/v1/requests", self.base))
            .header("Authorization", self.auth())
            .send_json(req);
        self.handle(r)
    }

    pub fn submit_external(
        &self,
        req: &proto::ExternalSubmitRequest,
    ) -> Result<proto::SubmitResponse, ApiError> {
        let r = self
            .agent
            .post(format!("{}/api/v1/external-requests", self.base))
            .header("Authorization", self.auth())
            .send_json(req);
        self.handle(r)
    }

    pub fn downloaded(&self, id: i64) -> Result<proto::RequestState, ApiError> {
        let r = self
            .agent
            .post(format!("{}/api/v1/requests/{id}/downloaded", self.base))
            .header("Authorization", self.auth())
            .send_empty();
        self.handle(r)
    }

    pub fn state(&self, id: i64) -> Result<proto::RequestState, ApiError> {
        let r = self
            .agent
            .get(format!("{}/api/v1/requests/{id}", self.base))
            .header("Authorization", self.auth())
            .call();
        self.handle(r)
    }

    pub fn installed(&self, id: i64) -> Result<proto::RequestState, ApiError> {
        let r = self
            .agent
            .post(format!("{}/api/v1/requests/{id}/installed", self.base))
            .header("Authorization", self.auth())
            .send_empty();
        self.handle(r)
    }
}
