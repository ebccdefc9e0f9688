//! Request timestamps: the ISO 8601 basic format of SigV4 (`20150830T123600Z`, in `X-Amz-Date`
//! and the string to sign), its date stamp (`20150830`, in the credential scope), and the
//! RFC 1123 format of the HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`).
//!
//! Times are whole seconds since the Unix epoch (`i64`, UTC). Parsing is strict and never
//! panics: anything that is not exactly one of these formats with in-range fields is `None`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch of a [`SystemTime`] (negative before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The [`SystemTime`] of a number of seconds since the Unix epoch.
pub fn system_time(secs: i64) -> SystemTime {
    let magnitude = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[4..6])?;
    let day = digits(&b[6..8])?;
    let hour = digits(&b[9..11])?;
    let minute = digits(&b[11..13])?;
    let second = digits(&b[13..15])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Formats `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = from_unix(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Formats the date stamp `YYYYMMDD` of the credential scope.
pub fn format_date_stamp(secs: i64) -> String {
    let (y, mo, d, ..) = from_unix(secs);
    format!("{y:04}{mo:02}{d:02}")
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Parses the RFC 1123 form of an HTTP date, `Sun, 30 Aug 2015 12:36:00 GMT` (the day name is
/// checked for syntax only, as HTTP servers do).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    // "Ddd, DD Mon YYYY HH:MM:SS GMT" is exactly 29 bytes.
    if b.len() != 29 || &b[3..5] != b", " || b[7] != b' ' || b[11] != b' ' || b[16] != b' ' {
        return None;
    }
    if !WEEKDAYS.iter().any(|w| w.as_bytes() == &b[0..3]) {
        return None;
    }
    if b[19] != b':' || b[22] != b':' || &b[25..29] != b" GMT" {
        return None;
    }
    let day = digits(&b[5..7])?;
    let month = MONTHS.iter().position(|m| m.as_bytes() == &b[8..11])? as u32 + 1;
    let year = digits(&b[12..16])?;
    let hour = digits(&b[17..19])?;
    let minute = digits(&b[20..22])?;
    let second = digits(&b[23..25])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Formats the RFC 1123 form of an HTTP date.
pub fn format_http_date(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = from_unix(secs);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (secs.div_euclid(86_400) + 3).rem_euclid(7) as usize;
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        WEEKDAYS[weekday],
        MONTHS[(mo - 1) as usize]
    )
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn to_unix(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<i64> {
    if !(1..=12).contains(&month) || day == 0 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day, hour, minute, second) of a Unix time.
fn from_unix(secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(format_date_stamp(t), "20150830");
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        assert_eq!(format_amz_date(0), "19700101T000000Z");
    }

    #[test]
    fn amz_date_rejects_garbage() {
        for s in [
            "",
            "20150830T123600",
            "20150830T123600z",
            "2015083OT123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "+0150830T123600Z",
            "20150830X123600Z",
            "19000229T000000Z",
            "20150830T123600ZZ",
            "２０１５",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn http_date() {
        let t = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        assert_eq!(format_http_date(t), "Fri, 24 May 2013 00:00:00 GMT");
        assert_eq!(
            format_http_date(parse_amz_date("20150830T123600Z").unwrap()),
            "Sun, 30 Aug 2015 12:36:00 GMT"
        );
        for s in [
            "Fri, 24 May 2013 00:00:00 UTC",
            "Fri 24 May 2013 00:00:00 GMT",
            "Fri, 24 Mai 2013 00:00:00 GMT",
            "Xyz, 24 May 2013 00:00:00 GMT",
            "Fri, 32 May 2013 00:00:00 GMT",
            "Fri, 24 May 2013 00:00 GMT",
            "Friday, 24-May-13 00:00:00 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn system_time_conversions() {
        assert_eq!(unix_secs(system_time(1_440_938_160)), 1_440_938_160);
        assert_eq!(unix_secs(system_time(-5)), -5);
    }
}
