//! Identifiers of the domain, as newtypes that can only hold valid values.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::subject::PolicyViolation;

/// A request's number, as shown to clients and approvers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub i64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0.to_string())
    }
}

/// A member organization's code, e.g. `J1CFRA`; it becomes the certificate's O.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgCode(String);

impl OrgCode {
    /// Upper-case letters and digits, 2 to 16 of them: the code is typed by
    /// administrators and read back in subject names, so nothing exotic.
    pub fn parse(s: &str) -> Result<Self, PolicyViolation> {
        let ok = (2..=16).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(OrgCode(s.to_owned()))
        } else {
            Err(PolicyViolation::new(
                "organization",
                "an organization code is 2 to 16 upper-case letters or digits, e.g. J1CFRA",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrgCode {
    type Error = PolicyViolation;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        OrgCode::parse(&s)
    }
}

impl From<OrgCode> for String {
    fn from(c: OrgCode) -> String {
        c.0
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// An ISO 3166 two-letter country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, PolicyViolation> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(CountryCode(s.to_owned()))
        } else {
            Err(PolicyViolation::new(
                "country",
                "a country is two upper-case letters (ISO 3166), e.g. FR",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CountryCode {
    type Error = PolicyViolation;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.0
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_code_accepts_upper_alnum_only() {
        assert!(OrgCode::parse("J1CFRA").is_ok());
        for bad in [
            "",
            "j1cfra",
            "J",
            "J1 CFRA",
            "J1CFRA\n",
            "ABCDEFGHIJKLMNOPQ",
        ] {
            assert!(OrgCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn country_is_two_upper_letters() {
        assert!(CountryCode::parse("FR").is_ok());
        for bad in ["fr", "FRA", "F", "F1", ""] {
            assert!(CountryCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
