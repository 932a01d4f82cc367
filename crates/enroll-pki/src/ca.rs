//! The CA hierarchy: a root that signs only the issuing CA, and the issuing
//! CA that signs every end-entity certificate.

use enroll_core::UnixTime;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::profile::IssueParams;
use crate::{KeyType, PkiError, Serial, Signer};

/// PEM files of a freshly created hierarchy, for the caller to store.
#[derive(Debug)]
pub struct CaMaterial {
    pub root_cert_pem: String,
    pub root_key_pem: String,
    pub issuing_cert_pem: String,
    pub issuing_key_pem: String,
}

const ROOT_YEARS: u32 = 20;
const ISSUING_YEARS: u32 = 10;

impl CaMaterial {
    /// Creates a root and an issuing CA for `name` (e.g. "Enroll"), valid
    /// from `now`.
    pub fn create(
        key_type: KeyType,
        name: &str,
        now: UnixTime,
        rng: &dyn aws_lc_rs::rand::SecureRandom,
    ) -> Result<CaMaterial, PkiError> {
        let root_key = key_type.generate()?;
        let root_params = ca_params(
            &format!("{name} Root CA"),
            name,
            1,
            now,
            now.plus_days(ROOT_YEARS * 365),
            &Serial::random(rng)?,
        );
        let root_cert = root_params.self_signed(&root_key)?;
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let issuing_key = key_type.generate()?;
        let mut issuing_params = ca_params(
            &format!("{name} Issuing CA 1"),
            name,
            0,
            now,
            now.plus_days(ISSUING_YEARS * 365),
            &Serial::random(rng)?,
        );
        issuing_params.use_authority_key_identifier_extension = true;
        let issuing_cert = issuing_params.signed_by(&issuing_key, &root_issuer)?;
        Ok(CaMaterial {
            root_cert_pem: root_cert.pem(),
            root_key_pem: root_key.serialize_pem(),
            issuing_cert_pem: issuing_cert.pem(),
            issuing_key_pem: issuing_key.serialize_pem(),
        })
    }
}

fn ca_params(
    cn: &str,
    org: &str,
    path_len: u8,
    not_before: UnixTime,
    not_after: UnixTime,
    serial: &Serial,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::OrganizationName, org);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = crate::to_datetime(not_before);
    p.not_after = crate::to_datetime(not_after);
    p.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    p
}

/// A certificate we signed.
#[derive(Debug, Clone)]
pub struct Issued {
    pub der: Vec<u8>,
    pub pem: String,
    pub serial: Serial,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

/// Stands in for the CA key when a certificate is built only to be looked
/// at: the same public key and algorithm, and a signature of zeros that
/// verifies against nothing.
#[derive(Debug)]
pub struct NoSignature {
    public: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for NoSignature {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for NoSignature {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(vec![0; 8])
    }
}

/// A certificate as it would be issued, with a signature of zeros (valid
/// nowhere), and its lint findings.
#[derive(Debug, Clone)]
pub struct Preview {
    pub der: Vec<u8>,
    pub findings: Vec<crate::lint::Finding>,
}

/// The CA that signs end-entity certificates.
pub struct IssuingCa<S: Signer = KeyPair> {
    issuer: Issuer<'static, S>,
    /// The same issuer name, key identifier and signature algorithm, with
    /// a signer that signs nothing: the copies it makes are byte-identical
    /// to ours but for the signature value, so the lint sees exactly what
    /// we would sign, for the cost of building it once more.
    lint_issuer: Issuer<'static, NoSignature>,
    /// The issuing CA's side of the lint's checks, read once.
    lint_facts: Option<crate::lint::IssuerFacts>,
    cert_pem: String,
    cert_der: Vec<u8>,
    root_pem: String,
    not_before: UnixTime,
    not_after: UnixTime,
}

impl<S: Signer> std::fmt::Debug for IssuingCa<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl<S: Signer> IssuingCa<S> {
    pub fn new(cert_pem: &str, root_pem: &str, key: S) -> Result<IssuingCa<S>, PkiError> {
        let der = crate::pem::decode_all(cert_pem, "CERTIFICATE")
            .ok()
            .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
            .ok_or(PkiError::BadMaterial {
                what: "issuing CA certificate",
                detail: "no PEM certificate found".into(),
            })?;
        let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::BadMaterial {
            what: "issuing CA certificate",
            detail: e.to_string(),
        })?;
        let not_before = UnixTime(cert.validity().not_before.timestamp());
        let not_after = UnixTime(cert.validity().not_after.timestamp());
        let no_signature = NoSignature {
            public: rcgen::PublicKeyData::der_bytes(&key).to_vec(),
            alg: rcgen::PublicKeyData::algorithm(&key),
        };
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        let lint_issuer = Issuer::from_ca_cert_pem(cert_pem, no_signature)?;
        Ok(IssuingCa {
            issuer,
            lint_issuer,
            lint_facts: crate::lint::IssuerFacts::from_der(&der),
            cert_der: der.clone(),
            cert_pem: cert_pem.to_owned(),
            root_pem: root_pem.to_owned(),
            not_before,
            not_after,
        })
    }

    /// The issuing CA then the root, PEM: what a relying party needs beside
    /// a leaf.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.root_pem)
    }

    /// The rcgen issuer, for CRLs.
    pub fn issuer(&self) -> &Issuer<'static, S> {
        &self.issuer
    }

    /// The issuing CA's certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate `params` would give, with a signature of zeros
    /// instead of ours (so it verifies against nothing), and what the
    /// pre-issuance lint says of it. For approvers to look at before they
    /// decide; never valid anywhere.
    pub fn preview(&self, params: &IssueParams) -> Result<Preview, PkiError> {
        let params = self.clamp(params.clone());
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&params.spki_der)?;
        let copy = params.to_rcgen()?.signed_by(&spki, &self.lint_issuer)?;
        let findings = crate::lint::lint(
            copy.der(),
            crate::lint::Expectations {
                profile: params.profile,
                issuer: self.lint_facts.as_ref(),
                revocation: params.revocation.is_some(),
            },
        );
        Ok(Preview {
            der: copy.der().to_vec(),
            findings,
        })
    }

    fn clamp(&self, mut params: IssueParams) -> IssueParams {
        params.not_after = params.not_after.min(self.not_after);
        params.not_before = params.not_before.max(self.not_before);
        params
    }

    /// Signs a certificate built from `params`, after the pre-issuance
    /// lint passed on it. The certificate is built once: the lint reads
    /// the copy with a signature of zeros, and our key then signs that
    /// copy's to-be-signed bytes unchanged, so what was linted is exactly
    /// what is signed. Validity is cut to the issuing CA's own, so no
    /// certificate outlives its issuer or starts before it.
    pub fn issue(&self, params: IssueParams) -> Result<Issued, PkiError> {
        let preview = self.preview(&params)?;
        if crate::lint::has_errors(&preview.findings) {
            return Err(PkiError::Lint(preview.findings));
        }
        let params = self.clamp(params);
        let der = self.sign_linted(&preview.der)?;
        Ok(Issued {
            pem: crate::pem::encode("CERTIFICATE", &der),
            der,
            serial: params.serial,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }

    /// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm,
    /// signatureValue }` around the copy's own first two fields and our
    /// signature of the first.
    fn sign_linted(&self, copy: &[u8]) -> Result<Vec<u8>, PkiError> {
        use crate::der::{Reader, SEQUENCE, write};
        let unreadable = |e: crate::der::DerError| PkiError::BadMaterial {
            what: "to-be-signed certificate",
            detail: e.to_string(),
        };
        let mut outer = Reader::new(copy);
        let mut cert = outer.sequence("certificate").map_err(unreadable)?;
        let tbs = cert
            .expect(SEQUENCE, "tbsCertificate")
            .map_err(unreadable)?;
        let alg = cert
            .expect(SEQUENCE, "signatureAlgorithm")
            .map_err(unreadable)?;
        let signature = rcgen::SigningKey::sign(self.issuer.key(), tbs.raw)?;
        Ok(write::seq(&[tbs.raw, alg.raw, &write::bits(&signature)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::DnAttr;
    use crate::{KeyInfo, Profile};
    use aws_lc_rs::rand::SystemRandom;
    use x509_parser::prelude::FromDer;

    fn params(spki: Vec<u8>, serial: Serial) -> IssueParams {
        IssueParams {
            profile: Profile::ClientAuth,
            subject: vec![
                (DnAttr::Organization, "J1CFRA".into()),
                (DnAttr::OrganizationUnit, "Workstation".into()),
                (DnAttr::CommonName, "A".repeat(60)),
            ],
            spki_der: spki,
            key: KeyInfo::EcdsaP256,
            serial,
            not_before: UnixTime(1_800_000_000),
            not_after: UnixTime(1_800_000_000).plus_days(30),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            revocation: None,
        }
    }

    #[test]
    fn signs_exactly_what_was_linted_and_the_signature_verifies() {
        let rng = SystemRandom::new();
        for kt in [KeyType::EcdsaP256, KeyType::Rsa2048] {
            let m = CaMaterial::create(kt, "T", UnixTime(1_799_000_000), &rng).expect("ca");
            let key = crate::keys::load_key_pem(&m.issuing_key_pem).expect("key");
            let ca = IssuingCa::new(&m.issuing_cert_pem, &m.root_cert_pem, key).expect("ca");
            let subject = KeyType::EcdsaP256.generate().expect("subject key");
            let p = params(
                crate::keys::spki_der(&subject),
                Serial::random(&rng).expect("serial"),
            );
            let preview = ca.preview(&p).expect("preview");
            let issued = ca.issue(p).expect("issue");

            let (rest, cert) = X509Certificate::from_der(&issued.der).expect("parses");
            assert!(rest.is_empty(), "nothing after the certificate");
            let (_, linted) = X509Certificate::from_der(&preview.der).expect("copy parses");
            assert_eq!(
                cert.tbs_certificate.as_ref(),
                linted.tbs_certificate.as_ref(),
                "the signed bytes are the linted bytes"
            );
            let issuer_der = ca.cert_der();
            let (_, issuer) = X509Certificate::from_der(&issuer_der).expect("issuer");
            cert.verify_signature(Some(issuer.public_key()))
                .expect("our signature verifies under the issuing CA's key");
            assert!(
                linted.verify_signature(Some(issuer.public_key())).is_err(),
                "the lint copy verifies against nothing"
            );
            assert_eq!(
                crate::pem::decode_all(&issued.pem, "CERTIFICATE").expect("pem"),
                vec![issued.der.clone()]
            );
        }
    }
}
