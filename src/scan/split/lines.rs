//! A fast reader for the block-style YAML that nearly every values file is written in: one
//! pass over the lines, the nesting read from the indentation, as the parser would read it.
//!
//! It gives the same mappings, with the same keys, value texts, spans and quote styles, as
//! the YAML parser (`super::parsed`), for the files it reads, and declines every file it
//! cannot read with certainty: flow collections other than `{}`/`[]`, anchors, aliases and
//! tags, block scalars as the value of a key that a split reference uses, values spread
//! over several lines, tabs, escapes, complex keys, directives, control characters, and
//! anything the parser would reject. The caller then asks the parser. It never errs on its
//! own, so a file the parser rejects is always left to the parser to reject.

use std::borrow::Cow;

use super::{Mapping, Scalar, Style, Value, KEYS};

/// An open collection.
#[derive(Debug)]
enum Frame<'a> {
    Map {
        /// The column of the mapping's keys.
        indent: usize,
        /// The mapping is the value of an `images` key (or an item of its sequence).
        images: bool,
        /// A key whose value is not on its line: it may be a collection on the next lines.
        open: Option<Key<'a>>,
        /// The entries whose keys a split reference may use.
        entries: Vec<(Cow<'a, str>, Value)>,
    },
    Seq {
        /// The column of the items' dashes.
        indent: usize,
        images: bool,
        /// The last item has no value on its line: it may be a collection on the next lines.
        open: bool,
    },
}

/// A key read from a line.
#[derive(Debug, Clone, Copy)]
struct Key<'a> {
    text: &'a str,
    start: usize,
    /// Just past the colon.
    colon_end: usize,
}

/// A block scalar's lines being skipped.
#[derive(Debug)]
struct Block {
    /// The indentation of the collection the scalar is in: its lines are indented more.
    parent: usize,
    /// The indentation of its first line, once met.
    content: Option<usize>,
    /// The most spaces on an empty line before the first line.
    leading: usize,
}

/// What stands after a key's colon or an item's dash.
enum Node {
    /// Nothing: the value is on the next lines, or empty.
    Open,
    /// A scalar on the line: its span, quotes included, and style.
    Scalar(std::ops::Range<usize>, Style),
    /// `{}` or `[]`.
    Empty,
    /// A block scalar header (`|`, `>-`).
    Block,
}

/// The mappings of `text` that hold keys a split reference may use, in the order they end,
/// as the parser gives them; `None` if the text is not plain block-style YAML.
pub(super) fn read(text: &str) -> Option<Vec<Mapping<'_>>> {
    let haystack = text.as_bytes();
    if !printable(haystack) {
        return None;
    }
    let mut reader = Reader {
        haystack,
        text,
        stack: Vec::new(),
        found: Vec::new(),
        root_done: false,
    };
    let mut block: Option<Block> = None;
    let mut at = 0;
    while at < haystack.len() {
        let start = at;
        let end = memchr::memchr(b'\n', &haystack[at..]).map_or(haystack.len(), |i| at + i);
        at = end + 1;
        let line = &haystack[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if memchr::memchr(b'\r', line).is_some() {
            return None;
        }
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let rest = &line[indent..];
        if let Some(b) = &mut block {
            let blank = rest.is_empty();
            match b.content {
                None if blank => {
                    b.leading = b.leading.max(indent);
                    continue;
                }
                None if indent > b.parent => {
                    if b.leading > indent {
                        return None;
                    }
                    b.content = Some(indent);
                    continue;
                }
                Some(m) if blank || indent >= m => continue,
                _ => block = None,
            }
        }
        if rest.is_empty() || rest[0] == b'#' {
            continue;
        }
        if memchr::memchr(b'\t', rest).is_some() {
            return None;
        }
        if indent == 0 && (rest.starts_with(b"---") || rest.starts_with(b"...")) {
            let after = &rest[3..];
            if after.is_empty() || after[0] == b' ' {
                let after = after.trim_ascii_start();
                if !after.is_empty() && after[0] != b'#' {
                    return None;
                }
                reader.close_all();
                reader.root_done = false;
                continue;
            }
        }
        if indent == 0 && rest[0] == b'%' {
            return None;
        }
        let item = rest[0] == b'-' && (rest.len() == 1 || rest[1] == b' ');
        let parent = reader.place(indent, item)?;
        if reader.line(start, indent, item, parent)? {
            let parent = match reader.stack.last() {
                Some(Frame::Map { indent, .. } | Frame::Seq { indent, .. }) => *indent,
                None => return None,
            };
            block = Some(Block {
                parent,
                content: None,
                leading: 0,
            });
        }
    }
    reader.close_all();
    Some(reader.found)
}

/// Whether `haystack` holds only what YAML allows unescaped, and no byte order mark or line
/// break other than `\n` and `\r`.
fn printable(haystack: &[u8]) -> bool {
    // ASCII controls but tab and line breaks, and DEL; checked a chunk at a time, without an
    // early exit, so that the loop is vectorised.
    let control = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
    if haystack
        .chunks(64)
        .any(|c| c.iter().fold(false, |bad, &b| bad | control(b)))
    {
        return false;
    }
    // C1 controls and NEL (U+0080..U+009F), the BOM (U+FEFF), U+FFFE and U+FFFF.
    memchr::memchr2_iter(0xc2, 0xef, haystack).all(|i| {
        let next = haystack.get(i + 1).copied().unwrap_or(0);
        !match haystack[i] {
            0xc2 => (0x80..=0x9f).contains(&next),
            _ => matches!(next, 0xbb | 0xbf),
        }
    })
}

/// Where a line goes in the nesting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// The first node of a document.
    Root,
    /// In the collection on top of the stack (a key of its mapping, an item of its sequence).
    Top,
    /// The value of the open key of the mapping on top.
    KeyValue,
    /// The value of the open item of the sequence on top.
    ItemValue,
}

struct Reader<'a> {
    haystack: &'a [u8],
    text: &'a str,
    stack: Vec<Frame<'a>>,
    found: Vec<Mapping<'a>>,
    /// The document's root node is complete: another one is an error.
    root_done: bool,
}

impl<'a> Reader<'a> {
    /// Closes the collections a line at `indent` ends and tells where it goes; `None` if the
    /// nesting is not one this reader is sure of.
    fn place(&mut self, indent: usize, item: bool) -> Option<Place> {
        loop {
            match self.stack.last() {
                None => return (!self.root_done).then_some(Place::Root),
                Some(Frame::Map {
                    indent: c, open, ..
                }) => {
                    let c = *c;
                    if indent > c || (indent == c && item) {
                        return open.is_some().then_some(Place::KeyValue);
                    }
                    if indent == c {
                        return Some(Place::Top);
                    }
                }
                Some(Frame::Seq {
                    indent: d, open, ..
                }) => {
                    let d = *d;
                    if indent > d {
                        return open.then_some(Place::ItemValue);
                    }
                    if indent == d && item {
                        return Some(Place::Top);
                    }
                }
            }
            self.close();
        }
    }

    /// Reads the content of the line starting at `start` where [`Reader::place`] put it;
    /// `Some(true)` if it opens a block scalar.
    fn line(&mut self, start: usize, indent: usize, item: bool, place: Place) -> Option<bool> {
        let col = start + indent;
        let images = match place {
            Place::Root => false,
            Place::Top => {
                match self.stack.last_mut() {
                    Some(Frame::Seq { open, .. }) => *open = false,
                    _ => self.finish_open(),
                }
                return self.content(col, item);
            }
            Place::KeyValue => match self.stack.last_mut() {
                Some(Frame::Map { open, entries, .. }) => {
                    let key = open.take()?;
                    if KEYS.contains(&key.text) {
                        entries.push((Cow::Borrowed(key.text), Value::Other));
                    }
                    key.text == "images"
                }
                _ => return None,
            },
            Place::ItemValue => match self.stack.last_mut() {
                Some(Frame::Seq { images, open, .. }) => {
                    *open = false;
                    *images
                }
                _ => return None,
            },
        };
        if item {
            self.stack.push(Frame::Seq {
                indent,
                images,
                open: false,
            });
        } else {
            // A one-line flow collection under its key (`annotations:\n  {}`) is the value.
            if matches!(self.haystack[col], b'{' | b'[') {
                let end = memchr::memchr(b'\n', &self.haystack[col..])
                    .map_or(self.haystack.len(), |i| col + i);
                return match node(self.text, col, end)? {
                    Node::Empty => {
                        // A document that is one flow collection is complete.
                        self.root_done |= place == Place::Root;
                        Some(false)
                    }
                    _ => None,
                };
            }
            // Only a key can start a collection here; a scalar on its own line is a value
            // spread over lines, or an error.
            key_at(self.text, col)??;
            self.stack.push(Frame::Map {
                indent,
                images,
                open: None,
                entries: Vec::new(),
            });
        }
        self.content(col, item)
    }

    /// Reads a key and its value, or an item, at `col`, in the collection on top.
    fn content(&mut self, col: usize, item: bool) -> Option<bool> {
        let line_end =
            memchr::memchr(b'\n', &self.haystack[col..]).map_or(self.haystack.len(), |i| col + i);
        if item {
            let Some(Frame::Seq { images, .. }) = self.stack.last() else {
                return None;
            };
            let images = *images;
            let after = col + 1;
            let value = after + count_spaces(&self.haystack[after..line_end]);
            let rest = trim_cr(&self.haystack[value..line_end]);
            if rest.is_empty() || (value > after && rest[0] == b'#') {
                if let Some(Frame::Seq { open, .. }) = self.stack.last_mut() {
                    *open = true;
                }
                return Some(false);
            }
            if rest[0] == b'-' && (rest.len() == 1 || rest[1] == b' ') {
                return None;
            }
            if key_at(self.text, value)?.is_some() {
                // A mapping in the item (`- name: x`): its keys stand at the first key's column.
                self.stack.push(Frame::Map {
                    indent: value - self.line_start(value),
                    images,
                    open: None,
                    entries: Vec::new(),
                });
                return self.content(value, false);
            }
            return match node(self.text, value, line_end)? {
                Node::Block => Some(true),
                _ => Some(false),
            };
        }
        let key = key_at(self.text, col)??;
        let node = node(self.text, key.colon_end, line_end)?;
        let Some(Frame::Map { open, entries, .. }) = self.stack.last_mut() else {
            return None;
        };
        let wanted = KEYS.contains(&key.text);
        match node {
            Node::Open => *open = Some(key),
            Node::Scalar(span, style) => {
                if wanted {
                    let raw = &self.text[span.clone()];
                    let text = match style {
                        Style::Plain => raw.to_owned(),
                        // An escape would need decoding: the parser reads those.
                        Style::Double if raw.contains('\\') => return None,
                        Style::Single => raw[1..raw.len() - 1].replace("''", "'"),
                        _ => raw[1..raw.len() - 1].to_owned(),
                    };
                    entries.push((
                        Cow::Borrowed(key.text),
                        Value::Scalar(Scalar {
                            text,
                            key_start: key.start,
                            span,
                            style,
                            fixed: None,
                        }),
                    ));
                }
            }
            Node::Empty => {
                if wanted {
                    entries.push((Cow::Borrowed(key.text), Value::Other));
                }
            }
            Node::Block => {
                // A block scalar where a split reference could use it: the parser marks it.
                if wanted {
                    return None;
                }
                return Some(true);
            }
        }
        Some(false)
    }

    fn line_start(&self, at: usize) -> usize {
        memchr::memrchr(b'\n', &self.haystack[..at]).map_or(0, |i| i + 1)
    }

    /// The open key of the mapping on top has no value: it is an empty scalar (placed, as
    /// the parser places it, just past the colon).
    fn finish_open(&mut self) {
        if let Some(Frame::Map { open, entries, .. }) = self.stack.last_mut() {
            if let Some(key) = open.take() {
                if KEYS.contains(&key.text) {
                    entries.push((
                        Cow::Borrowed(key.text),
                        Value::Scalar(Scalar {
                            text: String::new(),
                            key_start: key.start,
                            span: key.colon_end..key.colon_end,
                            style: Style::Empty,
                            fixed: None,
                        }),
                    ));
                }
            }
        }
    }

    /// Closes the collection on top.
    fn close(&mut self) {
        self.finish_open();
        if let Some(Frame::Map {
            images, entries, ..
        }) = self.stack.pop()
        {
            if !entries.is_empty() {
                self.found.push(Mapping {
                    images_item: images && matches!(self.stack.last(), Some(Frame::Seq { .. })),
                    entries,
                });
            }
        }
        if self.stack.is_empty() {
            self.root_done = true;
        }
    }

    fn close_all(&mut self) {
        while !self.stack.is_empty() {
            self.close();
        }
    }
}

fn count_spaces(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| b == b' ').count()
}

fn trim_cr(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// Whether `b` may not start a plain scalar (YAML's indicators, `-?:` aside).
fn indicator(b: u8) -> bool {
    matches!(
        b,
        b',' | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'%'
            | b'@'
            | b'`'
    )
}

/// The key that the text at `at` starts, if it is one (`Some(None)`: a scalar, no key);
/// `None` if this reader cannot tell.
fn key_at(text: &str, at: usize) -> Option<Option<Key<'_>>> {
    let bytes = text.as_bytes();
    let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
    let line = trim_cr(&bytes[at..end]);
    let first = *line.first()?;
    let (key_text, after) = match first {
        b'"' | b'\'' => {
            let close = 1 + memchr::memchr(first, &line[1..])?;
            let inner = &line[1..close];
            if inner.contains(&b'\\') || line.get(close + 1) == Some(&first) {
                return None;
            }
            (&text[at + 1..at + close], close + 1)
        }
        b'?' | b':' | b'-' if line.get(1).is_none_or(|&b| b == b' ') => return None,
        // A block scalar or a flow collection: no key (a flow collection as a key is the
        // parser's, which [`node`] declines).
        b'|' | b'>' | b'[' | b'{' => return Some(None),
        b if indicator(b) => return None,
        _ => {
            let mut i = 0;
            loop {
                if i == line.len() {
                    return Some(None);
                }
                match line[i] {
                    b'#' if line[i - 1] == b' ' => return Some(None),
                    b':' if line.get(i + 1).is_none_or(|&b| b == b' ') => break,
                    _ => i += 1,
                }
            }
            let key = std::str::from_utf8(&line[..i]).ok()?.trim_end_matches(' ');
            (&text[at..at + key.len()], i)
        }
    };
    let spaces = count_spaces(&line[after..]);
    let colon = after + spaces;
    if line.get(colon) != Some(&b':') {
        // A quoted scalar, not a key (a plain text without `: ` has returned above).
        return if first == b'"' || first == b'\'' {
            Some(None)
        } else {
            None
        };
    }
    if line.get(colon + 1).is_some_and(|&b| b != b' ') || colon > 1024 {
        return None;
    }
    Some(Some(Key {
        text: key_text,
        start: at,
        colon_end: at + colon + 1,
    }))
}

/// The node that stands on the line from `from` (just past a colon or a dash) to `end`.
fn node(text: &str, from: usize, end: usize) -> Option<Node> {
    let bytes = text.as_bytes();
    let line = trim_cr(&bytes[from..end]);
    let spaces = count_spaces(line);
    let start = from + spaces;
    let rest = &line[spaces..];
    let Some(&first) = rest.first() else {
        return Some(Node::Open);
    };
    // What may follow a value on its line: blanks and a comment.
    let ends = |tail: &[u8]| {
        let t = tail.trim_ascii_start();
        t.is_empty() || (t.len() < tail.len() && t[0] == b'#')
    };
    match first {
        b'#' if spaces > 0 => Some(Node::Open),
        b'{' | b'[' => {
            let len = flow(rest)?;
            ends(&rest[len..]).then_some(Node::Empty)
        }
        b'|' | b'>' => {
            let header = &rest[1..];
            let n = header
                .iter()
                .take_while(|&&b| matches!(b, b'+' | b'-'))
                .count();
            (n <= 1 && ends(&header[n..])).then_some(Node::Block)
        }
        b'"' | b'\'' => {
            let close = 1 + memchr::memchr(first, &rest[1..])?;
            let mut close = close;
            if first == b'"' {
                // Past escaped quotes; the text is then refused by the caller if it matters.
                while rest[..close]
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b'\\')
                    .count()
                    % 2
                    == 1
                {
                    close += 1 + memchr::memchr(b'"', &rest[close + 1..])?;
                }
            } else {
                while rest.get(close + 1) == Some(&b'\'') {
                    close += 2 + memchr::memchr(b'\'', &rest[close + 2..])?;
                }
            }
            if !ends(&rest[close + 1..]) {
                return None;
            }
            let style = if first == b'"' {
                Style::Double
            } else {
                Style::Single
            };
            Some(Node::Scalar(start..start + close + 1, style))
        }
        b'?' | b':' | b'-' if rest.get(1).is_none_or(|&b| b == b' ') => None,
        b if indicator(b) => None,
        _ => {
            let mut len = rest.len();
            for i in 0..rest.len() {
                match rest[i] {
                    b'#' if rest[i - 1] == b' ' => {
                        len = i;
                        break;
                    }
                    b':' if rest.get(i + 1).is_none_or(|&b| b == b' ') => return None,
                    _ => {}
                }
            }
            let value = rest[..len].trim_ascii_end();
            Some(Node::Scalar(start..start + value.len(), Style::Plain))
        }
    }
}

/// The length of the flow collection that `text` starts with (`[443, 8443]`, `{a: b}`), if it
/// closes on the line, holds nothing this reader is unsure of, and no key a split reference
/// may use (a mapping with one is the parser's to read).
fn flow(text: &[u8]) -> Option<usize> {
    let mut closers = Vec::new();
    let mut i = 0;
    let skip = |i: &mut usize| *i += count_spaces(&text[*i..]);
    loop {
        // At the start of an item, or of a collection.
        skip(&mut i);
        match text.get(i) {
            Some(&open @ (b'[' | b'{')) => {
                closers.push(if open == b'[' { b']' } else { b'}' });
                i += 1;
                continue;
            }
            Some(&close) if Some(&close) == closers.last() => {
                // An empty collection, or a trailing comma.
                let before = text[..i].trim_ascii_end();
                if !(before.ends_with(b"[") || before.ends_with(b"{") || before.ends_with(b",")) {
                    return None;
                }
                if before.ends_with(b",")
                    && text[..before.len() - 1].trim_ascii_end().ends_with(b"[")
                {
                    return None;
                }
            }
            Some(_) => {
                let in_map = closers.last() == Some(&b'}');
                let (item_end, key) = flow_scalar(text, i, in_map)?;
                i = item_end;
                skip(&mut i);
                if in_map {
                    if text.get(i) != Some(&b':')
                        || text.get(i + 1) != Some(&b' ')
                        || KEYS.contains(&std::str::from_utf8(key).ok()?)
                    {
                        return None;
                    }
                    i += 1;
                    skip(&mut i);
                    if matches!(text.get(i), Some(b'[' | b'{')) {
                        continue;
                    }
                    i = flow_scalar(text, i, false)?.0;
                    skip(&mut i);
                }
            }
            None => return None,
        }
        // After an item (or an empty collection's opening): a comma, or closings.
        loop {
            match text.get(i) {
                Some(b',') => {
                    i += 1;
                    break;
                }
                Some(&close) if Some(&close) == closers.last() => {
                    closers.pop();
                    i += 1;
                    if closers.is_empty() {
                        return Some(i);
                    }
                    skip(&mut i);
                }
                _ => return None,
            }
        }
    }
}

/// A scalar item (or a mapping's `key`) of a flow collection at `at`: where it ends and its
/// text (quotes removed).
fn flow_scalar(text: &[u8], at: usize, key: bool) -> Option<(usize, &[u8])> {
    let rest = &text[at..];
    let first = *rest.first()?;
    match first {
        b'"' | b'\'' => {
            let close = 1 + memchr::memchr(first, &rest[1..])?;
            let inner = &rest[1..close];
            if inner.contains(&b'\\') || rest.get(close + 1) == Some(&first) {
                return None;
            }
            Some((at + close + 1, inner))
        }
        b'?' | b':' | b'-' if rest.get(1).is_none_or(|&b| matches!(b, b' ' | b',')) => None,
        b if indicator(b) => None,
        _ => {
            let len = rest
                .iter()
                .position(|&b| matches!(b, b',' | b'[' | b']' | b'{' | b'}' | b'#' | b':'))
                .unwrap_or(rest.len());
            match rest.get(len) {
                Some(b':') if key => {
                    let item = rest[..len].trim_ascii_end();
                    Some((at + item.len(), item))
                }
                // A `:` or `#` inside a plain item: a pair or a comment, or not: the parser's.
                Some(b':' | b'#' | b'[' | b'{') | None => None,
                _ => {
                    let item = rest[..len].trim_ascii_end();
                    Some((at + item.len(), item))
                }
            }
        }
    }
}
