//! The external CSR intake: SPEC.md's "External CSR policy", exactly.
//!
//! One function, [`check_external`], reads a request made by any tool
//! (OpenSSL, certreq/IIS, keytool, certtool…) and either returns what the
//! approver needs ([`ExternalCsr`]) or every problem it could find, each
//! with a stable code and a sentence saying what to regenerate. Encoding
//! and structure problems stop the reading (nothing after them can be
//! trusted); every other check runs, so one answer lists all that is wrong.
//!
//! The client runs it for early feedback; the server runs it again and is
//! the authority.

use std::net::IpAddr;

use aws_lc_rs::signature::{self, VerificationAlgorithm};
use base64::Engine as _;
use num_bigint::BigUint;

use crate::csr::{CsrError, CsrProblem, KeyInfo, MAX_CSR_BYTES};
use crate::der::{
    self, BIT_STRING, DerError, INTEGER, NULL, OCTET_STRING, OID, Reader, SEQUENCE, SET, Tlv,
};

/// The most subject attributes plus alternative names a request may carry.
pub const MAX_NAMES: usize = 100;

/// What an accepted request tells the approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCsr {
    /// The request, DER, with any challenge password blanked out: the
    /// password is never stored, shown or logged.
    pub der_redacted: Vec<u8>,
    pub spki_der: Vec<u8>,
    pub key: KeyInfo,
    pub signature_algorithm: &'static str,
    /// Every subject attribute in encoded order: short name (or dotted OID)
    /// and value as text.
    pub subject: Vec<(String, String)>,
    pub common_name: Option<String>,
    pub locality: Option<String>,
    pub state: Option<String>,
    pub email: Option<String>,
    pub country: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub key_usage: Vec<&'static str>,
    pub extended_key_usage: Vec<String>,
}

fn problem(code: &'static str, message: impl Into<String>) -> CsrProblem {
    CsrProblem {
        code,
        message: message.into(),
    }
}

fn malformed(e: DerError) -> CsrError {
    CsrError(vec![problem(
        "csr.malformed",
        format!(
            "the request is not valid DER ({e}); regenerate it with a standard tool \
             (openssl req -new, certreq -new, keytool -certreq)"
        ),
    )])
}

fn fatal(code: &'static str, message: impl Into<String>) -> CsrError {
    CsrError(vec![problem(code, message)])
}

// ---------- encodings: PEM, bare base64, DER; UTF-8/UTF-16, BOM ----------

/// Turns the file's bytes into the DER of exactly one request.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(fatal(
            "csr.too-large",
            "the file is larger than 64 KiB; a certificate request is a few KiB at most",
        ));
    }
    if input.first() == Some(&SEQUENCE) {
        return Ok(input.to_vec());
    }
    let text = text_of(input).ok_or_else(|| {
        fatal(
            "csr.malformed",
            "the file is neither a PEM/base64 text nor DER; save the request as PEM or DER",
        )
    })?;
    if text.contains("PRIVATE KEY-----") {
        return Err(fatal(
            "csr.private-key",
            "the file also holds a PRIVATE KEY, which must never leave its server; save the \
             certificate request alone (and treat that key as exposed if the file was shared)",
        ));
    }
    let mut blocks = Vec::new();
    for label in ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"] {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let mut rest = text.as_str();
        while let Some(i) = rest.find(&begin) {
            let after = &rest[i + begin.len()..];
            let Some(j) = after.find(&end) else {
                return Err(fatal(
                    "csr.malformed",
                    format!(
                        "the {label} block has no END line; the file is cut short, save it again"
                    ),
                ));
            };
            blocks.push(after[..j].to_owned());
            rest = &after[j + end.len()..];
        }
    }
    let body = match blocks.len() {
        0 if text.trim().is_empty() => {
            return Err(fatal(
                "csr.malformed",
                "the file is empty; save the certificate request into it",
            ));
        }
        0 if text.contains("-----BEGIN CERTIFICATE-----")
            || text.contains("-----BEGIN X509 CERTIFICATE-----") =>
        {
            return Err(fatal(
                "csr.malformed",
                "the file holds a certificate, not a certificate request; send the request \
                 (-----BEGIN CERTIFICATE REQUEST-----) that the server's tool generated",
            ));
        }
        0 => {
            let t = text.trim();
            let bare = !t.is_empty()
                && t.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'+' | b'/' | b'=')
                        || b.is_ascii_whitespace()
                });
            if !bare {
                return Err(fatal(
                    "csr.malformed",
                    "no -----BEGIN CERTIFICATE REQUEST----- block found; this is not a certificate \
                     request (a certificate or a key, perhaps?)",
                ));
            }
            t.to_owned()
        }
        1 => blocks.remove(0),
        _ => {
            return Err(fatal(
                "csr.multiple",
                "the file holds more than one certificate request; submit one request per file",
            ));
        }
    };
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            fatal(
                "csr.malformed",
                format!("the request's base64 is damaged ({e}); copy the whole request again"),
            )
        })
}

/// UTF-8 (with or without BOM) or UTF-16 (LE/BE, with or without BOM).
fn text_of(input: &[u8]) -> Option<String> {
    let utf16 = |bytes: &[u8], le: bool| -> Option<String> {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| match c {
                [a, b] if le => u16::from_le_bytes([*a, *b]),
                [a, b] => u16::from_be_bytes([*a, *b]),
                _ => 0,
            })
            .collect();
        String::from_utf16(&units).ok()
    };
    match input {
        [0xef, 0xbb, 0xbf, rest @ ..] => String::from_utf8(rest.to_vec()).ok(),
        [0xff, 0xfe, rest @ ..] => utf16(rest, true),
        [0xfe, 0xff, rest @ ..] => utf16(rest, false),
        [a, 0, ..] if *a != 0 => utf16(input, true),
        [0, b, ..] if *b != 0 => utf16(input, false),
        _ => String::from_utf8(input.to_vec()).ok(),
    }
}

// ---------- names ----------

fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "serialNumber",
        "2.5.4.12" => "title",
        "2.5.4.17" => "postalCode",
        "1.2.840.113549.1.9.1" => "E",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 5280 upper bounds for the attributes we take.
fn upper_bound(name: &str) -> Option<usize> {
    match name {
        "CN" | "O" | "OU" => Some(64),
        "L" | "ST" => Some(128),
        "E" => Some(255),
        "serialNumber" => Some(64),
        _ => None,
    }
}

/// Any directory string type, decoded to text.
fn string_value(t: &Tlv<'_>) -> Result<Option<String>, DerError> {
    let bad = |what| DerError {
        what,
        offset: t.offset,
    };
    let latin1 = |v: &[u8]| v.iter().map(|b| char::from(*b)).collect::<String>();
    Ok(Some(match t.tag {
        0x0c => {
            String::from_utf8(t.value.to_vec()).map_err(|_| bad("UTF8String that is not UTF-8"))?
        }
        // Printable, IA5, Visible, Numeric: ASCII by definition, read
        // leniently (some encoders put other characters in them).
        0x13 | 0x16 | 0x1a | 0x12 => latin1(t.value),
        // T61String: in practice Latin-1.
        0x14 => latin1(t.value),
        0x1e => {
            if !t.value.len().is_multiple_of(2) {
                return Err(bad("BMPString of odd length"));
            }
            let units: Vec<u16> = t
                .value
                .chunks_exact(2)
                .map(|c| {
                    u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ])
                })
                .collect();
            String::from_utf16(&units).map_err(|_| bad("BMPString that is not UTF-16"))?
        }
        0x1c => {
            if !t.value.len().is_multiple_of(4) {
                return Err(bad("UniversalString of bad length"));
            }
            t.value
                .chunks_exact(4)
                .map(|c| {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(c);
                    char::from_u32(u32::from_be_bytes(a))
                        .ok_or(bad("UniversalString with a bad character"))
                })
                .collect::<Result<String, _>>()?
        }
        _ => return Ok(None),
    }))
}

struct Subject {
    attrs: Vec<(String, String)>,
    problems: Vec<CsrProblem>,
}

fn read_name(name: &Tlv<'_>) -> Result<Subject, DerError> {
    let mut attrs = Vec::new();
    let mut problems = Vec::new();
    let mut rdns = Reader::inside(name);
    while !rdns.is_empty() {
        let set = rdns.expect(SET, "expected an RDN SET")?;
        let mut r = Reader::inside(&set);
        if r.is_empty() {
            return Err(DerError {
                what: "empty RDN",
                offset: set.offset,
            });
        }
        while !r.is_empty() {
            let mut atv = r.sequence("expected an attribute")?;
            let oid = der::oid(&atv.expect(OID, "expected an attribute type")?)?;
            let value = atv.any()?;
            atv.finish("extra data in an attribute")?;
            let key = short_name(&oid).map(str::to_owned).unwrap_or(oid);
            let text = match string_value(&value)? {
                Some(s) => s,
                None => format!("#{}", hex(value.raw)),
            };
            if text.chars().any(enroll_core::subject::is_deceptive) {
                problems.push(problem(
                    "subject.invalid",
                    format!(
                        "the subject's {key} contains control characters or direction overrides \
                         (newline, NUL, U+202E…); regenerate the request with plain text"
                    ),
                ));
            }
            if let Some(max) = upper_bound(&key)
                && text.chars().count() > max
            {
                problems.push(problem(
                    "subject.invalid",
                    format!(
                        "the subject's {key} is {} characters long, over the {max} that RFC 5280 \
                         allows; regenerate the request with a shorter value",
                        text.chars().count()
                    ),
                ));
            }
            if key == "C" && !(text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic())) {
                problems.push(problem(
                    "subject.invalid",
                    format!(
                        "the subject's country {text:?} is not a two-letter ISO 3166 code; \
                         regenerate the request with e.g. C=FR"
                    ),
                ));
            }
            attrs.push((key, text));
        }
    }
    Ok(Subject { attrs, problems })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02X}")).collect()
}

// ---------- keys ----------

const RSA: &str = "1.2.840.113549.1.1.1";
const RSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

struct Key {
    info: Option<KeyInfo>,
    /// The key's family even when the key itself is refused (too small,
    /// weak), so the usage checks still run and the user learns every
    /// problem in one round.
    family: Option<KeyInfo>,
    /// The subjectPublicKey bits, as the verifier takes them.
    public: Vec<u8>,
    problems: Vec<CsrProblem>,
}

fn unsupported(what: &str) -> CsrProblem {
    problem(
        "key.unsupported-type",
        format!(
            "the key is {what}, which is not supported; generate an RSA key of 2048 to 8192 bits \
             (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048) or an ECDSA P-256 or \
             P-384 key"
        ),
    )
}

fn read_key(spki: &Tlv<'_>) -> Result<Key, DerError> {
    let mut r = Reader::inside(spki);
    let mut alg = r.sequence("expected the key's algorithm")?;
    let oid = der::oid(&alg.expect(OID, "expected the key's algorithm OID")?)?;
    let params = if alg.is_empty() {
        None
    } else {
        Some(alg.any()?)
    };
    alg.finish("extra data in the key's algorithm")?;
    let bits = r.expect(BIT_STRING, "expected the public key")?;
    r.finish("extra data after the public key")?;
    let (public, unused) = der::bit_string(&bits)?;
    if unused != 0 {
        return Err(DerError {
            what: "public key BIT STRING with unused bits",
            offset: bits.offset,
        });
    }
    let mut key = Key {
        info: None,
        family: None,
        public: public.to_vec(),
        problems: Vec::new(),
    };
    match oid.as_str() {
        RSA => {
            if let Some(p) = params
                && p.tag != NULL
            {
                return Err(DerError {
                    what: "RSA key parameters that are not NULL",
                    offset: p.offset,
                });
            }
            let inner = Reader::new(public).any()?;
            let mut rsa = Reader::inside(&inner);
            let n = der::integer(&rsa.expect(INTEGER, "expected the RSA modulus")?)?;
            let e = der::integer(&rsa.expect(INTEGER, "expected the RSA exponent")?)?;
            rsa.finish("extra data in the RSA key")?;
            if n.first().is_some_and(|b| b & 0x80 != 0) || e.first().is_some_and(|b| b & 0x80 != 0)
            {
                return Err(DerError {
                    what: "negative RSA modulus or exponent",
                    offset: inner.offset,
                });
            }
            let n = BigUint::from_bytes_be(n);
            let e = BigUint::from_bytes_be(e);
            let size = u32::try_from(n.bits()).unwrap_or(u32::MAX);
            key.family = Some(KeyInfo::Rsa { bits: size });
            if size < 2048 {
                key.problems.push(problem(
                    "key.too-small",
                    format!(
                        "the RSA key has {size} bits; generate a key of at least 2048 bits \
                         (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)"
                    ),
                ));
            } else if size > 8192 {
                key.problems.push(problem(
                    "key.unsupported-type",
                    format!("the RSA key has {size} bits; the largest accepted is 8192: generate a 2048 to 4096-bit key"),
                ));
            } else if e.bits() < 2 || e.bits() > 256 || !e.bit(0) {
                key.problems.push(problem(
                    "key.weak",
                    "the RSA public exponent is not sane (it must be odd, at least 3); \
                     generate a new key with exponent 65537",
                ));
            } else if !n.bit(0) || fermat_factorable(&n) {
                key.problems.push(problem(
                    "key.weak",
                    "the RSA modulus can be factored (its primes are too close together: Fermat's \
                     method); this key is broken, generate a new one with a standard tool",
                ));
            } else {
                key.info = Some(KeyInfo::Rsa { bits: size });
            }
        }
        EC => {
            let curve = match params {
                Some(p) if p.tag == OID => der::oid(&p)?,
                _ => {
                    key.problems.push(unsupported(
                        "an EC key with explicit or missing curve parameters",
                    ));
                    return Ok(key);
                }
            };
            let point_ok = |coord: usize| match public.first() {
                Some(0x04) => public.len() == 1 + 2 * coord,
                Some(0x02 | 0x03) => public.len() == 1 + coord,
                _ => false,
            };
            let bad_point = DerError {
                what: "EC public key that is not a point of its curve",
                offset: bits.offset,
            };
            match curve.as_str() {
                P256 if !point_ok(32) => return Err(bad_point),
                P384 if !point_ok(48) => return Err(bad_point),
                P256 => key.info = Some(KeyInfo::EcdsaP256),
                P384 => key.info = Some(KeyInfo::EcdsaP384),
                "1.3.132.0.35" => key.problems.push(unsupported("ECDSA P-521")),
                other => key
                    .problems
                    .push(unsupported(&format!("EC on curve {other}"))),
            }
        }
        RSA_PSS => key.problems.push(unsupported(
            "an RSASSA-PSS key (key OID 1.2.840.113549.1.1.10); a plain RSA key (rsaEncryption) \
             may sign with PSS, but the key itself must be rsaEncryption",
        )),
        "1.3.101.112" => key.problems.push(unsupported("Ed25519")),
        "1.3.101.113" => key.problems.push(unsupported("Ed448")),
        "1.2.840.10040.4.1" => key.problems.push(unsupported("DSA")),
        other => key.problems.push(unsupported(&format!("of type {other}"))),
    }
    Ok(key)
}

/// Fermat's factorization, as Let's Encrypt's goodkey checks it: moduli
/// whose primes are close together factor in a few rounds.
fn fermat_factorable(n: &BigUint) -> bool {
    const ROUNDS: u32 = 100;
    let mut a = n.sqrt();
    if &a * &a < *n {
        a += 1u32;
    }
    // b2 = a² - n, stepped as (a+1)² - n = b2 + 2a + 1: one addition a
    // round instead of a multiplication.
    let mut b2 = &a * &a - n;
    for _ in 0..ROUNDS {
        if may_be_square(&b2) {
            let b = b2.sqrt();
            if &b * &b == b2 {
                return true;
            }
        }
        b2 += &a << 1u32;
        b2 += 1u32;
        a += 1u32;
    }
    false
}

/// False when `v` is certainly not a perfect square: squares take only 12
/// of 64 values modulo 64, 16 of 63, 21 of 65 and 6 of 11, so fewer than
/// one number in a hundred gets past this to the costly square root.
fn may_be_square(v: &BigUint) -> bool {
    fn residue_of_square(m: u32, r: u32) -> bool {
        (0..m).any(|x| x * x % m == r)
    }
    let low = v.iter_u64_digits().next().unwrap_or(0);
    if !residue_of_square(64, (low % 64) as u32) {
        return false;
    }
    let r = (v % 45_045u32).iter_u32_digits().next().unwrap_or(0);
    [63, 65, 11].iter().all(|&m| residue_of_square(m, r % m))
}

/// The key of a SubjectPublicKeyInfo that passed the intake before.
pub fn key_of(spki_der: &[u8]) -> Result<KeyInfo, CsrError> {
    let t = Reader::new(spki_der).any().map_err(malformed)?;
    let key = read_key(&t).map_err(malformed)?;
    key.info.ok_or(CsrError(key.problems))
}

// ---------- signature ----------

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";

enum SigAlg {
    Verify(&'static str, Hash, Scheme),
    Weak(&'static str),
    Unknown(String),
}

#[derive(Clone, Copy)]
enum Hash {
    S256,
    S384,
    S512,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pkcs1,
    Pss,
    Ecdsa,
}

fn read_sig_alg(alg: &Tlv<'_>) -> Result<SigAlg, DerError> {
    let mut r = Reader::inside(alg);
    let oid = der::oid(&r.expect(OID, "expected the signature algorithm")?)?;
    let params = if r.is_empty() { None } else { Some(r.any()?) };
    r.finish("extra data in the signature algorithm")?;
    Ok(match oid.as_str() {
        "1.2.840.113549.1.1.11" => {
            SigAlg::Verify("sha256WithRSAEncryption", Hash::S256, Scheme::Pkcs1)
        }
        "1.2.840.113549.1.1.12" => {
            SigAlg::Verify("sha384WithRSAEncryption", Hash::S384, Scheme::Pkcs1)
        }
        "1.2.840.113549.1.1.13" => {
            SigAlg::Verify("sha512WithRSAEncryption", Hash::S512, Scheme::Pkcs1)
        }
        "1.2.840.10045.4.3.2" => SigAlg::Verify("ecdsa-with-SHA256", Hash::S256, Scheme::Ecdsa),
        "1.2.840.10045.4.3.3" => SigAlg::Verify("ecdsa-with-SHA384", Hash::S384, Scheme::Ecdsa),
        "1.2.840.10045.4.3.4" => SigAlg::Verify("ecdsa-with-SHA512", Hash::S512, Scheme::Ecdsa),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => SigAlg::Weak("SHA-1 with RSA"),
        "1.2.840.113549.1.1.4" => SigAlg::Weak("MD5 with RSA"),
        "1.2.840.113549.1.1.3" => SigAlg::Weak("MD4 with RSA"),
        "1.2.840.113549.1.1.2" => SigAlg::Weak("MD2 with RSA"),
        "1.2.840.10045.4.1" => SigAlg::Weak("ECDSA with SHA-1"),
        "1.2.840.113549.1.1.10" => match params.map(|p| pss_hash(&p)).transpose()?.flatten() {
            Some(Hash::S256) => SigAlg::Verify("RSASSA-PSS with SHA-256", Hash::S256, Scheme::Pss),
            Some(Hash::S384) => SigAlg::Verify("RSASSA-PSS with SHA-384", Hash::S384, Scheme::Pss),
            Some(Hash::S512) => SigAlg::Verify("RSASSA-PSS with SHA-512", Hash::S512, Scheme::Pss),
            None => SigAlg::Weak("RSASSA-PSS with SHA-1"),
        },
        other => SigAlg::Unknown(other.to_owned()),
    })
}

/// The hash of RSASSA-PSS parameters; `None` for the SHA-1 default.
fn pss_hash(params: &Tlv<'_>) -> Result<Option<Hash>, DerError> {
    let mut r = Reader::inside(params);
    if r.peek_tag() != Some(0xa0) {
        return Ok(None);
    }
    let explicit = r.any()?;
    let mut alg = Reader::inside(&explicit).sequence("expected the PSS hash algorithm")?;
    let oid = der::oid(&alg.expect(OID, "expected the PSS hash OID")?)?;
    Ok(match oid.as_str() {
        SHA256 => Some(Hash::S256),
        SHA384 => Some(Hash::S384),
        SHA512 => Some(Hash::S512),
        _ => None,
    })
}

fn verifier(
    key: KeyInfo,
    hash: Hash,
    scheme: Scheme,
) -> Option<&'static dyn VerificationAlgorithm> {
    use signature as s;
    Some(match (key, scheme, hash) {
        (KeyInfo::Rsa { .. }, Scheme::Pkcs1, Hash::S256) => &s::RSA_PKCS1_2048_8192_SHA256,
        (KeyInfo::Rsa { .. }, Scheme::Pkcs1, Hash::S384) => &s::RSA_PKCS1_2048_8192_SHA384,
        (KeyInfo::Rsa { .. }, Scheme::Pkcs1, Hash::S512) => &s::RSA_PKCS1_2048_8192_SHA512,
        (KeyInfo::Rsa { .. }, Scheme::Pss, Hash::S256) => &s::RSA_PSS_2048_8192_SHA256,
        (KeyInfo::Rsa { .. }, Scheme::Pss, Hash::S384) => &s::RSA_PSS_2048_8192_SHA384,
        (KeyInfo::Rsa { .. }, Scheme::Pss, Hash::S512) => &s::RSA_PSS_2048_8192_SHA512,
        (KeyInfo::EcdsaP256, Scheme::Ecdsa, Hash::S256) => &s::ECDSA_P256_SHA256_ASN1,
        (KeyInfo::EcdsaP256, Scheme::Ecdsa, Hash::S384) => &s::ECDSA_P256_SHA384_ASN1,
        (KeyInfo::EcdsaP256, Scheme::Ecdsa, Hash::S512) => &s::ECDSA_P256_SHA512_ASN1,
        (KeyInfo::EcdsaP384, Scheme::Ecdsa, Hash::S256) => &s::ECDSA_P384_SHA256_ASN1,
        (KeyInfo::EcdsaP384, Scheme::Ecdsa, Hash::S384) => &s::ECDSA_P384_SHA384_ASN1,
        (KeyInfo::EcdsaP384, Scheme::Ecdsa, Hash::S512) => &s::ECDSA_P384_SHA512_ASN1,
        _ => return None,
    })
}

// ---------- attributes and extensions ----------

const EXT_REQ: &str = "1.2.840.113549.1.9.14";
const MS_EXT_REQ: &str = "1.3.6.1.4.1.311.2.1.14";
const CHALLENGE: &str = "1.2.840.113549.1.9.7";
const KU: &str = "2.5.29.15";
const EKU: &str = "2.5.29.37";
const SAN: &str = "2.5.29.17";
const BC: &str = "2.5.29.19";
const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";

const KU_NAMES: [&str; 9] = [
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
];

#[derive(Default)]
struct Extensions {
    key_usage: Option<Vec<bool>>,
    eku: Option<Vec<String>>,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    /// rfc822 names, judged once the subject is known.
    emails: Vec<String>,
    names: usize,
    problems: Vec<CsrProblem>,
    /// Where challenge password values sit, to blank them.
    secrets: Vec<(usize, usize)>,
}

fn read_attributes(attrs: &Tlv<'_>, out: &mut Extensions) -> Result<(), DerError> {
    // SET OF Attribute; the order is not checked (Windows does not sort).
    let mut r = Reader::inside(attrs);
    let mut seen_ext_req = false;
    let mut seen: Vec<String> = Vec::new();
    while !r.is_empty() {
        let mut a = r.sequence("expected an attribute")?;
        let oid = der::oid(&a.expect(OID, "expected an attribute type")?)?;
        let values = a.expect(SET, "expected attribute values")?;
        a.finish("extra data in an attribute")?;
        let mut vr = Reader::inside(&values);
        if vr.is_empty() {
            return Err(DerError {
                what: "attribute with no value",
                offset: values.offset,
            });
        }
        // Extension requests have their own, clearer message below.
        if seen.contains(&oid) && oid != CHALLENGE && oid != EXT_REQ && oid != MS_EXT_REQ {
            out.problems.push(problem(
                "ext.duplicate",
                format!("the attribute {oid} appears twice; regenerate the request"),
            ));
        }
        seen.push(oid.clone());
        match oid.as_str() {
            EXT_REQ | MS_EXT_REQ => {
                if seen_ext_req {
                    out.problems.push(problem(
                        "ext.duplicate",
                        "the request carries its extensions twice (two extension-request \
                         attributes); regenerate it",
                    ));
                }
                seen_ext_req = true;
                while !vr.is_empty() {
                    let exts = vr.expect(SEQUENCE, "expected the requested extensions")?;
                    read_extensions(&exts, out)?;
                }
            }
            CHALLENGE => {
                while !vr.is_empty() {
                    let v = vr.any()?;
                    let header = v.raw.len() - v.value.len();
                    out.secrets.push((v.offset + header, v.value.len()));
                }
            }
            // Other attributes (Microsoft OS version, CSP, unstructuredName…)
            // tell us nothing we use; they must still be well-formed.
            _ => {
                while !vr.is_empty() {
                    vr.any()?;
                }
            }
        }
    }
    Ok(())
}

fn read_extensions(exts: &Tlv<'_>, out: &mut Extensions) -> Result<(), DerError> {
    let mut r = Reader::inside(exts);
    let mut seen: Vec<String> = Vec::new();
    while !r.is_empty() {
        let mut e = r.sequence("expected an extension")?;
        let oid = der::oid(&e.expect(OID, "expected an extension OID")?)?;
        // `critical FALSE` written out is BER, not DER; Windows and FreeIPA
        // write it, and it is read leniently.
        let critical = if e.peek_tag() == Some(der::BOOLEAN) {
            der::boolean(&e.any()?)?
        } else {
            false
        };
        let value = e.expect(OCTET_STRING, "expected an extension value")?;
        e.finish("extra data in an extension")?;
        if seen.contains(&oid)
            || (oid == KU && out.key_usage.is_some())
            || (oid == EKU && out.eku.is_some())
        {
            out.problems.push(problem(
                "ext.duplicate",
                format!(
                    "the extension {oid} is requested twice; regenerate the request with it once"
                ),
            ));
            continue;
        }
        seen.push(oid.clone());
        if !matches!(oid.as_str(), KU | EKU | SAN | BC) {
            // Unknown extensions are not parsed: only their criticality
            // matters, and RFC 5280 lets us ignore them when non-critical.
            if critical {
                out.problems.push(problem(
                    "ext.unknown-critical",
                    format!(
                        "the request marks the extension {oid} critical, and this service does \
                         not know it; regenerate the request without it"
                    ),
                ));
            }
            continue;
        }
        let mut vr = Reader::new(value.value);
        let inner = vr.any().map_err(|mut d| {
            d.offset += value.offset;
            d
        })?;
        if !vr.is_empty() {
            return Err(DerError {
                what: "extra data after an extension's value",
                offset: value.offset,
            });
        }
        match oid.as_str() {
            KU => out.key_usage = Some(key_usage_bits(&inner)?),
            EKU => {
                let mut list = Vec::new();
                let mut er = Reader::inside(&inner);
                while !er.is_empty() {
                    list.push(der::oid(&er.expect(OID, "expected a key purpose")?)?);
                }
                out.eku = Some(list);
            }
            SAN => read_san(&inner, out)?,
            _ => {
                let mut br = Reader::inside(&inner);
                let ca = if br.peek_tag() == Some(der::BOOLEAN) {
                    der::boolean(&br.any()?)?
                } else {
                    false
                };
                if ca {
                    out.problems.push(problem(
                        "ext.ca-requested",
                        "the request asks for a CA certificate (basicConstraints CA:TRUE); a server \
                         certificate cannot sign others: regenerate without basicConstraints CA:TRUE",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Key usage bits. DER wants no trailing zero bits; GnuTLS writes all nine
/// named bits (two octets, seven unused) whatever is set, and that habit
/// is read. Anything longer than the nine defined bits must be minimal.
fn key_usage_bits(t: &Tlv<'_>) -> Result<Vec<bool>, DerError> {
    match der::named_bits(t) {
        Ok(bits) => Ok(bits),
        Err(e) => {
            let (bytes, unused) = der::bit_string(t)?;
            if bytes.len() == 2 && unused == 7 {
                let mut bits = Vec::with_capacity(9);
                for b in bytes {
                    for i in (0..8).rev() {
                        bits.push(b & (1 << i) != 0);
                    }
                }
                bits.truncate(9);
                Ok(bits)
            } else {
                Err(e)
            }
        }
    }
}

fn read_san(inner: &Tlv<'_>, out: &mut Extensions) -> Result<(), DerError> {
    let mut r = Reader::inside(inner);
    let mut unsupported = Vec::new();
    while !r.is_empty() {
        let n = r.any()?;
        out.names += 1;
        match n.tag {
            0x82 => out.dns.push(String::from_utf8_lossy(n.value).into_owned()),
            0x87 => match n.value.len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(n.value);
                    out.ips.push(IpAddr::from(a));
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(n.value);
                    out.ips.push(IpAddr::from(a));
                }
                _ => {
                    return Err(DerError {
                        what: "IP address of bad length",
                        offset: n.offset,
                    });
                }
            },
            0x81 => out
                .emails
                .push(String::from_utf8_lossy(n.value).into_owned()),
            0x86 => unsupported.push("URI"),
            0xa0 => unsupported.push("other name"),
            0xa4 => unsupported.push("directory name"),
            0x88 => unsupported.push("registered ID"),
            _ => unsupported.push("unknown name type"),
        }
    }
    unsupported.dedup();
    if !unsupported.is_empty() {
        out.problems.push(problem(
            "san.unsupported-type",
            format!(
                "the request asks for alternative names of type {}; only DNS names and IP \
                 addresses are issued: regenerate it with DNS: and IP: names only",
                unsupported.join(", ")
            ),
        ));
    }
    Ok(())
}

fn usage_problems(key: Option<KeyInfo>, ext: &Extensions, problems: &mut Vec<CsrProblem>) {
    let bits = ext.key_usage.clone().unwrap_or_default();
    let has = |i: usize| bits.get(i).copied().unwrap_or(false);
    if has(5) || has(6) {
        problems.push(problem(
            "ext.ca-requested",
            "the request asks for certificate-signing key usage (keyCertSign or cRLSign), which \
             only a CA has; regenerate it without them",
        ));
    }
    let rsa = matches!(key, Some(KeyInfo::Rsa { .. }));
    let ec = matches!(key, Some(KeyInfo::EcdsaP256 | KeyInfo::EcdsaP384));
    if rsa {
        let missing: Vec<&str> = [0usize, 2, 3]
            .into_iter()
            .filter(|i| !has(*i))
            .filter_map(|i| KU_NAMES.get(i).copied())
            .collect();
        if !missing.is_empty() {
            let what = if ext.key_usage.is_none() {
                "asks for no key usage".to_owned()
            } else {
                format!("lacks the key usage {}", missing.join(", "))
            };
            problems.push(problem(
                "ku.missing",
                format!(
                    "the request {what}; an RSA server key needs digitalSignature, keyEncipherment \
                     and dataEncipherment. With OpenSSL add \
                     -addext \"keyUsage=critical,digitalSignature,keyEncipherment,dataEncipherment\"; \
                     with certreq put in the INF [NewRequest] section \
                     KeyUsage = \"CERT_DIGITAL_SIGNATURE_KEY_USAGE | CERT_KEY_ENCIPHERMENT_KEY_USAGE | \
                     CERT_DATA_ENCIPHERMENT_KEY_USAGE\" (0xb0)"
                ),
            ));
        }
    } else if ec {
        if !has(0) {
            problems.push(problem(
                "ku.missing",
                "the request lacks the key usage digitalSignature, which an ECDSA server key needs. \
                 With OpenSSL add -addext \"keyUsage=critical,digitalSignature\"; with certreq \
                 KeyUsage = \"CERT_DIGITAL_SIGNATURE_KEY_USAGE\"",
            ));
        }
        let impossible: Vec<&str> = [2usize, 3]
            .into_iter()
            .filter(|i| has(*i))
            .filter_map(|i| KU_NAMES.get(i).copied())
            .collect();
        if !impossible.is_empty() {
            problems.push(problem(
                "ku.invalid-for-key",
                format!(
                    "the request asks for {} with an ECDSA key, which cannot encipher; regenerate it \
                     with keyUsage digitalSignature only",
                    impossible.join(" and ")
                ),
            ));
        }
    }
    let server_auth = ext
        .eku
        .as_ref()
        .is_some_and(|l| l.iter().any(|o| o == SERVER_AUTH));
    if !server_auth {
        problems.push(problem(
            "eku.missing",
            "the request does not ask for the extended key usage serverAuth, which a server \
             certificate needs. With OpenSSL add -addext \"extendedKeyUsage=serverAuth\"; with \
             certreq put [EnhancedKeyUsageExtension] OID=1.3.6.1.5.5.7.3.1 in the INF file",
        ));
    }
}

// ---------- the whole check ----------

/// Applies the external CSR policy to a file's bytes.
pub fn check_external(input: &[u8]) -> Result<ExternalCsr, CsrError> {
    examine(input, true, true)
}

/// Only what every request must have: one well-formed DER request, an
/// accepted key, and a signature that verifies with it (proof of
/// possession). For requests our own client built, whose usages and
/// subject the service sets by policy anyway.
pub fn check_possession(input: &[u8]) -> Result<ExternalCsr, CsrError> {
    examine(input, false, true)
}

/// Reads a request that was accepted and stored, to show it: the
/// structure only. Its signature is not checked again (the stored copy
/// has any challenge password blanked out, which breaks the signature).
pub fn read_stored(der: &[u8]) -> Result<ExternalCsr, CsrError> {
    examine(der, false, false)
}

fn examine(input: &[u8], external: bool, verify: bool) -> Result<ExternalCsr, CsrError> {
    let der = decode(input)?;
    let mut top = Reader::new(&der);
    let outer = top
        .expect(SEQUENCE, "expected a certificate request")
        .map_err(malformed)?;
    if !top.is_empty() {
        return Err(fatal(
            "csr.trailing-data",
            format!(
                "there are {} bytes after the request; save the request alone",
                der.len() - outer.raw.len()
            ),
        ));
    }
    let mut r = Reader::inside(&outer);
    let cri = r
        .expect(SEQUENCE, "expected the request information")
        .map_err(malformed)?;
    let sig_alg_tlv = r
        .expect(SEQUENCE, "expected the signature algorithm")
        .map_err(malformed)?;
    let sig_tlv = r
        .expect(BIT_STRING, "expected the signature")
        .map_err(malformed)?;
    r.finish("extra data after the signature")
        .map_err(malformed)?;

    let mut info = Reader::inside(&cri);
    let version_tlv = info
        .expect(INTEGER, "expected the version")
        .map_err(malformed)?;
    match der::small_int(&version_tlv).map_err(malformed)? {
        Some(0) => {}
        v => {
            return Err(fatal(
                "csr.unsupported-version",
                format!(
                    "the request has version {}; only PKCS#10 version 1 (encoded 0) exists: \
                     regenerate it with a standard tool",
                    v.map(|v| v.to_string()).unwrap_or_else(|| "(huge)".into())
                ),
            ));
        }
    }
    let name = info
        .expect(SEQUENCE, "expected the subject")
        .map_err(malformed)?;
    let spki = info
        .expect(SEQUENCE, "expected the public key")
        .map_err(malformed)?;
    let attributes = if info.is_empty() {
        None
    } else {
        Some(
            info.expect(0xa0, "expected the attributes")
                .map_err(malformed)?,
        )
    };
    info.finish("extra data in the request information")
        .map_err(malformed)?;

    let subject = read_name(&name).map_err(malformed)?;
    let key = read_key(&spki).map_err(malformed)?;
    let mut ext = Extensions::default();
    if let Some(a) = &attributes {
        read_attributes(a, &mut ext).map_err(malformed)?;
    }
    let sig_alg = read_sig_alg(&sig_alg_tlv).map_err(malformed)?;
    let (signature, unused) = der::bit_string(&sig_tlv).map_err(malformed)?;
    if unused != 0 {
        return Err(malformed(DerError {
            what: "signature with unused bits",
            offset: sig_tlv.offset,
        }));
    }
    if subject.attrs.len() + ext.names > MAX_NAMES {
        return Err(fatal(
            "csr.too-large",
            format!(
                "the request names {} subjects and alternative names, over the {MAX_NAMES} accepted; \
                 request a certificate for fewer names",
                subject.attrs.len() + ext.names
            ),
        ));
    }

    let mut problems = Vec::new();
    // Proof of possession, unless the key itself is already refused.
    let mut sig_name = "unknown";
    match (&sig_alg, key.info) {
        (SigAlg::Weak(what), _) => problems.push(problem(
            "csr.weak-signature",
            format!(
                "the request is signed with {what}, which is broken; regenerate it with SHA-256 \
                 (openssl req -new -sha256, or HashAlgorithm = sha256 in a certreq INF)"
            ),
        )),
        // An Ed25519 or Ed448 key signs with its own algorithm: the key's
        // refusal says it all.
        (SigAlg::Unknown(_), None) if !key.problems.is_empty() => {}
        (SigAlg::Unknown(oid), _) => problems.push(problem(
            "csr.bad-signature",
            format!("the request's signature algorithm {oid} is not supported; regenerate it with SHA-256 and RSA or ECDSA"),
        )),
        (SigAlg::Verify(name, _, _), Some(_)) if !verify => sig_name = name,
        (SigAlg::Verify(name, hash, scheme), Some(k)) => {
            sig_name = name;
            let ok = verifier(k, *hash, *scheme).is_some_and(|alg| {
                signature::UnparsedPublicKey::new(alg, &key.public)
                    .verify(cri.raw, signature)
                    .is_ok()
            });
            if !ok {
                problems.push(problem(
                    "csr.bad-signature",
                    "the request's signature does not verify with its own key (it was changed after \
                     signing, or signed with another key); regenerate it from the server's key",
                ));
            }
        }
        (SigAlg::Verify(..), None) => {}
    }
    problems.extend(key.problems.iter().cloned());
    if external {
        external_problems(&subject, &key, &ext, &mut problems);
    }
    let Some(key_info) = key.info else {
        return Err(CsrError(dedup(problems)));
    };
    if !problems.is_empty() {
        return Err(CsrError(dedup(problems)));
    }
    let spki_der = spki.raw.to_vec();
    Ok(accepted(&der, spki_der, key_info, sig_name, subject, ext))
}

/// The checks of the external policy beyond proof of possession.
fn external_problems(
    subject: &Subject,
    key: &Key,
    ext: &Extensions,
    problems: &mut Vec<CsrProblem>,
) {
    problems.extend(subject.problems.iter().cloned());
    problems.extend(ext.problems.iter().cloned());
    // Some tools copy the subject's email into the alternative names; an
    // email name that only repeats the subject's emailAddress is dropped.
    // Any other is refused: only DNS names and IP addresses are issued.
    let subject_email = subject
        .attrs
        .iter()
        .find(|(k, _)| k == "E")
        .map(|(_, v)| v.clone());
    let stray = ext.emails.iter().any(|e| {
        !subject_email
            .as_ref()
            .is_some_and(|s| s.eq_ignore_ascii_case(e))
    });
    if stray {
        problems.push(problem(
            "san.unsupported-type",
            "the request asks for an email address as an alternative name other than its \
             subject's emailAddress; only DNS names and IP addresses are taken from a request \
             (the subject's email is added by the service): regenerate it with DNS: and IP: \
             names only",
        ));
    }
    for d in &ext.dns {
        if let Err(why) = enroll_core::subject::dns_name_problem(d, 253) {
            problems.push(problem(
                "san.invalid",
                format!("the request's DNS name {why}; regenerate it with valid DNS: names"),
            ));
        }
    }
    if let Some(family) = key.info.or(key.family) {
        usage_problems(Some(family), ext, problems);
    } else if !key
        .problems
        .iter()
        .any(|p| p.code == "key.unsupported-type")
    {
        usage_problems(None, ext, problems);
    }
}

fn accepted(
    der: &[u8],
    spki_der: Vec<u8>,
    key_info: KeyInfo,
    sig_name: &'static str,
    subject: Subject,
    ext: Extensions,
) -> ExternalCsr {
    let mut der_redacted = der.to_vec();
    for (start, len) in &ext.secrets {
        if let Some(bytes) = der_redacted.get_mut(*start..start + len) {
            bytes.fill(b'*');
        }
    }
    let first = |k: &str| {
        subject
            .attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let key_usage = ext
        .key_usage
        .unwrap_or_default()
        .iter()
        .zip(KU_NAMES)
        .filter(|(on, _)| **on)
        .map(|(_, n)| n)
        .collect();
    ExternalCsr {
        der_redacted,
        spki_der,
        key: key_info,
        signature_algorithm: sig_name,
        common_name: first("CN"),
        locality: first("L"),
        state: first("ST"),
        email: first("E"),
        country: first("C"),
        subject: subject.attrs,
        dns_names: ext.dns,
        ip_addresses: ext.ips,
        key_usage,
        extended_key_usage: ext.eku.unwrap_or_default(),
    }
}

fn dedup(mut v: Vec<CsrProblem>) -> Vec<CsrProblem> {
    let mut seen = Vec::new();
    v.retain(|p| {
        let k = (p.code, p.message.clone());
        if seen.contains(&k) {
            false
        } else {
            seen.push(k);
            true
        }
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fermat_catches_close_primes() {
        // 1000003 * 1000033: primes 30 apart.
        let n = BigUint::from(1_000_003u64 * 1_000_033u64);
        assert!(fermat_factorable(&n));
        // 2^61-1 is prime: no factorization.
        let p = BigUint::from((1u64 << 61) - 1);
        assert!(!fermat_factorable(&(&p * BigUint::from(3u32))));
        // Primes 20,000 apart: found in round 50, past the stepping.
        let n = BigUint::from(1_000_003u64) * BigUint::from(1_020_001u64);
        assert!(fermat_factorable(&n));
    }

    #[test]
    fn the_square_filter_never_drops_a_square() {
        for v in 0u64..20_000 {
            let big = BigUint::from(v);
            if !may_be_square(&big) {
                assert_ne!(big.sqrt().pow(2), big, "{v} is a square");
            }
        }
        let huge = BigUint::from(3u32).pow(1000);
        assert!(may_be_square(&(&huge * &huge)));
    }

    #[test]
    fn utf16_text_is_read() {
        let pem = "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n";
        let mut le = vec![0xff, 0xfe];
        for u in pem.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&le).expect("utf-16"), vec![0x30, 0x00]);
    }
}
