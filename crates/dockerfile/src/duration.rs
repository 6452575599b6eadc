//! Go's `time.ParseDuration`, for HEALTHCHECK's flags.

use crate::error::{DockerfileError, DurationError};

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go duration ("1h2m3.5s", "300ms", "-1s", "0") → nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i64, DockerfileError> {
    let error = |kind| DockerfileError::Duration {
        input: s.to_string(),
        kind,
    };
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(error(DurationError::Invalid));
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let int_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len =
                after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            frac_part = &after[..frac_len];
            rest = &after[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(error(DurationError::Invalid));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(error(DurationError::MissingUnit));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(error(DurationError::UnknownUnit(unit.to_string())));
        };
        let whole: u64 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| error(DurationError::Invalid))?
        };
        let mut value = whole
            .checked_mul(scale)
            .ok_or_else(|| error(DurationError::Invalid))?;
        if !frac_part.is_empty() {
            // Enough digits for nanosecond precision at any unit; the rest cannot matter.
            let digits = &frac_part[..frac_part.len().min(18)];
            let numerator: u64 = digits.parse().map_err(|_| error(DurationError::Invalid))?;
            let denominator = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
            let fraction = u128::from(numerator) * u128::from(scale) / denominator;
            value = u64::try_from(fraction)
                .ok()
                .and_then(|fraction| value.checked_add(fraction))
                .ok_or_else(|| error(DurationError::Invalid))?;
        }
        total = total
            .checked_add(value)
            .ok_or_else(|| error(DurationError::Invalid))?;
    }
    let total = i64::try_from(total).map_err(|_| error(DurationError::Invalid))?;
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5_000_000_000),
            ("1m30s", 90_000_000_000),
            ("100ms", 100_000_000),
            ("1h2m3.5s", 3_723_500_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("300us", 300_000),
            ("300\u{b5}s", 300_000),
            ("300\u{3bc}s", 300_000),
            ("7ns", 7),
            ("-1s", -1_000_000_000),
            ("+2m", 120_000_000_000),
            ("0s", 0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn go_duration_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "time: invalid duration \"\""),
            ("s", "time: invalid duration \"s\""),
            ("1", "time: missing unit in duration \"1\""),
            ("1x", "time: unknown unit \"x\" in duration \"1x\""),
            ("1s2", "time: missing unit in duration \"1s2\""),
            ("-", "time: invalid duration \"-\""),
            ("99999999999h", "time: invalid duration \"99999999999h\""),
        ];
        for (text, want) in cases {
            let got = parse_go_duration(text).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "{text}");
        }
    }
}
