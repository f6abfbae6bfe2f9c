//! Typed accessors over YAML values that report errors at a key path.
//!
//! Scalars are converted leniently, like compose after interpolation: a
//! number may be written as a string (`"8080"`), a boolean as `"true"`,
//! `yes`, `on`, and strings accept numbers and booleans.

use crate::compose::duration::parse_duration;
use crate::compose::error::ComposeError;
use crate::compose::keys::{self, Scope};
use crate::compose::path::KeyPath;
use crate::compose::size::parse_size;
use crate::compose::yaml::scalar_text;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// A mapping entry with its key as text and its path.
pub type Entry<'v> = (String, &'v Value, KeyPath);

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// An "expected X, found Y" error.
pub fn expected(what: &str, value: &Value, path: &KeyPath) -> ComposeError {
    ComposeError::invalid(path, format!("expected {what}, found {}", kind(value)))
}

/// The entries of a mapping with free-form keys (any scalar key).
pub fn entries<'v>(value: &'v Value, path: &KeyPath) -> Result<Vec<Entry<'v>>, ComposeError> {
    let Value::Mapping(mapping) = value else {
        return Err(expected("a mapping", value, path));
    };
    mapping
        .iter()
        .map(|(k, v)| {
            let key = scalar_text(k)
                .ok_or_else(|| ComposeError::invalid(path, "mapping keys must be scalars"))?;
            let child = path.key(key.clone());
            Ok((key, v, child))
        })
        .collect()
}

/// The entries of a mapping whose keys are checked against the key table;
/// `x-*` entries are left out.
pub fn fields<'v>(
    value: &'v Value,
    scope: Scope,
    path: &KeyPath,
) -> Result<Vec<Entry<'v>>, ComposeError> {
    let mut out = Vec::new();
    for (key, v, child) in entries(value, path)? {
        keys::check(scope, &key, &child)?;
        if !keys::is_extension(&key) {
            out.push((key, v, child));
        }
    }
    Ok(out)
}

/// The items of a list with their paths.
pub fn items<'v>(
    value: &'v Value,
    path: &KeyPath,
) -> Result<Vec<(&'v Value, KeyPath)>, ComposeError> {
    match value {
        Value::Sequence(items) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| (v, path.index(i)))
            .collect()),
        _ => Err(expected("a list", value, path)),
    }
}

/// A scalar as text.
pub fn string(value: &Value, path: &KeyPath) -> Result<String, ComposeError> {
    scalar_text(value).ok_or_else(|| expected("a string", value, path))
}

/// A scalar as text; null is `None`.
pub fn opt_string(value: &Value, path: &KeyPath) -> Result<Option<String>, ComposeError> {
    match value {
        Value::Null => Ok(None),
        _ => string(value, path).map(Some),
    }
}

/// A non-empty string.
pub fn non_empty(value: &Value, path: &KeyPath) -> Result<String, ComposeError> {
    let s = string(value, path)?;
    if s.trim().is_empty() {
        return Err(ComposeError::invalid(path, "must not be empty"));
    }
    Ok(s)
}

/// A boolean (`true`/`false`, or after interpolation `"true"`, `yes`, `on`, …).
pub fn boolean(value: &Value, path: &KeyPath) -> Result<bool, ComposeError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" => Ok(false),
            _ => Err(ComposeError::invalid(
                path,
                format!("expected a boolean, found `{s}`"),
            )),
        },
        _ => Err(expected("a boolean", value, path)),
    }
}

/// A non-negative integer that fits `T`.
pub fn uint<T: TryFrom<u64>>(value: &Value, path: &KeyPath) -> Result<T, ComposeError> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| T::try_from(n).ok()).ok_or_else(|| {
        ComposeError::invalid(
            path,
            format!("expected a non-negative integer, found {}", show(value)),
        )
    })
}

/// An integer (may be negative, e.g. `pids: -1`).
pub fn int(value: &Value, path: &KeyPath) -> Result<i64, ComposeError> {
    let n = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        ComposeError::invalid(path, format!("expected an integer, found {}", show(value)))
    })
}

/// A number, possibly written as a string.
pub fn float(value: &Value, path: &KeyPath) -> Result<f64, ComposeError> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|f| f.is_finite()).ok_or_else(|| {
        ComposeError::invalid(path, format!("expected a number, found {}", show(value)))
    })
}

fn show(value: &Value) -> String {
    scalar_text(value)
        .map(|s| format!("`{s}`"))
        .unwrap_or_else(|| kind(value).to_owned())
}

/// A duration (`1m30s`; a bare number is seconds).
pub fn duration(value: &Value, path: &KeyPath) -> Result<Duration, ComposeError> {
    match value {
        Value::Number(_) | Value::String(_) => {
            parse_duration(&string(value, path)?).map_err(|m| ComposeError::invalid(path, m))
        }
        _ => Err(expected("a duration", value, path)),
    }
}

/// A size in bytes (`512m`, `1g`, plain bytes).
pub fn size(value: &Value, path: &KeyPath) -> Result<u64, ComposeError> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| ComposeError::invalid(path, "expected a size")),
        Value::String(s) => parse_size(s).map_err(|m| ComposeError::invalid(path, m)),
        _ => Err(expected("a size", value, path)),
    }
}

/// CPUs (a float) as nano-CPUs.
pub fn nano_cpus(value: &Value, path: &KeyPath) -> Result<u64, ComposeError> {
    let cpus = float(value, path)?;
    if !(0.0..=1024.0).contains(&cpus) {
        return Err(ComposeError::invalid(
            path,
            format!("cpus must be between 0 and 1024, found {cpus}"),
        ));
    }
    Ok((cpus * 1e9).round() as u64)
}

/// A string or a list of strings.
pub fn string_or_list(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    match value {
        Value::Sequence(_) => items(value, path)?
            .into_iter()
            .map(|(v, p)| string(v, &p))
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Ok(vec![string(value, path)?]),
    }
}

/// A list of strings.
pub fn string_list(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(v, p)| string(v, &p))
        .collect()
}

/// A `KEY=VALUE` list (`KEY` alone has no value) or a `KEY: value` map
/// (null has no value), with each entry's path.
pub fn key_values(
    value: &Value,
    path: &KeyPath,
    separator: char,
) -> Result<Vec<(String, Option<String>, KeyPath)>, ComposeError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(_) => items(value, path)?
            .into_iter()
            .map(|(v, p)| {
                let text = string(v, &p)?;
                let (key, val) = match text.split_once(separator) {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (text, None),
                };
                if key.is_empty() {
                    return Err(ComposeError::invalid(&p, "empty key"));
                }
                Ok((key, val, p))
            })
            .collect(),
        Value::Mapping(_) => entries(value, path)?
            .into_iter()
            .map(|(k, v, p)| Ok((k, opt_string(v, &p)?, p)))
            .collect(),
        _ => Err(expected("a list or a mapping", value, path)),
    }
}

/// Labels and other string maps: list `KEY=VALUE` (`KEY` means empty) or map.
pub fn string_map(value: &Value, path: &KeyPath) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, val, p) in key_values(value, path, '=')? {
        if out.insert(key, val.unwrap_or_default()).is_some() {
            return Err(ComposeError::invalid(&p, "duplicate key"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn lenient_scalars() {
        let p = KeyPath::root().key("k");
        assert!(boolean(&v("\"yes\""), &p).expect("bool"));
        assert!(!boolean(&v("off"), &p).expect("bool"));
        assert!(boolean(&v("maybe"), &p).is_err());
        assert_eq!(uint::<u16>(&v("\"8080\""), &p).expect("int"), 8080);
        assert!(uint::<u16>(&v("70000"), &p).is_err());
        assert!(uint::<u32>(&v("-1"), &p).is_err());
        assert_eq!(int(&v("-1"), &p).expect("int"), -1);
        assert_eq!(string(&v("12"), &p).expect("str"), "12");
        assert_eq!(nano_cpus(&v("0.5"), &p).expect("cpus"), 500_000_000);
        assert_eq!(nano_cpus(&v("\"1.25\""), &p).expect("cpus"), 1_250_000_000);
        assert!(nano_cpus(&v("-1"), &p).is_err());
        assert_eq!(size(&v("1024"), &p).expect("size"), 1024);
        assert_eq!(
            duration(&v("90"), &p).expect("dur"),
            Duration::from_secs(90)
        );
        let e = string(&v("[1]"), &p).expect_err("list");
        assert_eq!(
            e.to_string(),
            "invalid `k`: expected a string, found a list"
        );
    }

    #[test]
    fn key_value_lists_and_maps() {
        let p = KeyPath::root().key("labels");
        let m = string_map(&v("[a=1, b, c=x=y]"), &p).expect("list");
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "");
        assert_eq!(m["c"], "x=y");
        let m = string_map(&v("{a: 1, b: true, c: null}"), &p).expect("map");
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "true");
        assert_eq!(m["c"], "");
        assert!(string_map(&v("[a=1, a=2]"), &p).is_err());
        assert!(string_map(&v("[=1]"), &p).is_err());
    }
}
