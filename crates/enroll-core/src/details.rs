//! Client details: what the approver needs to identify the machine. None
//! of it goes into the certificate.

use serde::{Deserialize, Serialize};

use crate::subject::{PolicyViolation, check_text};

/// As sent by the client (the IP address is added by the service, as it
/// saw the connection).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDetails {
    pub fqdn: Option<String>,
    pub mac: Option<String>,
    pub nic_id: Option<String>,
    pub processor_id: Option<String>,
    pub os_version: Option<String>,
    pub os_type: Option<String>,
    /// The user login that ran the client.
    pub requester: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
}

impl ClientDetails {
    /// Bounds every field and refuses control characters (the description
    /// may span lines). Empty strings become absent.
    pub fn validate(self) -> Result<ClientDetails, Vec<PolicyViolation>> {
        let mut problems = Vec::new();
        let mut field = |name: &'static str, v: Option<String>, max: usize, multiline: bool| {
            let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())?;
            let checked = if multiline {
                if v.chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
                {
                    Err(PolicyViolation::new(name, "contains a control character"))
                } else if v.chars().count() > max {
                    Err(PolicyViolation::new(
                        name,
                        format!("is longer than {max} characters; shorten it"),
                    ))
                } else {
                    Ok(v)
                }
            } else {
                check_text(name, &v, max)
            };
            checked.map_err(|e| problems.push(e)).ok()
        };
        let mut d = ClientDetails {
            fqdn: field("fqdn", self.fqdn, 255, false),
            mac: field("mac", self.mac, 32, false),
            nic_id: field("nic_id", self.nic_id, 64, false),
            processor_id: field("processor_id", self.processor_id, 32, false),
            os_version: field("os_version", self.os_version, 128, false),
            os_type: field("os_type", self.os_type, 16, false),
            requester: field("requester", self.requester, 128, false),
            phone: field("phone", self.phone, 40, false),
            description: field("description", self.description, 2000, true),
        };
        if let Some(m) = d.mac.take() {
            match check_mac(&m) {
                Ok(m) => d.mac = Some(m),
                Err(e) => problems.push(e),
            }
        }
        if let Some(t) = &d.os_type
            && t != "64-bit"
            && t != "32-bit"
        {
            problems.push(PolicyViolation::new(
                "os_type",
                format!("is {t:?}; give 64-bit or 32-bit"),
            ));
        }
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(problems)
        }
    }
}

/// A MAC address: 12 hex digits, written with or without `:` or `-`
/// separators; kept as the 12 digits in upper case, as the workstation
/// identity writes it.
fn check_mac(v: &str) -> Result<String, PolicyViolation> {
    let digits: String = v.chars().filter(|c| *c != ':' && *c != '-').collect();
    if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(digits.to_ascii_uppercase())
    } else {
        Err(PolicyViolation::new(
            "mac",
            format!("{v:?} is not a MAC address; give 12 hex digits, e.g. 40:B0:34:3F:A0:7D"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_control_characters() {
        let d = ClientDetails {
            phone: Some("x".repeat(41)),
            fqdn: Some("a\u{1b}[31m.example".into()),
            description: Some("office 12\nsecond line".into()),
            mac: Some("   ".into()),
            ..Default::default()
        };
        let e = d.validate().expect_err("two problems");
        let fields: Vec<_> = e.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["fqdn", "phone"]);
        let ok = ClientDetails {
            description: Some("office 12\nsecond line".into()),
            mac: Some("  ".into()),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.mac, None);
    }

    #[test]
    fn mac_and_os_type_are_checked() {
        let d = |mac: &str, os: &str| ClientDetails {
            mac: Some(mac.into()),
            os_type: Some(os.into()),
            ..Default::default()
        };
        let ok = d("40:b0:34:3f:a0:7d", "64-bit").validate().expect("valid");
        assert_eq!(ok.mac.as_deref(), Some("40B0343FA07D"));
        assert!(d("40-B0-34-3F-A0-7D", "32-bit").validate().is_ok());
        let e = d("eth0", "amd64").validate().expect_err("both wrong");
        let fields: Vec<_> = e.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["mac", "os_type"]);
    }
}
