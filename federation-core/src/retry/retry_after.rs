//! `Retry-After` parsing (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

/// The wait a `Retry-After` value asks for, relative to `now`.
///
/// Accepts delay-seconds (`120`) and the three HTTP-date forms (IMF-fixdate, RFC 850, asctime).
/// A date in the past gives `Duration::ZERO`. Anything else (negative, fractional, garbage,
/// absurdly large) gives `None`: the caller then falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    // 1994-11-06T08:49:37Z
    const T: u64 = 784_111_777;

    #[test]
    fn delay_seconds() {
        assert_eq!(
            parse_retry_after("120", at(0)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = at(T - 30);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, now),
                Some(Duration::from_secs(30)),
                "{form}"
            );
        }
    }

    #[test]
    fn past_dates_mean_now() {
        let late = at(T + 100);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", late),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "  ",
            "-5",
            "1.5",
            "soon",
            "99999999999999999999999",
            "Sun, 32 Nov 1994",
        ] {
            assert_eq!(parse_retry_after(bad, at(0)), None, "{bad:?}");
        }
    }
}
