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

/// ISO 3166-1 alpha-2 codes (the 249 assigned ones) and XK (Kosovo), which
/// certificates and X.500 directories use as a user-assigned code.
const COUNTRIES: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, PolicyViolation> {
        if s.len() != 2 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            Err(PolicyViolation::new(
                "country",
                "a country is two upper-case letters (ISO 3166), e.g. FR",
            ))
        } else if COUNTRIES.binary_search(&s).is_err() {
            Err(PolicyViolation::new(
                "country",
                format!("{s} is not an ISO 3166 country code; use e.g. FR, DE or BE"),
            ))
        } else {
            Ok(CountryCode(s.to_owned()))
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
    fn countries_are_iso_3166() {
        assert!(CountryCode::parse("FR").is_ok());
        assert!(CountryCode::parse("XK").is_ok());
        assert!(CountryCode::parse("ZZ").is_err());
        assert!(CountryCode::parse("fr").is_err());
        assert!(
            COUNTRIES.windows(2).all(|w| w[0] < w[1]),
            "sorted for binary search"
        );
    }

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
