//! Env files: `KEY=VALUE` lines, as used for the domain's env file and for
//! `env_file:`.
//!
//! Blank lines and `#` comments are skipped; an `export ` prefix is allowed;
//! values may be double-quoted (with `\n`, `\t`, `\"`, `\\` escapes),
//! single-quoted (literal) or bare (trimmed, with a ` #` comment removed).
//! Values are not interpolated. A line without `=` is an error.

use super::Env;
use super::error::ComposeError;

/// Parses an env file; `file` only names it in errors.
pub fn parse_env_file(file: &str, text: &str) -> Result<Env, ComposeError> {
    let mut env = Env::new();
    for (index, raw) in text.lines().enumerate() {
        let error = |message: String| ComposeError::EnvFile {
            file: file.to_owned(),
            line: index + 1,
            message,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(error("expected KEY=VALUE".to_owned()));
        };
        let key = key.trim();
        if !is_valid_key(key) {
            return Err(error(format!("invalid variable name `{key}`")));
        }
        let value = parse_value(value.trim_start()).map_err(error)?;
        env.insert(key.to_owned(), value);
    }
    Ok(env)
}

/// `[A-Za-z_][A-Za-z0-9_.-]*`.
fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b == b'.' || b == b'-' || b.is_ascii_alphanumeric())
}

fn parse_value(value: &str) -> Result<String, String> {
    let rest_must_be_comment = |rest: &str| {
        let rest = rest.trim();
        if rest.is_empty() || rest.starts_with('#') {
            Ok(())
        } else {
            Err(format!("unexpected text after the closing quote: `{rest}`"))
        }
    };
    if let Some(body) = value.strip_prefix('\'') {
        let end = body.find('\'').ok_or("unterminated single quote")?;
        rest_must_be_comment(&body[end + 1..])?;
        return Ok(body[..end].to_owned());
    }
    if let Some(body) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    rest_must_be_comment(&body[i + 1..])?;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, other)) => {
                        if !matches!(other, '"' | '\\' | '$') {
                            out.push('\\');
                        }
                        out.push(other);
                    }
                    None => break,
                },
                _ => out.push(c),
            }
        }
        return Err("unterminated double quote".to_owned());
    }
    let value = match value.find(" #") {
        Some(i) => &value[..i],
        None => value,
    };
    Ok(value.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_files() {
        let env = parse_env_file(
            ".env",
            "# comment\n\nA=1\nexport B = two words \nC=\"quoted \\\"x\\\"\\nnext\" # c\nD='lit $X \\n'\nE=\nF=a#b\nG=x # trailing\nH=a=b\n",
        )
        .expect("parses");
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "two words");
        assert_eq!(env["C"], "quoted \"x\"\nnext");
        assert_eq!(env["D"], "lit $X \\n");
        assert_eq!(env["E"], "");
        assert_eq!(env["F"], "a#b");
        assert_eq!(env["G"], "x");
        assert_eq!(env["H"], "a=b");
    }

    #[test]
    fn reports_bad_lines() {
        let e = parse_env_file("dom.env", "A=1\nNOVALUE\n").expect_err("fails");
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("dom.env, line 2"), "{e}");
        assert!(parse_env_file("f", "1A=x").is_err());
        assert!(parse_env_file("f", "A=\"open").is_err());
        assert!(parse_env_file("f", "A='open").is_err());
        assert!(parse_env_file("f", "A=\"x\" y").is_err());
    }
}
