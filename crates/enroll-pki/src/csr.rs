//! PKCS#10 requests: decoding, proof of possession, key checks.
//!
//! Problems are reported with stable codes (`csr.malformed`,
//! `csr.bad-signature`, `key.too-small`, …) that the server hands to
//! clients unchanged.

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

impl ParsedCsr {
    /// Reads a PEM or DER request, verifies its signature (proof of
    /// possession) and checks its key, with the same reader as the
    /// external intake ([`crate::intake`]).
    pub fn parse(input: &[u8]) -> Result<ParsedCsr, CsrError> {
        let csr = crate::intake::check_possession(input)?;
        Ok(ParsedCsr {
            der: csr.der_redacted,
            spki_der: csr.spki_der,
            key: csr.key,
        })
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
