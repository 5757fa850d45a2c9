//! A JSON tree that remembers where each value came from.
//!
//! `serde_json::Value` forgets positions and silently keeps the last of two
//! duplicate keys. A policy validator needs both: every error names its line
//! and column, and `{"action": "allow", "action": "deny"}` must be refused, not
//! resolved by accident. Syntax is checked by `serde_json` first (its messages
//! are good and it bounds nesting depth); this module then walks the
//! known-valid text once more, recording offsets.

use std::borrow::Cow;

use serde::de::IgnoredAny;

/// A JSON value with the byte offset where it starts in the source.
///
/// Strings and keys borrow from the source unless they contain escapes: a
/// policy of 10,000 rules has about a million of them, and in a Wasm VM the
/// peak of loading the policy stays resident for the VM's life.
#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Byte offset of the first character of the value.
    pub offset: usize,
    /// The value.
    pub kind: Kind<'a>,
}

/// The value part of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    Null,
    Bool(bool),
    Number(Number<'a>),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Members in source order; keys carry their own offsets for error reports.
    Object(Vec<Member<'a>>),
    /// An array left unread by [`parse_deferring`]: where each of its items
    /// starts, for [`parse_at`] to read when its turn comes. Four bytes an
    /// item, where a node takes twenty.
    UnreadArray(Vec<u32>),
}

/// One `"key": value` member of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    pub key_offset: usize,
    pub value: Node<'a>,
}

/// A syntax error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A number, as its text (checked by serde_json): kept as text so that a
/// node stays small, which matters for the arrays of unread rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number<'a>(&'a str);

impl Number<'_> {
    /// The number, if it is a non-negative integer that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        serde_json::from_str::<serde_json::Number>(self.0).ok()?.as_u64()
    }
}

impl std::fmt::Display for Number<'_> {
    /// As serde_json writes the number (`1e3` is `1000.0`), the way errors have always shown it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::from_str::<serde_json::Number>(self.0) {
            Ok(n) => n.fmt(f),
            Err(_) => f.write_str(self.0),
        }
    }
}

impl Kind<'_> {
    /// The JSON type name, for "expected a string, found a number" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Object(_) => "an object",
            Kind::UnreadArray(_) => "an array",
        }
    }
}

/// Parse `src` into a positioned tree.
pub fn parse(src: &str) -> Result<Node<'_>, SyntaxError> {
    parse_deferring(src, &[])
}

/// Parse `src` into a positioned tree, except that the arrays that the root
/// object's members named in `deferred` hold are left unread
/// ([`Kind::UnreadArray`]: their items' offsets).
///
/// A policy's rules are validated one at a time, so only one rule's tree is
/// alive at once: the whole document's tree of a 10,000-rule policy is
/// several times the size of the compiled policy, and in a Wasm VM the peak of
/// loading stays resident for the VM's life.
pub fn parse_deferring<'a>(src: &'a str, deferred: &[&str]) -> Result<Node<'a>, SyntaxError> {
    if let Err(e) = serde_json::from_str::<IgnoredAny>(src) {
        let full = e.to_string();
        // serde_json appends " at line L column C"; we report those separately.
        let message = match full.rfind(" at line ") {
            Some(i) => full[..i].to_string(),
            None => full,
        };
        return Err(SyntaxError { line: e.line().max(1), column: e.column().max(1), message });
    }
    let mut scanner = Scanner { src, bytes: src.as_bytes(), pos: 0, depth: 0, deferred };
    scanner.skip_ws();
    let node = scanner.value();
    match node {
        Some(n) => Ok(n),
        // Unreachable for text serde_json accepted; reported rather than trusted.
        None => {
            let (line, column) = line_col(src, scanner.pos);
            Err(SyntaxError { line, column, message: "could not be read as JSON".into() })
        }
    }
}

/// Read the value that starts at `offset` of `src`, a text [`parse_deferring`]
/// accepted (an offset in a [`Kind::UnreadArray`]), with offsets into `src`.
/// `None` only if `offset` is not where a value starts.
pub fn parse_at(src: &str, offset: usize) -> Option<Node<'_>> {
    let mut scanner = Scanner { src, bytes: src.as_bytes(), pos: offset, depth: 0, deferred: &[] };
    scanner.value()
}

/// 1-based line and character column of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).map(|s| s.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

struct Scanner<'a, 'd> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// How many objects and arrays enclose the current position.
    depth: usize,
    /// Root members whose array elements are left unread.
    deferred: &'d [&'d str],
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Some(())
        } else {
            None
        }
    }

    fn value(&mut self) -> Option<Node<'a>> {
        self.skip_ws();
        let offset = self.pos;
        let kind = match self.peek()? {
            b'{' | b'[' => {
                self.depth += 1;
                let kind = if self.peek() == Some(b'{') { self.object() } else { self.array() };
                self.depth -= 1;
                kind?
            }
            b'"' => Kind::String(self.string()?),
            b't' => self.literal("true", Kind::Bool(true))?,
            b'f' => self.literal("false", Kind::Bool(false))?,
            b'n' => self.literal("null", Kind::Null)?,
            _ => self.number()?,
        };
        Some(Node { offset, kind })
    }

    fn literal(&mut self, word: &str, kind: Kind<'a>) -> Option<Kind<'a>> {
        if self.bytes.get(self.pos..self.pos + word.len())? == word.as_bytes() {
            self.pos += word.len();
            Some(kind)
        } else {
            None
        }
    }

    fn number(&mut self) -> Option<Kind<'a>> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.pos += 1;
        }
        let text = self.src.get(start..self.pos)?;
        serde_json::from_str::<serde_json::Number>(text).ok().map(|_| Kind::Number(Number(text)))
    }

    /// A string token: borrowed when it has no escapes (serde_json has already
    /// checked the text, so it holds no raw control characters), else decoded by
    /// serde_json so escapes follow the standard exactly.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let escaped = self.skip_string()?;
        if escaped {
            serde_json::from_str::<String>(self.src.get(start..self.pos)?).ok().map(Cow::Owned)
        } else {
            self.src.get(start + 1..self.pos - 1).map(Cow::Borrowed)
        }
    }

    /// Step over a string token; whether it holds escapes.
    fn skip_string(&mut self) -> Option<bool> {
        self.pos += 1; // opening quote
        let mut escaped = false;
        loop {
            match self.peek()? {
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                b'"' => {
                    self.pos += 1;
                    return Some(escaped);
                }
                _ => self.pos += 1,
            }
        }
    }

    /// Step over the object or array that starts here, leaving it unread.
    fn skip_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.skip_string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.pos += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// An array, whose items are read.
    fn array(&mut self) -> Option<Kind<'a>> {
        let mut items = Vec::new();
        self.items(|scanner| {
            items.push(scanner.value()?);
            Some(())
        })?;
        Some(Kind::Array(items))
    }

    /// An array left unread: its items are stepped over, their offsets kept.
    fn unread_array(&mut self) -> Option<Kind<'a>> {
        let mut offsets = Vec::new();
        self.items(|scanner| {
            offsets.push(u32::try_from(scanner.pos).ok()?);
            match scanner.peek()? {
                b'{' | b'[' => scanner.skip_container(),
                _ => scanner.value().map(drop),
            }
        })?;
        // The offsets stay while every rule is validated: no slack.
        offsets.shrink_to_fit();
        Some(Kind::UnreadArray(offsets))
    }

    /// The items of the array that starts here, each read by `item` (which
    /// starts at the item's first character).
    fn items(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.skip_ws();
            item(self)?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self) -> Option<Kind<'a>> {
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Some(Kind::Object(members));
        }
        loop {
            self.skip_ws();
            let key_offset = self.pos;
            let key = self.string()?;
            self.expect(b':')?;
            // Depth 1: a member of the root object.
            let defer = self.depth == 1 && self.deferred.contains(&key.as_ref());
            self.skip_ws();
            let value = match self.peek()? {
                b'[' if defer => Node { offset: self.pos, kind: self.unread_array()? },
                _ => self.value()?,
            };
            members.push(Member { key, key_offset, value });
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(Kind::Object(members));
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_offsets_of_nested_values() {
        let src = "{\n  \"a\": [1, \"x\"],\n  \"b\": {\"c\": true}\n}";
        let root = parse(src).unwrap();
        let Kind::Object(members) = &root.kind else { panic!("object expected") };
        assert_eq!(members[0].key, "a");
        let Kind::Array(items) = &members[0].value.kind else { panic!("array expected") };
        assert_eq!(line_col(src, items[1].offset), (2, 12));
        assert_eq!(line_col(src, members[1].key_offset), (3, 3));
    }

    #[test]
    fn deferred_lists_leave_their_containers_unread_and_parse_at_reads_them_in_place() {
        let src = "{\"rules\": [{\"a\": [\"]}\", {}]}, 7, []], \"other\": [{\"b\": 1}],\n \"n\": {\"rules\": [{}]}}";
        let root = parse_deferring(src, &["rules"]).unwrap();
        let Kind::Object(members) = &root.kind else { panic!("object expected") };
        let Kind::UnreadArray(offsets) = &members[0].value.kind else { panic!("unread array expected") };
        // Read in place, each item is what the whole-document parse holds there, offsets included.
        let whole = parse(src).unwrap();
        let Kind::Object(whole_members) = &whole.kind else { panic!("object expected") };
        let Kind::Array(whole_items) = &whole_members[0].value.kind else { panic!("array expected") };
        let read: Vec<Node> = offsets.iter().map(|&o| parse_at(src, o as usize).unwrap()).collect();
        assert_eq!(&read, whole_items);
        assert_eq!(members[0].value.offset, whole_members[0].value.offset);
        // Only the root's named members are deferred.
        assert_eq!(members[1].value, whole_members[1].value);
        assert_eq!(members[2].value, whole_members[2].value, "a nested \"rules\" is read whole");
    }

    #[test]
    fn keeps_duplicate_keys_for_the_validator_to_refuse() {
        let root = parse(r#"{"k": 1, "k": 2}"#).unwrap();
        let Kind::Object(members) = &root.kind else { panic!("object expected") };
        assert_eq!(members.len(), 2);
    }

    #[test]
    fn decodes_escapes_exactly() {
        let root = parse(r#""a\u00e9\"\\\/\n""#).unwrap();
        assert_eq!(root.kind, Kind::String("a\u{e9}\"\\/\n".into()));
    }

    #[test]
    fn plain_strings_and_keys_borrow_the_source_escaped_ones_are_decoded() {
        let root = parse(r#"{"plain": "café", "k\u0065y": "x\ty", "": ""}"#).unwrap();
        let Kind::Object(members) = &root.kind else { panic!("object expected") };
        let got: Vec<(&str, bool, Option<&str>, bool)> = members
            .iter()
            .map(|m| {
                let Kind::String(v) = &m.value.kind else { panic!("string expected") };
                (m.key.as_ref(), matches!(m.key, Cow::Borrowed(_)), Some(v.as_ref()), matches!(v, Cow::Borrowed(_)))
            })
            .collect();
        assert_eq!(got, [("plain", true, Some("caf\u{e9}"), true), ("key", false, Some("x\ty"), false), ("", true, Some(""), true)]);
        let root = parse(r#"["no escapes here"]"#).unwrap();
        let Kind::Array(items) = &root.kind else { panic!("array expected") };
        assert!(matches!(&items[0].kind, Kind::String(Cow::Borrowed("no escapes here"))));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse("{\n  \"a\": 1,\n}").unwrap_err();
        assert_eq!((err.line, err.column), (3, 1));
        assert_eq!(err.message, "key must be a string");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(line_col("\"é\" x", 5), (1, 5));
    }
}
