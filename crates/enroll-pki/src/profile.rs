//! Certificate profiles: what each kind of certificate we issue carries.
//!
//! Issuance follows one cycle: build the to-be-signed certificate from
//! validated fields and the profile, check it ([`IssueParams::check`]),
//! sign. Nothing is copied from a CSR except its public key.

use std::net::IpAddr;

use enroll_core::{SubjectFields, UnixTime};
use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::{KeyInfo, PkiError, Serial};

/// The kinds of certificate Enroll issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A member's workstation or server calling the provider's APIs:
    /// extended key usage clientAuth.
    ClientAuth,
    /// Another server of a member (external request): serverAuth.
    ServerAuth,
    /// The enrollment service's own TLS certificate.
    ServiceTls,
    /// A manager's or administrator's sign-in credential: clientAuth.
    Operator,
    /// The delegated OCSP responder: id-kp-OCSPSigning, id-pkix-ocsp-nocheck.
    OcspSigning,
}

/// Where relying parties learn about revocation; written into every
/// end-entity certificate (CRL distribution point, authority information
/// access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationUrls {
    pub crl: String,
    pub ocsp: String,
    pub ca_issuers: String,
}

/// One subject attribute, in the order it is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnAttr {
    Email,
    Country,
    State,
    Locality,
    Organization,
    OrganizationUnit,
    CommonName,
}

/// Everything a certificate is built from.
#[derive(Debug, Clone)]
pub struct IssueParams {
    pub profile: Profile,
    pub subject: Vec<(DnAttr, String)>,
    /// The subject's public key (SubjectPublicKeyInfo DER).
    pub spki_der: Vec<u8>,
    pub key: KeyInfo,
    pub serial: Serial,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub revocation: Option<RevocationUrls>,
}

/// The subject attributes for validated request fields, in the order the
/// provider's services expect them (E, C, ST, L, O, OU, CN).
pub fn subject_of(f: &SubjectFields) -> Vec<(DnAttr, String)> {
    let mut dn = Vec::with_capacity(7);
    if let Some(e) = &f.email {
        dn.push((DnAttr::Email, e.clone()));
    }
    dn.push((DnAttr::Country, f.country.as_str().to_owned()));
    if let Some(st) = &f.state {
        dn.push((DnAttr::State, st.clone()));
    }
    if let Some(l) = &f.locality {
        dn.push((DnAttr::Locality, l.clone()));
    }
    dn.push((DnAttr::Organization, f.organization.as_str().to_owned()));
    dn.push((DnAttr::OrganizationUnit, f.organization_unit.clone()));
    dn.push((DnAttr::CommonName, f.common_name.clone()));
    dn
}

const OID_EMAIL: [u64; 7] = [1, 2, 840, 113549, 1, 9, 1];

pub(crate) fn distinguished_name(
    attrs: &[(DnAttr, String)],
) -> Result<DistinguishedName, PkiError> {
    let mut dn = DistinguishedName::new();
    for (attr, value) in attrs {
        let bad = |what: &str| PkiError::BadMaterial {
            what: "subject",
            detail: format!("{what} {value:?} cannot be encoded"),
        };
        match attr {
            DnAttr::Email => dn.push(
                DnType::CustomDnType(OID_EMAIL.to_vec()),
                DnValue::Ia5String(value.clone().try_into().map_err(|_| bad("email"))?),
            ),
            DnAttr::Country => dn.push(
                DnType::CountryName,
                DnValue::PrintableString(value.clone().try_into().map_err(|_| bad("country"))?),
            ),
            DnAttr::State => dn.push(DnType::StateOrProvinceName, value.as_str()),
            DnAttr::Locality => dn.push(DnType::LocalityName, value.as_str()),
            DnAttr::Organization => dn.push(DnType::OrganizationName, value.as_str()),
            DnAttr::OrganizationUnit => dn.push(DnType::OrganizationalUnitName, value.as_str()),
            DnAttr::CommonName => dn.push(DnType::CommonName, value.as_str()),
        }
    }
    Ok(dn)
}

/// Key usages and extended key usages of a profile, for an RSA key or not.
pub(crate) fn usages(
    profile: Profile,
    rsa: bool,
) -> (Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>) {
    let ku = match (profile, rsa) {
        // An EC key cannot encipher: digitalSignature is all it can do.
        (_, false) => vec![KeyUsagePurpose::DigitalSignature],
        (Profile::ClientAuth | Profile::ServerAuth, true) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::DataEncipherment,
        ],
        (Profile::ServiceTls | Profile::Operator, true) => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        (Profile::OcspSigning, true) => vec![KeyUsagePurpose::DigitalSignature],
    };
    let eku = match profile {
        Profile::ClientAuth | Profile::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
        Profile::ServerAuth | Profile::ServiceTls => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Profile::OcspSigning => vec![ExtendedKeyUsagePurpose::OcspSigning],
    };
    (ku, eku)
}

impl IssueParams {
    /// Pre-signing checks: the certificate we are about to sign must make
    /// sense on its own, whatever the caller computed.
    pub fn check(&self) -> Result<(), PkiError> {
        let fail = |detail: &str| {
            Err(PkiError::BadMaterial {
                what: "to-be-signed certificate",
                detail: detail.to_owned(),
            })
        };
        if self.not_before >= self.not_after {
            return fail("validity ends before it starts");
        }
        if !self.subject.iter().any(|(a, _)| *a == DnAttr::CommonName) {
            return fail("the subject has no common name");
        }
        if self.profile == Profile::ServiceTls
            && self.dns_names.is_empty()
            && self.ip_addresses.is_empty()
        {
            return fail("a TLS server certificate needs at least one name");
        }
        Ok(())
    }

    pub(crate) fn to_rcgen(&self) -> Result<CertificateParams, PkiError> {
        self.check()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = distinguished_name(&self.subject)?;
        p.serial_number = Some(SerialNumber::from_slice(self.serial.as_bytes()));
        p.not_before = crate::to_datetime(self.not_before);
        p.not_after = crate::to_datetime(self.not_after);
        // ExplicitNoCa makes rcgen write basicConstraints CA:FALSE and the
        // subject key identifier, both expected in end-entity certificates.
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        let (ku, eku) = usages(self.profile, matches!(self.key, KeyInfo::Rsa { .. }));
        p.key_usages = ku;
        p.extended_key_usages = eku;
        for name in &self.dns_names {
            p.subject_alt_names
                .push(SanType::DnsName(name.clone().try_into().map_err(|_| {
                    PkiError::BadMaterial {
                        what: "subject alternative name",
                        detail: format!("{name:?} is not a DNS name"),
                    }
                })?));
        }
        for ip in &self.ip_addresses {
            p.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        // RFC 5280 §4.2.1.6: an email address goes in the alternative
        // names; the subject's emailAddress (which the provider's services
        // read) is the deprecated duplicate.
        for (_, email) in self.subject.iter().filter(|(a, _)| *a == DnAttr::Email) {
            p.subject_alt_names
                .push(SanType::Rfc822Name(email.clone().try_into().map_err(
                    |_| PkiError::BadMaterial {
                        what: "subject alternative name",
                        detail: format!("{email:?} is not an email address"),
                    },
                )?));
        }
        if self.profile == Profile::OcspSigning {
            // id-pkix-ocsp-nocheck: relying parties do not check the
            // responder's own revocation (RFC 6960 §4.2.2.2.1).
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
                vec![0x05, 0x00],
            ));
        }
        if let Some(urls) = &self.revocation {
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![urls.crl.clone()],
            }];
            use crate::der::write as w;
            let access = |method: &str, uri: &str| {
                w::seq(&[&w::oid(method), &w::ctx(6, false, uri.as_bytes())])
            };
            let aia = w::seq(&[
                &access("1.3.6.1.5.5.7.48.1", &urls.ocsp),
                &access("1.3.6.1.5.5.7.48.2", &urls.ca_issuers),
            ]);
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                aia,
            ));
        }
        Ok(p)
    }
}
