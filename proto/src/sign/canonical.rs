//! Canonical JSON bytes: object keys sorted (by bytes) at every level, no
//! whitespace. Written by hand so the result does not depend on serde_json's
//! map ordering features.

use serde_json::Value;

/// Appends the canonical form of `value` to `out`.
pub(super) fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a scalar (null, bool, number, string) into a Vec cannot fail.
    serde_json::to_writer(out, value).expect("a JSON scalar always serializes");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(json: &str) -> String {
        let mut out = Vec::new();
        write_canonical(&serde_json::from_str(json).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        assert_eq!(
            canonical(
                r#"{ "b": 1, "a": {"z": [ {"y": null, "x": true} ], "é": "\"q\"\n"}, "B": 1.5 }"#
            ),
            r#"{"B":1.5,"a":{"z":[{"x":true,"y":null}],"é":"\"q\"\n"},"b":1}"#
        );
        assert_eq!(canonical("[]"), "[]");
        assert_eq!(canonical("{}"), "{}");
        assert_eq!(canonical("-3"), "-3");
    }

    #[test]
    fn independent_of_input_order() {
        assert_eq!(
            canonical(r#"{"a":1,"b":{"c":2,"d":3}}"#),
            canonical(r#"{"b":{"d":3,"c":2},"a":1}"#)
        );
    }
}
