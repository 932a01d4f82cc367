//! PKCS#12 bundles for operator credentials: a key, its certificate and
//! the chain, under a passphrase, in a form browsers, OpenSSL and Java's
//! keytool import.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKey,
    PrivateKeyChain,
};

use crate::PkiError;

/// How the bundle is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    /// PBES2 with AES-256-CBC and an HMAC-SHA256 MAC (OpenSSL 3's
    /// default; current browsers, Java 11+, Windows 10 1709+).
    #[default]
    Modern,
    /// 3DES with a SHA-1 MAC, for old Windows and Java importers.
    Legacy,
}

/// Key-derivation iterations: well above OpenSSL's 2048, still quick to
/// import.
const ITERATIONS: u32 = 100_000;

/// Builds a PKCS#12 file holding `key_pkcs8_der` with `chain_der` (leaf
/// first, then the issuing CA and the root).
pub fn build(
    alias: &str,
    key_pkcs8_der: &[u8],
    chain_der: &[Vec<u8>],
    passphrase: &str,
    protection: Protection,
) -> Result<Vec<u8>, PkiError> {
    let bad = |what: &'static str| {
        move |e: p12_keystore::error::Error| PkiError::BadMaterial {
            what,
            detail: e.to_string(),
        }
    };
    let key = PrivateKey::from_der(key_pkcs8_der).map_err(bad("private key"))?;
    let certs = chain_der
        .iter()
        .map(|d| Certificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad("certificate"))?;
    let leaf = chain_der.first().ok_or(PkiError::BadMaterial {
        what: "certificate",
        detail: "a PKCS#12 bundle needs the leaf certificate".into(),
    })?;
    // The local key id ties the key bag to its certificate; a digest of
    // the certificate is what OpenSSL and Windows use.
    let key_id = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(key_id.as_ref(), key, certs)),
    );
    let writer = store
        .writer(passphrase)
        .encryption_iterations(ITERATIONS)
        .mac_iterations(ITERATIONS);
    let writer = match protection {
        Protection::Modern => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .mac_algorithm(MacAlgorithm::HmacSha256),
        Protection::Legacy => writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
            // Old importers choke on large counts.
            .encryption_iterations(2048)
            .mac_iterations(2048),
    };
    writer.write().map_err(bad("PKCS#12 bundle"))
}

/// A passphrase of 100 random bits: five groups of four characters of
/// Crockford's base32 (digits and upper-case letters without I, L, O, U),
/// easy to read out and type once, and safe in any shell.
pub fn passphrase(rng: &dyn aws_lc_rs::rand::SecureRandom) -> Result<String, PkiError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 20];
    rng.fill(&mut bytes).map_err(|_| PkiError::Random)?;
    let mut out = String::with_capacity(24);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 32 symbols: the low five bits are uniform.
        if let Some(c) = ALPHABET.get(usize::from(b & 31)) {
            out.push(char::from(*c));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_are_grouped_and_differ() {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let a = passphrase(&rng).unwrap_or_default();
        let b = passphrase(&rng).unwrap_or_default();
        assert_eq!(a.len(), 24);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(a, b);
    }

    #[test]
    fn a_bundle_reads_back_with_its_passphrase_only() {
        let key = crate::KeyType::EcdsaP256.generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["op.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let p12 = build(
            "op",
            &key.serialize_der(),
            &[cert.der().to_vec()],
            "pass-word",
            Protection::Modern,
        )
        .expect("p12");
        let back = KeyStore::from_pkcs12(
            &p12,
            "pass-word",
            p12_keystore::Pkcs12ImportPolicy::default(),
        )
        .expect("reads back");
        let (_, chain) = back.private_key_chain().expect("a key chain");
        assert_eq!(chain.certs().len(), 1);
        assert!(
            KeyStore::from_pkcs12(&p12, "wrong", p12_keystore::Pkcs12ImportPolicy::default())
                .is_err()
        );
    }
}
