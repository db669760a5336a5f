//! Durations on the command line: `20s`, `500ms`, `1m`, `1m30s`, or a bare number of seconds.
//!
//! A flag like `--timeout 2` is ambiguous (seconds? milliseconds?) unless the rule is written
//! down; here a bare number means seconds and every unit is explicit otherwise, matching the
//! configuration file's `250ms` / `1s` / `5m` notation.

use std::time::Duration;

/// Parses `2s`, `250ms`, `1.5s`, `1m30s`, `1h` or a bare number of seconds (for clap).
///
/// # Errors
/// An empty, negative or malformed value, with the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{text}`; use e.g. 500ms, 2s, 1.5s, 1m30s or 20");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds).ok_or_else(bad);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_len == 0 {
            return Err(bad());
        }
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += seconds_to_duration(value * scale).ok_or_else(bad)?;
        rest = tail;
    }
    Ok(total)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    if seconds.is_finite() && (0.0..1e9).contains(&seconds) {
        Some(Duration::from_secs_f64(seconds))
    } else {
        None
    }
}

/// Parses a percentage such as `99.9`, `99.9%` (for clap).
///
/// # Errors
/// A value that is not a number between 0 and 100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "invalid percentage `{text}`; use a number from 0 to 100, e.g. 99.9"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units_and_bare_seconds() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "s", "10x", "-1s", "-3", "1s2", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("99.9%"), Ok(99.9));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("abc").is_err());
    }
}
