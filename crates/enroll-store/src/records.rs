//! Rows as domain-typed records.

use enroll_core::{
    ClientDetails, CountryCode, EnrollmentType, OrgCode, RequestId, RequestKind, RequestStatus,
    SubjectFields, UnixTime,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    pub code: OrgCode,
    pub name: String,
    pub country: CountryCode,
    pub created_at: UnixTime,
}

/// A client installation package. The credential is kept only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRecord {
    pub id: String,
    pub org: OrgCode,
    pub environment: String,
    pub enrollment_type: EnrollmentType,
    /// A package for servers: OU=Server and an editable common name.
    pub server: bool,
    pub allow_external: bool,
    pub url: String,
    /// Lower-case hex SHA-256 of the credential's secret part.
    pub credential_hash: String,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// A request about to be stored as Pending.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub package_id: String,
    /// The package's environment: a machine has one Pending request per
    /// organization, environment and common name.
    pub environment: String,
    pub kind: RequestKind,
    pub enrollment_type: EnrollmentType,
    pub subject: SubjectFields,
    /// "RSA 2048", "ECDSA P-256"…
    pub key_desc: String,
    pub key_length: Option<u32>,
    /// The request as received (any challenge password blanked out).
    pub csr_der: Vec<u8>,
    /// The public key the certificate will carry.
    pub spki_der: Vec<u8>,
    /// Alternative names to issue beside the common name.
    pub alt_names: Vec<AltName>,
    pub details: ClientDetails,
    pub source_addr: Option<String>,
    pub submitted_at: UnixTime,
}

#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub id: RequestId,
    pub package_id: String,
    /// The submitting package's environment (Prod, Test…).
    pub environment: String,
    pub kind: RequestKind,
    pub enrollment_type: EnrollmentType,
    pub status: RequestStatus,
    pub subject: SubjectFields,
    pub key_desc: String,
    pub key_length: Option<u32>,
    pub csr_der: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub alt_names: Vec<AltName>,
    pub details: ClientDetails,
    pub source_addr: Option<String>,
    pub submitted_at: UnixTime,
    pub decided_at: Option<UnixTime>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub downloaded_at: Option<UnixTime>,
    pub downloaded_by: Option<String>,
}

/// An alternative name requested for a server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    Ip(std::net::IpAddr),
}

impl AltName {
    /// `DNS:name` or `IP:address`, as stored and shown.
    pub fn to_text(&self) -> String {
        match self {
            AltName::Dns(d) => format!("DNS:{d}"),
            AltName::Ip(ip) => format!("IP:{ip}"),
        }
    }

    pub fn parse(s: &str) -> Option<AltName> {
        if let Some(d) = s.strip_prefix("DNS:") {
            Some(AltName::Dns(d.to_owned()))
        } else {
            s.strip_prefix("IP:")
                .and_then(|ip| ip.parse().ok())
                .map(AltName::Ip)
        }
    }
}

/// Which requests to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<RequestStatus>,
    pub org: Option<OrgCode>,
    /// Only these kinds; empty means every kind.
    pub kinds: Vec<RequestKind>,
    /// Case-insensitive substring of the common name, the requester or
    /// the description.
    pub text: Option<String>,
    /// Only ids below this one (keyset paging).
    pub before: Option<RequestId>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Upper-case hex, as [`enroll_pki::Serial`] prints it.
    pub serial: String,
    pub request_id: Option<RequestId>,
    pub der: Vec<u8>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub revocation_reason: Option<String>,
}

/// A decided status change, applied in one transaction.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub id: RequestId,
    pub from: RequestStatus,
    pub to: RequestStatus,
    pub at: UnixTime,
    /// Approve, reject: who decided, and why (reject reason).
    pub decision: Option<(String, Option<String>)>,
    /// Install, download: who fetched.
    pub downloaded_by: Option<String>,
    /// Approve: the certificate issued.
    pub certificate: Option<CertRecord>,
    /// Revoke: when, and the RFC 5280 reason name.
    pub revocation: Option<(UnixTime, String)>,
    /// Revoke for keyCompromise: the SHA-256 (hex) of the key to block.
    pub block_key: Option<String>,
    pub audit: AuditEvent,
}

/// One line of the audit trail: who, when, from where, what, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// The organization the event concerns; `None` for the central
    /// administrator's eyes only.
    pub org: Option<OrgCode>,
    pub actor: String,
    pub role: String,
    pub source_addr: Option<String>,
    pub request_id: Option<RequestId>,
    pub action: String,
    pub from_status: Option<RequestStatus>,
    pub to_status: Option<RequestStatus>,
    pub detail: Option<String>,
}

/// An audit event as stored, with its position in the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub event: AuditEvent,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub org: Option<OrgCode>,
    pub request_id: Option<RequestId>,
    /// Case-insensitive substring of the actor's name.
    pub actor: Option<String>,
    /// The action, or its start (`refused:` lists every refusal).
    pub action: Option<String>,
    /// Only events below this id (keyset paging).
    pub before: Option<i64>,
    pub limit: u32,
}

/// A manager or administrator who signs in to the web application with a
/// certificate Enroll issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Assigned by the store; ignored when adding.
    pub id: i64,
    pub name: String,
    /// `central_admin` or `org_manager`.
    pub role: String,
    pub org: Option<OrgCode>,
    pub cert_serial: String,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// A new operator's PKCS#12, kept until downloaded once or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPickup {
    pub p12: Vec<u8>,
    pub expires_at: UnixTime,
}

/// A CRL as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub number: i64,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub der: Vec<u8>,
}

/// What `enrolld check` found: the sizes, and every broken invariant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsistencyReport {
    pub requests: i64,
    pub certificates: i64,
    pub audit_events: i64,
    pub crls: i64,
    /// One sentence per violation (at most a few per kind).
    pub problems: Vec<String>,
}
