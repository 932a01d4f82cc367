//! Certificate serial numbers: 16 random bytes (126 bits of entropy),
//! positive, fixed length, shown as upper-case hex.

use aws_lc_rs::rand::SecureRandom;
use std::fmt;

use crate::PkiError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Serial {
    pub const LEN: usize = 16;

    pub fn random(rng: &dyn SecureRandom) -> Result<Serial, PkiError> {
        let mut b = [0u8; Self::LEN];
        rng.fill(&mut b).map_err(|_| PkiError::Random)?;
        // Clear the sign bit (serials are positive) and set the next one so
        // the DER INTEGER never loses a leading byte: every serial is
        // exactly 16 octets, well under RFC 5280's 20.
        b[0] = (b[0] & 0x7f) | 0x40;
        Ok(Serial(b.to_vec()))
    }

    pub fn from_bytes(b: &[u8]) -> Serial {
        Serial(b.to_vec())
    }

    /// Parses the hex form [`Serial::to_hex`] writes.
    pub fn from_hex(s: &str) -> Option<Serial> {
        if !s.len().is_multiple_of(2) || s.is_empty() {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .map(Serial)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = Serial::random(&rng).expect("random");
            assert_eq!(s.as_bytes().len(), 16);
            assert_eq!(s.as_bytes()[0] & 0xc0, 0x40);
            assert!(seen.insert(s));
        }
    }
}
