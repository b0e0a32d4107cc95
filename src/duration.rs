//! The duration grammar shared by `TRAINJOB_GC_TTL`, the other duration settings and the
//! `trainjob-gc/ttl` annotation.

use std::time::Duration;

/// Parses a duration with units, such as `90m`, `36h`, `7d` or `1h 30m`.
///
/// Units are case-sensitive because humantime reads `m` as minutes and `M` as months. A bare
/// number is rejected because it does not say its unit. The error is a sentence fragment that
/// callers place after the name and value of the setting.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("is empty; give a duration with units, such as 90m, 36h or 7d".to_owned());
    }
    if trimmed.starts_with('-') {
        return Err("is negative; give a duration of 0s or more, such as 0s or 7d".to_owned());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "has no unit; write {trimmed}s for seconds, or use larger units such as 1h or 7d"
        ));
    }
    humantime::parse_duration(trimmed).map_err(|err| {
        format!(
            "is not a duration ({err}); use units s, m (minutes), h, d, w, M (months) or y, \
             such as 90m, 36h or 7d"
        )
    })
}

/// Formats a duration for logs as seconds and words, such as `129600s (1day 12h)`.
pub fn describe(duration: Duration) -> String {
    format!(
        "{}s ({})",
        duration.as_secs(),
        humantime::format_duration(duration)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_case_sensitive() {
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("1M").unwrap() > Duration::from_secs(29 * 24 * 3600));
    }

    #[test]
    fn accepted_values() {
        let cases = [
            ("0s", 0),
            ("90m", 90 * 60),
            ("36h", 36 * 3600),
            ("7d", 7 * 86400),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            (" 2w ", 14 * 86400),
        ];
        for (value, seconds) in cases {
            assert_eq!(
                parse_duration(value),
                Ok(Duration::from_secs(seconds)),
                "value {value:?}"
            );
        }
    }

    #[test]
    fn bare_number_gets_a_unit_hint() {
        let err = parse_duration("3600").unwrap_err();
        assert!(err.contains("3600s"), "{err}");
        assert!(err.contains("1h"), "{err}");
    }

    #[test]
    fn rejected_values() {
        for value in [
            "",
            "  ",
            "-5m",
            "10ay",
            "forever",
            "7 days later",
            "h",
            "1.5.3h",
            "∞",
        ] {
            assert!(
                parse_duration(value).is_err(),
                "value {value:?} was accepted"
            );
        }
    }

    #[test]
    fn describe_gives_seconds_and_words() {
        assert_eq!(describe(Duration::from_secs(129600)), "129600s (1day 12h)");
    }
}
