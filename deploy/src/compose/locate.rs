//! Finds the source line of a key path.
//!
//! serde_yaml's `Value` keeps no positions, so errors found after parsing are
//! located by an indentation-aware scan of the text: block mappings and
//! block sequences (including `- key: value` items and sequences indented at
//! their parent key's level) are followed, block scalars (`|`, `>`) are
//! skipped, flow collections are not entered. It is a best effort: a key that
//! came from a merged anchor is not at its path in the text, and a key inside
//! a flow mapping (`{a: 1}`) is not seen. When the exact path is not found,
//! the first line that has the same key under a parent of the same name is
//! reported, else the same key inside an `x-*` block (where anchors usually
//! live), else the line of the deepest ancestor that is found.

use super::path::{KeyPath, Segment};

/// The 1-based line of `path` in `source`, if it can be found.
pub fn find_line(source: &str, path: &KeyPath) -> Option<usize> {
    let entries = scan(source);
    let wanted = path.segments();
    if let Some(e) = entries.iter().find(|e| e.path == wanted) {
        return Some(e.line);
    }
    if let Some(last) = path.last_key() {
        let parent = parent_key(wanted);
        let in_extension =
            |e: &&Entry| matches!(e.path.first(), Some(Segment::Key(k)) if k.starts_with("x-"));
        let found = entries
            .iter()
            .find(|e| ends_with_key(&e.path, last) && parent_key(&e.path) == parent)
            .or_else(|| {
                entries
                    .iter()
                    .filter(in_extension)
                    .find(|e| ends_with_key(&e.path, last))
            });
        if let Some(e) = found {
            return Some(e.line);
        }
    }
    (1..wanted.len())
        .rev()
        .find_map(|len| entries.iter().find(|e| e.path == wanted[..len]))
        .map(|e| e.line)
}

fn ends_with_key(path: &[Segment], key: &str) -> bool {
    matches!(path.last(), Some(Segment::Key(k)) if k == key)
}

fn parent_key(path: &[Segment]) -> Option<&str> {
    path.iter().rev().skip(1).find_map(|s| match s {
        Segment::Key(k) => Some(k.as_str()),
        Segment::Index(_) => None,
    })
}

struct Entry {
    path: Vec<Segment>,
    line: usize,
}

struct Frame {
    column: usize,
    segment: Segment,
    is_item: bool,
    next_index: usize,
}

/// Lists every block-mapping key and sequence item with its full path.
fn scan(source: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_items = 0usize;
    let mut block_scalar_column: Option<usize> = None;

    for (number, raw) in source.lines().enumerate() {
        let line = raw.trim_end();
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if let Some(column) = block_scalar_column {
            if content.is_empty() || indent > column {
                continue;
            }
            block_scalar_column = None;
        }
        if content.is_empty()
            || content.starts_with('#')
            || content.starts_with("---")
            || content.starts_with("...")
        {
            continue;
        }
        let mut column = indent;
        let mut rest = content;
        // Sequence items, possibly nested on one line (`- - a`).
        while rest == "-" || rest.starts_with("- ") {
            while stack
                .last()
                .is_some_and(|f| f.column > column || (f.is_item && f.column == column))
            {
                stack.pop();
            }
            let index = match stack.last_mut() {
                Some(parent) => {
                    parent.next_index += 1;
                    parent.next_index - 1
                }
                None => {
                    root_items += 1;
                    root_items - 1
                }
            };
            stack.push(Frame {
                column,
                segment: Segment::Index(index),
                is_item: true,
                next_index: 0,
            });
            entries.push(Entry {
                path: current_path(&stack),
                line: number + 1,
            });
            let after = &rest[1..];
            let skipped = after.len() - after.trim_start_matches(' ').len();
            column += 1 + skipped;
            rest = &after[skipped..];
            if rest.is_empty() {
                break;
            }
        }
        if rest.is_empty() {
            continue;
        }
        let Some((key, value)) = split_key(rest) else {
            if is_block_scalar(rest) {
                block_scalar_column = Some(column.saturating_sub(1));
            }
            continue;
        };
        while stack.last().is_some_and(|f| f.column >= column) {
            stack.pop();
        }
        stack.push(Frame {
            column,
            segment: Segment::Key(key),
            is_item: false,
            next_index: 0,
        });
        entries.push(Entry {
            path: current_path(&stack),
            line: number + 1,
        });
        if is_block_scalar(value) {
            block_scalar_column = Some(column);
        }
    }
    entries
}

fn current_path(stack: &[Frame]) -> Vec<Segment> {
    stack.iter().map(|f| f.segment.clone()).collect()
}

/// Splits `key: value` (plain, single- or double-quoted key); `None` when the
/// line does not start with a mapping key.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, after) = match text.chars().next()? {
        quote @ ('"' | '\'') => {
            let close = text[1..].find(quote)? + 1;
            (text[1..close].to_owned(), &text[close + 1..])
        }
        '{' | '[' | '&' | '*' | '!' | '|' | '>' | '?' | '%' | '@' | '`' => return None,
        _ => {
            let colon = find_colon(text)?;
            (text[..colon].trim_end().to_owned(), &text[colon..])
        }
    };
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with(' ') || value.starts_with('\t')) {
        return None;
    }
    Some((key, value.trim()))
}

/// The first `:` followed by a space or the end of the text.
fn find_colon(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b':' && (i + 1 == bytes.len() || bytes[i + 1] == b' ' || bytes[i + 1] == b'\t')
    })
}

/// `|`, `>-`, `|+2`, possibly after an anchor or tag, possibly with a comment.
fn is_block_scalar(value: &str) -> bool {
    let value = value.split(" #").next().unwrap_or("").trim();
    let last = value.split_whitespace().last().unwrap_or("");
    last.starts_with('|') || last.starts_with('>')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
version: '3.8'
x-base: &base
  restart: always
services:
  web:
    <<: *base
    image: nginx
    command: |
      sh -c
      fake: key
    ports:
    - \"80\"
    - target: 81
      published: 8081
    environment:
      A: b
  db:
    image: postgres
    \"quoted\": 1
    healthcheck:
      test: [\"CMD\", \"true\"]
      interval: 5s
";

    fn line(keys: &[&str]) -> Option<usize> {
        find_line(TEXT, &KeyPath::from_keys(keys.iter().copied()))
    }

    #[test]
    fn finds_nested_keys() {
        assert_eq!(line(&["version"]), Some(1));
        assert_eq!(line(&["services", "web", "image"]), Some(7));
        assert_eq!(line(&["services", "web", "environment", "A"]), Some(16));
        assert_eq!(line(&["services", "db", "image"]), Some(18));
        assert_eq!(line(&["services", "db", "quoted"]), Some(19));
        assert_eq!(
            line(&["services", "db", "healthcheck", "interval"]),
            Some(22)
        );
    }

    #[test]
    fn follows_sequences_at_parent_indentation() {
        let p = KeyPath::from_keys(["services", "web", "ports"]);
        assert_eq!(find_line(TEXT, &p.index(0)), Some(12));
        assert_eq!(find_line(TEXT, &p.index(1)), Some(13));
        assert_eq!(find_line(TEXT, &p.index(1).key("published")), Some(14));
    }

    #[test]
    fn skips_block_scalars() {
        // `fake: key` (line 10) is text of the block scalar, not a key.
        assert_eq!(line(&["services", "web", "command", "fake"]), Some(8));
        assert_eq!(line(&["services", "web", "ports"]), Some(11));
    }

    #[test]
    fn falls_back_for_merged_keys() {
        // `restart` came from the anchor: reported where it is written.
        assert_eq!(line(&["services", "web", "restart"]), Some(3));
        // Unknown keys fall back to their deepest known ancestor.
        assert_eq!(line(&["services", "web", "nothing"]), Some(5));
        assert_eq!(
            line(&["services", "db", "healthcheck", "test", "x"]),
            Some(21)
        );
        assert_eq!(line(&["nothing", "at", "all"]), None);
    }

    #[test]
    fn handles_nested_items_and_root_sequences() {
        let text = "- a: 1\n  b:\n  - - x: 2\n";
        let p = KeyPath::root().index(0).key("b").index(0).index(0).key("x");
        assert_eq!(find_line(text, &p), Some(3));
        assert_eq!(find_line(text, &KeyPath::root().index(0).key("b")), Some(2));
    }
}
