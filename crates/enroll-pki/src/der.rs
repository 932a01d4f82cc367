//! A small strict DER reader for certificate requests.
//!
//! Strict where DER is strict (definite, minimal lengths; minimal
//! INTEGERs; BOOLEAN as 00/FF; BIT STRING padding), because a request that
//! is not DER is not what its signer signed. Two encoder habits are left
//! to the caller to accept: SET OF in any order, and an explicitly
//! encoded DEFAULT (`critical FALSE`). Nothing here allocates per byte or
//! recurses without bound: a request is at most 64 KiB and nesting is
//! fixed by the structures the caller walks.

use std::fmt;

pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// Why the bytes are not DER, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError {
    pub what: &'static str,
    pub offset: usize,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

pub type Result<T> = std::result::Result<T, DerError>;

/// One tag-length-value.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole encoding, tag and length included.
    pub raw: &'a [u8],
    /// Where `raw` starts in the outermost input.
    pub offset: usize,
}

/// A cursor over a sequence of TLVs.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over a TLV's contents.
    pub fn inside(t: &Tlv<'a>) -> Reader<'a> {
        let header = t.raw.len() - t.value.len();
        Reader {
            buf: t.value,
            pos: 0,
            base: t.offset + header,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    fn err(&self, what: &'static str) -> DerError {
        DerError {
            what,
            offset: self.offset(),
        }
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads the next TLV, whatever its tag.
    pub fn any(&mut self) -> Result<Tlv<'a>> {
        let start = self.pos;
        let tag = *self
            .buf
            .get(start)
            .ok_or_else(|| self.err("unexpected end"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.err("high tag numbers are not used in requests"));
        }
        let first = *self
            .buf
            .get(start + 1)
            .ok_or_else(|| self.err("missing length"))?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else if first == 0x80 {
            return Err(self.err("indefinite length (BER, not DER)"));
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(self.err("length too large"));
            }
            let bytes = self
                .buf
                .get(start + 2..start + 2 + n)
                .ok_or_else(|| self.err("truncated length"))?;
            if bytes.first() == Some(&0) {
                return Err(self.err("length with leading zero (not DER)"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(self.err("long-form length for a short value (not DER)"));
            }
            (len, 2 + n)
        };
        let end = start
            .checked_add(header)
            .and_then(|h| h.checked_add(len))
            .ok_or_else(|| self.err("length overflow"))?;
        let raw = self
            .buf
            .get(start..end)
            .ok_or_else(|| self.err("value runs past its container"))?;
        let value = raw.get(header..).ok_or_else(|| self.err("bad header"))?;
        let t = Tlv {
            tag,
            value,
            raw,
            offset: self.base + start,
        };
        self.pos = end;
        Ok(t)
    }

    /// Reads the next TLV and requires its tag.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>> {
        let at = self.err(what);
        let t = self.any()?;
        if t.tag != tag {
            return Err(at);
        }
        Ok(t)
    }

    pub fn sequence(&mut self, what: &'static str) -> Result<Reader<'a>> {
        let t = self.expect(SEQUENCE, what)?;
        Ok(Reader::inside(&t))
    }

    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
}

/// A minimal two's-complement INTEGER's contents; for serials and versions.
pub fn integer<'a>(t: &Tlv<'a>) -> Result<&'a [u8]> {
    let bad = |what| DerError {
        what,
        offset: t.offset,
    };
    if t.tag != INTEGER {
        return Err(bad("expected an INTEGER"));
    }
    match t.value {
        [] => Err(bad("zero-length INTEGER")),
        [0x00, b, ..] if b & 0x80 == 0 => Err(bad("INTEGER with a redundant leading zero")),
        [0xff, b, ..] if b & 0x80 != 0 => Err(bad("INTEGER with a redundant leading FF")),
        v => Ok(v),
    }
}

/// A small INTEGER as i64 (versions); `None` when it does not fit.
pub fn small_int(t: &Tlv<'_>) -> Result<Option<i64>> {
    let v = integer(t)?;
    if v.len() > 8 {
        return Ok(None);
    }
    let neg = v.first().is_some_and(|b| b & 0x80 != 0);
    let mut n: i64 = if neg { -1 } else { 0 };
    for b in v {
        n = (n << 8) | i64::from(*b);
    }
    Ok(Some(n))
}

/// A DER BOOLEAN: FF or 00.
pub fn boolean(t: &Tlv<'_>) -> Result<bool> {
    match (t.tag, t.value) {
        (BOOLEAN, [0xff]) => Ok(true),
        (BOOLEAN, [0x00]) => Ok(false),
        (BOOLEAN, _) => Err(DerError {
            what: "BOOLEAN that is not 00 or FF (not DER)",
            offset: t.offset,
        }),
        _ => Err(DerError {
            what: "expected a BOOLEAN",
            offset: t.offset,
        }),
    }
}

/// A BIT STRING's bytes and unused-bit count, with DER padding rules.
pub fn bit_string<'a>(t: &Tlv<'a>) -> Result<(&'a [u8], u8)> {
    let bad = |what| DerError {
        what,
        offset: t.offset,
    };
    if t.tag != BIT_STRING {
        return Err(bad("expected a BIT STRING"));
    }
    let (&unused, bits) = t.value.split_first().ok_or(bad("empty BIT STRING"))?;
    if unused > 7 || (bits.is_empty() && unused != 0) {
        return Err(bad("BIT STRING with a bad unused-bit count"));
    }
    if let Some(last) = bits.last()
        && unused > 0
        && last & ((1u8 << unused) - 1) != 0
    {
        return Err(bad("BIT STRING with non-zero padding bits"));
    }
    Ok((bits, unused))
}

/// A named-bit BIT STRING (key usage): DER also forbids trailing zero bits.
pub fn named_bits(t: &Tlv<'_>) -> Result<Vec<bool>> {
    let (bytes, unused) = bit_string(t)?;
    let bad = DerError {
        what: "named-bit BIT STRING with trailing zero bits (not DER)",
        offset: t.offset,
    };
    match bytes.last() {
        Some(0) => return Err(bad),
        Some(last) if last & (1u8 << unused) == 0 => return Err(bad),
        _ => {}
    }
    let mut out = Vec::with_capacity(bytes.len() * 8);
    for b in bytes {
        for i in (0..8).rev() {
            out.push(b & (1 << i) != 0);
        }
    }
    out.truncate(out.len().saturating_sub(usize::from(unused)));
    Ok(out)
}

/// An OBJECT IDENTIFIER in dotted form. Arcs of any size decode (some
/// tools use arcs beyond 32 bits).
pub fn oid(t: &Tlv<'_>) -> Result<String> {
    let bad = |what| DerError {
        what,
        offset: t.offset,
    };
    if t.tag != OID {
        return Err(bad("expected an OBJECT IDENTIFIER"));
    }
    if t.value.is_empty() || t.value.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad("truncated OBJECT IDENTIFIER"));
    }
    let mut arcs: Vec<u128> = Vec::new();
    let mut cur: u128 = 0;
    let mut fresh = true;
    for &b in t.value {
        if fresh && b == 0x80 {
            return Err(bad("OBJECT IDENTIFIER arc with a leading zero (not DER)"));
        }
        cur = cur
            .checked_mul(128)
            .and_then(|c| c.checked_add(u128::from(b & 0x7f)))
            .ok_or(bad("OBJECT IDENTIFIER arc too large"))?;
        fresh = b & 0x80 == 0;
        if fresh {
            arcs.push(cur);
            cur = 0;
        }
    }
    let first = arcs.first().copied().unwrap_or(0);
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut s = format!("{a}.{b}");
    for arc in arcs.iter().skip(1) {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(bytes: &[u8]) -> Result<Tlv<'_>> {
        Reader::new(bytes).any()
    }

    #[test]
    fn lengths_must_be_minimal_and_definite() {
        assert!(tlv(&[0x04, 0x01, 0xaa]).is_ok());
        assert!(tlv(&[0x04, 0x81, 0x01, 0xaa]).is_err());
        assert!(tlv(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(tlv(&[0x04, 0x82, 0x00, 0x01, 0xaa]).is_err());
        assert!(tlv(&[0x04, 0x05, 0xaa]).is_err());
        assert!(tlv(&[0x7f, 0x20, 0x00]).is_err());
    }

    #[test]
    fn integers_and_booleans() {
        assert_eq!(
            small_int(&tlv(&[0x02, 0x01, 0x00]).unwrap()).unwrap(),
            Some(0)
        );
        assert_eq!(
            small_int(&tlv(&[0x02, 0x01, 0xff]).unwrap()).unwrap(),
            Some(-1)
        );
        assert!(integer(&tlv(&[0x02, 0x02, 0x00, 0x00]).unwrap()).is_err());
        assert!(integer(&tlv(&[0x02, 0x00]).unwrap()).is_err());
        assert!(boolean(&tlv(&[0x01, 0x01, 0xff]).unwrap()).unwrap());
        assert!(boolean(&tlv(&[0x01, 0x01, 0x01]).unwrap()).is_err());
    }

    #[test]
    fn key_usage_bits() {
        // digitalSignature, keyEncipherment, dataEncipherment: 0xB0, 4 unused.
        let ku = named_bits(&tlv(&[0x03, 0x02, 0x04, 0xb0]).unwrap()).unwrap();
        assert_eq!(ku, [true, false, true, true]);
        // The same with a wrong unused count is not DER.
        assert!(named_bits(&tlv(&[0x03, 0x02, 0x00, 0xb0]).unwrap()).is_err());
        assert!(named_bits(&tlv(&[0x03, 0x03, 0x04, 0xb0, 0x00]).unwrap()).is_err());
    }

    #[test]
    fn oids_with_large_arcs() {
        let t = tlv(&[0x06, 0x03, 0x55, 0x1d, 0x0f]).unwrap();
        assert_eq!(oid(&t).unwrap(), "2.5.29.15");
        let big = [0x06, 0x07, 0x2a, 0x90, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(oid(&tlv(&big).unwrap()).unwrap(), "1.2.549755813889");
    }
}

/// Writing DER: just enough for OCSP responses and extensions we build by
/// hand. Every function returns a complete TLV.
pub mod write {
    /// A TLV with `tag` around `content`.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(content.len() + 6);
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let used = bytes.get(skip..).unwrap_or_default();
            out.push(0x80 | used.len() as u8);
            out.extend_from_slice(used);
        }
        out.extend_from_slice(content);
        out
    }

    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        tlv(super::SEQUENCE, &parts.concat())
    }

    /// A non-negative INTEGER from big-endian magnitude bytes.
    pub fn uint(magnitude: &[u8]) -> Vec<u8> {
        let trimmed: &[u8] = {
            let skip = magnitude
                .iter()
                .take_while(|b| **b == 0)
                .count()
                .min(magnitude.len().saturating_sub(1));
            magnitude.get(skip..).unwrap_or(&[0])
        };
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(trimmed);
        tlv(super::INTEGER, &content)
    }

    /// An OBJECT IDENTIFIER from its dotted form (arcs up to u64).
    pub fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
        let mut content = Vec::new();
        let first = arcs.first().copied().unwrap_or(0) * 40 + arcs.get(1).copied().unwrap_or(0);
        for arc in std::iter::once(first).chain(arcs.iter().skip(2).copied()) {
            let mut stack = vec![(arc & 0x7f) as u8];
            let mut v = arc >> 7;
            while v > 0 {
                stack.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            content.extend(stack.iter().rev());
        }
        tlv(super::OID, &content)
    }

    pub fn octets(b: &[u8]) -> Vec<u8> {
        tlv(super::OCTET_STRING, b)
    }

    pub fn bits(b: &[u8]) -> Vec<u8> {
        let mut content = Vec::with_capacity(b.len() + 1);
        content.push(0);
        content.extend_from_slice(b);
        tlv(super::BIT_STRING, &content)
    }

    /// GeneralizedTime, `YYYYMMDDHHMMSSZ`.
    pub fn generalized_time(unix: i64) -> Vec<u8> {
        let t = time::OffsetDateTime::from_unix_timestamp(unix)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        tlv(0x18, s.as_bytes())
    }

    /// A context-specific tag `[n]`, constructed (explicit) or primitive.
    pub fn ctx(n: u8, constructed: bool, content: &[u8]) -> Vec<u8> {
        tlv(0x80 | if constructed { 0x20 } else { 0 } | n, content)
    }

    #[cfg(test)]
    mod tests {
        use super::super::{Reader, oid as read_oid};

        #[test]
        fn written_der_reads_back() {
            for o in ["2.5.29.15", "1.3.6.1.5.5.7.48.1.2", "1.2.840.113549.1.1.11"] {
                let der = super::oid(o);
                assert_eq!(read_oid(&Reader::new(&der).any().unwrap()).unwrap(), o);
            }
            assert_eq!(super::uint(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
            assert_eq!(super::uint(&[0, 0, 5]), [0x02, 0x01, 0x05]);
            let long = super::octets(&[7u8; 300]);
            assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
            assert_eq!(
                super::generalized_time(0),
                super::tlv(0x18, b"19700101000000Z")
            );
        }
    }
}
