//! Byte sizes as Docker writes them (`512m`, `1g`, `1024k`, `1.5GiB`, `100b`,
//! plain bytes), with binary multiples like Docker's `RAMInBytes`.

/// Parses a size in bytes; the error says what is wrong.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = s.split_at(number_len);
    if number.is_empty() {
        return Err(format!("invalid size `{s}`: expected a number"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid number in size `{s}`"))?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => {
            return Err(format!(
                "invalid size `{s}`: unknown unit (b, k, m, g, t, p)"
            ));
        }
    };
    let bytes = value * scale;
    if bytes >= u64::MAX as f64 {
        return Err(format!("size `{s}` is too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_sizes() {
        let ok = |s: &str| parse_size(s).expect(s);
        assert_eq!(ok("512m"), 512 * 1024 * 1024);
        assert_eq!(ok("1g"), 1024 * 1024 * 1024);
        assert_eq!(ok("1G"), 1024 * 1024 * 1024);
        assert_eq!(ok("1gb"), 1024 * 1024 * 1024);
        assert_eq!(ok("1GiB"), 1024 * 1024 * 1024);
        assert_eq!(ok("1024k"), 1024 * 1024);
        assert_eq!(ok("1.5k"), 1536);
        assert_eq!(ok("100b"), 100);
        assert_eq!(ok("4096"), 4096);
        assert_eq!(ok("64 m"), 64 * 1024 * 1024);
    }

    #[test]
    fn rejects_bad_sizes() {
        for s in ["", "m", "12x", "1.2.3m", "-1m", "1gg", "99999999p"] {
            assert!(parse_size(s).is_err(), "{s} should fail");
        }
    }
}
