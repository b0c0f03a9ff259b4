//! Durations as flytectl writes them (Go's `time.Duration` text: `2m0s`, `1h30m`, `500ms`).

use std::{fmt, time::Duration};

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// What [`parse_duration`] accepts, for error messages.
pub(crate) const EXPECTED: &str =
    "a duration such as `30s`, `2m`, `1h30m` or `500ms`, or a whole number of seconds";

/// A duration that [`parse_duration`] could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError {
    input: String,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration `{}`: expected {EXPECTED}", self.input)
    }
}

impl std::error::Error for ParseDurationError {}

/// Parses a duration the way flytectl writes and reads them.
///
/// Accepts Go's `time.ParseDuration` syntax — a sequence of numbers, each with an optional
/// fraction and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`): `2m0s`, `1h30m`, `1.5h`,
/// `500ms` — and, in addition, a plain whole number meaning seconds (`30`). Negative durations
/// are refused.
///
/// ```
/// use std::time::Duration;
/// use flyte_auth::config::parse_duration;
///
/// assert_eq!(parse_duration("2m0s")?, Duration::from_secs(120));
/// assert_eq!(parse_duration("1h30m")?, Duration::from_secs(5400));
/// assert_eq!(parse_duration("500ms")?, Duration::from_millis(500));
/// assert_eq!(parse_duration("30")?, Duration::from_secs(30));
/// assert!(parse_duration("2 minutes").is_err());
/// # Ok::<(), flyte_auth::config::ParseDurationError>(())
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let text = input.trim();
    let error = || ParseDurationError {
        input: text.to_owned(),
    };
    if text.is_empty() {
        return Err(error());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| error());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(error());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => split_digits(after),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(error());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            _ => return Err(error()),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| error())?
        };
        total = whole
            .checked_mul(per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(error)?;
        if !fraction.is_empty() {
            // Twelve digits are finer than a nanosecond for every unit up to hours.
            let digits = &fraction[..fraction.len().min(12)];
            let scale = 10u128.pow(u32::try_from(digits.len()).map_err(|_| error())?);
            let value: u128 = digits.parse().map_err(|_| error())?;
            total = total
                .checked_add(value * per_unit / scale)
                .ok_or_else(error)?;
        }
        rest = after;
    }
    let seconds = u64::try_from(total / NANOS_PER_SECOND).map_err(|_| error())?;
    let nanos = u32::try_from(total % NANOS_PER_SECOND).map_err(|_| error())?;
    Ok(Duration::new(seconds, nanos))
}

fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    s.split_at(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_flytectl_writes() {
        assert_eq!(parse_duration("2m0s").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5m0s").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("1h30m0s").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn reads_fractions_small_units_and_plain_seconds() {
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("250µs").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("+1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration(" 45 ").unwrap(), Duration::from_secs(45));
        assert_eq!(
            parse_duration("1h1m1s1ms").unwrap(),
            Duration::new(3661, 1_000_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in [
            "",
            "2x",
            "m",
            "1.5",
            "-5s",
            "2 m",
            "1h 30m",
            "two minutes",
            ".s",
            "5sm",
            "+",
            "99999999999999999999999h",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(
                err.to_string().contains("expected a duration such as"),
                "{err}"
            );
        }
    }
}
