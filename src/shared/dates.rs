//! Dates as the registry and Sigstore write them (RFC 3339), in milliseconds since the Unix
//! epoch, and the clock they are compared with.

/// An RFC 3339 timestamp (`2025-01-29T00:00:00.000Z`, any offset, optional fraction) in ms since
/// the Unix epoch. `None` for anything else: the registry's dates are always of this form.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(b, 0..4)?, digits(b, 5..7)?, digits(b, 8..10)?);
    let (hour, minute, second) = (digits(b, 11..13)?, digits(b, 14..16)?, digits(b, 17..19)?);
    let (millis, end) = fraction_ms(b, 19)?;
    let offset_min = offset_minutes(b, end)?;
    let days_in_month = days_in_month(year, month)?;
    // Second 60 is a leap second; it is folded into the next minute's first.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Returns the number the ASCII digits at `r` spell; `None` when anything else is there.
fn digits(b: &[u8], r: std::ops::Range<usize>) -> Option<i64> {
    let part = b.get(r)?;
    if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(part).ok()?.parse().ok()
}

/// Returns the milliseconds of the `.fff…` fraction at `i` (0 when there is none) and the index
/// after it.
fn fraction_ms(b: &[u8], i: usize) -> Option<(i64, usize)> {
    if b.get(i) != Some(&b'.') {
        return Some((0, i));
    }
    let start = i + 1;
    let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    if end == start {
        return None;
    }
    // Milliseconds: the first three digits, right-padded.
    let digits = std::str::from_utf8(&b[start..end.min(start + 3)]).ok()?;
    Some((format!("{digits:0<3}").parse().ok()?, end))
}

/// Returns the UTC offset in minutes of the `Z` or `±hh:mm` that is all of `b` from `i` on.
fn offset_minutes(b: &[u8], i: usize) -> Option<i64> {
    match b.get(i..)? {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let h = digits(b, i + 1..i + 3)?;
            let m = digits(b, i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            Some(if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            })
        }
        _ => None,
    }
}

/// Returns how many days `month` has in `year`; `None` when `month` is not one.
fn days_in_month(year: i64, month: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 if leap => Some(29),
        2 => Some(28),
        _ => None,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `ms` since the Unix epoch as ISO 8601 UTC with milliseconds (`2026-12-07T03:00:00.000Z`), as
/// JavaScript's `Date#toISOString` writes it for years 0 to 9999.
pub fn iso_utc(ms: i64) -> String {
    const DAY_MS: i64 = 86_400_000;
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (y, m, d) = civil_from_days(days);
    let (secs, millis) = (in_day / 1000, in_day % 1000);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_utc_round_trips_through_rfc3339() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000Z");
        for ms in [1, 951_782_400_123, 1_796_612_345_678, 4_102_444_799_999] {
            assert_eq!(rfc3339_ms(&iso_utc(ms)), Some(ms), "{ms}");
        }
        assert_eq!(iso_utc(1_796_612_345_678), "2026-12-07T02:59:05.678Z");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2025-01-29T00:00:00.000Z"),
            Some(1_738_108_800_000)
        );
        assert_eq!(
            rfc3339_ms("2026-08-14T15:52:32.013Z"),
            Some(1_786_722_752_013)
        );
        assert_eq!(
            rfc3339_ms("2024-02-29T12:00:00.5+02:00"),
            rfc3339_ms("2024-02-29T10:00:00.500Z")
        );
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        for bad in [
            "",
            "2025-01-29",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-29T24:00:00Z",
            "2025-01-29T00:00:00",
            "2025-01-29T00:00:00.Z",
            "2025-01-29T00:00:00+0200",
            "2025-01-29T00:00:00Zjunk",
            "２０２５-01-29T00:00:00Z",
            "+025-01-29T00:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad}");
        }
    }
}
