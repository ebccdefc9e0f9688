//! Human-readable byte sizes: `500G`, `1.5T`, `64MiB`, `1048576`. Decimal units (K, M, G, T, P,
//! optionally followed by `B`) are powers of 1000; binary units (Ki, Mi, Gi, Ti, Pi, optionally
//! followed by `B`) are powers of 1024.

/// Why a size string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error(
        "invalid size {input:?}: expected a number with an optional unit (e.g. 500G, 1.5T, 64MiB)"
    )]
    Invalid { input: String },
    #[error("size {input:?} is too large")]
    Overflow { input: String },
}

/// Parses a size into bytes.
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let s = input.trim();
    let invalid = || SizeError::Invalid {
        input: input.to_string(),
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(invalid());
    }
    let unit = unit.trim();
    let lower = unit.to_ascii_lowercase();
    let mult: u64 = match lower.trim_end_matches('b') {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "t" => 1_000_000_000_000,
        "p" => 1_000_000_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        "pi" => 1 << 50,
        _ => return Err(invalid()),
    };
    // "bb" or similar would have stripped two b's; only one is allowed.
    if lower.matches('b').count() > 1 {
        return Err(invalid());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or(SizeError::Overflow {
            input: input.to_string(),
        });
    }
    let f: f64 = num.parse().map_err(|_| invalid())?;
    let v = f * mult as f64;
    if !v.is_finite() || v >= u64::MAX as f64 {
        return Err(SizeError::Overflow {
            input: input.to_string(),
        });
    }
    Ok(v.round() as u64)
}

/// Formats bytes with a decimal unit and up to one decimal (`1.5 TB`, `500.0 GB`, `12 B`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{} B", bytes);
    }
    let mut v = bytes as f64 / 1000.0;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{:.1} {}", v, UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("1048576"), Ok(1048576));
        assert_eq!(parse_size("500G"), Ok(500_000_000_000));
        assert_eq!(parse_size("1.5T"), Ok(1_500_000_000_000));
        assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1Mi"), Ok(1 << 20));
        assert_eq!(parse_size(" 10 k "), Ok(10_000));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "G", "abc", "1.2.3G", "5X", "5GBB", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
        assert!(matches!(
            parse_size("99999999999P"),
            Err(SizeError::Overflow { .. })
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(12), "12 B");
        assert_eq!(format_size(1_500_000_000_000), "1.5 TB");
    }
}
