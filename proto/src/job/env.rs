//! [`Env`]: the environment variables of a deploy, whose values are secrets
//! and therefore never printed.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Environment variables passed with a deploy (name → value).
///
/// Values are secrets: `Debug` prints the names only, so a `Job` can be
/// logged with `{:?}` safely. On the wire it is a plain JSON object of
/// strings.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Env(pub BTreeMap<String, String>);

impl Env {
    /// An empty environment.
    pub fn new() -> Self {
        Env::default()
    }

    /// Whether there are no variables.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sets a variable.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The variables, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The variable names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, format_args!("<redacted>"))))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Env(iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_values() {
        let env: Env = [("DB_PASSWORD", "hunter2"), ("TOKEN", "s3cr3t")]
            .into_iter()
            .collect();
        let debug = format!("{env:?}");
        assert_eq!(debug, r#"{"DB_PASSWORD": <redacted>, "TOKEN": <redacted>}"#);
        assert!(!format!("{env:#?}").contains("hunter2"));
    }

    #[test]
    fn serde_is_a_plain_object() {
        let env: Env = [("A", "1")].into_iter().collect();
        let json = serde_json::to_string(&env).unwrap();
        assert_eq!(json, r#"{"A":"1"}"#);
        assert_eq!(serde_json::from_str::<Env>(&json).unwrap(), env);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.len(), 1);
        assert_eq!(env.names().collect::<Vec<_>>(), ["A"]);
    }
}
