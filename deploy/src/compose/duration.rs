//! Go-style durations (`1m30s`, `10s`, `500ms`, `1.5h`, `100us`), as compose
//! writes them. A bare number (YAML integer or digits only) is seconds.

use std::time::Duration;

/// Longest accepted duration (about 292 years: what fits in i64 nanoseconds,
/// as Docker stores durations).
const MAX_NANOS: f64 = i64::MAX as f64;

/// Parses a duration; the error says what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s
            .parse()
            .map_err(|_| format!("duration `{s}` is too large"))?;
        return checked(secs as f64 * 1e9, s);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return Err(format!(
                "invalid duration `{s}`: expected a number before a unit"
            ));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid number in duration `{s}`"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "invalid duration `{s}`: missing unit (ns, us, ms, s, m, h)"
                ));
            }
            other => return Err(format!("invalid duration `{s}`: unknown unit `{other}`")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    checked(total, s)
}

fn checked(nanos: f64, s: &str) -> Result<Duration, String> {
    if nanos > MAX_NANOS {
        return Err(format!("duration `{s}` is too large"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let ok = |s: &str| parse_duration(s).expect(s);
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("100us"), Duration::from_micros(100));
        assert_eq!(ok("100µs"), Duration::from_micros(100));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("30"), Duration::from_secs(30));
    }

    #[test]
    fn rejects_bad_durations() {
        for s in ["", "s", "1x", "1.2.3s", "-1s", "10 s", "ms10", "1e9h"] {
            assert!(parse_duration(s).is_err(), "{s} should fail");
        }
        assert!(parse_duration("99999999999h").is_err());
    }
}
