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
//! - [`revocation`]: CRLs and OCSP responses.
//! - [`serial`]: random, positive certificate serial numbers.
//! - [`inspect`]: read back a certificate (subject, validity, serial).

pub mod ca;
pub mod csr;
pub mod der;
pub mod inspect;
pub mod intake;
pub mod keys;
pub mod pem;
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
}

/// Converts domain time to the `time` crate's, for rcgen.
pub(crate) fn to_datetime(t: enroll_core::UnixTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.0).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
