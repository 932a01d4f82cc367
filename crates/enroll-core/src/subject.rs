//! Subject policy: the certificate's subject is built from validated fields,
//! never copied from a CSR.
//!
//! Upper bounds are RFC 5280's (ub-common-name 64, ub-locality-name 128,
//! ub-state-name 128, ub-emailaddress-length 255).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ids::{CountryCode, OrgCode};
use crate::status::RequestKind;

/// One field that broke the policy, with a sentence saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PolicyViolation {
    pub field: &'static str,
    pub reason: String,
}

impl PolicyViolation {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        PolicyViolation {
            field,
            reason: reason.into(),
        }
    }
}

/// What the requester typed or the client computed, unvalidated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectInput {
    pub common_name: String,
    pub email: Option<String>,
    pub locality: Option<String>,
    pub state: Option<String>,
}

/// The validated subject of a certificate, in the order the provider's
/// other services expect: E, C, ST, L, O, OU, CN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectFields {
    pub email: Option<String>,
    pub country: CountryCode,
    pub state: Option<String>,
    pub locality: Option<String>,
    pub organization: OrgCode,
    pub organization_unit: String,
    pub common_name: String,
}

impl SubjectFields {
    /// Applies the policy: the organization and country come from the
    /// package, the organization unit from the request kind, the rest from
    /// the input after validation. Every violation is reported, not only
    /// the first.
    pub fn build(
        input: &SubjectInput,
        organization: OrgCode,
        country: CountryCode,
        kind: RequestKind,
    ) -> Result<SubjectFields, Vec<PolicyViolation>> {
        let mut problems = Vec::new();
        let common_name = match kind {
            RequestKind::Workstation => check_hardware_identity(&input.common_name),
            RequestKind::Server | RequestKind::External => check_host_name(&input.common_name),
            RequestKind::Mobile => check_text("common_name", &input.common_name, 64)
                .and_then(|v| non_empty("common_name", v)),
        }
        .map_err(|e| problems.push(e))
        .ok();
        let email = optional(&input.email, check_email, &mut problems);
        let locality = optional(
            &input.locality,
            |v| check_text("locality", v, 128),
            &mut problems,
        );
        let state = optional(&input.state, |v| check_text("state", v, 128), &mut problems);
        match common_name {
            Some(common_name) if problems.is_empty() => Ok(SubjectFields {
                email,
                country,
                state,
                locality,
                organization,
                organization_unit: kind.organization_unit().to_owned(),
                common_name,
            }),
            _ => Err(problems),
        }
    }

    /// The subject as other services of the provider expect it:
    /// `E=…,C=…,ST=…,L=…,O=…,OU=…,CN=…`, absent fields left out, special
    /// characters escaped as in RFC 4514.
    pub fn subject_name(&self) -> String {
        let mut parts = Vec::with_capacity(7);
        let mut push = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                parts.push(format!("{k}={}", escape_rdn_value(v)));
            }
        };
        push("E", self.email.as_deref());
        push("C", Some(self.country.as_str()));
        push("ST", self.state.as_deref());
        push("L", self.locality.as_deref());
        push("O", Some(self.organization.as_str()));
        push("OU", Some(&self.organization_unit));
        push("CN", Some(&self.common_name));
        parts.join(",")
    }
}

impl fmt::Display for SubjectFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject_name())
    }
}

fn optional(
    v: &Option<String>,
    check: impl Fn(&str) -> Result<String, PolicyViolation>,
    problems: &mut Vec<PolicyViolation>,
) -> Option<String> {
    match v.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => check(v).map_err(|e| problems.push(e)).ok(),
    }
}

fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let leading = i == 0 && (c == ' ' || c == '#');
        if leading || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

fn non_empty(field: &'static str, v: String) -> Result<String, PolicyViolation> {
    if v.is_empty() {
        Err(PolicyViolation::new(field, "must not be empty"))
    } else {
        Ok(v)
    }
}

/// Characters that change how text reads without being visible: control
/// characters and Unicode direction overrides (which can make a name shown
/// to an approver read differently from what is issued).
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Free text for a subject attribute: trimmed, no control characters or
/// direction overrides, at most `max` characters.
pub fn check_text(field: &'static str, v: &str, max: usize) -> Result<String, PolicyViolation> {
    let v = v.trim();
    if v.chars().any(is_deceptive) {
        return Err(PolicyViolation::new(
            field,
            "contains a control character or a direction override (newline, tab, NUL, U+202E…); \
             type plain text",
        ));
    }
    if v.chars().count() > max {
        return Err(PolicyViolation::new(
            field,
            format!("is longer than the {max} characters allowed; shorten it"),
        ));
    }
    Ok(v.to_owned())
}

/// A workstation's hardware identity: MAC (12 hex digits), processor id
/// (16) and network-interface id (32), concatenated, upper case.
pub fn check_hardware_identity(v: &str) -> Result<String, PolicyViolation> {
    if v.len() == 60 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v.to_ascii_uppercase())
    } else {
        Err(PolicyViolation::new(
            "common_name",
            "a workstation's common name is its hardware identity: 60 hex digits \
             (MAC 12 + processor id 16 + network-interface id 32), as `enroll info` shows it",
        ))
    }
}

/// Why a name is not a public DNS host name, as a sentence fragment, or
/// the name normalised (lower case, no trailing dot). `max` is the length
/// limit: 64 for a common name (ub-common-name), 253 for a DNS name.
pub fn dns_name_problem(v: &str, max: usize) -> Result<String, String> {
    let v = v.trim().trim_end_matches('.').to_ascii_lowercase();
    if v.is_empty() {
        return Err("is empty".into());
    }
    if v.starts_with("*.") || v.contains('*') {
        return Err(format!(
            "{v:?} is a wildcard; certificates are issued for each host name, not for wildcards"
        ));
    }
    if v.parse::<std::net::IpAddr>().is_ok()
        || v.split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{v:?} is an IP address, not a host name; give the server's DNS name"
        ));
    }
    if v.len() > max {
        return Err(format!(
            "{v:?} has {} characters, over the {max} allowed",
            v.len()
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{v:?} contains {c:?}; only letters, digits, hyphens and dots are allowed \
             (write internationalised names in their xn-- form)"
        ));
    }
    let labels: Vec<&str> = v.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{v:?} is a single label; give the fully qualified name, e.g. {v}.example.org"
        ));
    }
    if let Some(l) = labels
        .iter()
        .find(|l| l.is_empty() || l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
    {
        return Err(format!(
            "{v:?} has the label {l:?}; labels are 1 to 63 characters and neither start nor \
             end with a hyphen"
        ));
    }
    Ok(v)
}

/// A public host name: letters, digits and hyphens in dot-separated labels,
/// at least two labels, at most 64 characters (ub-common-name).
pub fn check_host_name(v: &str) -> Result<String, PolicyViolation> {
    dns_name_problem(v, 64).map_err(|why| {
        PolicyViolation::new(
            "common_name",
            format!("{why}; a server's common name is its public host name, e.g. yoursite.example"),
        )
    })
}

/// An email address for the subject's emailAddress (an IA5String).
pub fn check_email(v: &str) -> Result<String, PolicyViolation> {
    let v = v.trim();
    let bad = || {
        PolicyViolation::new(
            "email",
            "is not an email address; type it as name@example.org",
        )
    };
    if v.len() > 255 || !v.is_ascii() || v.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad());
    }
    let (local, domain) = v.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(v.to_owned())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HWID: &str = "40B0343FA07DBFEBFBFF000906E99D09A4C85CB1415B9897660CBA152853";

    fn input(cn: &str) -> SubjectInput {
        SubjectInput {
            common_name: cn.into(),
            email: Some("it@laposte.example".into()),
            locality: Some("Paris".into()),
            state: Some("IDF".into()),
        }
    }

    fn build(i: &SubjectInput, kind: RequestKind) -> Result<SubjectFields, Vec<PolicyViolation>> {
        SubjectFields::build(
            i,
            OrgCode::parse("J1CFRA").expect("org"),
            CountryCode::parse("FR").expect("country"),
            kind,
        )
    }

    #[test]
    fn workstation_subject_in_provider_order() {
        let s = build(&input(HWID), RequestKind::Workstation).expect("valid");
        assert_eq!(
            s.subject_name(),
            format!("E=it@laposte.example,C=FR,ST=IDF,L=Paris,O=J1CFRA,OU=Workstation,CN={HWID}")
        );
    }

    #[test]
    fn server_subject_uses_host_name_and_ou_server() {
        let s = build(&input("YourSite.Example."), RequestKind::Server).expect("valid");
        assert_eq!(s.common_name, "yoursite.example");
        assert_eq!(s.organization_unit, "Server");
    }

    #[test]
    fn workstation_cn_must_be_hardware_identity() {
        for bad in [
            "host.example",
            &HWID[1..],
            &format!("{HWID}0"),
            &HWID.replace('A', "G"),
        ] {
            let e = build(&input(bad), RequestKind::Workstation).expect_err(bad);
            assert_eq!(e[0].field, "common_name");
        }
        let lower = build(&input(&HWID.to_lowercase()), RequestKind::Workstation).expect("hex");
        assert_eq!(lower.common_name, HWID);
    }

    #[test]
    fn host_names_are_checked() {
        for ok in ["a.example", "x-1.y.example", "localhost.localdomain"] {
            assert!(check_host_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "-a.example",
            "a_b.example",
            "a..example",
            "10.0.0.1",
            "a b.example",
            &format!("{}.example", "a".repeat(60)),
        ] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_name_refusals_say_why() {
        let why = |v: &str| check_host_name(v).unwrap_err().reason;
        assert!(why("*.a.example").contains("wildcard"));
        assert!(why("10.0.0.1").contains("IP address"));
        assert!(why("::1").contains("IP address"));
        assert!(why("localhost").contains("single label"));
        assert!(why("a_b.example").contains("'_'"));
        assert!(why(&format!("{}.example", "a".repeat(60))).contains("over the 64"));
        assert!(why("-a.example").contains("label"));
        // DNS names in alternative names may be longer than a common name.
        let long = format!("{}.{}.example", "a".repeat(63), "b".repeat(63));
        assert!(dns_name_problem(&long, 253).is_ok());
        assert_eq!(dns_name_problem("A.Example.", 253).unwrap(), "a.example");
    }

    #[test]
    fn emails_are_checked() {
        for ok in ["a@b.example", "first.last+tag@sub.example.org"] {
            assert!(check_email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "é@b.example",
            "a@b.ex\nample",
            ".a@b.example",
        ] {
            assert!(check_email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_violation_is_reported() {
        let i = SubjectInput {
            common_name: "nope".into(),
            email: Some("nope".into()),
            locality: Some("Pa\u{202E}ris".into()),
            state: Some("x".repeat(129)),
        };
        let e = build(&i, RequestKind::Server).expect_err("four problems");
        let fields: Vec<_> = e.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["common_name", "email", "locality", "state"]);
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(check_text("l", "a\u{0}b", 10).is_err());
        assert!(check_text("l", "a\nb", 10).is_err());
        assert!(check_text("l", "Zürich", 10).is_ok());
    }

    #[test]
    fn empty_optional_fields_are_left_out() {
        let i = SubjectInput {
            common_name: "a.example".into(),
            email: Some("  ".into()),
            locality: None,
            state: None,
        };
        let s = build(&i, RequestKind::Server).expect("valid");
        assert_eq!(s.subject_name(), "C=FR,O=J1CFRA,OU=Server,CN=a.example");
    }

    #[test]
    fn special_characters_are_escaped() {
        let mut i = input("a.example");
        i.locality = Some("Paris, 15e".into());
        let s = build(&i, RequestKind::Server).expect("valid");
        assert!(s.subject_name().contains("L=Paris\\, 15e,"), "{s}");
    }
}
