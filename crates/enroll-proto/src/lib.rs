//! Wire types of the client API (`/api/v1/`), shared by `enrolld` and
//! `enroll`. Plain data: validation happens in the registration authority.
//!
//! Authentication: the package credential as `Authorization: Bearer …`;
//! `GET /api/v1/test` authenticates by TLS client certificate instead.
//! Errors are [`Problem`] documents (`application/problem+json`).

use serde::{Deserialize, Serialize};

pub const API_PREFIX: &str = "/api/v1";

/// `POST /api/v1/requests`: a request for the package's own machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// PKCS#10, PEM.
    pub csr_pem: String,
    pub key_length: Option<u32>,
    pub subject: SubjectInput,
    pub details: Details,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectInput {
    pub common_name: String,
    pub email: Option<String>,
    pub locality: Option<String>,
    pub state: Option<String>,
}

/// Client details for the approver (not in the certificate).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Details {
    pub fqdn: Option<String>,
    pub mac: Option<String>,
    pub nic_id: Option<String>,
    pub processor_id: Option<String>,
    pub os_version: Option<String>,
    pub os_type: Option<String>,
    pub requester: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
}

/// `POST /api/v1/external-requests`: a request for another server of the
/// organization, from a CSR file made by that server's tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalSubmitRequest {
    /// The CSR file's bytes (PEM, base64 or DER, UTF-8 or UTF-16), base64.
    pub csr_file_base64: String,
    /// The server's public host name.
    pub common_name: String,
    pub details: Details,
}

/// Answer to a submission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitResponse {
    pub id: i64,
    pub status: String,
    /// Earlier Pending requests of the same machine, now Cancelled.
    pub cancelled: Vec<i64>,
}

/// `GET /api/v1/requests/{id}` and `POST /api/v1/requests/{id}/installed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestState {
    pub id: i64,
    /// Pending, Approved, Rejected, Cancelled, Installed, Downloaded, Revoked.
    pub status: String,
    /// workstation, server, external, mobile.
    pub kind: String,
    /// machine, user, external.
    pub enrollment_type: String,
    pub common_name: String,
    /// `E=…,C=…,ST=…,L=…,O=…,OU=…,CN=…`
    pub subject_name: String,
    /// Unix seconds.
    pub submitted_at: i64,
    pub requested_by: Option<String>,
    pub downloaded_at: Option<i64>,
    pub downloaded_by: Option<String>,
    /// The rejection or cancellation reason.
    pub reason: Option<String>,
    /// Alternative names beside the common name (external requests):
    /// `DNS:name`, `IP:address`.
    #[serde(default)]
    pub alt_names: Vec<String>,
    /// The issued certificate, once approved.
    pub certificate_pem: Option<String>,
    /// Issuing CA then root, PEM.
    pub chain_pem: Option<String>,
}

/// `GET /api/v1/test`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResponse {
    pub subject: String,
    pub serial: String,
    pub request_id: Option<i64>,
    pub status: Option<String>,
}

/// An RFC 9457 problem document. `code` is stable: scripts match on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    /// Every problem found, where there were several (policy, CSR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProblemItem {
    /// A problem code (`csr.bad-signature`) or a field name (`email`).
    pub code: String,
    pub message: String,
}
