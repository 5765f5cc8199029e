//! The encodings a bundle and a trust root use: base64 and hex, PEM, RFC 3339 and
//! GeneralizedTime times. The core reads its PEM and its dates with these too.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::CertificateDer;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use x509_cert::der::Decode;
use x509_cert::Certificate;

/// The DER of the first PEM block in `pem` whatever its label (a certificate or a public key).
pub(super) fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    <(SectionKind, Vec<u8>)>::from_pem_slice(pem)
        .ok()
        .map(|(_, der)| der)
}

/// Why PEM text holds no usable certificates.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("not PEM certificates: {0}")]
    Syntax(rustls_pki_types::pem::Error),
    #[error("no certificate found in the PEM text")]
    Empty,
    #[error("a PEM block is not an X.509 certificate: {0}")]
    NotCertificate(x509_cert::der::Error),
}

/// The DER of each `CERTIFICATE` block of `pem` (blocks of other labels are skipped), each one
/// an X.509 certificate: a block that decodes to something else would otherwise be taken for
/// one, or silently dropped, by whoever trusts it next.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    let mut certificates = Vec::new();
    for der in CertificateDer::pem_slice_iter(pem) {
        let der = der.map_err(PemError::Syntax)?;
        Certificate::from_der(&der).map_err(PemError::NotCertificate)?;
        certificates.push(der.to_vec());
    }
    if certificates.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certificates)
}

/// A base64 field that does not decode; names the field.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not base64")]
pub struct NotBase64(pub &'static str);

pub(super) fn b64(s: &str, what: &'static str) -> Result<Vec<u8>, NotBase64> {
    B64.decode(s.trim()).map_err(|_| NotBase64(what))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// An RFC 3339 time (`2025-01-29T00:00:00.000Z`: any offset, an optional fraction of any
/// length, `T`, `t` or a space between date and time) in milliseconds since the Unix epoch;
/// `None` for anything else. The registry's dates and Sigstore's trust roots are of this form.
/// A leap second (`23:59:60` at a month's end, UTC) reads as the last moment of its minute:
/// Unix time has no second 60.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    // `time` takes any byte between date and time; RFC 3339 §5.6 names `T`, and its note a space.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// An ASN.1 `GeneralizedTime` as RFC 3161 §2.4.2 writes `genTime` (`YYYYMMDDHHMMSS[.f*]Z`) in
/// Unix seconds; `None` for anything else. It is the RFC 3339 time it spells, read as
/// [`rfc3339_ms`] reads one: `der`'s own `GeneralizedTime` refuses the fraction RFC 3161 allows.
pub(super) fn generalized_time_seconds(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?.strip_suffix('Z')?;
    let (whole, frac) = match s.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (s, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let f = |r: std::ops::Range<usize>| &whole[r];
    let mut text = format!(
        "{}-{}-{}T{}:{}:{}",
        f(0..4),
        f(4..6),
        f(6..8),
        f(8..10),
        f(10..12),
        f(12..14)
    );
    if let Some(frac) = frac {
        text.push('.');
        text.push_str(frac);
    }
    text.push('Z');
    rfc3339_ms(&text).map(|ms| ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_read_with_fractions_offsets_and_leap_seconds() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2025-01-01T00:05:00Z"), Some(1_735_689_900_000));
        assert_eq!(
            rfc3339_ms("2022-12-31T23:59:59.999Z"),
            Some(1_672_531_199_999)
        );
        // Digits past the millisecond are dropped, not rounded.
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00.0019999Z"), Some(1));
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            rfc3339_ms("2024-02-29T12:00:00.5+02:00"),
            rfc3339_ms("2024-02-29T10:00:00.500Z")
        );
        assert_eq!(
            rfc3339_ms("2024-02-29t12:00:00-01:30"),
            rfc3339_ms("2024-02-29 13:30:00z")
        );
        // A leap second is the last moment of its minute; none can fall elsewhere.
        assert_eq!(
            rfc3339_ms("2016-12-31T23:59:60Z"),
            Some(rfc3339_ms("2017-01-01T00:00:00Z").unwrap() - 1)
        );
        for bad in [
            "",
            "yesterday",
            "2025-01-29",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-29T24:00:00Z",
            "2025-01-29T12:30:60Z",
            "2025-01-29T00:00:00",
            "2025-01-29T00:00:00.Z",
            "2025-01-29T00:00:00+0200",
            "2025-01-29T00:00:00+24:00",
            "2025-01-29X00:00:00Z",
            "2025-01-29T00:00:00Zjunk",
            "２０２５-01-29T00:00:00Z",
            "+025-01-29T00:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn generalized_times_read_as_rfc_3161_writes_them() {
        assert_eq!(generalized_time_seconds(b"19700101000000Z"), Some(0));
        assert_eq!(
            generalized_time_seconds(b"20250101000500.123Z"),
            Some(1_735_689_900)
        );
        for bad in [
            &b"20250101000500"[..],
            b"2025010100050Z",
            b"20251301000000Z",
            b"20250101000500.Z",
            b"20250101000500+0100",
            b"2025-1-01000500Z",
            b"2025.Z",
        ] {
            assert_eq!(generalized_time_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pem_blocks_read_as_der() {
        let ca = crate::testkit::TestCa::new("pem");
        let [inter, root] = ca.chain_der();
        let block = |der: &[u8]| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                B64.encode(der)
            )
        };
        let both = format!("junk before\n{}{}", block(&inter), block(&root));
        assert_eq!(
            pem_certificates(both.as_bytes()).unwrap(),
            vec![inter.clone(), root]
        );
        assert_eq!(pem_der(both.as_bytes()), Some(inter));
        let key = "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n";
        assert_eq!(pem_der(key.as_bytes()), Some(vec![1, 2, 3]));
        // A block that decodes but is no certificate, bad base64, no block, no end.
        let not_cert = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_certificates(not_cert.as_bytes()),
            Err(PemError::NotCertificate(_))
        ));
        let bad = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            pem_certificates(bad.as_bytes()),
            Err(PemError::Syntax(_))
        ));
        assert!(matches!(
            pem_certificates(key.as_bytes()),
            Err(PemError::Empty)
        ));
        assert!(matches!(pem_certificates(b"hello"), Err(PemError::Empty)));
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nAQID\n").is_err());
        assert_eq!(pem_der(b"no pem here"), None);
    }
}
