//! The encodings a bundle and a trust root use: base64 and hex, PEM, JSON fields, RFC 3339 times.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

/// The DER of the first PEM block in `pem`.
pub(super) fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find("-----BEGIN ")?;
    let after = &text[start..];
    let body_start = after.find('\n')? + 1;
    let body_end = after.find("-----END ")?;
    let b64_text: String = after
        .get(body_start..body_end)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    B64.decode(b64_text).ok()
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `{key}`"))
}

/// Protobuf's JSON writes 64-bit integers as strings; accept a number too.
pub(super) fn int_at(v: &Value, key: &str) -> Result<i64, String> {
    match v.get(key) {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| format!("log entry has no integer `{key}`"))
}

/// The base64 string at `pointer` in a log entry, decoded; `missing` when it has none.
pub(super) fn b64_at(
    entry: &Value,
    pointer: &str,
    missing: &str,
    what: &str,
) -> Result<Vec<u8>, String> {
    let s = entry
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or(missing)?;
    b64(s, what)
}

pub(super) fn b64(s: &str, what: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.trim())
        .map_err(|_| format!("{what} is not base64"))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` in Unix seconds: the only form `trusted_root.json` uses.
pub(super) fn rfc3339_seconds(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an RFC 3339 UTC time");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(sec)) = (
        num(0..4),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, d);
    Ok(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
