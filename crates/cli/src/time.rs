//! Times on the command line: RFC 3339 (`2026-11-23T09:00:00Z`,
//! `2026-11-23T10:00:00.250+01:00`) or milliseconds since the Unix epoch,
//! as `--timestamp` takes them. A small parser rather than a date crate:
//! the tool needs this one format and nothing else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `s` as milliseconds since the epoch or an RFC 3339 date-time.
pub fn parse(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let ms: u64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
        return Ok(UNIX_EPOCH + Duration::from_millis(ms));
    }
    rfc3339(s).ok_or_else(|| {
        format!("{s:?} is neither RFC 3339 (2026-11-23T09:00:00Z) nor milliseconds since the epoch")
    })
}

fn num(s: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| range.contains(n))
}

fn rfc3339(s: &str) -> Option<SystemTime> {
    // YYYY-MM-DD, then T (or t or a space), then HH:MM:SS[.frac], then Z or ±HH:MM.
    let (date, rest) = (s.get(..10)?, s.get(10..)?);
    let sep = rest.chars().next()?;
    if !matches!(sep, 'T' | 't' | ' ') || date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    let year = num(&date[..4], 1970..=9999)?;
    let month = num(&date[5..7], 1..=12)?;
    let day = num(&date[8..10], 1..=days_in_month(year, month))?;
    let rest = &rest[1..];
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let hour = num(parts.next()?, 0..=23)?;
    let minute = num(parts.next()?, 0..=59)?;
    let second = num(parts.next()?, 0..=60)?;
    if parts.next().is_some() {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits = num(frac, 0..=i64::MAX)?;
        let len = u32::try_from(frac.len()).ok().filter(|l| *l <= 9)?;
        digits * 10i64.pow(9 - len)
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (num(h, 0..=23)? * 3600 + num(m, 0..=59)? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).ok()?))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: SystemTime) -> u128 {
        t.duration_since(UNIX_EPOCH).unwrap().as_millis()
    }

    #[test]
    fn rfc3339_and_milliseconds() {
        assert_eq!(ms(parse("1970-01-01T00:00:00Z").unwrap()), 0);
        assert_eq!(
            ms(parse("2023-11-14T22:13:20Z").unwrap()),
            1_700_000_000_000
        );
        assert_eq!(
            ms(parse("2023-11-14T23:13:20.123+01:00").unwrap()),
            1_700_000_000_123
        );
        assert_eq!(
            ms(parse("2024-02-29 12:00:00-00:30").unwrap()),
            1_709_209_800_000
        );
        assert_eq!(ms(parse("1700000000000").unwrap()), 1_700_000_000_000);
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "2023-11-14T10:00:00",
            "2023-11-14T10:00Z",
            "2023-11-14",
            "-5",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
