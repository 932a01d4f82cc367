//! Pre-issuance lint: every certificate is checked against RFC 5280 and
//! its [`Profile`] before the CA signs it.
//!
//! The to-be-signed certificate is first built with a signature of zeros
//! under the issuing CA's name ([`crate::IssuingCa::preview`]); that copy
//! differs from the real one only in its signature value, and an independent
//! parser
//! (x509-parser, not the writer that built it) reads it back here. A
//! finding of level [`Level::Error`] stops the issuance.

use std::fmt;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
use x509_parser::public_key::PublicKey;

use crate::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The certificate must not be issued.
    Error,
    /// Legal, but worth a look.
    Warning,
}

/// One lint result: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{level} {}: {}", self.code, self.message)
    }
}

/// Whether any finding forbids issuance.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.level == Level::Error)
}

const OID_KU: &str = "2.5.29.15";
const OID_EKU: &str = "2.5.29.37";
const OID_SAN: &str = "2.5.29.17";
const OID_BC: &str = "2.5.29.19";
const OID_SKI: &str = "2.5.29.14";
const OID_AKI: &str = "2.5.29.35";
const OID_CDP: &str = "2.5.29.31";
const OID_AIA: &str = "1.3.6.1.5.5.7.1.1";
const OID_OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

/// The extensions we write; anything else in our own output is a defect.
const KNOWN: [&str; 9] = [
    OID_KU,
    OID_EKU,
    OID_SAN,
    OID_BC,
    OID_SKI,
    OID_AKI,
    OID_CDP,
    OID_AIA,
    OID_OCSP_NOCHECK,
];

/// What the lint needs to know beyond the certificate itself.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub profile: Profile,
    /// The issuing CA, read once (`IssuerFacts::from_der`): issuer name, key identifier
    /// and validity are checked against it.
    pub issuer: Option<&'a IssuerFacts>,
    /// CRL distribution point and authority information access expected.
    pub revocation: bool,
}

struct Out(Vec<Finding>);

impl Out {
    fn error(&mut self, code: &'static str, message: impl Into<String>) {
        self.0.push(Finding {
            level: Level::Error,
            code,
            message: message.into(),
        });
    }
    fn warning(&mut self, code: &'static str, message: impl Into<String>) {
        self.0.push(Finding {
            level: Level::Warning,
            code,
            message: message.into(),
        });
    }
}

/// Lints a certificate (DER). Never fails: what cannot be read is itself
/// a finding.
/// What the lint compares a certificate with on its issuing CA's side,
/// read from the CA's certificate once rather than at every issuance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerFacts {
    subject: Vec<u8>,
    not_before: i64,
    not_after: i64,
    key_id: Option<Vec<u8>>,
}

impl IssuerFacts {
    /// `None` when `der` is not a certificate.
    pub fn from_der(der: &[u8]) -> Option<IssuerFacts> {
        let (_, c) = X509Certificate::from_der(der).ok()?;
        Some(IssuerFacts {
            subject: c.tbs_certificate.subject.as_raw().to_vec(),
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
            key_id: c
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                    _ => None,
                }),
        })
    }
}

pub fn lint(der: &[u8], exp: Expectations<'_>) -> Vec<Finding> {
    let mut out = Out(Vec::new());
    let cert = match X509Certificate::from_der(der) {
        Ok(([], c)) => c,
        Ok(_) => {
            out.error("lint.der", "bytes follow the certificate");
            return out.0;
        }
        Err(e) => {
            out.error("lint.der", format!("the certificate does not parse: {e}"));
            return out.0;
        }
    };
    let issuer = exp.issuer;
    check_basics(&cert, issuer, &mut out);
    check_subject(&cert, &mut out);
    check_key(&cert, &mut out);
    check_extensions(&cert, issuer, exp, &mut out);
    out.0
}

fn check_basics(c: &X509Certificate<'_>, issuer: Option<&IssuerFacts>, out: &mut Out) {
    if c.version() != X509Version::V3 {
        out.error(
            "lint.version",
            "a certificate with extensions must be version 3",
        );
    }
    let serial = c.raw_serial();
    match serial {
        [] => out.error("lint.serial", "the serial number is empty"),
        [first, ..] if first & 0x80 != 0 => {
            out.error("lint.serial", "the serial number is negative")
        }
        _ => {}
    }
    let significant = match serial {
        [0, rest @ ..] => rest.len(),
        s => s.len(),
    };
    if serial.len() > 20 {
        out.error(
            "lint.serial",
            "the serial number is longer than 20 octets (RFC 5280 4.1.2.2)",
        );
    }
    if significant < 8 {
        out.error(
            "lint.serial",
            "the serial number carries fewer than 64 bits of randomness",
        );
    }
    if c.signature_algorithm != c.tbs_certificate.signature {
        out.error(
            "lint.signature-algorithm",
            "the outer signature algorithm differs from the one in the signed part",
        );
    }
    let nb = c.validity().not_before.timestamp();
    let na = c.validity().not_after.timestamp();
    if nb >= na {
        out.error("lint.validity", "the validity ends before it starts");
    }
    if let Some(i) = issuer {
        if c.tbs_certificate.issuer.as_raw() != i.subject.as_slice() {
            out.error(
                "lint.issuer",
                "the issuer name is not the issuing CA's subject, byte for byte",
            );
        }
        if na > i.not_after {
            out.error("lint.validity", "the certificate outlives its issuing CA");
        }
        if nb < i.not_before {
            out.error(
                "lint.validity",
                "the certificate starts before its issuing CA",
            );
        }
    }
}

/// RFC 5280 appendix A upper bounds, in characters.
fn upper_bound(oid: &str) -> Option<(&'static str, usize)> {
    Some(match oid {
        "2.5.4.3" => ("CN", 64),
        "2.5.4.10" => ("O", 64),
        "2.5.4.11" => ("OU", 64),
        "2.5.4.7" => ("L", 128),
        "2.5.4.8" => ("ST", 128),
        "2.5.4.6" => ("C", 2),
        "1.2.840.113549.1.9.1" => ("E", 255),
        _ => return None,
    })
}

fn check_subject(c: &X509Certificate<'_>, out: &mut Out) {
    let subject = c.subject();
    if subject.iter_attributes().next().is_none() {
        out.error("lint.subject", "the subject is empty");
    }
    let mut cn = 0;
    for attr in subject.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let Some((name, max)) = upper_bound(&oid) else {
            out.error(
                "lint.subject",
                format!("the subject carries attribute {oid}, which no profile writes"),
            );
            continue;
        };
        let Ok(value) = attr.as_str() else {
            out.error(
                "lint.subject",
                format!("the subject's {name} is not a readable string"),
            );
            continue;
        };
        if name == "CN" {
            cn += 1;
        }
        if value.is_empty() {
            out.error("lint.subject", format!("the subject's {name} is empty"));
        }
        if value.chars().count() > max {
            out.error(
                "lint.subject",
                format!(
                    "the subject's {name} is longer than {max} characters (RFC 5280 upper bound)"
                ),
            );
        }
        if value.chars().any(char::is_control) {
            out.error(
                "lint.subject",
                format!("the subject's {name} holds control characters"),
            );
        }
        if name == "C" && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())) {
            out.error(
                "lint.subject",
                "the country must be two upper-case letters (ISO 3166)",
            );
        }
    }
    if cn != 1 {
        out.error(
            "lint.subject",
            format!("the subject must hold exactly one CN, it holds {cn}"),
        );
    }
}

fn check_key(c: &X509Certificate<'_>, out: &mut Out) {
    match c.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if !(2048..=8192).contains(&bits) {
                out.error(
                    "lint.key",
                    format!("an RSA key of {bits} bits is outside 2048 to 8192"),
                );
            }
            let e = rsa.exponent;
            let even = e.last().is_none_or(|b| b & 1 == 0);
            let small =
                e.iter().skip_while(|b| **b == 0).count() <= 1 && e.last().is_none_or(|b| *b < 3);
            if even || small {
                out.error("lint.key", "the RSA public exponent is not usable");
            } else if e.iter().skip_while(|b| **b == 0).collect::<Vec<_>>() != [&1, &0, &1] {
                out.warning("lint.key", "the RSA public exponent is not 65537");
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = c
                .public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7" | "1.3.132.0.34") => {}
                other => out.error(
                    "lint.key",
                    format!(
                        "the EC key is on curve {}, not P-256 or P-384",
                        other.unwrap_or("(none)")
                    ),
                ),
            }
        }
        Ok(_) => out.error("lint.key", "the key is neither RSA nor ECDSA"),
        Err(e) => out.error("lint.key", format!("the public key does not parse: {e}")),
    }
}

/// Key usage bits a profile must carry, exactly.
fn expected_ku(profile: Profile, rsa: bool) -> (bool, bool, bool) {
    // (digitalSignature, keyEncipherment, dataEncipherment)
    match (profile, rsa) {
        (_, false) | (Profile::OcspSigning, _) => (true, false, false),
        (Profile::ClientAuth | Profile::ServerAuth, true) => (true, true, true),
        (Profile::ServiceTls | Profile::Operator, true) => (true, true, false),
    }
}

fn check_extensions(
    c: &X509Certificate<'_>,
    issuer: Option<&IssuerFacts>,
    exp: Expectations<'_>,
    out: &mut Out,
) {
    let mut seen: Vec<String> = Vec::new();
    for ext in c.extensions() {
        let oid = ext.oid.to_id_string();
        if seen.contains(&oid) {
            out.error(
                "lint.ext.duplicate",
                format!("extension {oid} appears twice"),
            );
        }
        if !KNOWN.contains(&oid.as_str()) {
            out.error(
                "lint.ext.unknown",
                format!("extension {oid} is not part of any profile"),
            );
        }
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            out.error(
                "lint.ext.malformed",
                format!("extension {oid} does not parse: {error}"),
            );
        }
        seen.push(oid);
    }
    // `seen` holds every extension's OID, in order: found by position.
    let find = |oid: &str| {
        seen.iter()
            .position(|s| s == oid)
            .and_then(|i| c.extensions().get(i))
    };
    let rsa = matches!(c.public_key().parsed(), Ok(PublicKey::RSA(_)));

    match find(OID_BC).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::BasicConstraints(bc)) if bc.ca => out.error(
            "lint.ext.basic-constraints",
            "an end-entity certificate says CA:TRUE",
        ),
        Some(ParsedExtension::BasicConstraints(_)) => {}
        _ => out.warning(
            "lint.ext.basic-constraints",
            "no basicConstraints: relying parties must assume an end entity",
        ),
    }

    match find(OID_KU) {
        Some(e) => {
            if !e.critical {
                out.error("lint.ext.key-usage", "key usage must be critical here");
            }
            if let ParsedExtension::KeyUsage(ku) = e.parsed_extension() {
                let want = expected_ku(exp.profile, rsa);
                let got = (
                    ku.digital_signature(),
                    ku.key_encipherment(),
                    ku.data_encipherment(),
                );
                if got != want {
                    out.error(
                        "lint.ext.key-usage",
                        format!("key usage is not what the profile says (want digitalSignature/keyEncipherment/dataEncipherment = {want:?}, got {got:?})"),
                    );
                }
                if ku.key_cert_sign() || ku.crl_sign() {
                    out.error(
                        "lint.ext.key-usage",
                        "an end-entity certificate may not sign certificates or CRLs",
                    );
                }
                if !rsa && (ku.key_encipherment() || ku.data_encipherment()) {
                    out.error(
                        "lint.ext.key-usage",
                        "an EC key cannot encipher (RFC 5480 section 3)",
                    );
                }
            }
        }
        None => out.error("lint.ext.key-usage", "the key usage extension is missing"),
    }

    match find(OID_EKU).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::ExtendedKeyUsage(eku)) => {
            let want = match exp.profile {
                Profile::ClientAuth | Profile::Operator => "clientAuth",
                Profile::ServerAuth | Profile::ServiceTls => "serverAuth",
                Profile::OcspSigning => "OCSPSigning",
            };
            let has = match want {
                "clientAuth" => eku.client_auth,
                "serverAuth" => eku.server_auth,
                _ => eku.ocsp_signing,
            };
            let count = [
                eku.server_auth,
                eku.client_auth,
                eku.code_signing,
                eku.email_protection,
                eku.time_stamping,
                eku.ocsp_signing,
            ]
            .iter()
            .filter(|b| **b)
            .count()
                + eku.other.len();
            if !has || count != 1 || eku.any {
                out.error(
                    "lint.ext.eku",
                    format!("the extended key usage must be {want} alone"),
                );
            }
        }
        _ => out.error(
            "lint.ext.eku",
            "the extended key usage extension is missing",
        ),
    }

    match find(OID_SKI).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::SubjectKeyIdentifier(k)) if !k.0.is_empty() => {}
        _ => out.error(
            "lint.ext.ski",
            "the subject key identifier is missing (RFC 5280 4.2.1.2)",
        ),
    }
    let issuer_ski = issuer.and_then(|i| i.key_id.clone());
    match find(OID_AKI).map(|e| e.parsed_extension()) {
        Some(ParsedExtension::AuthorityKeyIdentifier(a)) => {
            let keyid = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            if keyid.is_none() {
                out.error("lint.ext.aki", "the authority key identifier has no key id");
            } else if issuer_ski.is_some() && keyid != issuer_ski {
                out.error(
                    "lint.ext.aki",
                    "the authority key identifier is not the issuing CA's subject key identifier",
                );
            }
        }
        _ => out.error(
            "lint.ext.aki",
            "the authority key identifier is missing (RFC 5280 4.2.1.1)",
        ),
    }

    check_names(
        c,
        exp.profile,
        find(OID_SAN).map(|e| e.parsed_extension()),
        out,
    );

    let nocheck = find(OID_OCSP_NOCHECK).is_some();
    match exp.profile {
        Profile::OcspSigning => {
            if !nocheck {
                out.error(
                    "lint.ext.ocsp-nocheck",
                    "a delegated OCSP responder needs id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1)",
                );
            }
        }
        _ => {
            if nocheck {
                out.error(
                    "lint.ext.ocsp-nocheck",
                    "id-pkix-ocsp-nocheck belongs to OCSP responder certificates only",
                );
            }
            if exp.revocation {
                if find(OID_CDP).is_none() {
                    out.error("lint.ext.crl-dp", "the CRL distribution point is missing");
                }
                match find(OID_AIA).map(|e| e.parsed_extension()) {
                    Some(ParsedExtension::AuthorityInfoAccess(aia)) => {
                        let methods: Vec<String> = aia
                            .accessdescs
                            .iter()
                            .map(|d| d.access_method.to_id_string())
                            .collect();
                        for (oid, what) in [
                            ("1.3.6.1.5.5.7.48.1", "OCSP"),
                            ("1.3.6.1.5.5.7.48.2", "CA issuers"),
                        ] {
                            if !methods.iter().any(|m| m == oid) {
                                out.error(
                                    "lint.ext.aia",
                                    format!("the authority information access has no {what} URL"),
                                );
                            }
                        }
                    }
                    _ => out.error(
                        "lint.ext.aia",
                        "the authority information access is missing",
                    ),
                }
            }
        }
    }
}

/// One DNS name as RFC 5280 4.2.1.6 (preferred name syntax) wants it: no
/// wildcard, no empty label, letters, digits and inner hyphens.
fn dns_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 253 {
        return Some("is empty or longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Some("has an empty label or one longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label that starts or ends with a hyphen");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("holds characters other than letters, digits and hyphens");
        }
    }
    None
}

fn check_names(
    c: &X509Certificate<'_>,
    profile: Profile,
    san: Option<&ParsedExtension<'_>>,
    out: &mut Out,
) {
    let names = match san {
        Some(ParsedExtension::SubjectAlternativeName(s)) => s.general_names.as_slice(),
        Some(_) => {
            out.error(
                "lint.ext.san",
                "the subject alternative name does not parse",
            );
            return;
        }
        None => &[],
    };
    if san.is_some() && names.is_empty() {
        out.error("lint.ext.san", "the subject alternative name is empty");
    }
    let mut dns = Vec::new();
    let mut emails = Vec::new();
    for n in names {
        match n {
            GeneralName::DNSName(d) => {
                if let Some(why) = dns_problem(d) {
                    out.error("lint.ext.san", format!("DNS name {d:?} {why}"));
                }
                dns.push(d.to_ascii_lowercase());
            }
            GeneralName::IPAddress(ip) if ip.len() == 4 || ip.len() == 16 => {}
            GeneralName::IPAddress(_) => {
                out.error("lint.ext.san", "an IP address is neither 4 nor 16 octets")
            }
            GeneralName::RFC822Name(e) => {
                if e.split_once('@')
                    .is_none_or(|(l, d)| l.is_empty() || d.is_empty())
                {
                    out.error("lint.ext.san", format!("{e:?} is not an email address"));
                }
                emails.push(e.to_ascii_lowercase());
            }
            _ => out.error(
                "lint.ext.san",
                "the subject alternative name holds a type no profile writes",
            ),
        }
    }
    let attr = |oid: &str| -> Vec<String> {
        c.subject()
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect()
    };
    if matches!(profile, Profile::ServerAuth | Profile::ServiceTls) {
        if names.is_empty() {
            out.error(
                "lint.ext.san",
                "a server certificate must name its host in the subject alternative name",
            );
        }
        for cn in attr("2.5.4.3") {
            let is_ip = cn.parse::<std::net::IpAddr>().is_ok();
            if profile == Profile::ServerAuth && !is_ip && !dns.contains(&cn.to_ascii_lowercase()) {
                out.error(
                    "lint.ext.san",
                    format!("the common name {cn:?} is not among the DNS names"),
                );
            }
        }
    }
    for e in attr("1.2.840.113549.1.9.1") {
        if !emails.contains(&e.to_ascii_lowercase()) {
            out.warning(
                "lint.ext.san",
                format!(
                    "the subject's email {e:?} should also be an rfc822Name (RFC 5280 4.2.1.6)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_follow_the_preferred_syntax() {
        assert_eq!(dns_problem("api.example.org"), None);
        assert!(dns_problem("*.example.org").is_some());
        assert!(dns_problem("a..b").is_some());
        assert!(dns_problem("-a.example").is_some());
        assert!(dns_problem("").is_some());
        assert!(dns_problem(&"a".repeat(64)).is_some());
    }

    #[test]
    fn garbage_is_a_finding_not_a_panic() {
        let f = lint(
            b"\x30\x03\x02\x01\x00",
            Expectations {
                profile: Profile::ClientAuth,
                issuer: None,
                revocation: true,
            },
        );
        assert!(has_errors(&f));
        assert_eq!(f[0].code, "lint.der");
    }
}
