//! Package credentials: `enr1.<package id>.<secret>`. The server keeps
//! only the SHA-256 of the secret; 256 random bits need no slow hash.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom;
use std::fmt;

use enroll_pki::PkiError;

/// A credential as handed to a package. Its `Debug` hides the secret.
pub struct Credential {
    pub package_id: String,
    secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("package_id", &self.package_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the package credential is malformed (expected enr1.<id>.<secret>)")]
    Malformed,
}

const PREFIX: &str = "enr1";

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

impl Credential {
    pub fn generate(rng: &dyn SecureRandom) -> Result<Credential, PkiError> {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rng.fill(&mut id).map_err(|_| PkiError::Random)?;
        rng.fill(&mut secret).map_err(|_| PkiError::Random)?;
        Ok(Credential {
            package_id: format!("pkg-{}", hex(&id)),
            secret: hex(&secret),
        })
    }

    /// A new secret for an existing package: the old credential stops
    /// working once the new hash is stored.
    pub fn rotate(package_id: &str, rng: &dyn SecureRandom) -> Result<Credential, PkiError> {
        let mut secret = [0u8; 32];
        rng.fill(&mut secret).map_err(|_| PkiError::Random)?;
        Ok(Credential {
            package_id: package_id.to_owned(),
            secret: hex(&secret),
        })
    }

    /// The whole credential, for the package file only.
    pub fn expose(&self) -> String {
        format!("{PREFIX}.{}.{}", self.package_id, self.secret)
    }

    pub fn secret_hash(&self) -> String {
        hash(&self.secret)
    }

    /// Splits a presented credential into package id and secret.
    pub fn split(presented: &str) -> Result<(&str, &str), CredentialError> {
        let mut parts = presented.trim().splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(PREFIX), Some(id), Some(secret))
                if id.len() <= 64 && secret.len() == 64 && !id.is_empty() =>
            {
                Ok((id, secret))
            }
            _ => Err(CredentialError::Malformed),
        }
    }

    /// Compares in constant time, so timing says nothing about the hash.
    pub fn matches(secret: &str, stored_hash: &str) -> bool {
        let h = hash(secret);
        h.len() == stored_hash.len()
            && h.bytes()
                .zip(stored_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hash(secret: &str) -> String {
    hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_mismatch() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let c = Credential::generate(&rng).expect("random");
        let presented = c.expose();
        let (id, secret) = Credential::split(&presented).expect("well formed");
        assert_eq!(id, c.package_id);
        assert!(Credential::matches(secret, &c.secret_hash()));
        let other = Credential::generate(&rng).expect("random");
        assert!(!Credential::matches(secret, &other.secret_hash()));
        assert!(!format!("{c:?}").contains(secret));
        for bad in ["", "enr1", "enr1.x", "enr2.x.y", "enr1..abc"] {
            assert!(Credential::split(bad).is_err(), "{bad}");
        }
    }
}
