//! Variable interpolation with compose-go's syntax.
//!
//! `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}`
//! (unset), `${VAR:?message}` / `${VAR?message}` (required), `${VAR:+alt}` /
//! `${VAR+alt}` (alternative), nesting in the default, message and alternative
//! (`${A:-${B:-x}}`, evaluated only when used), and `$$` for a literal `$`. A
//! `$` followed by anything else is an error, as in compose. Only string
//! values are interpolated, never keys, and `x-*` extension subtrees are
//! skipped (they are ignored anyway, and their anchors were already copied
//! where they are used).

use super::Env;
use super::error::{ComposeError, Warning};
use super::path::KeyPath;
use super::yaml::scalar_text;
use serde_yaml::Value;
use std::collections::BTreeSet;

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// Malformed syntax.
    Invalid(String),
    /// A required variable has no value.
    Missing {
        /// The variable.
        variable: String,
        /// The template's message (may be empty).
        message: String,
    },
}

/// The result of expanding one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The expanded text.
    pub text: String,
    /// Variables used without a default that were not set.
    pub unset: Vec<String>,
}

/// Expands one template string.
pub fn expand(template: &str, env: &Env) -> Result<Expanded, TemplateError> {
    let mut unset = Vec::new();
    let text = expand_into(template, env, &mut unset)?;
    Ok(Expanded { text, unset })
}

fn expand_into(s: &str, env: &Env, unset: &mut Vec<String>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let end = closing_brace(after)?;
                out.push_str(&braced(&after[1..end], env, unset)?);
                rest = &after[end + 1..];
            }
            Some(c) if c == '_' || c.is_ascii_alphabetic() => {
                let len = name_len(after);
                let name = &after[..len];
                match env.get(name) {
                    Some(v) => out.push_str(v),
                    None => unset.push(name.to_owned()),
                }
                rest = &after[len..];
            }
            _ => {
                return Err(TemplateError::Invalid(format!(
                    "invalid interpolation `{}`: a `$` must start a variable",
                    truncate(&rest[dollar..])
                )));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(20).collect()
}

fn name_len(s: &str) -> usize {
    s.bytes()
        .take_while(|b| *b == b'_' || b.is_ascii_alphanumeric())
        .count()
}

/// Index of the `}` closing the `{` at `s[0]`, counting nested `${`.
fn closing_brace(s: &str) -> Result<usize, TemplateError> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'{' if i == 0 => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(TemplateError::Invalid(format!(
        "unterminated `${}`",
        truncate(s)
    )))
}

fn braced(inner: &str, env: &Env, unset: &mut Vec<String>) -> Result<String, TemplateError> {
    let len = name_len(inner);
    let name = &inner[..len];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(TemplateError::Invalid(format!(
            "invalid variable name in `${{{inner}}}`"
        )));
    }
    let op = &inner[len..];
    let value = env.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let own = || value.cloned().unwrap_or_default();
    let arg = |prefix: usize| &op[prefix..];
    let missing = |message: &str, unset: &mut Vec<String>| {
        Ok::<_, TemplateError>(TemplateError::Missing {
            variable: name.to_owned(),
            message: expand_into(message, env, unset)?,
        })
    };
    if op.is_empty() {
        if value.is_none() {
            unset.push(name.to_owned());
        }
        Ok(own())
    } else if op.starts_with(":-") {
        if set_nonempty {
            Ok(own())
        } else {
            expand_into(arg(2), env, unset)
        }
    } else if op.starts_with(":?") {
        if set_nonempty {
            Ok(own())
        } else {
            Err(missing(arg(2), unset)?)
        }
    } else if op.starts_with(":+") {
        if set_nonempty {
            expand_into(arg(2), env, unset)
        } else {
            Ok(String::new())
        }
    } else if op.starts_with('-') {
        if value.is_some() {
            Ok(own())
        } else {
            expand_into(arg(1), env, unset)
        }
    } else if op.starts_with('?') {
        if value.is_some() {
            Ok(own())
        } else {
            Err(missing(arg(1), unset)?)
        }
    } else if op.starts_with('+') {
        if value.is_some() {
            expand_into(arg(1), env, unset)
        } else {
            Ok(String::new())
        }
    } else {
        Err(TemplateError::Invalid(format!(
            "invalid interpolation `${{{inner}}}`"
        )))
    }
}

/// Interpolates every string value of the tree in place; unset variables add
/// one warning each (at their first use).
pub fn interpolate_tree(
    value: &mut Value,
    env: &Env,
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    interpolate_tracking(value, env, warnings).map(drop)
}

/// Every use of a variable that was not set: (key path, variable).
pub type UnsetUses = Vec<(KeyPath, String)>;

/// [`interpolate_tree`], answering every use of an unset variable, so that
/// an error about a value they emptied can name them.
pub fn interpolate_tracking(
    value: &mut Value,
    env: &Env,
    warnings: &mut Vec<Warning>,
) -> Result<UnsetUses, ComposeError> {
    let mut seen = Seen::default();
    walk(value, &KeyPath::root(), env, warnings, &mut seen)?;
    Ok(seen.uses)
}

#[derive(Default)]
struct Seen {
    warned: BTreeSet<String>,
    uses: UnsetUses,
}

fn walk(
    value: &mut Value,
    path: &KeyPath,
    env: &Env,
    warnings: &mut Vec<Warning>,
    warned: &mut Seen,
) -> Result<(), ComposeError> {
    match value {
        Value::String(s) => {
            if !s.contains('$') {
                return Ok(());
            }
            match expand(s, env) {
                Ok(expanded) => {
                    for variable in expanded.unset {
                        warned.uses.push((path.clone(), variable.clone()));
                        if warned.warned.insert(variable.clone()) {
                            warnings.push(Warning {
                                path: path.to_string(),
                                message: format!(
                                    "variable {variable} is not set; using an empty string"
                                ),
                            });
                        }
                    }
                    *s = expanded.text;
                    Ok(())
                }
                Err(TemplateError::Invalid(message)) => Err(ComposeError::invalid(path, message)),
                Err(TemplateError::Missing { variable, message }) => {
                    Err(ComposeError::MissingVariable {
                        variable,
                        message,
                        path: path.clone(),
                        line: None,
                    })
                }
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), env, warnings, warned)?;
            }
            Ok(())
        }
        Value::Mapping(mapping) => {
            for (key, child) in mapping.iter_mut() {
                let key = scalar_text(key).unwrap_or_default();
                if key.starts_with("x-") {
                    continue;
                }
                walk(child, &path.key(key), env, warnings, warned)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        [("SET", "value"), ("EMPTY", ""), ("B", "bee")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn ok(t: &str) -> String {
        expand(t, &env()).expect("expands").text
    }

    #[test]
    fn plain_forms() {
        assert_eq!(ok("$SET"), "value");
        assert_eq!(ok("${SET}"), "value");
        assert_eq!(ok("a-$SET-b"), "a-value-b");
        assert_eq!(ok("$SET.x"), "value.x");
        assert_eq!(ok("${SET}x"), "valuex");
        assert_eq!(ok("no vars"), "no vars");
    }

    #[test]
    fn unset_is_empty_and_reported() {
        let e = expand("[$NOPE][${NOPE2}]", &env()).expect("expands");
        assert_eq!(e.text, "[][]");
        assert_eq!(e.unset, vec!["NOPE".to_owned(), "NOPE2".to_owned()]);
    }

    #[test]
    fn defaults() {
        assert_eq!(ok("${NOPE:-d}"), "d");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${SET:-d}"), "value");
        assert_eq!(ok("${NOPE-d}"), "d");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${SET-d}"), "value");
        assert_eq!(ok("${NOPE:-}"), "");
        assert!(expand("${NOPE:-}", &env()).expect("ok").unset.is_empty());
        assert_eq!(ok("${NOPE:-a b:c}"), "a b:c");
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${SET:+alt}"), "alt");
        assert_eq!(ok("${EMPTY:+alt}"), "");
        assert_eq!(ok("${NOPE:+alt}"), "");
        assert_eq!(ok("${SET+alt}"), "alt");
        assert_eq!(ok("${EMPTY+alt}"), "alt");
        assert_eq!(ok("${NOPE+alt}"), "");
    }

    #[test]
    fn required() {
        assert_eq!(ok("${SET:?boom}"), "value");
        assert_eq!(ok("${EMPTY?boom}"), "");
        let missing = |variable: &str, message: &str| TemplateError::Missing {
            variable: variable.into(),
            message: message.into(),
        };
        assert_eq!(
            expand("${EMPTY:?boom}", &env()),
            Err(missing("EMPTY", "boom"))
        );
        assert_eq!(
            expand("${NOPE?need it}", &env()),
            Err(missing("NOPE", "need it"))
        );
        assert_eq!(expand("${NOPE:?}", &env()), Err(missing("NOPE", "")));
        assert_eq!(
            expand("${NOPE:?no $B}", &env()),
            Err(missing("NOPE", "no bee"))
        );
    }

    #[test]
    fn nested() {
        assert_eq!(ok("${NOPE:-${B:-x}}"), "bee");
        assert_eq!(ok("${NOPE:-${NOPE2:-x}}"), "x");
        assert_eq!(ok("${NOPE:-${NOPE2:-${SET}}}/tail"), "value/tail");
        assert_eq!(ok("${SET:+[${B}]}"), "[bee]");
        // Lazy: the unused branch is not evaluated.
        assert_eq!(ok("${SET:-${NOPE:?never}}"), "value");
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("a$${SET}b"), "a${SET}b");
        assert_eq!(ok("${NOPE:-$$x}"), "$x");
    }

    #[test]
    fn invalid_templates() {
        for t in [
            "$", "a $ b", "$1", "${", "${SET", "${}", "${1A}", "${SET*x}", "${A B}",
        ] {
            assert!(
                matches!(expand(t, &env()), Err(TemplateError::Invalid(_))),
                "{t} should be invalid"
            );
        }
    }

    #[test]
    fn tree_interpolates_values_not_keys_nor_extensions() {
        let mut v: Value =
            serde_yaml::from_str("$SET: $SET\nlist: [$B, 1]\nx-ext: ${NOPE:?no}\n").expect("yaml");
        let mut warnings = Vec::new();
        interpolate_tree(&mut v, &env(), &mut warnings).expect("ok");
        assert_eq!(v["$SET"], Value::from("value"));
        assert_eq!(v["list"][0], Value::from("bee"));
        assert_eq!(v["list"][1], Value::from(1));
        assert!(warnings.is_empty());
    }

    #[test]
    fn tree_names_the_key_of_a_missing_variable() {
        let mut v: Value = serde_yaml::from_str(
            "services:\n  web:\n    environment:\n      DB_URL: ${DB_URL:?set the database}\n",
        )
        .expect("yaml");
        let e = interpolate_tree(&mut v, &env(), &mut Vec::new()).expect_err("missing");
        assert_eq!(
            e,
            ComposeError::MissingVariable {
                variable: "DB_URL".into(),
                message: "set the database".into(),
                path: KeyPath::from_keys(["services", "web", "environment", "DB_URL"]),
                line: None,
            }
        );
    }

    #[test]
    fn tree_warns_once_per_variable() {
        let mut v: Value = serde_yaml::from_str("a: $NOPE\nb: $NOPE\n").expect("yaml");
        let mut warnings = Vec::new();
        interpolate_tree(&mut v, &env(), &mut warnings).expect("ok");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].path, "a");
    }
}
