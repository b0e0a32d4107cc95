//! The duration grammar shared by `TRAINJOB_GC_TTL`, the other duration settings and the
//! `trainjob-gc/ttl` annotation.

use std::time::Duration;

/// The units of the grammar in milliseconds. A month is 30.44 days and a year 365.25 days, the
/// lengths humantime uses, so that [`describe`] prints back what was parsed.
const UNITS: [(&str, u64); 8] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
    ("M", 2_630_016_000),
    ("y", 31_557_600_000),
];

const UNITS_HINT: &str = "use whole numbers with the units ms, s, m (minutes), h, d, w, \
                          M (months) or y, such as 90m, 36h or 7d";

/// Parses a duration with units, such as `90m`, `36h`, `7d` or `1h 30m`.
///
/// The value is one or more parts, each a whole number directly followed by one of the units
/// `ms`, `s`, `m`, `h`, `d`, `w`, `M` or `y`. Spaces may separate the parts. Units are
/// case-sensitive because `m` is minutes and `M` is months. A bare number is rejected because it
/// does not say its unit. Spelled-out units such as `7 days` and fractions such as `1.5h` are
/// rejected too, so that each value has one spelling and one reading. The error is a sentence
/// fragment that callers place after the name and value of the setting.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("is empty; give a duration with units, such as 90m, 36h or 7d".to_owned());
    }
    if trimmed.starts_with('-') {
        return Err("is negative; give a duration of 0s or more, such as 0s or 7d".to_owned());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "has no unit; write {trimmed}s for seconds, or use larger units such as 1h or 7d"
        ));
    }

    let mut millis: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("is not a duration; {UNITS_HINT}"));
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.len() - after.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let (unit, after) = after.split_at(letters);
        if unit.is_empty() {
            let next = after.chars().next().unwrap_or(' ');
            return Err(if next == '.' || next == ',' {
                format!(
                    "contains a fraction after {number}; {UNITS_HINT}, or combine units such as 1h 30m"
                )
            } else {
                format!("has no unit right after {number}; {UNITS_HINT}")
            });
        }
        let Some(&(_, length)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("has the unknown unit {unit:?}; {UNITS_HINT}"));
        };
        // The product of two u64 values always fits in u128.
        let sum = number
            .parse::<u64>()
            .ok()
            .and_then(|count| u64::try_from(u128::from(count) * u128::from(length)).ok())
            .and_then(|part| millis.checked_add(part));
        let Some(sum) = sum else {
            return Err(format!("is too long to represent; {UNITS_HINT}"));
        };
        millis = sum;
        rest = after.trim_start();
    }
    Ok(Duration::from_millis(millis))
}

/// Formats a duration in the grammar [`parse_duration`] reads, with the units d, h, m, s and
/// ms, such as `6d 23h 59m 55s`. Months and years are left out because their length in days
/// is not whole.
pub fn format(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    let mut parts = Vec::new();
    for (unit, length) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let count = millis / length;
        if count > 0 {
            parts.push(format!("{count}{unit}"));
            millis %= length;
        }
    }
    if parts.is_empty() {
        return "0s".to_owned();
    }
    parts.join(" ")
}

/// Formats a duration at whole-second precision, for reasons and logs where sub-second digits
/// would only be noise.
pub fn words(duration: Duration) -> String {
    format(Duration::from_secs(duration.as_secs()))
}

/// Formats a duration for logs as seconds and in the input grammar, such as `129600s (1d 12h)`.
pub fn describe(duration: Duration) -> String {
    let seconds = format!("{}s", duration.as_secs());
    let text = format(duration);
    if text == seconds {
        seconds
    } else {
        format!("{seconds} ({text})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_case_sensitive() {
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(
            parse_duration("1M").unwrap(),
            Duration::from_secs(2_630_016)
        );
    }

    #[test]
    fn accepted_values() {
        let cases = [
            ("0s", 0),
            ("90m", 90 * 60),
            ("36h", 36 * 3600),
            ("7d", 7 * 86400),
            ("2w", 14 * 86400),
            ("1y", 31_557_600),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            ("1d1d", 2 * 86400),
            (" 2w ", 14 * 86400),
            ("10000y", 315_576_000_000),
        ];
        for (value, seconds) in cases {
            assert_eq!(
                parse_duration(value),
                Ok(Duration::from_secs(seconds)),
                "value {value:?}"
            );
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s 500ms"), Ok(Duration::from_millis(1500)));
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
            "+5m",
            "1x",
            "1e3s",
            "1h 30",
        ] {
            assert!(
                parse_duration(value).is_err(),
                "value {value:?} was accepted"
            );
        }
    }

    #[test]
    fn spelled_out_units_are_rejected() {
        for value in ["7 days", "7days", "5min", "1hour", "2 weeks", "5 m", "1 M"] {
            let err = parse_duration(value).unwrap_err();
            assert!(err.contains("such as 90m, 36h or 7d"), "{value:?}: {err}");
        }
    }

    #[test]
    fn fraction_is_rejected_with_a_hint() {
        let err = parse_duration("1.5h").unwrap_err();
        assert!(err.contains("fraction"), "{err}");
        assert!(err.contains("1h 30m"), "{err}");
    }

    #[test]
    fn unknown_unit_is_named() {
        let err = parse_duration("10ay").unwrap_err();
        assert!(err.contains("\"ay\""), "{err}");
    }

    #[test]
    fn too_long_is_rejected_not_wrapped() {
        for value in [
            "99999999999999999999s",
            "18446744073709551615y",
            "600000000y",
        ] {
            let err = parse_duration(value).unwrap_err();
            assert!(err.contains("too long"), "{value:?}: {err}");
        }
    }

    #[test]
    fn describe_gives_seconds_and_the_input_grammar() {
        assert_eq!(describe(Duration::from_secs(129600)), "129600s (1d 12h)");
        assert_eq!(describe(Duration::from_secs(1)), "1s");
    }

    #[test]
    fn formatted_durations_parse_back() {
        for value in ["7d", "6d 23h 59m 55s", "1y 1M", "500ms", "0s", "90m"] {
            let parsed = parse_duration(value).unwrap();
            assert_eq!(parse_duration(&format(parsed)), Ok(parsed), "{value}");
        }
    }
}
