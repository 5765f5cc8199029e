//! Dates as the registry and Sigstore write them (RFC 3339), in milliseconds since the Unix
//! epoch, and the clock they are compared with.

/// An RFC 3339 timestamp (`2025-01-29T00:00:00.000Z`, any offset, optional fraction) in ms since
/// the Unix epoch. `None` for anything else: the registry's dates are always of this form. The
/// verifier's parser, so the workspace reads every date one way.
pub(crate) fn rfc3339_ms(s: &str) -> Option<i64> {
    runtime_stager_provenance::rfc3339_ms(s)
}

/// `ms` since the Unix epoch as ISO 8601 UTC with milliseconds (`2026-12-07T03:00:00.000Z`), as
/// JavaScript's `Date#toISOString` writes it for years 0 to 9999.
pub(crate) fn iso_utc(ms: i64) -> String {
    // Held to the years 0 to 9999 the form can write: a time past them (a hostile document's
    // `time` plus the delays) reads as the latest one, never as 1970, which is already past.
    const MAX_MS: i64 = 253_402_300_799_999;
    const MIN_MS: i64 = -62_167_219_200_000;
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn now_ms() -> i64 {
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
        assert_eq!(iso_utc(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso_utc(i64::MIN), "0000-01-01T00:00:00.000Z");
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
