//! PKCS#10 requests: decoding, proof of possession, key checks.
//!
//! Problems are reported with stable codes (`csr.malformed`,
//! `csr.bad-signature`, `key.too-small`, …) that the server hands to
//! clients unchanged.

use x509_parser::prelude::{FromDer, X509CertificationRequest};
use x509_parser::public_key::PublicKey;

/// One thing wrong with a CSR: a stable code and a sentence saying what to
/// do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrProblem {
    pub code: &'static str,
    pub message: String,
}

/// Every problem found in a CSR (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the certificate request was refused: {}", summary(.0))]
pub struct CsrError(pub Vec<CsrProblem>);

fn summary(p: &[CsrProblem]) -> String {
    p.iter()
        .map(|p| format!("{} ({})", p.message, p.code))
        .collect::<Vec<_>>()
        .join("; ")
}

impl CsrError {
    fn one(code: &'static str, message: impl Into<String>) -> Self {
        CsrError(vec![CsrProblem {
            code,
            message: message.into(),
        }])
    }
}

/// The key a CSR carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInfo {
    Rsa { bits: u32 },
    EcdsaP256,
    EcdsaP384,
}

impl KeyInfo {
    pub fn describe(self) -> String {
        match self {
            KeyInfo::Rsa { bits } => format!("RSA {bits}"),
            KeyInfo::EcdsaP256 => "ECDSA P-256".into(),
            KeyInfo::EcdsaP384 => "ECDSA P-384".into(),
        }
    }

    pub fn rsa_bits(self) -> Option<u32> {
        match self {
            KeyInfo::Rsa { bits } => Some(bits),
            _ => None,
        }
    }
}

/// A decoded request whose signature verified with its own key.
#[derive(Debug, Clone)]
pub struct ParsedCsr {
    /// The request, DER.
    pub der: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER: the only part that goes into a
    /// certificate.
    pub spki_der: Vec<u8>,
    pub key: KeyInfo,
}

/// The largest request we read; anything bigger is not a CSR from a sane tool.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

impl ParsedCsr {
    /// Reads a PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or
    /// DER request, verifies its signature, and checks its key.
    pub fn parse(input: &[u8]) -> Result<ParsedCsr, CsrError> {
        if input.len() > MAX_CSR_BYTES {
            return Err(CsrError::one(
                "csr.too-large",
                "the request is larger than 64 KiB; a certificate request is a few KiB at most",
            ));
        }
        let der = decode(input)?;
        let (rest, csr) = X509CertificationRequest::from_der(&der).map_err(|_| {
            CsrError::one(
                "csr.malformed",
                "the file is not a PKCS#10 certificate request; generate one with \
                 `openssl req -new` or your platform's tool",
            )
        })?;
        if !rest.is_empty() {
            return Err(CsrError::one(
                "csr.trailing-data",
                "there are bytes after the request; save the request alone",
            ));
        }
        let info = &csr.certification_request_info;
        if info.version.0 != 0 {
            return Err(CsrError::one(
                "csr.unsupported-version",
                "only PKCS#10 version 1 requests are accepted; regenerate the request",
            ));
        }
        csr.verify_signature().map_err(|_| {
            CsrError::one(
                "csr.bad-signature",
                "the request's signature does not verify with its own key; \
                 regenerate the request with the matching private key",
            )
        })?;
        let key = key_info(&info.subject_pki)?;
        let spki_der = info.subject_pki.raw.to_vec();
        Ok(ParsedCsr {
            der: der.clone(),
            spki_der,
            key,
        })
    }
}

fn decode(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    // DER starts with a SEQUENCE tag; anything else must be PEM text.
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let text = std::str::from_utf8(input).map_err(|_| {
        CsrError::one(
            "csr.malformed",
            "the file is neither PEM text nor DER; save the request as PEM or DER",
        )
    })?;
    let mut found = Vec::new();
    for label in ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"] {
        let blocks = crate::pem::decode_all(text, label)
            .map_err(|e| CsrError::one("csr.malformed", format!("{e}; save the request again")))?;
        found.extend(blocks);
    }
    match found.len() {
        0 => Err(CsrError::one(
            "csr.malformed",
            "no -----BEGIN CERTIFICATE REQUEST----- block found; this is not a certificate request",
        )),
        1 => Ok(found.remove(0)),
        _ => Err(CsrError::one(
            "csr.multiple",
            "the file holds more than one request; submit one request per file",
        )),
    }
}

fn key_info(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeyInfo, CsrError> {
    let unsupported = || {
        CsrError::one(
            "key.unsupported-type",
            "the key type is not supported; use RSA (2048 to 8192 bits) or ECDSA P-256 / P-384",
        )
    };
    match spki.parsed().map_err(|_| unsupported())? {
        PublicKey::RSA(rsa) => {
            let bits = u32::try_from(rsa.key_size()).unwrap_or(u32::MAX);
            if bits < 2048 {
                return Err(CsrError::one(
                    "key.too-small",
                    format!("the RSA key has {bits} bits; generate a key of at least 2048 bits"),
                ));
            }
            if bits > 8192 {
                return Err(unsupported());
            }
            match rsa.try_exponent() {
                Ok(e) if e >= 3 && e % 2 == 1 => Ok(KeyInfo::Rsa { bits }),
                _ => Err(CsrError::one(
                    "key.weak",
                    "the RSA public exponent is not sane; generate a new key (exponent 65537)",
                )),
            }
        }
        PublicKey::EC(_) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some(OID_P256) => Ok(KeyInfo::EcdsaP256),
                Some(OID_P384) => Ok(KeyInfo::EcdsaP384),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// Builds a PKCS#10 request (PEM) for `subject`, asking for the key usages
/// and extended key usage of `profile`, signed with `key`.
pub fn build_request(
    subject: &[(crate::profile::DnAttr, String)],
    profile: crate::Profile,
    key: &rcgen::KeyPair,
) -> Result<String, crate::PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = crate::profile::distinguished_name(subject)?;
    let rsa = [
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_RSA_SHA384,
        &rcgen::PKCS_RSA_SHA512,
    ]
    .contains(&key.algorithm());
    let (ku, eku) = crate::profile::usages(profile, rsa);
    params.key_usages = ku;
    params.extended_key_usages = eku;
    Ok(params.serialize_request(key)?.pem()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_pem(kt: crate::KeyType) -> String {
        let key = kt.generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "x.example");
        params
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    #[test]
    fn reads_own_requests_in_pem_and_der() {
        let pem = csr_pem(crate::KeyType::Rsa2048);
        let parsed = ParsedCsr::parse(pem.as_bytes()).expect("valid");
        assert_eq!(parsed.key, KeyInfo::Rsa { bits: 2048 });
        let again = ParsedCsr::parse(&parsed.der).expect("der");
        assert_eq!(again.spki_der, parsed.spki_der);
        let ec = ParsedCsr::parse(csr_pem(crate::KeyType::EcdsaP256).as_bytes()).expect("ec");
        assert_eq!(ec.key, KeyInfo::EcdsaP256);
    }

    #[test]
    fn refuses_tampered_and_doubled_requests() {
        let pem = csr_pem(crate::KeyType::EcdsaP256);
        let mut der = ParsedCsr::parse(pem.as_bytes()).expect("valid").der;
        // Flip a byte inside the subject: the signature no longer verifies.
        let pos = der.windows(9).position(|w| w == b"x.example").expect("cn");
        der[pos] = b'y';
        let e = ParsedCsr::parse(&der).expect_err("tampered");
        assert_eq!(e.0[0].code, "csr.bad-signature");
        let e = ParsedCsr::parse(format!("{pem}{pem}").as_bytes()).expect_err("two");
        assert_eq!(e.0[0].code, "csr.multiple");
        let e = ParsedCsr::parse(b"hello").expect_err("junk");
        assert_eq!(e.0[0].code, "csr.malformed");
    }
}
