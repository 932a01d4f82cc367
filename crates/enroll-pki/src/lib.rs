//! Enroll's X.509 layer: everything that reads or writes certificates.
//!
//! - [`csr`]: parse a PKCS#10 request (PEM or DER) and verify its
//!   proof of possession ([`ParsedCsr`]).
//! - [`intake`]: the external CSR policy ([`intake::check_external`]) over
//!   a strict DER reader ([`der`]).
//! - [`keys`]: key generation and the [`Signer`] trait behind which the CA
//!   keys sit (PEM files now, an HSM later).
//! - [`ca`]: the two-level hierarchy (root, issuing CA) created at
//!   initialisation and the [`IssuingCa`] that signs.
//! - [`profile`]: what every certificate we issue looks like
//!   ([`Profile`]); the subject comes from validated
//!   [`enroll_core::SubjectFields`], never from a CSR.
//! - [`lint`]: the pre-issuance lint every certificate passes before the
//!   CA signs it.
//! - [`pkcs12`]: PKCS#12 bundles for operator credentials.
//! - [`revocation`]: CRLs and OCSP responses.
//! - [`serial`]: random, positive certificate serial numbers.
//! - [`inspect`]: read back a certificate (subject, validity, serial).

pub mod ca;
pub mod csr;
pub mod der;
pub mod inspect;
pub mod intake;
pub mod keys;
pub mod lint;
pub mod pem;
pub mod pkcs12;
pub mod profile;
pub mod revocation;
pub mod serial;

pub use ca::{CaMaterial, IssuingCa};
pub use csr::{CsrError, KeyInfo, ParsedCsr};
pub use inspect::CertInfo;
pub use keys::{KeyType, Signer};
pub use profile::{IssueParams, Profile, RevocationUrls};
pub use serial::Serial;

/// Errors of the PKI layer that are not about the input CSR.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen or aws-lc refused to build or sign.
    #[error("certificate generation failed")]
    Generation(#[from] rcgen::Error),
    /// A certificate or key file could not be read.
    #[error("cannot read {what}: {detail}")]
    BadMaterial { what: &'static str, detail: String },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The pre-issuance lint found errors: nothing was signed.
    #[error("the certificate failed its pre-issuance lint: {}", lint_list(.0))]
    Lint(Vec<lint::Finding>),
}

fn lint_list(f: &[lint::Finding]) -> String {
    f.iter()
        .filter(|f| f.level == lint::Level::Error)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Converts domain time to the `time` crate's, for rcgen.
pub(crate) fn to_datetime(t: enroll_core::UnixTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
