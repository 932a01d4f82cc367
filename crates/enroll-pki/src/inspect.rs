//! Reading back certificates: what the client shows and checks, and what
//! the server looks up when a peer presents one.

use enroll_core::UnixTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::{PkiError, Serial};

/// The facts of a certificate that Enroll acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject in encoded order, `E=…,C=…,…,CN=…` style short names.
    pub subject: String,
    pub issuer: String,
    pub serial: Serial,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// SubjectPublicKeyInfo DER, to match a certificate to its key.
    pub spki_der: Vec<u8>,
}

impl CertInfo {
    pub fn from_der(der: &[u8]) -> Result<CertInfo, PkiError> {
        let (_, c) = X509Certificate::from_der(der).map_err(|e| PkiError::BadMaterial {
            what: "certificate",
            detail: e.to_string(),
        })?;
        Ok(CertInfo {
            subject: name_string(c.subject()),
            issuer: name_string(c.issuer()),
            serial: Serial::from_bytes(strip_sign_byte(c.raw_serial())),
            not_before: UnixTime(c.validity().not_before.timestamp()),
            not_after: UnixTime(c.validity().not_after.timestamp()),
            spki_der: c.public_key().raw.to_vec(),
        })
    }

    /// The first certificate of a PEM text.
    pub fn from_pem(pem: &str) -> Result<CertInfo, PkiError> {
        let der = first_cert_der(pem)?;
        CertInfo::from_der(&der)
    }
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
pub fn first_cert_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    crate::pem::decode_all(pem, "CERTIFICATE")
        .map_err(|detail| PkiError::BadMaterial {
            what: "certificate",
            detail,
        })?
        .into_iter()
        .next()
        .ok_or(PkiError::BadMaterial {
            what: "certificate",
            detail: "no -----BEGIN CERTIFICATE----- block".into(),
        })
}

fn strip_sign_byte(b: &[u8]) -> &[u8] {
    match b {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => b,
    }
}

fn name_string(n: &x509_parser::x509::X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for attr in n.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let key = match oid.as_str() {
            "1.2.840.113549.1.9.1" => "E",
            "2.5.4.6" => "C",
            "2.5.4.8" => "ST",
            "2.5.4.7" => "L",
            "2.5.4.10" => "O",
            "2.5.4.11" => "OU",
            "2.5.4.3" => "CN",
            _ => {
                parts.push(format!("{oid}=#"));
                continue;
            }
        };
        let value = attr.as_str().unwrap_or("#");
        parts.push(format!("{key}={value}"));
    }
    parts.join(",")
}
