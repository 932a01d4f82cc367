//! Key generation, and the [`Signer`] trait that hides where a CA key lives.

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize};

use crate::PkiError;

/// Anything that can sign certificates for a CA: a key file today
/// ([`rcgen::KeyPair`]), a PKCS#11 object later. rcgen's own trait is the
/// contract; this one adds what sharing across threads needs.
pub trait Signer: rcgen::SigningKey + Send + Sync {}
impl<T: rcgen::SigningKey + Send + Sync> Signer for T {}

/// Key types Enroll generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
}

impl KeyType {
    /// The RSA key type for a key length in bits, as the client's
    /// `--key-length` takes it.
    pub fn rsa(bits: u32) -> Option<KeyType> {
        match bits {
            2048 => Some(KeyType::Rsa2048),
            3072 => Some(KeyType::Rsa3072),
            4096 => Some(KeyType::Rsa4096),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<KeyType> {
        match s {
            "rsa" | "rsa-2048" | "rsa2048" => Some(KeyType::Rsa2048),
            "rsa-3072" => Some(KeyType::Rsa3072),
            "rsa-4096" => Some(KeyType::Rsa4096),
            "ecdsa-p256" | "p256" => Some(KeyType::EcdsaP256),
            _ => None,
        }
    }

    pub fn generate(self) -> Result<KeyPair, PkiError> {
        let size = match self {
            KeyType::EcdsaP256 => return Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?),
            KeyType::Rsa2048 => RsaKeySize::_2048,
            KeyType::Rsa3072 => RsaKeySize::_3072,
            KeyType::Rsa4096 => RsaKeySize::_4096,
        };
        Ok(KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, size)?)
    }
}

/// Loads a PKCS#8 PEM private key (as [`KeyType::generate`] writes them).
pub fn load_key_pem(pem: &str) -> Result<KeyPair, PkiError> {
    KeyPair::from_pem(pem).map_err(|e| PkiError::BadMaterial {
        what: "private key",
        detail: e.to_string(),
    })
}

/// The SubjectPublicKeyInfo (DER) of a key pair, as a certificate carries it.
pub fn spki_der(key: &KeyPair) -> Vec<u8> {
    rcgen::PublicKeyData::subject_public_key_info(key)
}
