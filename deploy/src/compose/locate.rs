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
//!
//! The scan is linear in the text, in time and memory: it keeps only the
//! stack of open keys and items (borrowing the keys from the text), and
//! compares each key with the wanted path once, when its frame is pushed;
//! the frame records what its entry is then matched on (whether the path so
//! far is a prefix of the wanted one, where the nearest enclosing key is,
//! whether it is the wanted path's parent key).

use std::ops::ControlFlow;

use super::path::{KeyPath, Segment};

/// Where an error's key path is in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// The path's line, or else its deepest ancestor's (a value that came
    /// from a merged anchor is reported where it was merged, never at
    /// another service's key).
    pub line: Option<usize>,
    /// When the path itself is not in the text nor in an `x-*` block: the
    /// line of the same key under a parent of the same name, where a merged
    /// anchor most likely defined it.
    pub origin: Option<usize>,
}

/// [`find_line`]'s two places: the path (or its deepest ancestor), and the
/// likely anchor a missing path's value came from.
pub fn locate(source: &str, path: &KeyPath) -> Located {
    let found = search(source, path);
    match found.exact {
        Some(line) => Located {
            line: Some(line),
            origin: None,
        },
        // An anchor in an `x-*` block is where the value is written.
        None if found.in_extension.is_some() => Located {
            line: found.in_extension,
            origin: None,
        },
        // Elsewhere (e.g. another service's `&base`): where it was merged,
        // naming the likely anchor too.
        None => Located {
            line: found.ancestor.or(found.same_parent),
            origin: found.same_parent,
        },
    }
}

/// The 1-based line of `path` in `source`, if it can be found.
pub fn find_line(source: &str, path: &KeyPath) -> Option<usize> {
    let found = search(source, path);
    found
        .exact
        .or(found.same_parent)
        .or(found.in_extension)
        .or(found.ancestor)
}

/// What one scan found for a path.
struct Found {
    exact: Option<usize>,
    same_parent: Option<usize>,
    in_extension: Option<usize>,
    ancestor: Option<usize>,
}

fn search(source: &str, path: &KeyPath) -> Found {
    let wanted = path.segments();
    let last = path.last_key();
    let parent = parent_key(wanted);
    let mut exact = None;
    let mut same_parent = None;
    let mut in_extension = None;
    // `ancestors[n]`: the first entry whose path is `wanted[..n]`.
    let mut ancestors = vec![None; wanted.len()];
    scan(source, wanted, |stack, line| {
        let Some(top) = stack.last() else {
            return ControlFlow::Continue(());
        };
        if top.on_path {
            if stack.len() == wanted.len() {
                exact = Some(line);
                return ControlFlow::Break(());
            }
            ancestors[stack.len()].get_or_insert(line);
        }
        if let (Some(last), Step::Key(key)) = (last, top.step) {
            if key == last {
                let parent_here = top.key_below.map(|i| stack[i].is_parent);
                if same_parent.is_none() && parent_here.unwrap_or(parent.is_none()) {
                    same_parent = Some(line);
                }
                if in_extension.is_none()
                    && matches!(stack[0].step, Step::Key(k) if k.starts_with("x-"))
                {
                    in_extension = Some(line);
                }
            }
        }
        ControlFlow::Continue(())
    });
    Found {
        exact,
        same_parent,
        in_extension,
        ancestor: ancestors.iter().rev().find_map(|line| *line),
    }
}

/// The nearest mapping key before the path's last segment.
fn parent_key(path: &[Segment]) -> Option<&str> {
    path.iter().rev().skip(1).find_map(|s| match s {
        Segment::Key(k) => Some(k.as_str()),
        Segment::Index(_) => None,
    })
}

/// A [`Segment`] borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Step<'a> {
    fn key(self) -> Option<&'a str> {
        match self {
            Step::Key(k) => Some(k),
            Step::Index(_) => None,
        }
    }

    fn is(self, segment: &Segment) -> bool {
        match (self, segment) {
            (Step::Key(a), Segment::Key(b)) => a == b,
            (Step::Index(a), Segment::Index(b)) => a == *b,
            _ => false,
        }
    }
}

/// One open key or item; the stack of frames is the current path.
struct Frame<'a> {
    column: usize,
    step: Step<'a>,
    is_item: bool,
    next_index: usize,
    /// The path up to and including this frame is a prefix of the wanted one.
    on_path: bool,
    /// The stack index of the nearest key frame below this one.
    key_below: Option<usize>,
    /// This frame is the key that is the wanted path's parent key (compared
    /// once, here, so that a long key is not compared for each child).
    is_parent: bool,
}

/// The stack of open frames, which keeps each frame's facts about the
/// frames below it (computed once, when the frame is pushed).
struct Stack<'w, 'a> {
    wanted: &'w [Segment],
    parent: Option<&'w str>,
    frames: Vec<Frame<'a>>,
}

impl<'a> Stack<'_, 'a> {
    fn push(&mut self, column: usize, step: Step<'a>, is_item: bool) {
        let depth = self.frames.len();
        let below = self.frames.last();
        let on_path =
            below.is_none_or(|f| f.on_path) && self.wanted.get(depth).is_some_and(|s| step.is(s));
        let key_below = below.and_then(|f| match f.step {
            Step::Key(_) => Some(depth - 1),
            Step::Index(_) => f.key_below,
        });
        let is_parent = step.key().is_some_and(|k| Some(k) == self.parent);
        self.frames.push(Frame {
            column,
            step,
            is_item,
            next_index: 0,
            on_path,
            key_below,
            is_parent,
        });
    }
}

/// Visits every block-mapping key and sequence item, in text order, with
/// the stack of frames that is its path (its own frame on top) and its
/// 1-based line, until `visit` breaks.
fn scan<'a>(
    source: &'a str,
    wanted: &[Segment],
    mut visit: impl FnMut(&[Frame<'a>], usize) -> ControlFlow<()>,
) {
    let mut stack = Stack {
        wanted,
        parent: parent_key(wanted),
        frames: Vec::new(),
    };
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
            let frames = &mut stack.frames;
            while frames
                .last()
                .is_some_and(|f| f.column > column || (f.is_item && f.column == column))
            {
                frames.pop();
            }
            let index = match frames.last_mut() {
                Some(parent) => {
                    parent.next_index += 1;
                    parent.next_index - 1
                }
                None => {
                    root_items += 1;
                    root_items - 1
                }
            };
            stack.push(column, Step::Index(index), true);
            if visit(&stack.frames, number + 1).is_break() {
                return;
            }
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
        while stack.frames.last().is_some_and(|f| f.column >= column) {
            stack.frames.pop();
        }
        stack.push(column, Step::Key(key), false);
        if visit(&stack.frames, number + 1).is_break() {
            return;
        }
        if is_block_scalar(value) {
            block_scalar_column = Some(column);
        }
    }
}

/// Splits `key: value` (plain, single- or double-quoted key); `None` when the
/// line does not start with a mapping key.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let (key, after) = match text.chars().next()? {
        quote @ ('"' | '\'') => {
            let close = text[1..].find(quote)? + 1;
            (&text[1..close], &text[close + 1..])
        }
        '{' | '[' | '&' | '*' | '!' | '|' | '>' | '?' | '%' | '@' | '`' => return None,
        _ => {
            let colon = find_colon(text)?;
            (text[..colon].trim_end(), &text[colon..])
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

    /// The previous, quadratic algorithm (every entry kept with a copy of
    /// its whole path), as the reference the linear one must agree with.
    mod reference {
        use super::super::{is_block_scalar, split_key};
        use crate::compose::path::{KeyPath, Segment};

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

        pub fn find_line(source: &str, path: &KeyPath) -> Option<usize> {
            let entries = scan(source);
            let wanted = path.segments();
            if let Some(e) = entries.iter().find(|e| e.path == wanted) {
                return Some(e.line);
            }
            if let Some(last) = path.last_key() {
                let parent = parent_key(wanted);
                let in_extension = |e: &&Entry| matches!(e.path.first(), Some(Segment::Key(k)) if k.starts_with("x-"));
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

        /// Every path the scan lists.
        pub fn paths(source: &str) -> Vec<Vec<Segment>> {
            scan(source).into_iter().map(|e| e.path).collect()
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
                        path: stack.iter().map(|f| f.segment.clone()).collect(),
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
                    segment: Segment::Key(key.to_owned()),
                    is_item: false,
                    next_index: 0,
                });
                entries.push(Entry {
                    path: stack.iter().map(|f| f.segment.clone()).collect(),
                    line: number + 1,
                });
                if is_block_scalar(value) {
                    block_scalar_column = Some(column);
                }
            }
            entries
        }
    }

    fn path_of(segments: &[Segment]) -> KeyPath {
        segments
            .iter()
            .fold(KeyPath::root(), |path, segment| match segment {
                Segment::Key(k) => path.key(k.as_str()),
                Segment::Index(i) => path.index(*i),
            })
    }

    /// Texts with every shape the scan knows: nested and root sequences,
    /// `- - x` items, block scalars, quoted keys, comments, documents
    /// markers, anchors in `x-*` blocks, keys repeated under other parents.
    const SAMPLES: &[&str] = &[
        TEXT,
        "- a: 1\n  b:\n  - - x: 2\n",
        "\
# comment
---
x-common: &common
  environment:
    A: 1
  logging:
    driver: local
x-other:
  - image: a
  - - image: b
services:
  web:
    <<: *common
    image: web
    environment:
      B: 2
    command:
      - sh
      - -c
      - |
        echo: not a key
        - not an item
    volumes:
    - type: bind
      source: ./data
      target: /data
    -   type: volume
        source: cache
        target: /cache
  'db':
    image: db
    environment: {A: 1}
    healthcheck:
      test: >-
        pg_isready: yes
      retries: 3
  worker:
    deploy:
      resources:
        limits:
          cpus: '0.5'
    logging:
      driver: json-file
volumes:
  cache:
    driver: local
...
",
        "-\n  - a\n  -\n    - b: 1\n      c:\n      - - - d: 2\n        - e: 3\n- f: 4\n",
    ];

    #[test]
    fn agrees_with_the_previous_algorithm() {
        for text in SAMPLES {
            let listed = reference::paths(text);
            let mut keys: Vec<String> = listed
                .iter()
                .filter_map(|p| match p.last() {
                    Some(Segment::Key(k)) => Some(k.clone()),
                    _ => None,
                })
                .collect();
            keys.sort();
            keys.dedup();
            keys.push("nothing".to_owned());
            let mut wanted = vec![KeyPath::root(), KeyPath::from_keys(["nothing", "here"])];
            for segments in &listed {
                let path = path_of(segments);
                wanted.push(path.key("nothing"));
                wanted.push(path.index(0));
                wanted.push(path.index(7));
                let parent = path_of(&segments[..segments.len() - 1]);
                for key in &keys {
                    wanted.push(parent.key(key.as_str()));
                    wanted.push(parent.key(key.as_str()).index(1));
                }
                wanted.push(path_of(&segments[1..]));
                wanted.push(path);
            }
            for path in &wanted {
                assert_eq!(
                    find_line(text, path),
                    reference::find_line(text, path),
                    "{path} in {text:?}"
                );
            }
        }
    }

    /// ~420 KB: one line of 100,000 nested items (`- - - … - leaf: 1`),
    /// then 10,000 items of two keys. The previous algorithm copied the
    /// whole path for each of the nested items: 5 billion segments (over
    /// 100 GB; at its measured pace, minutes even with the memory); this
    /// one scans the text once.
    #[test]
    fn locates_in_a_large_deeply_nested_file() {
        const DEPTH: usize = 100_000;
        const ITEMS: usize = 10_000;
        let mut text = String::from("version: '3.8'\ndeep:\n");
        text.push_str(&"- ".repeat(DEPTH));
        text.push_str("leaf: 1\n");
        let deep_line = 3;
        text.push_str("items:\n");
        let first_item_line = 5;
        for i in 0..ITEMS {
            text.push_str(&format!("  - n: {i}\n    v: {i}\n"));
        }
        text.push_str("services:\n  web:\n    image: nginx\n");
        let services_line = first_item_line + 2 * ITEMS;
        assert!(text.len() > 400_000, "{} bytes", text.len());

        let items = KeyPath::from_keys(["items"]);
        let last = items.index(ITEMS - 1);
        let last_line = first_item_line + 2 * (ITEMS - 1);
        assert_eq!(find_line(&text, &last), Some(last_line));
        assert_eq!(find_line(&text, &last.key("v")), Some(last_line + 1));
        assert_eq!(
            find_line(&text, &items.index(1234).key("n")),
            Some(5 + 2468)
        );
        // An unknown key falls back to its item.
        assert_eq!(find_line(&text, &last.key("nothing")), Some(last_line));
        let image = KeyPath::from_keys(["services", "web", "image"]);
        assert_eq!(find_line(&text, &image), Some(services_line + 2));

        // Inside the nested items: an item 2,000 levels down, and one that
        // does not exist there (its deepest ancestor is on the same line).
        let nested = (0..2_000).fold(KeyPath::from_keys(["deep"]), |p, _| p.index(0));
        assert_eq!(find_line(&text, &nested), Some(deep_line));
        assert_eq!(find_line(&text, &nested.index(1)), Some(deep_line));
        // `leaf`, under all 100,000 items, found by its parent key `deep`.
        let leaf = KeyPath::from_keys(["deep", "leaf"]);
        assert_eq!(find_line(&text, &leaf), Some(deep_line));
    }
}
