//! YAML parsing with limits, and recursive resolution of merge keys (`<<`).
//!
//! serde_yaml expands aliases while deserializing and bounds the number of
//! alias jumps, but a few aliases of a large anchored node still expand to a
//! huge tree. The tree is therefore built by a counting visitor that fails as
//! soon as the expanded document exceeds [`MAX_NODES`] nodes, before the
//! memory is spent. YAML tags (`!reset`, `!override`, …) are not supported.

use super::error::ComposeError;
use super::path::KeyPath;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_yaml::{Mapping, Value};
use std::cell::Cell;
use std::fmt;

/// Largest accepted compose text, in bytes.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Largest accepted document, in YAML nodes after alias expansion.
pub const MAX_NODES: usize = 200_000;

const MERGE_KEY: &str = "<<";
const TOO_MANY_NODES: &str = "hostkit: too many YAML nodes";

/// Parses one YAML document within the size and node limits.
pub fn parse(text: &str) -> Result<Value, ComposeError> {
    parse_with_limits(text, MAX_INPUT_BYTES, MAX_NODES)
}

pub(crate) fn parse_with_limits(
    text: &str,
    max_bytes: usize,
    max_nodes: usize,
) -> Result<Value, ComposeError> {
    if text.len() > max_bytes {
        return Err(ComposeError::TooLarge {
            size: text.len(),
            limit: max_bytes,
        });
    }
    let budget = Cell::new(max_nodes);
    let deserializer = serde_yaml::Deserializer::from_str(text);
    match (CountedValue { budget: &budget }).deserialize(deserializer) {
        Ok(value) => Ok(value),
        Err(e) => {
            let message = e.to_string();
            if message.contains(TOO_MANY_NODES) || message.contains("repetition limit exceeded") {
                Err(ComposeError::TooManyNodes { limit: max_nodes })
            } else {
                Err(ComposeError::Yaml {
                    message,
                    line: e.location().map(|l| l.line()),
                })
            }
        }
    }
}

/// Builds a [`Value`] while spending one unit of `budget` per node.
#[derive(Clone, Copy)]
struct CountedValue<'b> {
    budget: &'b Cell<usize>,
}

impl CountedValue<'_> {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(TOO_MANY_NODES)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for CountedValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Number(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.spend()?;
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(self)? {
            if mapping.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {}",
                    scalar_text(&key).unwrap_or_else(|| "(complex key)".to_owned())
                )));
            }
            let value = map.next_value_seed(self)?;
            mapping.insert(key, value);
        }
        Ok(Value::Mapping(mapping))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        Err(de::Error::custom(
            "YAML tags (such as !reset or !override) are not supported",
        ))
    }
}

/// The text of a scalar (string, number or bool), or `None` for other nodes.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resolves every merge key (`<<: *a` and `<<: [*a, *b]`) in the tree,
/// bottom-up, so that a merged mapping that itself merges is complete before
/// it is merged. Keys written in a mapping win over merged ones; among the
/// mappings of a merge list, the first one wins.
pub fn resolve_merges(value: &mut Value, path: &KeyPath) -> Result<(), ComposeError> {
    match value {
        Value::Mapping(mapping) => {
            let merge = mapping.remove(MERGE_KEY);
            for (key, child) in mapping.iter_mut() {
                let child_path = path.key(scalar_text(key).unwrap_or_default());
                resolve_merges(child, &child_path)?;
            }
            if let Some(mut merge) = merge {
                let merge_path = path.key(MERGE_KEY);
                resolve_merges(&mut merge, &merge_path)?;
                for source in merge_sources(merge, &merge_path)? {
                    for (key, child) in source {
                        if !mapping.contains_key(&key) {
                            mapping.insert(key, child);
                        }
                    }
                }
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_merges(item, &path.index(i))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn merge_sources(merge: Value, path: &KeyPath) -> Result<Vec<Mapping>, ComposeError> {
    match merge {
        Value::Mapping(m) => Ok(vec![m]),
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Mapping(m) => Ok(m),
                _ => Err(ComposeError::invalid(
                    &path.index(i),
                    "a merge key list may only hold mappings",
                )),
            })
            .collect(),
        _ => Err(ComposeError::invalid(
            path,
            "a merge key needs a mapping or a list of mappings",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(text: &str) -> Value {
        let mut v = parse(text).expect("parses");
        resolve_merges(&mut v, &KeyPath::root()).expect("merges");
        v
    }

    #[test]
    fn recursive_merge_of_a_mapping_that_merges() {
        let v = merged(
            "base: &base\n  a: 1\n  b: 1\nmid: &mid\n  <<: *base\n  b: 2\n  c: 2\nleaf:\n  <<: *mid\n  c: 3\n",
        );
        let leaf = &v["leaf"];
        assert_eq!(leaf["a"], Value::from(1));
        assert_eq!(leaf["b"], Value::from(2));
        assert_eq!(leaf["c"], Value::from(3));
        assert!(leaf.get("<<").is_none());
        assert!(v["mid"].get("<<").is_none());
    }

    #[test]
    fn merge_list_first_wins_and_own_keys_win() {
        let v = merged("a: &a {x: a, y: a}\nb: &b {x: b, z: b}\nc:\n  <<: [*a, *b]\n  y: own\n");
        assert_eq!(v["c"]["x"], Value::from("a"));
        assert_eq!(v["c"]["y"], Value::from("own"));
        assert_eq!(v["c"]["z"], Value::from("b"));
    }

    #[test]
    fn merges_nested_deep_inside_values() {
        let v =
            merged("x-h: &h {interval: 5s}\ns:\n  w:\n    hc:\n      <<: *h\n      retries: 3\n");
        assert_eq!(v["s"]["w"]["hc"]["interval"], Value::from("5s"));
    }

    #[test]
    fn merge_of_a_scalar_is_invalid() {
        let mut v = parse("a:\n  <<: 3\n").expect("parses");
        let e = resolve_merges(&mut v, &KeyPath::root()).expect_err("fails");
        assert!(e.to_string().contains("a.<<"), "{e}");
        let mut v = parse("a:\n  <<: [1]\n").expect("parses");
        assert!(resolve_merges(&mut v, &KeyPath::root()).is_err());
    }

    #[test]
    fn oversized_input_is_rejected() {
        let e = parse_with_limits("a: 12345", 4, 100).expect_err("too large");
        assert_eq!(e, ComposeError::TooLarge { size: 8, limit: 4 });
        let big = "#".repeat(MAX_INPUT_BYTES + 1);
        assert!(matches!(parse(&big), Err(ComposeError::TooLarge { .. })));
    }

    #[test]
    fn classic_alias_bomb_is_rejected() {
        let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
            b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
            c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
            d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
            e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
            f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
            g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
            h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
            i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(matches!(
            parse(bomb),
            Err(ComposeError::TooManyNodes { .. })
        ));
    }

    #[test]
    fn wide_alias_expansion_is_bounded_by_nodes() {
        // Few alias jumps (under serde_yaml's own limit), many nodes.
        let items: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
        let aliases = vec!["*big"; 200].join(", ");
        let text = format!("big: &big [{}]\nuse: [{}]\n", items.join(", "), aliases);
        assert!(matches!(
            parse(&text),
            Err(ComposeError::TooManyNodes { .. })
        ));
        // The same document is fine under a larger budget.
        assert!(parse_with_limits(&text, MAX_INPUT_BYTES, 1_000_000).is_ok());
    }

    #[test]
    fn yaml_errors_carry_lines() {
        let e = parse("a: 1\nb: [\n").expect_err("bad yaml");
        assert!(
            matches!(e, ComposeError::Yaml { line: Some(_), .. }),
            "{e:?}"
        );
        let e = parse("a: 1\na: 2\n").expect_err("duplicate");
        assert!(e.to_string().contains("duplicate key a"), "{e}");
        let e = parse("a: !reset []\n").expect_err("tag");
        assert!(e.to_string().contains("tags"), "{e}");
        let e = parse("a: 1\n---\nb: 2\n").expect_err("two documents");
        assert!(matches!(e, ComposeError::Yaml { .. }));
    }
}
