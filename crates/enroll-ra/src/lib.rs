//! The registration authority: every use case of Enroll, with
//! authorization and audit enforced here once, whatever front end (HTTP
//! API, operator command line, web application) calls it.
//!
//! [`Ra`] holds the [`Store`], the [`IssuingCa`] and the [`Clock`]. Each use
//! case takes the acting [`Actor`] and the address it came from; status
//! changes go through [`enroll_core::transition`], and refusals are
//! written to the audit trail before they are returned.

mod credential;
mod operators;

pub use credential::{Credential, CredentialError};
pub use operators::{NewOperator, OperatorSpec};

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use enroll_core::{
    Action, Actor, ClientDetails, Clock, CountryCode, EnrollmentType, OrgCode, PolicyViolation,
    RequestId, RequestKind, RequestStatus, Role, SubjectFields, SubjectInput, TransitionError,
    UnixTime, transition,
};
use enroll_pki::profile::{DnAttr, subject_of};
use enroll_pki::revocation::{
    CertStatus, OcspError, OcspRequest, OcspResponder, Reason, Revoked, build_crl, ocsp_error,
};
use enroll_pki::{
    CsrError, IssueParams, IssuingCa, KeyInfo, ParsedCsr, PkiError, Profile, RevocationUrls, Serial,
};
use enroll_store::{
    AltName, AuditEntry, AuditEvent, AuditFilter, CertRecord, CrlRecord, NewRequest, OrgRecord,
    PackageRecord, RequestFilter, RequestRecord, StatusChange, Store, StoreError,
};

/// Why a use case did not happen. Front ends map these to their own
/// vocabulary (HTTP problems, exit codes); the messages are for people.
#[derive(Debug, thiserror::Error)]
pub enum RaError {
    /// No valid credential: unknown, malformed or revoked.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    #[error(transparent)]
    Forbidden(TransitionError),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is not in a status this action applies to.
    #[error(transparent)]
    InvalidStatus(TransitionError),
    /// Input that breaks the policy, every problem at once.
    #[error("{}", join(.0))]
    Policy(Vec<PolicyViolation>),
    #[error(transparent)]
    Csr(CsrError),
    /// Another decision won the race.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("already exists: {0}")]
    Duplicate(String),
    #[error("storage failed")]
    Store(#[source] StoreError),
    #[error("certificate issuance failed")]
    Pki(#[from] PkiError),
}

fn join(v: &[PolicyViolation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<StoreError> for RaError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => RaError::Conflict(m),
            StoreError::Duplicate(m) => RaError::Duplicate(m),
            StoreError::NotFound(m) => RaError::NotFound(m),
            other => RaError::Store(other),
        }
    }
}

impl From<TransitionError> for RaError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::Forbidden { .. } => RaError::Forbidden(e),
            TransitionError::InvalidStatus { .. } => RaError::InvalidStatus(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, RaError>;

/// SHA-256 of a SubjectPublicKeyInfo, lower-case hex: how a blocked key
/// is remembered.
pub fn spki_hash(spki_der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A refusal of `action` to `actor`, whatever the request's status.
pub(crate) fn forbid(actor: &Actor, action: &'static str, why: &'static str) -> RaError {
    RaError::Forbidden(TransitionError::Forbidden {
        actor: actor.to_string(),
        action,
        why,
    })
}

/// Issuance settings.
#[derive(Debug, Clone)]
pub struct IssuePolicy {
    pub validity_days: u32,
    /// CRL and OCSP locations written into certificates; `None` writes
    /// none (tests of issuance alone).
    pub revocation: Option<RevocationUrls>,
    /// Seconds between a CRL's thisUpdate and nextUpdate. A new CRL is
    /// built on every revocation and once half of this has passed.
    pub crl_period: i64,
    /// Seconds an OCSP response stays valid.
    pub ocsp_period: i64,
}

impl Default for IssuePolicy {
    fn default() -> Self {
        IssuePolicy {
            validity_days: 365,
            revocation: None,
            crl_period: 24 * 3600,
            ocsp_period: 3600,
        }
    }
}

/// An authenticated client package: the actor of client-side use cases.
#[derive(Debug, Clone)]
pub struct PackageSession {
    pub package: PackageRecord,
    pub org: OrgRecord,
}

impl PackageSession {
    pub fn actor(&self) -> Actor {
        Actor::new(
            Role::Client(self.package.org.clone()),
            format!("package:{}", self.package.id),
        )
    }
}

/// What a client sends to request a certificate for its own machine.
#[derive(Debug, Clone)]
pub struct Submission {
    pub subject: SubjectInput,
    /// The RSA key length the client says it generated, checked against
    /// the CSR.
    pub key_length: Option<u32>,
    pub csr: Vec<u8>,
    pub details: ClientDetails,
}

/// What a client sends to request a certificate for another server.
#[derive(Debug, Clone)]
pub struct ExternalSubmission {
    /// The CSR file's bytes, as the server's operators made it.
    pub csr: Vec<u8>,
    /// The server's public host name, entered by the user.
    pub common_name: String,
    pub details: ClientDetails,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub id: RequestId,
    pub cancelled: Vec<RequestId>,
}

/// A request with its certificate, if one was issued.
#[derive(Debug, Clone)]
pub struct RequestView {
    pub request: RequestRecord,
    pub certificate: Option<CertRecord>,
}

/// What a revocation did. A key reported compromised takes every current
/// certificate for that key down with it, as far as the actor may decide.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub request: RequestRecord,
    /// Other requests for the same key, revoked with it (keyCompromise).
    pub also_revoked: Vec<RequestId>,
    /// Other requests for the same key still valid: not the actor's to
    /// decide (another organization, a server), or changed meanwhile.
    pub still_valid: Vec<RequestId>,
}

/// A freshly created client package and its credential, shown once.
#[derive(Debug)]
pub struct NewPackage {
    pub package: PackageRecord,
    pub credential: Credential,
}

/// The parameters of a new client package.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub org: OrgCode,
    pub environment: String,
    pub enrollment_type: EnrollmentType,
    pub server: bool,
    pub allow_external: bool,
    pub url: String,
}

/// A certificate that belongs to no request: the service's own TLS
/// certificate or an operator's credential.
#[derive(Debug, Clone)]
pub struct UnboundCert {
    pub profile: Profile,
    pub subject: Vec<(DnAttr, String)>,
    pub spki_der: Vec<u8>,
    pub key: KeyInfo,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<std::net::IpAddr>,
    pub validity_days: u32,
}

/// The registration authority.
pub struct Ra<S: Store, C: Clock> {
    store: S,
    ca: Arc<IssuingCa>,
    ocsp: Option<OcspResponder>,
    clock: C,
    rng: SystemRandom,
    policy: IssuePolicy,
}

impl<S: Store, C: Clock> std::fmt::Debug for Ra<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ra").field("policy", &self.policy).finish()
    }
}

/// Backdating covers clients whose clocks run a little behind ours.
const BACKDATE_SECONDS: i64 = 300;

impl<S: Store, C: Clock> Ra<S, C> {
    pub fn new(store: S, ca: Arc<IssuingCa>, clock: C, policy: IssuePolicy) -> Self {
        Ra {
            store,
            ca,
            ocsp: None,
            clock,
            rng: SystemRandom::new(),
            policy,
        }
    }

    /// Adds the delegated OCSP responder.
    pub fn with_ocsp(mut self, responder: OcspResponder) -> Self {
        self.ocsp = Some(responder);
        self
    }

    pub fn policy(&self) -> &IssuePolicy {
        &self.policy
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn ca(&self) -> &IssuingCa {
        &self.ca
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub(crate) fn event(
        &self,
        actor: &Actor,
        source: Option<&str>,
        request_id: Option<RequestId>,
        action: &str,
    ) -> AuditEvent {
        AuditEvent {
            at: self.clock.now(),
            org: None,
            actor: actor.name.clone(),
            role: actor.role.name().to_owned(),
            source_addr: source.map(str::to_owned),
            request_id,
            action: action.to_owned(),
            from_status: None,
            to_status: None,
            detail: None,
        }
    }

    /// Writes the refusal to the audit trail, then returns it. The event
    /// goes to the trail of the actor's own organization (a manager sees
    /// what they were refused), or, for the central administrator, of the
    /// organization concerned.
    pub(crate) async fn refuse<T>(
        &self,
        actor: &Actor,
        source: Option<&str>,
        request_id: Option<RequestId>,
        action: &str,
        err: RaError,
    ) -> Result<T> {
        self.refuse_in(actor, source, request_id, None, action, err)
            .await
    }

    /// Audits a refusal decided at the edge (a forged form, say), where
    /// the use case itself never ran.
    pub async fn record_refusal(
        &self,
        actor: &Actor,
        source: Option<&str>,
        action: &str,
        why: &str,
    ) -> Result<()> {
        let mut ev = self.event(actor, source, None, &format!("refused:{action}"));
        if let Role::OrgManager(o) | Role::Client(o) = &actor.role {
            ev.org = Some(o.clone());
        }
        ev.detail = Some(why.to_owned());
        self.store.audit(&ev).await?;
        Ok(())
    }

    pub(crate) async fn refuse_in<T>(
        &self,
        actor: &Actor,
        source: Option<&str>,
        request_id: Option<RequestId>,
        concerned: Option<&OrgCode>,
        action: &str,
        err: RaError,
    ) -> Result<T> {
        let mut ev = self.event(actor, source, request_id, &format!("refused:{action}"));
        ev.org = match &actor.role {
            Role::OrgManager(o) | Role::Client(o) => Some(o.clone()),
            Role::CentralAdmin => concerned.cloned(),
        };
        ev.detail = Some(err.to_string());
        self.store.audit(&ev).await?;
        Err(err)
    }

    pub(crate) fn require_admin(actor: &Actor, action: &'static str) -> Result<()> {
        if actor.role == Role::CentralAdmin {
            Ok(())
        } else {
            Err(forbid(
                actor,
                action,
                "only the central administrator does this",
            ))
        }
    }

    // ----- organizations and packages (central administrator) -----

    pub async fn add_org(
        &self,
        actor: &Actor,
        code: &str,
        name: &str,
        country: &str,
    ) -> Result<OrgRecord> {
        if let Err(e) = Self::require_admin(actor, "add organizations") {
            return self.refuse(actor, None, None, "org.add", e).await;
        }
        let mut problems = Vec::new();
        let code = OrgCode::parse(code).map_err(|e| problems.push(e)).ok();
        let country = CountryCode::parse(country)
            .map_err(|e| problems.push(e))
            .ok();
        let name = enroll_core::subject::check_text("name", name, 128)
            .and_then(|n| {
                if n.is_empty() {
                    Err(PolicyViolation::new("name", "must not be empty"))
                } else {
                    Ok(n)
                }
            })
            .map_err(|e| problems.push(e))
            .ok();
        let (Some(code), Some(country), Some(name)) = (code, country, name) else {
            return Err(RaError::Policy(problems));
        };
        let org = OrgRecord {
            code,
            name,
            country,
            created_at: self.clock.now(),
        };
        self.store.add_org(&org).await?;
        let mut ev = self.event(actor, None, None, "org.add");
        ev.org = Some(org.code.clone());
        ev.detail = Some(format!("{} {:?} {}", org.code, org.name, org.country));
        self.store.audit(&ev).await?;
        Ok(org)
    }

    pub async fn create_package(&self, actor: &Actor, spec: PackageSpec) -> Result<NewPackage> {
        if let Err(e) = Self::require_admin(actor, "create client packages") {
            return self.refuse(actor, None, None, "package.create", e).await;
        }
        let org = self
            .store
            .org(spec.org.as_str())
            .await?
            .ok_or_else(|| RaError::NotFound(format!("organization {}", spec.org)))?;
        let mut problems = Vec::new();
        let env_ok = (1..=32).contains(&spec.environment.len())
            && spec
                .environment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !env_ok {
            problems.push(PolicyViolation::new(
                "environment",
                "an environment name is 1 to 32 letters, digits, '-' or '_', e.g. Prod",
            ));
        }
        let host_ok = spec
            .url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .map(|authority| authority.rsplit_once(':').map_or(authority, |(h, _)| h))
            .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace));
        let port_ok = spec
            .url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|a| {
                a.ends_with(']')
                    || a.rsplit_once(':')
                        .is_none_or(|(_, p)| p.parse::<u16>().is_ok())
            });
        if !host_ok || !port_ok || spec.url.len() > 512 {
            problems.push(PolicyViolation::new(
                "url",
                "the enrollment service URL must be https://HOST:PORT",
            ));
        }
        if spec.enrollment_type == EnrollmentType::External {
            problems.push(PolicyViolation::new(
                "type",
                "a package installs for the machine or the user; external requests are \
                 allowed with --allow-external",
            ));
        }
        if !problems.is_empty() {
            return Err(RaError::Policy(problems));
        }
        let credential = Credential::generate(&self.rng)?;
        let package = PackageRecord {
            id: credential.package_id.clone(),
            org: org.code.clone(),
            environment: spec.environment,
            enrollment_type: spec.enrollment_type,
            server: spec.server,
            allow_external: spec.allow_external,
            url: spec.url,
            credential_hash: credential.secret_hash(),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.add_package(&package).await?;
        let mut ev = self.event(actor, None, None, "package.create");
        ev.org = Some(package.org.clone());
        ev.detail = Some(format!(
            "{} for {} ({})",
            package.id, package.org, package.environment
        ));
        self.store.audit(&ev).await?;
        Ok(NewPackage {
            package,
            credential,
        })
    }

    pub async fn revoke_package(&self, actor: &Actor, id: &str) -> Result<()> {
        if let Err(e) = Self::require_admin(actor, "revoke client packages") {
            return self.refuse(actor, None, None, "package.revoke", e).await;
        }
        let package = self.active_package(id).await?;
        let mut ev = self.event(actor, None, None, "package.revoke");
        ev.org = Some(package.org);
        ev.detail = Some(id.to_owned());
        self.store.revoke_package(id, self.clock.now(), &ev).await?;
        Ok(())
    }

    async fn active_package(&self, id: &str) -> Result<PackageRecord> {
        match self.store.package(id).await? {
            Some(p) if p.revoked_at.is_none() => Ok(p),
            Some(_) => Err(RaError::Conflict(format!(
                "package {id} is revoked already; create a new package instead"
            ))),
            None => Err(RaError::NotFound(format!("package {id}"))),
        }
    }

    /// Gives a package a new credential (the old one stops working at
    /// once) and returns it for a fresh copy of the package. For a lost or
    /// leaked copy, and for the web application's download: the server
    /// keeps only hashes, so a package is only ever handed out with a new
    /// credential.
    pub async fn rotate_package(&self, actor: &Actor, id: &str) -> Result<NewPackage> {
        if let Err(e) = Self::require_admin(actor, "rotate package credentials") {
            return self.refuse(actor, None, None, "package.rotate", e).await;
        }
        let mut package = self.active_package(id).await?;
        let credential = Credential::rotate(&package.id, &self.rng)?;
        package.credential_hash = credential.secret_hash();
        let mut ev = self.event(actor, None, None, "package.rotate");
        ev.org = Some(package.org.clone());
        ev.detail = Some(id.to_owned());
        self.store
            .rotate_package(id, &package.credential_hash, &ev)
            .await?;
        Ok(NewPackage {
            package,
            credential,
        })
    }

    pub async fn list_orgs(&self, actor: &Actor) -> Result<Vec<OrgRecord>> {
        let all = self.store.list_orgs().await?;
        Ok(match &actor.role {
            Role::CentralAdmin => all,
            Role::OrgManager(o) | Role::Client(o) => {
                all.into_iter().filter(|r| r.code == *o).collect()
            }
        })
    }

    pub async fn org(&self, actor: &Actor, code: &OrgCode) -> Result<OrgRecord> {
        self.list_orgs(actor)
            .await?
            .into_iter()
            .find(|o| o.code == *code)
            .ok_or_else(|| RaError::NotFound(format!("organization {code}")))
    }

    pub async fn list_packages(&self, actor: &Actor) -> Result<Vec<PackageRecord>> {
        if let Err(e) = Self::require_admin(actor, "list client packages") {
            return self.refuse(actor, None, None, "package.list", e).await;
        }
        Ok(self.store.list_packages().await?)
    }

    /// Checks a package credential as presented by a client.
    pub async fn authenticate_package(&self, presented: &str) -> Result<PackageSession> {
        let (id, secret) =
            Credential::split(presented).map_err(|e| RaError::Unauthenticated(e.to_string()))?;
        let unknown = || {
            RaError::Unauthenticated(
                "unknown package credential: this package is not (or no longer) known to the \
             service, or its credential was replaced; ask the central administrator for a new \
             package or credential"
                    .into(),
            )
        };
        let (package, org) = self.store.package_with_org(id).await?.ok_or_else(unknown)?;
        if !Credential::matches(secret, &package.credential_hash) {
            return Err(unknown());
        }
        if package.revoked_at.is_some() {
            return Err(RaError::Unauthenticated(
                "this package's credential was revoked; ask the central administrator for a new package"
                    .into(),
            ));
        }
        Ok(PackageSession { package, org })
    }

    // ----- the client's use cases -----

    /// Stores a new Pending request for the package's own machine and
    /// cancels the earlier Pending request of the same machine.
    pub async fn submit(
        &self,
        session: &PackageSession,
        sub: Submission,
        source: Option<&str>,
    ) -> Result<Submitted> {
        let kind = if session.package.server {
            RequestKind::Server
        } else {
            RequestKind::Workstation
        };
        let mut problems = Vec::new();
        let subject = SubjectFields::build(
            &sub.subject,
            session.org.code.clone(),
            session.org.country.clone(),
            kind,
        )
        .map_err(|mut p| problems.append(&mut p))
        .ok();
        let details = sub
            .details
            .validate()
            .map_err(|mut p| problems.append(&mut p))
            .ok();
        let csr = ParsedCsr::parse(&sub.csr).map_err(RaError::Csr)?;
        match (csr.key, sub.key_length) {
            (KeyInfo::Rsa { bits }, Some(claimed)) if bits != claimed => {
                problems.push(PolicyViolation::new(
                    "key_length",
                    format!("the request says {claimed} bits but its key has {bits}"),
                ))
            }
            (KeyInfo::Rsa { bits }, _) if ![2048, 3072, 4096].contains(&bits) => problems.push(
                PolicyViolation::new("key_length", "a machine key is RSA 2048, 3072 or 4096 bits"),
            ),
            (KeyInfo::Rsa { .. }, _) => {}
            (_, _) => problems.push(PolicyViolation::new(
                "key_length",
                "a machine key is RSA 2048, 3072 or 4096 bits",
            )),
        }
        let (Some(subject), Some(details), true) = (subject, details, problems.is_empty()) else {
            return Err(RaError::Policy(problems));
        };
        let now = self.clock.now();
        let new = NewRequest {
            package_id: session.package.id.clone(),
            environment: session.package.environment.clone(),
            kind,
            enrollment_type: session.package.enrollment_type,
            subject,
            key_desc: csr.key.describe(),
            key_length: csr.key.rsa_bits(),
            csr_der: csr.der,
            spki_der: csr.spki_der,
            alt_names: Vec::new(),
            details,
            source_addr: source.map(str::to_owned),
            submitted_at: now,
        };
        self.store_pending(session, &new, source).await
    }

    /// Stores a Pending request for another server of the organization,
    /// from a CSR made by that server's own tools. The intake decides what
    /// the CSR may carry; the subject is built from the package (O, C),
    /// the entered host name (CN) and what the CSR says of L, ST and E.
    pub async fn submit_external(
        &self,
        session: &PackageSession,
        sub: ExternalSubmission,
        source: Option<&str>,
    ) -> Result<Submitted> {
        let actor = session.actor();
        if !session.package.allow_external {
            let e = forbid(
                &actor,
                "submit",
                "this package does not allow requests for other servers; ask the central \
                      administrator for a package with --allow-external",
            );
            return self
                .refuse(&actor, source, None, "submit-external", e)
                .await;
        }
        let csr = enroll_pki::intake::check_external(&sub.csr).map_err(RaError::Csr)?;
        let mut problems = Vec::new();
        let mut alt_names = Vec::new();
        for d in &csr.dns_names {
            // The intake refused invalid names already; this normalises.
            match enroll_core::subject::dns_name_problem(d, 253) {
                Ok(d) if !alt_names.contains(&AltName::Dns(d.clone())) => {
                    alt_names.push(AltName::Dns(d))
                }
                Ok(_) => {}
                Err(why) => problems.push(PolicyViolation::new(
                    "alt_names",
                    format!("the request's DNS name {why}"),
                )),
            }
        }
        alt_names.extend(csr.ip_addresses.iter().map(|ip| AltName::Ip(*ip)));
        let input = SubjectInput {
            common_name: sub.common_name,
            email: csr.email.clone(),
            locality: csr.locality.clone(),
            state: csr.state.clone(),
        };
        let subject = SubjectFields::build(
            &input,
            session.org.code.clone(),
            session.org.country.clone(),
            RequestKind::External,
        )
        .map_err(|mut p| problems.append(&mut p))
        .ok();
        let details = sub
            .details
            .validate()
            .map_err(|mut p| problems.append(&mut p))
            .ok();
        let (Some(subject), Some(details), true) = (subject, details, problems.is_empty()) else {
            return Err(RaError::Policy(problems));
        };
        let new = NewRequest {
            package_id: session.package.id.clone(),
            environment: session.package.environment.clone(),
            kind: RequestKind::External,
            enrollment_type: EnrollmentType::External,
            subject,
            key_desc: csr.key.describe(),
            key_length: csr.key.rsa_bits(),
            csr_der: csr.der_redacted,
            spki_der: csr.spki_der,
            alt_names,
            details,
            source_addr: source.map(str::to_owned),
            submitted_at: self.clock.now(),
        };
        self.store_pending(session, &new, source).await
    }

    /// Refuses a key whose certificate was revoked for keyCompromise: it
    /// must never be certified again, whatever the request.
    async fn refuse_blocked_key(&self, spki_der: &[u8]) -> Result<()> {
        match self.store.blocked_key(&spki_hash(spki_der)).await? {
            None => Ok(()),
            Some(by) => Err(RaError::Csr(CsrError(vec![enroll_pki::csr::CsrProblem {
                code: "key.compromised",
                message: format!(
                    "this key was reported compromised{}; it will never be certified again: \
                     generate a new key and a new request",
                    by.map(|id| format!(
                        " (the certificate of request {id} was revoked for keyCompromise)"
                    ))
                    .unwrap_or_default()
                ),
            }]))),
        }
    }

    /// Stores a validated request as Pending and, in the same transaction,
    /// cancels the Pending request of the same machine (organization,
    /// environment and common name), each change with its audit event.
    async fn store_pending(
        &self,
        session: &PackageSession,
        new: &NewRequest,
        source: Option<&str>,
    ) -> Result<Submitted> {
        let actor = session.actor();
        self.refuse_blocked_key(&new.spki_der).await?;
        // Auto-cancel is a transition like any other: ask the one function.
        transition(
            RequestStatus::Pending,
            Action::Supersede,
            &actor,
            new.kind,
            &session.org.code,
        )?;
        let mut submitted = self.event(&actor, source, None, "submit");
        submitted.org = Some(session.org.code.clone());
        submitted.to_status = Some(RequestStatus::Pending);
        let mut cancelled = self.event(&actor, source, None, "cancel");
        cancelled.org = Some(session.org.code.clone());
        cancelled.from_status = Some(RequestStatus::Pending);
        cancelled.to_status = Some(RequestStatus::Cancelled);
        let (id, cancelled) = self.store.submit(new, &submitted, &cancelled).await?;
        Ok(Submitted { id, cancelled })
    }

    /// A request as its client sees it: only requests of the package's own
    /// organization are visible.
    pub async fn client_view(
        &self,
        session: &PackageSession,
        id: RequestId,
    ) -> Result<RequestView> {
        // Only requests made through a package of the same organization
        // and environment: a Test package sees nothing of Prod.
        let not_found = || RaError::NotFound(format!("request {id}"));
        let (request, certificate) = self
            .store
            .request_with_certificate(id)
            .await?
            .filter(|(r, _)| r.subject.organization == session.org.code)
            .ok_or_else(not_found)?;
        // A certificate for another server goes only to packages trusted
        // with external requests; a workstation package of the same
        // organization must not be able to fetch or acknowledge it.
        if request.kind == RequestKind::External && !session.package.allow_external {
            return Err(not_found());
        }
        if request.package_id != session.package.id {
            let origin = self.store.package(&request.package_id).await?;
            if origin.is_none_or(|p| p.environment != session.package.environment) {
                return Err(not_found());
            }
        }
        Ok(RequestView {
            certificate: certificate.filter(|_| request.status.has_certificate()),
            request,
        })
    }

    /// The client reports the certificate installed (own machine) or saved
    /// (external request); the request as the client now sees it.
    pub async fn acknowledge(
        &self,
        session: &PackageSession,
        id: RequestId,
        source: Option<&str>,
    ) -> Result<RequestView> {
        let view = self.client_view(session, id).await?;
        let action = if view.request.kind == RequestKind::External {
            Action::Download
        } else {
            Action::Install
        };
        let requester = view.request.details.requester.clone();
        let who = format!(
            "{}{}",
            session.actor().name,
            requester.map(|r| format!(" ({r})")).unwrap_or_default()
        );
        self.apply(&session.actor(), &view.request, action, source, |change| {
            change.downloaded_by = Some(who.clone())
        })
        .await?;
        let request = self
            .store
            .request(id)
            .await?
            .ok_or_else(|| RaError::NotFound(format!("request {id}")))?;
        Ok(RequestView {
            certificate: view
                .certificate
                .filter(|_| request.status.has_certificate()),
            request,
        })
    }

    // ----- the deciders' use cases -----

    /// Whether a decider may see a request at all: the central
    /// administrator every one; an organization manager the workstation
    /// and mobile requests of their own organization (server and external
    /// requests are the central administrator's).
    pub fn may_see(actor: &Actor, request: &RequestRecord) -> bool {
        match &actor.role {
            Role::CentralAdmin => true,
            Role::OrgManager(org) => {
                *org == request.subject.organization && !request.kind.needs_central_approval()
            }
            Role::Client(_) => false,
        }
    }

    /// Requests the actor may see, newest first. An organization
    /// manager's filter is narrowed to what they may see, whatever they
    /// asked for.
    pub async fn list(
        &self,
        actor: &Actor,
        mut filter: RequestFilter,
    ) -> Result<Vec<RequestRecord>> {
        match &actor.role {
            Role::CentralAdmin => {}
            Role::OrgManager(org) => {
                if filter.org.as_ref().is_some_and(|o| o != org) {
                    return self
                        .refuse(
                            actor,
                            None,
                            None,
                            "list",
                            forbid(
                                actor,
                                "list",
                                "an organization manager sees their own organization only",
                            ),
                        )
                        .await;
                }
                filter.org = Some(org.clone());
                let own = [RequestKind::Workstation, RequestKind::Mobile];
                filter.kinds = if filter.kinds.is_empty() {
                    own.to_vec()
                } else {
                    filter
                        .kinds
                        .into_iter()
                        .filter(|k| own.contains(k))
                        .collect()
                };
                if filter.kinds.is_empty() {
                    return Ok(Vec::new());
                }
            }
            Role::Client(_) => {
                return self
                    .refuse(
                        actor,
                        None,
                        None,
                        "list",
                        forbid(actor, "list", "clients see only their own requests"),
                    )
                    .await;
            }
        }
        Ok(self.store.list_requests(&filter).await?)
    }

    /// Loads a request for a decider, or refuses (audited) with the same
    /// answer as for a missing one: nothing leaks across organizations.
    async fn visible(
        &self,
        actor: &Actor,
        id: RequestId,
        source: Option<&str>,
        action: &str,
    ) -> Result<RequestRecord> {
        let request = self.load(id).await?;
        if !Self::may_see(actor, &request) {
            return self
                .refuse_in(
                    actor,
                    source,
                    Some(id),
                    Some(&request.subject.organization),
                    action,
                    RaError::NotFound(format!("request {id}")),
                )
                .await;
        }
        Ok(request)
    }

    /// A request an operator is about to decide. A manager is refused
    /// what they may not see exactly as `show` refuses it, so deciding
    /// tells no more than looking (whether another organization's request
    /// exists, or is a server's); within their own, the transition table
    /// gives the reason.
    async fn decidable(
        &self,
        actor: &Actor,
        id: RequestId,
        source: Option<&str>,
        action: &str,
    ) -> Result<RequestRecord> {
        match actor.role {
            Role::OrgManager(_) => self.visible(actor, id, source, action).await,
            _ => self.load(id).await,
        }
    }

    /// Whether [`Self::decidable`] hides this request from the actor.
    fn hidden_from(actor: &Actor, request: &RequestRecord) -> bool {
        matches!(actor.role, Role::OrgManager(_)) && !Self::may_see(actor, request)
    }

    /// One request with its certificate and history, for a decider.
    pub async fn show(
        &self,
        actor: &Actor,
        id: RequestId,
        source: Option<&str>,
    ) -> Result<(RequestView, Vec<AuditEvent>)> {
        let request = self.visible(actor, id, source, "show").await?;
        let certificate = self.store.certificate_for_request(id).await?;
        let history = self.store.audit_for_request(id).await?;
        Ok((
            RequestView {
                request,
                certificate,
            },
            history,
        ))
    }

    /// What approval would issue for a request: the certificate with a
    /// signature of zeros (valid nowhere) and the pre-issuance lint's
    /// findings, for the approver to look at before deciding.
    pub async fn preview(
        &self,
        actor: &Actor,
        id: RequestId,
        source: Option<&str>,
    ) -> Result<enroll_pki::ca::Preview> {
        let request = self.visible(actor, id, source, "preview").await?;
        let params = self.issue_params(&request, Serial::random(&self.rng)?)?;
        Ok(self.ca.preview(&params)?)
    }

    /// The certificate a request gets, built from its validated fields
    /// and the profile: never from the CSR beyond its public key.
    fn issue_params(&self, request: &RequestRecord, serial: Serial) -> Result<IssueParams> {
        let key = enroll_pki::intake::key_of(&request.spki_der).map_err(RaError::Csr)?;
        let now = self.clock.now();
        let profile = if request.kind == RequestKind::External {
            Profile::ServerAuth
        } else {
            Profile::ClientAuth
        };
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if profile == Profile::ServerAuth {
            dns_names.push(request.subject.common_name.clone());
            for n in &request.alt_names {
                match n {
                    AltName::Dns(d) if !dns_names.contains(d) => dns_names.push(d.clone()),
                    AltName::Dns(_) => {}
                    AltName::Ip(ip) => ip_addresses.push(*ip),
                }
            }
        }
        let mut subject = subject_of(&request.subject);
        subject.retain(|(_, v)| !v.is_empty());
        Ok(IssueParams {
            profile,
            subject,
            spki_der: request.spki_der.clone(),
            key,
            serial,
            not_before: UnixTime(now.0 - BACKDATE_SECONDS),
            not_after: now.plus_days(self.policy.validity_days),
            dns_names,
            ip_addresses,
            revocation: self.policy.revocation.clone(),
        })
    }

    /// Approves a Pending request and issues its certificate at once.
    pub async fn approve(
        &self,
        actor: &Actor,
        id: RequestId,
        source: Option<&str>,
    ) -> Result<RequestView> {
        let request = self.decidable(actor, id, source, "approve").await?;
        if let Err(e) = transition(
            request.status,
            Action::Approve,
            actor,
            request.kind,
            &request.subject.organization,
        ) {
            return self
                .refuse_in(
                    actor,
                    source,
                    Some(id),
                    Some(&request.subject.organization),
                    "approve",
                    e.into(),
                )
                .await;
        }
        // The key may have been reported compromised since the request came.
        self.refuse_blocked_key(&request.spki_der).await?;
        let issued = self
            .ca
            .issue(self.issue_params(&request, Serial::random(&self.rng)?)?)?;
        let cert = CertRecord {
            serial: issued.serial.to_hex(),
            request_id: Some(id),
            der: issued.der,
            not_before: issued.not_before,
            not_after: issued.not_after,
            revoked_at: None,
            revocation_reason: None,
        };
        let who = actor.name.clone();
        self.apply(actor, &request, Action::Approve, source, |c| {
            c.decision = Some((who.clone(), None));
            c.certificate = Some(cert.clone());
        })
        .await?;
        Ok(RequestView {
            request: self.load(id).await?,
            certificate: Some(cert),
        })
    }

    /// The audit trail the actor may see, newest first: everything for
    /// the central administrator, their own organization's events for an
    /// organization manager.
    pub async fn audit_trail(
        &self,
        actor: &Actor,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        match &actor.role {
            Role::CentralAdmin => {}
            Role::OrgManager(org) => {
                if filter.org.as_ref().is_some_and(|o| o != org) {
                    return self
                        .refuse(
                            actor,
                            None,
                            None,
                            "audit",
                            forbid(
                                actor,
                                "read the audit trail of",
                                "an organization manager sees their own organization only",
                            ),
                        )
                        .await;
                }
                filter.org = Some(org.clone());
            }
            Role::Client(_) => {
                return self
                    .refuse(
                        actor,
                        None,
                        None,
                        "audit",
                        forbid(
                            actor,
                            "read the audit trail",
                            "the audit trail is for managers and administrators",
                        ),
                    )
                    .await;
            }
        }
        Ok(self.store.list_audit(&filter).await?)
    }

    /// Rejects a Pending request; the reason is shown to the client.
    pub async fn reject(
        &self,
        actor: &Actor,
        id: RequestId,
        reason: &str,
        source: Option<&str>,
    ) -> Result<RequestRecord> {
        let reason = enroll_core::subject::check_text("reason", reason, 500)
            .map_err(|e| RaError::Policy(vec![e]))?;
        if reason.is_empty() {
            return Err(RaError::Policy(vec![PolicyViolation::new(
                "reason",
                "a rejection needs a reason the requester can act on",
            )]));
        }
        let request = self.decidable(actor, id, source, "reject").await?;
        let who = actor.name.clone();
        self.apply(actor, &request, Action::Reject, source, |c| {
            c.decision = Some((who.clone(), Some(reason.clone())));
            c.audit.detail = Some(reason.clone());
        })
        .await?;
        self.load(id).await
    }

    async fn load(&self, id: RequestId) -> Result<RequestRecord> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| RaError::NotFound(format!("request {id}")))
    }

    /// Decides and applies one transition, auditing a refusal.
    async fn apply(
        &self,
        actor: &Actor,
        request: &RequestRecord,
        action: Action,
        source: Option<&str>,
        fill: impl FnOnce(&mut StatusChange),
    ) -> Result<()> {
        let to = match transition(
            request.status,
            action,
            actor,
            request.kind,
            &request.subject.organization,
        ) {
            Ok(to) => to,
            Err(e) => {
                return self
                    .refuse_in(
                        actor,
                        source,
                        Some(request.id),
                        Some(&request.subject.organization),
                        action.as_str(),
                        e.into(),
                    )
                    .await;
            }
        };
        let mut audit = self.event(actor, source, Some(request.id), action.as_str());
        audit.org = Some(request.subject.organization.clone());
        audit.from_status = Some(request.status);
        audit.to_status = Some(to);
        let mut change = StatusChange {
            id: request.id,
            from: request.status,
            to,
            at: self.clock.now(),
            decision: None,
            downloaded_by: None,
            certificate: None,
            revocation: None,
            block_key: None,
            audit,
        };
        fill(&mut change);
        self.store.change_status(&change).await?;
        Ok(())
    }

    // ----- revocation -----

    /// Revokes the certificate of a request (Approved, Installed or
    /// Downloaded); Revoked is final. A new CRL is published at once.
    pub async fn revoke(
        &self,
        actor: &Actor,
        id: RequestId,
        reason: Reason,
        source: Option<&str>,
    ) -> Result<Revocation> {
        if reason == Reason::CertificateHold {
            // A hold is undone later (removeFromCRL); here Revoked is final,
            // so a hold would be a lie to every relying party.
            return Err(RaError::Policy(vec![PolicyViolation::new(
                "reason",
                "certificateHold is temporary, but a revocation here is final; use \
                 keyCompromise, superseded, cessationOfOperation, affiliationChanged or \
                 privilegeWithdrawn",
            )]));
        }
        let request = self.decidable(actor, id, source, "revoke").await?;
        let at = self.clock.now();
        let block = (reason == Reason::KeyCompromise).then(|| spki_hash(&request.spki_der));
        self.apply(actor, &request, Action::Revoke, source, |c| {
            c.revocation = Some((at, reason.name().to_owned()));
            c.block_key = block;
            c.audit.detail = Some(reason.name().to_owned());
        })
        .await?;
        let (mut also_revoked, mut still_valid) = (Vec::new(), Vec::new());
        if reason == Reason::KeyCompromise {
            // Whoever holds the key can use every certificate for it.
            let why = format!("keyCompromise: the key of request {id}");
            for other in self.store.current_with_key(&request.spki_der).await? {
                let allowed = transition(
                    other.status,
                    Action::Revoke,
                    actor,
                    other.kind,
                    &other.subject.organization,
                )
                .is_ok()
                    && !Self::hidden_from(actor, &other);
                let done = allowed
                    && self
                        .apply(actor, &other, Action::Revoke, source, |c| {
                            c.revocation = Some((at, reason.name().to_owned()));
                            c.audit.detail = Some(why.clone());
                        })
                        .await
                        .is_ok();
                if done {
                    also_revoked.push(other.id);
                } else {
                    still_valid.push(other.id);
                }
            }
        }
        self.publish_crl().await?;
        Ok(Revocation {
            request: self.load(id).await?,
            also_revoked,
            still_valid,
        })
    }

    /// Builds, signs and stores a new CRL with the next number. Nodes
    /// publish one at a time ([`Store::publish_crl`]): numbers only ever
    /// increase, and each CRL lists every revocation committed before it.
    pub async fn publish_crl(&self) -> Result<CrlRecord> {
        let now = self.clock.now();
        let next = UnixTime(now.0 + self.policy.crl_period);
        // A certificate stays listed for one CRL period after it expires,
        // then drops off.
        let since = UnixTime(now.0 - self.policy.crl_period);
        self.store
            .publish_crl(since, |number, listed| {
                let entries: Vec<Revoked> = listed
                    .iter()
                    .filter_map(|c| {
                        Some(Revoked {
                            serial: Serial::from_hex(&c.serial)?,
                            at: c.revoked_at?,
                            reason: c
                                .revocation_reason
                                .as_deref()
                                .and_then(Reason::parse)
                                .unwrap_or(Reason::Unspecified),
                        })
                    })
                    .collect();
                let der = build_crl(
                    &self.ca,
                    u64::try_from(number).unwrap_or(0),
                    now,
                    next,
                    &entries,
                )?;
                Ok::<_, RaError>(CrlRecord {
                    number,
                    this_update: now,
                    next_update: next,
                    der,
                })
            })
            .await?
    }

    /// The CRL to serve: the latest one, or a new one when none exists or
    /// half of its period has passed.
    pub async fn current_crl(&self) -> Result<CrlRecord> {
        let now = self.clock.now();
        match self.store.latest_crl().await? {
            Some(c) if now.0 < c.this_update.0 + self.policy.crl_period / 2 => Ok(c),
            _ => self.publish_crl().await,
        }
    }

    /// Answers an OCSP request (DER) with a DER response: statuses for our
    /// own certificates, `unknown` for serials we never issued (or another
    /// issuer's, beside ours), `unauthorized` when none is ours, an error
    /// response for a malformed request.
    pub async fn ocsp(&self, request: &[u8]) -> Vec<u8> {
        let Some(responder) = &self.ocsp else {
            return ocsp_error(OcspError::Internal);
        };
        let req = match OcspRequest::parse(request) {
            Ok(r) => r,
            Err(e) => return ocsp_error(e),
        };
        if !req.cert_ids.iter().any(|id| responder.is_ours(id)) {
            return ocsp_error(OcspError::Unauthorized);
        }
        let mut statuses = Vec::with_capacity(req.cert_ids.len());
        for id in &req.cert_ids {
            let status = if !responder.is_ours(id) {
                CertStatus::Unknown
            } else {
                match self
                    .store
                    .certificate_by_serial(&Serial::from_bytes(&id.serial).to_hex())
                    .await
                {
                    Ok(Some(c)) => match c.revoked_at {
                        Some(at) => CertStatus::Revoked {
                            at,
                            reason: c
                                .revocation_reason
                                .as_deref()
                                .and_then(Reason::parse)
                                .unwrap_or(Reason::Unspecified),
                        },
                        None => CertStatus::Good,
                    },
                    Ok(None) => CertStatus::Unknown,
                    Err(_) => return ocsp_error(OcspError::Internal),
                }
            };
            statuses.push(status);
        }
        let now = self.clock.now();
        responder
            .respond(
                &req,
                &statuses,
                now,
                UnixTime(now.0 + self.policy.ocsp_period),
            )
            .unwrap_or_else(ocsp_error)
    }

    // ----- the service's own certificates -----

    /// Issues a certificate that belongs to no request (the service's TLS
    /// certificate, an operator credential) and records its serial.
    pub async fn issue_unbound(&self, c: UnboundCert) -> Result<enroll_pki::ca::Issued> {
        let now = self.clock.now();
        let issued = self.ca.issue(IssueParams {
            profile: c.profile,
            subject: c.subject,
            spki_der: c.spki_der,
            key: c.key,
            serial: Serial::random(&self.rng)?,
            not_before: UnixTime(now.0 - BACKDATE_SECONDS),
            not_after: now.plus_days(c.validity_days),
            dns_names: c.dns_names,
            ip_addresses: c.ip_addresses,
            revocation: (c.profile != Profile::OcspSigning)
                .then(|| self.policy.revocation.clone())
                .flatten(),
        })?;
        self.store
            .add_certificate(&CertRecord {
                serial: issued.serial.to_hex(),
                request_id: None,
                der: issued.der.clone(),
                not_before: issued.not_before,
                not_after: issued.not_after,
                revoked_at: None,
                revocation_reason: None,
            })
            .await?;
        Ok(issued)
    }

    /// Checks the store's invariants (see [`Store::check_consistency`]).
    pub async fn check_consistency(
        &self,
        actor: &Actor,
    ) -> Result<enroll_store::ConsistencyReport> {
        if let Err(e) = Self::require_admin(actor, "check the database") {
            return self.refuse(actor, None, None, "check", e).await;
        }
        Ok(self.store.check_consistency().await?)
    }

    /// Finds the request whose certificate a TLS peer presented.
    pub async fn request_for_certificate(
        &self,
        serial: &Serial,
    ) -> Result<Option<(CertRecord, Option<RequestRecord>)>> {
        let Some(cert) = self.store.certificate_by_serial(&serial.to_hex()).await? else {
            return Ok(None);
        };
        let request = match cert.request_id {
            Some(id) => self.store.request(id).await?,
            None => None,
        };
        Ok(Some((cert, request)))
    }
}
