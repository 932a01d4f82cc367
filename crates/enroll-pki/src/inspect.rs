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

/// A certificate as a person reads it: what the approver sees of the
/// preview and of an issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub key: String,
    pub signature_algorithm: String,
    pub extensions: Vec<ExtensionLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionLine {
    pub name: String,
    pub critical: bool,
    pub value: String,
}

fn colon_hex(b: &[u8]) -> String {
    b.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        other => other.to_owned(),
    }
}

fn extension_line(ext: &x509_parser::extensions::X509Extension<'_>) -> ExtensionLine {
    use x509_parser::extensions::{DistributionPointName, ParsedExtension as P};
    let oid = ext.oid.to_id_string();
    let (name, value) = match ext.parsed_extension() {
        P::KeyUsage(ku) => ("Key usage", ku.to_string()),
        P::ExtendedKeyUsage(e) => {
            let mut v = Vec::new();
            for (on, n) in [
                (e.server_auth, "serverAuth"),
                (e.client_auth, "clientAuth"),
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.time_stamping, "timeStamping"),
                (e.ocsp_signing, "OCSPSigning"),
                (e.any, "anyExtendedKeyUsage"),
            ] {
                if on {
                    v.push(n.to_owned());
                }
            }
            v.extend(e.other.iter().map(|o| o.to_id_string()));
            ("Extended key usage", v.join(", "))
        }
        P::SubjectAlternativeName(s) => (
            "Subject alternative name",
            s.general_names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        P::BasicConstraints(bc) => (
            "Basic constraints",
            match (bc.ca, bc.path_len_constraint) {
                (true, Some(n)) => format!("CA:TRUE, pathlen:{n}"),
                (true, None) => "CA:TRUE".into(),
                (false, _) => "CA:FALSE".into(),
            },
        ),
        P::SubjectKeyIdentifier(k) => ("Subject key identifier", colon_hex(k.0)),
        P::AuthorityKeyIdentifier(a) => (
            "Authority key identifier",
            a.key_identifier
                .as_ref()
                .map(|k| colon_hex(k.0))
                .unwrap_or_default(),
        ),
        P::CRLDistributionPoints(c) => (
            "CRL distribution points",
            c.points
                .iter()
                .filter_map(|p| match &p.distribution_point {
                    Some(DistributionPointName::FullName(names)) => Some(
                        names
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        P::AuthorityInfoAccess(a) => (
            "Authority information access",
            a.accessdescs
                .iter()
                .map(|d| {
                    let method = match d.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => "OCSP".to_owned(),
                        "1.3.6.1.5.5.7.48.2" => "CA issuers".to_owned(),
                        other => other.to_owned(),
                    };
                    format!("{method} - {}", d.access_location)
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ if oid == "1.3.6.1.5.5.7.48.1.5" => ("OCSP no check", String::new()),
        _ => ("", String::new()),
    };
    ExtensionLine {
        name: if name.is_empty() {
            oid
        } else {
            name.to_owned()
        },
        critical: ext.critical,
        value,
    }
}

/// Reads a certificate for people.
pub fn describe(der: &[u8]) -> Result<CertSummary, PkiError> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| PkiError::BadMaterial {
        what: "certificate",
        detail: e.to_string(),
    })?;
    let key = crate::intake::key_of(c.public_key().raw)
        .map(|k| k.describe())
        .unwrap_or_else(|_| "unsupported key".into());
    Ok(CertSummary {
        subject: name_string(c.subject()),
        issuer: name_string(c.issuer()),
        serial: Serial::from_bytes(strip_sign_byte(c.raw_serial())).to_hex(),
        not_before: UnixTime(c.validity().not_before.timestamp()),
        not_after: UnixTime(c.validity().not_after.timestamp()),
        key,
        signature_algorithm: signature_name(&c.signature_algorithm.algorithm.to_id_string()),
        extensions: c.extensions().iter().map(extension_line).collect(),
    })
}

/// The name of a signature algorithm OID (dotted), for people.
pub fn signature_algorithm_name(oid: &str) -> String {
    signature_name(oid)
}
