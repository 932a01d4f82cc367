//! Revocation the world can check: CRLs (RFC 5280) and OCSP (RFC 6960).
//!
//! - [`Reason`]: RFC 5280 reason codes, by their RFC names.
//! - [`build_crl`]: a signed CRL of the issuing CA.
//! - [`OcspRequest::parse`] and [`OcspResponder::respond`]: requests as
//!   OpenSSL and browsers send them (SHA-1 or SHA-256 CertIDs, nonce), and
//!   responses signed by a delegated OCSP-signing certificate.

use aws_lc_rs::digest;
use enroll_core::UnixTime;
use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::der::{self, Reader, write as w};
use crate::{IssuingCa, PkiError, Serial, Signer};

/// Why a certificate was revoked (RFC 5280 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::CaCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
        Reason::AaCompromise,
    ];

    /// The RFC 5280 name, e.g. `keyCompromise`.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "cACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::CertificateHold => "certificateHold",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
            Reason::AaCompromise => "aACompromise",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Reason::Unspecified => 0,
            Reason::KeyCompromise => 1,
            Reason::CaCompromise => 2,
            Reason::AffiliationChanged => 3,
            Reason::Superseded => 4,
            Reason::CessationOfOperation => 5,
            Reason::CertificateHold => 6,
            Reason::PrivilegeWithdrawn => 9,
            Reason::AaCompromise => 10,
        }
    }

    /// Parses an RFC name, case-insensitively.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
    }

    fn rcgen(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::CaCompromise => RevocationReason::CaCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::CertificateHold => RevocationReason::CertificateHold,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            Reason::AaCompromise => RevocationReason::AaCompromise,
        }
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    pub serial: Serial,
    pub at: UnixTime,
    pub reason: Reason,
}

/// Signs a CRL of the issuing CA. `Unspecified` is left out of the entry,
/// as RFC 5280 §5.3.1 asks.
pub fn build_crl<S: Signer>(
    ca: &IssuingCa<S>,
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    entries: &[Revoked],
) -> Result<Vec<u8>, PkiError> {
    let params = CertificateRevocationListParams {
        this_update: crate::to_datetime(this_update),
        next_update: crate::to_datetime(next_update),
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: entries
            .iter()
            .map(|e| RevokedCertParams {
                serial_number: SerialNumber::from_slice(e.serial.as_bytes()),
                revocation_time: crate::to_datetime(e.at),
                reason_code: (e.reason != Reason::Unspecified).then(|| e.reason.rcgen()),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(ca.issuer())?.der().to_vec())
}

// ---------- OCSP ----------

const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
const BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertIdHash {
    Sha1,
    Sha256,
}

/// One certificate asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    pub hash: CertIdHash,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// The serial's magnitude (no sign byte).
    pub serial: Vec<u8>,
    /// The CertID as the client encoded it, echoed in the response.
    raw: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct OcspRequest {
    pub cert_ids: Vec<CertId>,
    pub nonce: Option<Vec<u8>>,
}

/// Why an OCSP request could not be answered with statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspError {
    /// malformedRequest (1).
    Malformed,
    /// internalError (2).
    Internal,
    /// unauthorized (6): none of the certificates asked about is ours
    /// (RFC 5019 §2.2.3).
    Unauthorized,
}

/// The most certificates one request may ask about.
pub const MAX_OCSP_IDS: usize = 16;

impl OcspRequest {
    pub fn parse(der: &[u8]) -> Result<OcspRequest, OcspError> {
        Self::parse_inner(der).map_err(|_| OcspError::Malformed)
    }

    fn parse_inner(input: &[u8]) -> Result<OcspRequest, der::DerError> {
        let bad = |what| der::DerError { what, offset: 0 };
        let mut top = Reader::new(input);
        let mut req = top.sequence("expected an OCSP request")?;
        top.finish("extra data after the OCSP request")?;
        let mut tbs = req.sequence("expected the TBSRequest")?;
        if tbs.peek_tag() == Some(0xa0) {
            tbs.any()?; // version
        }
        if tbs.peek_tag() == Some(0xa1) {
            tbs.any()?; // requestorName
        }
        let list = tbs.expect(der::SEQUENCE, "expected the request list")?;
        let mut cert_ids = Vec::new();
        let mut lr = Reader::inside(&list);
        while !lr.is_empty() {
            let mut one = lr.sequence("expected a Request")?;
            let cid = one.expect(der::SEQUENCE, "expected a CertID")?;
            let mut c = Reader::inside(&cid);
            let mut alg = c.sequence("expected the hash algorithm")?;
            let hash = match der::oid(&alg.expect(der::OID, "expected the hash OID")?)?.as_str() {
                SHA1 => CertIdHash::Sha1,
                SHA256 => CertIdHash::Sha256,
                _ => return Err(bad("unsupported CertID hash")),
            };
            let name = c.expect(der::OCTET_STRING, "expected the issuer name hash")?;
            let key = c.expect(der::OCTET_STRING, "expected the issuer key hash")?;
            let serial = der::integer(&c.expect(der::INTEGER, "expected the serial")?)?;
            let serial = match serial {
                [0, rest @ ..] if !rest.is_empty() => rest,
                s => s,
            };
            cert_ids.push(CertId {
                hash,
                issuer_name_hash: name.value.to_vec(),
                issuer_key_hash: key.value.to_vec(),
                serial: serial.to_vec(),
                raw: cid.raw.to_vec(),
            });
            if cert_ids.len() > MAX_OCSP_IDS {
                return Err(bad("too many certificates in one request"));
            }
        }
        if cert_ids.is_empty() {
            return Err(bad("empty request list"));
        }
        let mut nonce = None;
        if tbs.peek_tag() == Some(0xa2) {
            let exts = tbs.any()?;
            let mut er = Reader::inside(&exts).sequence("expected extensions")?;
            while !er.is_empty() {
                let mut e = er.sequence("expected an extension")?;
                let oid = der::oid(&e.expect(der::OID, "expected an extension OID")?)?;
                if e.peek_tag() == Some(der::BOOLEAN) {
                    e.any()?;
                }
                let v = e.expect(der::OCTET_STRING, "expected an extension value")?;
                if oid == NONCE {
                    nonce = Some(v.value.to_vec());
                }
            }
        }
        Ok(OcspRequest { cert_ids, nonce })
    }
}

/// What the CA knows of a serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked { at: UnixTime, reason: Reason },
    Unknown,
}

/// Signs OCSP responses with a delegated OCSP-signing certificate.
pub struct OcspResponder<S: Signer = rcgen::KeyPair> {
    cert_der: Vec<u8>,
    key: S,
    key_hash: Vec<u8>,
    sig_alg: Vec<u8>,
    issuer_hashes: [(CertIdHash, Vec<u8>, Vec<u8>); 2],
}

impl<S: Signer> std::fmt::Debug for OcspResponder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponder").finish_non_exhaustive()
    }
}

fn spki_parts(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let (_, c) = X509Certificate::from_der(cert_der).map_err(|e| PkiError::BadMaterial {
        what: "certificate",
        detail: e.to_string(),
    })?;
    Ok((
        c.subject().as_raw().to_vec(),
        c.public_key().subject_public_key.data.to_vec(),
    ))
}

impl<S: Signer> OcspResponder<S> {
    /// `cert_der` is the responder's certificate (issued by the issuing CA
    /// with id-kp-OCSPSigning and id-pkix-ocsp-nocheck), `key` its key,
    /// `issuer_der` the issuing CA's certificate.
    pub fn new(cert_der: Vec<u8>, key: S, issuer_der: &[u8]) -> Result<Self, PkiError> {
        let (_, own_key) = spki_parts(&cert_der)?;
        let (issuer_name, issuer_key) = spki_parts(issuer_der)?;
        let h = |alg, b: &[u8]| digest::digest(alg, b).as_ref().to_vec();
        let ecdsa = key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256;
        let sig_alg = if ecdsa {
            w::seq(&[&w::oid("1.2.840.10045.4.3.2")])
        } else {
            w::seq(&[&w::oid("1.2.840.113549.1.1.11"), &[0x05, 0x00]])
        };
        Ok(OcspResponder {
            key_hash: h(&digest::SHA1_FOR_LEGACY_USE_ONLY, &own_key),
            cert_der,
            key,
            sig_alg,
            issuer_hashes: [
                (
                    CertIdHash::Sha1,
                    h(&digest::SHA1_FOR_LEGACY_USE_ONLY, &issuer_name),
                    h(&digest::SHA1_FOR_LEGACY_USE_ONLY, &issuer_key),
                ),
                (
                    CertIdHash::Sha256,
                    h(&digest::SHA256, &issuer_name),
                    h(&digest::SHA256, &issuer_key),
                ),
            ],
        })
    }

    /// Whether a CertID names our issuing CA.
    pub fn is_ours(&self, id: &CertId) -> bool {
        self.issuer_hashes
            .iter()
            .any(|(h, n, k)| *h == id.hash && *n == id.issuer_name_hash && *k == id.issuer_key_hash)
    }

    /// A signed `successful` response for `statuses` (one per CertID, in
    /// order), valid from `now` to `next_update`, echoing the nonce.
    pub fn respond(
        &self,
        req: &OcspRequest,
        statuses: &[CertStatus],
        now: UnixTime,
        next_update: UnixTime,
    ) -> Result<Vec<u8>, OcspError> {
        let mut singles = Vec::new();
        for (id, status) in req.cert_ids.iter().zip(statuses) {
            let st = match status {
                CertStatus::Good => w::ctx(0, false, &[]),
                CertStatus::Unknown => w::ctx(2, false, &[]),
                CertStatus::Revoked { at, reason } => {
                    let mut inner = w::generalized_time(at.0);
                    if *reason != Reason::Unspecified {
                        inner.extend(w::ctx(0, true, &w::tlv(0x0a, &[reason.code()])));
                    }
                    w::ctx(1, true, &inner)
                }
            };
            singles.push(w::seq(&[
                &id.raw,
                &st,
                &w::generalized_time(now.0),
                &w::ctx(0, true, &w::generalized_time(next_update.0)),
            ]));
        }
        let responses = w::seq(&singles.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let mut data = vec![
            w::ctx(2, true, &w::octets(&self.key_hash)),
            w::generalized_time(now.0),
            responses,
        ];
        if let Some(n) = &req.nonce {
            let ext = w::seq(&[&w::oid(NONCE), &w::octets(n)]);
            data.push(w::ctx(1, true, &w::seq(&[&ext])));
        }
        let tbs = w::seq(&data.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let sig = self.key.sign(&tbs).map_err(|_| OcspError::Internal)?;
        let certs = w::ctx(0, true, &w::seq(&[&self.cert_der]));
        let basic = w::seq(&[&tbs, &self.sig_alg, &w::bits(&sig), &certs]);
        let bytes = w::ctx(0, true, &w::seq(&[&w::oid(BASIC), &w::octets(&basic)]));
        Ok(w::seq(&[&w::tlv(0x0a, &[0]), &bytes]))
    }
}

/// An unsigned error response (malformedRequest, internalError…).
/// Whether an OCSP response is an unsigned error response (no
/// responseBytes): such an answer must not be cached.
pub fn is_ocsp_error(der: &[u8]) -> bool {
    matches!(der, [0x30, 3, 0x0a, 1, status] if *status != 0)
}

pub fn ocsp_error(e: OcspError) -> Vec<u8> {
    let code = match e {
        OcspError::Malformed => 1,
        OcspError::Internal => 2,
        OcspError::Unauthorized => 6,
    };
    w::seq(&[&w::tlv(0x0a, &[code])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_recognised() {
        for e in [
            OcspError::Malformed,
            OcspError::Internal,
            OcspError::Unauthorized,
        ] {
            assert!(is_ocsp_error(&ocsp_error(e)));
        }
        // successful (0) with responseBytes is not an error response.
        assert!(!is_ocsp_error(&[0x30, 3, 0x0a, 1, 0]));
    }

    #[test]
    fn reason_names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.name()), Some(r));
        }
        assert_eq!(Reason::parse("KEYCOMPROMISE"), Some(Reason::KeyCompromise));
        assert_eq!(Reason::parse("removeFromCRL"), None);
    }
}
