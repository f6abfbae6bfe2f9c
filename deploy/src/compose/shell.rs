//! Splits a command string into argv the way compose does (go-shellwords):
//! whitespace separates words, single quotes keep text literally, double
//! quotes group text, a backslash escapes the next character outside single
//! quotes. No variable, glob or command expansion.

/// Splits `text` into words; the error names an unterminated quote.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => word.push(c),
            (_, '\\') => match chars.next() {
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => return Err("the command ends with a lone backslash".to_owned()),
            },
            (Some(_), _) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, _) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote in the command"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        split(s).expect(s)
    }

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(ok("npm run start"), ["npm", "run", "start"]);
        assert_eq!(ok("  a   b\t c "), ["a", "b", "c"]);
        assert_eq!(
            ok(r#"sh -c "echo hello && sleep 1""#),
            ["sh", "-c", "echo hello && sleep 1"]
        );
        assert_eq!(ok("echo 'a \"b\" $X'"), ["echo", "a \"b\" $X"]);
        assert_eq!(ok(r"a\ b c"), ["a b", "c"]);
        assert_eq!(ok(r#"say "\"hi\"""#), ["say", "\"hi\""]);
        assert_eq!(ok(r#"a "" b"#), ["a", "", "b"]);
        assert_eq!(ok("x'y'z"), ["xyz"]);
        assert!(ok("").is_empty());
    }

    #[test]
    fn rejects_unterminated_quotes() {
        assert!(split("echo 'oops").is_err());
        assert!(split("echo \"oops").is_err());
        assert!(split("echo \\").is_err());
    }
}
