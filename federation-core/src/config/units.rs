//! Durations (`250ms`, `1s`, `1m30s`) and sizes (`512KiB`, `32MiB`) as people write them.
//!
//! A bare `5` in a timeout field is the classic silent misconfiguration: five what? Durations
//! therefore always need a unit, and the error says so. A duration is one or more
//! `<number><unit>` parts (`1m30s`), the number may have a fraction (`1.5s`), units are `ns`,
//! `us`, `ms`, `s`, `m`, `h`, `d`. A size is an integer byte count or `<number><unit>` with
//! `B`, `KB`/`MB`/`GB` (powers of 1000) or `KiB`/`MiB`/`GiB` (powers of 1024).
//! Formatting produces the same notation, so serialized configs read like the files.

use std::fmt;
use std::time::Duration;

use serde::Serializer;

/// A duration or size string that cannot be read. `Display` says what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseUnitError {
    message: String,
}

impl ParseUnitError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseUnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseUnitError {}

const DURATION_HINT: &str = "a duration with a unit, e.g. 250ms, 1s, 5m, 1h or 1m30s";

const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses `250ms`, `1s`, `5m`, `1h`, `1m30s`, `1.5s`.
///
/// # Errors
/// A bare number ("add a unit"), an unknown unit, an empty string or an overflowing value.
pub fn parse_duration(text: &str) -> Result<Duration, ParseUnitError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseUnitError::new(format!(
            "empty duration; expected {DURATION_HINT}"
        )));
    }
    if text.parse::<f64>().is_ok() && text.chars().any(|c| c.is_ascii_digit()) {
        return Err(ParseUnitError::new(
            "a duration needs a unit: add a unit, e.g. 250ms, 1s, 5m",
        ));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() {
            return Err(ParseUnitError::new(format!("expected {DURATION_HINT}")));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(ParseUnitError::new(
                "every number in a duration needs a unit: add a unit, e.g. 250ms, 1s, 5m",
            ));
        }
        let Some(&(_, scale)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(ParseUnitError::new(format!(
                "unknown duration unit `{unit}`; allowed units: ns, us, ms, s, m, h, d"
            )));
        };
        total = total
            .checked_add(scaled(number, scale)?)
            .ok_or_else(|| ParseUnitError::new("duration is too large"))?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000)
        .map_err(|_| ParseUnitError::new("duration is too large"))?;
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one `.`) times `scale`, truncated to whole units of 1.
fn scaled(number: &str, scale: u128) -> Result<u128, ParseUnitError> {
    let bad = || ParseUnitError::new(format!("`{number}` is not a number"));
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(bad());
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut value = whole
        .checked_mul(scale)
        .ok_or_else(|| ParseUnitError::new("value is too large"))?;
    let mut place = scale;
    for digit in fraction.chars() {
        place /= 10;
        let d = u128::from(digit.to_digit(10).ok_or_else(bad)?);
        value += d * place;
    }
    Ok(value)
}

/// Formats a duration in the notation [`parse_duration`] reads: `1s`, `250ms`, `1m30s`, `0s`.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = duration.as_nanos();
    let mut out = String::new();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let count = nanos / scale;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            nanos %= scale;
        }
    }
    out
}

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

/// Parses a byte size: `1048576`, `512KiB`, `32MiB`, `1GB`, `1.5MiB`.
///
/// # Errors
/// An unknown unit, a malformed number or an overflowing value.
pub fn parse_size(text: &str) -> Result<u64, ParseUnitError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let hint = "expected a byte count or a size such as 512KiB, 32MiB, 1GB \
                (units: B, KB, MB, GB, KiB, MiB, GiB)";
    if number.is_empty() {
        return Err(ParseUnitError::new(hint));
    }
    let scale = if unit.is_empty() {
        1
    } else {
        match SIZE_UNITS.iter().find(|(name, _)| *name == unit) {
            Some(&(_, scale)) => scale,
            None => {
                return Err(ParseUnitError::new(format!(
                    "unknown size unit `{unit}`; {hint}"
                )));
            }
        }
    };
    let value = scaled(number, u128::from(scale))?;
    u64::try_from(value).map_err(|_| ParseUnitError::new("size is too large"))
}

/// Formats a byte size compactly: `64MiB`, `1500B`.
pub fn format_size(bytes: u64) -> String {
    for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// Serializes a duration as a string such as `"1s"`.
pub(crate) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

/// Serializes an optional duration as a string or `null`.
pub(crate) fn ser_opt_duration<S: Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for text in ["250ms", "1s", "5m", "1h", "1m30s", "1h2m3s4ms", "15us"] {
            let d = parse_duration(text).expect("valid duration");
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn bad_durations_explain() {
        let bare = parse_duration("5").expect_err("bare number");
        assert!(bare.to_string().contains("add a unit"), "{bare}");
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1s5").is_err());
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("MiB").is_err());
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1500), "1500B");
    }
}
