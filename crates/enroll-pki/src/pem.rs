//! Minimal PEM reading and writing for certificates, chains and CSRs.

use base64::Engine as _;

/// Encodes DER as PEM with the given label, 64 columns, LF line ends.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block with `label` in `text`, decoded, in order. Text outside
/// blocks is ignored, as OpenSSL does for certificate bundles.
pub fn decode_all(text: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after
            .find(&end)
            .ok_or_else(|| format!("a {label} block has no END line"))?;
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("a {label} block is not valid base64: {e}"))?;
        out.push(der);
        rest = &after[stop + end.len()..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let der: Vec<u8> = (0..=255).collect();
        let text = super::encode("CERTIFICATE", &der);
        let two = format!("junk\n{text}{text}");
        let back = super::decode_all(&two, "CERTIFICATE").expect("decodes");
        assert_eq!(back, vec![der.clone(), der]);
    }
}
