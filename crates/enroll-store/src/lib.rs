//! Enroll's persistence: the [`Store`] trait the use cases need, and
//! [`SqlStore`], its implementation on SQLite (the embedded default) and
//! PostgreSQL through sqlx. No other crate knows sqlx.
//!
//! Every status change is one transaction: the conditional update
//! (`WHERE status = <expected>`, so two deciders cannot both win), the
//! certificate if one was issued, and the audit event.

mod records;
mod sql;

pub use records::*;
pub use sql::SqlStore;

use enroll_core::{RequestId, UnixTime};
use std::future::Future;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to change is not where the caller expected it: another
    /// decision won the race.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A unique value (organization code, serial…) exists already.
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value no longer parses as its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database server cannot be reached or refuses us.
    #[error(
        "cannot connect to the database: {0}; check the URL (--database, ENROLLD_DATABASE or \
         enrolld.toml) and that the server runs and lets this user in"
    )]
    Unavailable(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The storage the registration authority needs. One implementation serves
/// both databases; tests run the same contract against each.
pub trait Store: Send + Sync {
    fn add_org(&self, org: &OrgRecord) -> impl Future<Output = Result<()>> + Send;
    fn org(&self, code: &str) -> impl Future<Output = Result<Option<OrgRecord>>> + Send;
    fn list_orgs(&self) -> impl Future<Output = Result<Vec<OrgRecord>>> + Send;

    fn add_package(&self, p: &PackageRecord) -> impl Future<Output = Result<()>> + Send;
    fn package(&self, id: &str) -> impl Future<Output = Result<Option<PackageRecord>>> + Send;
    /// A package and its organization in one read: every client call
    /// authenticates with it.
    fn package_with_org(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<(PackageRecord, OrgRecord)>>> + Send;
    fn list_packages(&self) -> impl Future<Output = Result<Vec<PackageRecord>>> + Send;
    fn revoke_package(
        &self,
        id: &str,
        at: UnixTime,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Inserts a Pending request and, in the same transaction, cancels the
    /// Pending requests of the same organization, environment and common
    /// name (a Test request never cancels a Prod one), writing
    /// an audit event for each. Returns the new id and the cancelled ids.
    fn submit(
        &self,
        req: &NewRequest,
        submitted: &AuditEvent,
        cancelled: &AuditEvent,
    ) -> impl Future<Output = Result<(RequestId, Vec<RequestId>)>> + Send;

    fn request(&self, id: RequestId) -> impl Future<Output = Result<Option<RequestRecord>>> + Send;
    /// A request and the certificate issued for it, if any, in one read:
    /// every status refresh asks for both.
    fn request_with_certificate(
        &self,
        id: RequestId,
    ) -> impl Future<Output = Result<Option<(RequestRecord, Option<CertRecord>)>>> + Send;
    fn list_requests(
        &self,
        filter: &RequestFilter,
    ) -> impl Future<Output = Result<Vec<RequestRecord>>> + Send;
    /// Approved, Installed and Downloaded requests for this public key
    /// (DER SubjectPublicKeyInfo): the certificates a key compromise takes
    /// down. A scan, for a rare event.
    fn current_with_key(
        &self,
        spki_der: &[u8],
    ) -> impl Future<Output = Result<Vec<RequestRecord>>> + Send;

    /// Applies one decided status change atomically (see [`StatusChange`]).
    /// Fails with [`StoreError::Conflict`] when the request is no longer
    /// in `change.from`.
    fn change_status(&self, change: &StatusChange) -> impl Future<Output = Result<()>> + Send;

    /// The request whose certificate was revoked for keyCompromise with
    /// this key (SHA-256 of its SubjectPublicKeyInfo, hex), if any.
    fn blocked_key(
        &self,
        spki_sha256: &str,
    ) -> impl Future<Output = Result<Option<Option<RequestId>>>> + Send;

    fn certificate_by_serial(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Option<CertRecord>>> + Send;
    fn certificate_for_request(
        &self,
        id: RequestId,
    ) -> impl Future<Output = Result<Option<CertRecord>>> + Send;

    /// Stores a certificate that belongs to no request (the service's TLS
    /// certificate, operator credentials), so serials stay unique across
    /// everything the CA signed.
    fn add_certificate(&self, cert: &CertRecord) -> impl Future<Output = Result<()>> + Send;
    /// Adds an operator (and the PKCS#12 waiting for download, if any)
    /// with its audit event; returns the operator's id.
    fn add_operator(
        &self,
        op: &OperatorRecord,
        pickup: Option<&CredentialPickup>,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<i64>> + Send;
    fn operator(&self, id: i64) -> impl Future<Output = Result<Option<OperatorRecord>>> + Send;
    fn operator_by_serial(
        &self,
        serial: &str,
    ) -> impl Future<Output = Result<Option<OperatorRecord>>> + Send;
    fn list_operators(&self) -> impl Future<Output = Result<Vec<OperatorRecord>>> + Send;
    /// Marks an active operator revoked and revokes their certificate
    /// (time, RFC 5280 reason name), with the audit event, in one
    /// transaction.
    fn revoke_operator(
        &self,
        id: i64,
        at: UnixTime,
        reason: &str,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Removes and returns an operator's waiting PKCS#12 if it has not
    /// expired at `now`: a credential is handed out once.
    fn take_credential(
        &self,
        operator_id: i64,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;

    /// Gives an active package a new credential hash; the old credential
    /// stops working in the same transaction that writes the audit event.
    fn rotate_package(
        &self,
        id: &str,
        credential_hash: &str,
        audit: &AuditEvent,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Publishes the next CRL, one publisher at a time across every node
    /// on the database: in one write transaction (PostgreSQL: the `crls`
    /// table locked against other publishers; SQLite: the one writer) it
    /// reads the next number and the revoked certificates not expired
    /// before `not_after_since` (they drop off a CRL after that), lets
    /// `build` sign, and stores the result. A CRL thus lists every
    /// revocation committed before it began, and numbers never race. An
    /// error of `build` stores nothing.
    fn publish_crl<F, E>(
        &self,
        not_after_since: UnixTime,
        build: F,
    ) -> impl Future<Output = Result<std::result::Result<CrlRecord, E>>> + Send
    where
        F: FnOnce(i64, &[CertRecord]) -> std::result::Result<CrlRecord, E> + Send,
        E: Send;
    fn latest_crl(&self) -> impl Future<Output = Result<Option<CrlRecord>>> + Send;

    fn audit_for_request(
        &self,
        id: RequestId,
    ) -> impl Future<Output = Result<Vec<AuditEvent>>> + Send;
    /// The audit trail, newest first.
    fn list_audit(
        &self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditEntry>>> + Send;
    /// Checks the invariants no crash or race may break: a certificate for
    /// exactly the requests whose status has one, revocation on both
    /// sides, every status explained by the audit trail, one submit event
    /// per request, CRL numbers and times increasing together.
    fn check_consistency(&self) -> impl Future<Output = Result<ConsistencyReport>> + Send;

    /// Adds an audit event that goes with no status change (a refusal, an
    /// organization created…).
    fn audit(&self, event: &AuditEvent) -> impl Future<Output = Result<()>> + Send;
}
