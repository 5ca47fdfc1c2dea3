//! JSON text as PostgreSQL reads it, and `jsonb` values.
//!
//! [`parse`] reads text with PostgreSQL's JSON grammar into [`Node`]s that
//! keep the text each value was written as: a `json` value is that text,
//! and `json -> 'a'` returns the member's text as written, spaces and all.
//! [`Jsonb`] is the value PostgreSQL's `jsonb` stores: object keys sorted
//! (shorter keys first, then by bytes) and unique (the last one written
//! wins), numbers as `numeric` prints them (`1e3` is `1000`, `1.50` stays
//! `1.50`), strings with their escapes decoded. Its text
//! ([`Jsonb::to_string`]) is PostgreSQL's: `{"a": 1, "b": [1, 2]}`.

use std::fmt::{self, Write};

use crate::error::{Error, ErrorFields, InputError, Result};

/// How deep arrays and objects may nest. PostgreSQL's limit is its stack
/// depth; this one keeps the recursive parser, printers, operators and
/// drops well inside a worker thread's 2 MiB stack (a debug build ran out
/// near 500 levels).
pub const MAX_DEPTH: usize = 128;

/// PostgreSQL's `numeric` holds 131072 digits before the point and 16383
/// after it.
const MAX_INTEGER_DIGITS: usize = 131_072;
const MAX_SCALE: usize = 16_383;

/// A parsed JSON value and the text it was written as.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub text: &'a str,
    pub value: Value<'a>,
}

#[derive(Debug, Clone)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    /// The number as written (`1.0e2`).
    Number(&'a str),
    String(String),
    Array(Vec<Node<'a>>),
    /// Members in the order written, repeated keys included.
    Object(Vec<(String, Node<'a>)>),
}

/// A `jsonb` value.
#[derive(Debug, Clone, PartialEq)]
pub enum Jsonb {
    Null,
    Bool(bool),
    /// As `numeric` prints it (see [`numeric_text`]).
    Number(String),
    String(String),
    Array(Vec<Jsonb>),
    /// Sorted and unique by key, as [`Jsonb::object`] makes it.
    Object(Vec<(String, Jsonb)>),
}

/// Reads `text` as JSON; bad text is 22P02 as PostgreSQL reports it.
pub fn parse(text: &str) -> Result<Node<'_>> {
    let mut parser = Parser { text, at: 0 };
    let node = parser.value(0)?;
    parser.skip_space();
    match parser.at < text.len() {
        true => Err(parser.expected("end of input")),
        false => Ok(node),
    }
}

/// Reads `text` as a `jsonb` value.
pub fn parse_jsonb(text: &str) -> Result<Jsonb> {
    parse(text)?.to_jsonb()
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn value(&mut self, depth: usize) -> Result<Node<'a>> {
        if depth > MAX_DEPTH {
            return Err(Error::input(
                InputError::ProgramLimitExceeded,
                format!("JSON nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.skip_space();
        let start = self.at;
        let value = match self.peek() {
            None => return Err(self.ended()),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(b']' | b'}' | b',' | b':') => return Err(self.expected("JSON value")),
            Some(_) => match self.token() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                other => return Err(self.invalid_token(other)),
            },
        };
        Ok(Node {
            text: &self.text[start..self.at],
            value,
        })
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>> {
        self.at += 1;
        let mut members = Vec::new();
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return Err(self.expected("string"));
            }
            let key = self.string()?;
            self.skip_space();
            if self.peek() != Some(b':') {
                return Err(self.expected("\":\""));
            }
            self.at += 1;
            members.push((key, self.value(depth + 1)?));
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.expected("\",\" or \"}\"")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.expected("\",\" or \"]\"")),
            }
        }
    }

    /// A string token, its escapes decoded.
    fn string(&mut self) -> Result<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let Some(c) = rest.chars().next() else {
                return Err(self.ended());
            };
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape()?),
                c if (c as u32) < 0x20 => {
                    return Err(self.syntax(format!(
                        "Character with value 0x{:02x} must be escaped.",
                        c as u32
                    )))
                }
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char> {
        let Some(c) = self.text[self.at..].chars().next() else {
            return Err(self.ended());
        };
        self.at += c.len_utf8();
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = self.hex4()?;
                let code = match high {
                    0xD800..=0xDBFF => {
                        if !self.text[self.at..].starts_with("\\u") {
                            return Err(self.unicode(
                                "Unicode high surrogate must not be followed by a low surrogate.",
                            ));
                        }
                        self.at += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.unicode(
                                "Unicode high surrogate must not be followed by a low surrogate.",
                            ));
                        }
                        0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(
                            self.unicode("Unicode low surrogate must follow a high surrogate.")
                        )
                    }
                    code => code,
                };
                char::from_u32(code).ok_or_else(|| self.unicode("Invalid Unicode escape."))?
            }
            other => return Err(self.syntax(format!("Escape sequence \"\\{other}\" is invalid."))),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.at..self.at + 4);
        let value = digits
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok());
        match value {
            Some(v) => {
                self.at += 4;
                Ok(v)
            }
            None => {
                Err(self.syntax("\"\\u\" must be followed by four hexadecimal digits.".to_string()))
            }
        }
    }

    /// A number token: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Result<&'a str> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        let mut at = start;
        if bytes[at] == b'-' {
            at += 1;
        }
        let int_start = at;
        let int_digits = digits(&mut at);
        let mut valid = int_digits > 0 && !(int_digits > 1 && bytes[int_start] == b'0');
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            valid &= digits(&mut at) > 0;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            valid &= digits(&mut at) > 0;
        }
        // A number running into letters (`1x`) is one bad token.
        let token_end = at
            + self.text[at..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
        if !valid || token_end > at {
            return Err(self.invalid_token(&self.text[start..token_end.max(at)]));
        }
        self.at = at;
        Ok(&self.text[start..at])
    }

    /// A run of letters, digits and underscores (a keyword or a bad token).
    fn token(&mut self) -> &'a str {
        let start = self.at;
        let len = self.text[start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count()
            .max(self.text[start..].chars().next().map_or(0, char::len_utf8));
        self.at += len;
        &self.text[start..self.at]
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn syntax(&self, detail: String) -> Error {
        // PostgreSQL's CONTEXT quotes the input up to the error.
        let mut at = self.at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let upto = &self.text[..at];
        let fields = ErrorFields {
            detail: Some(detail),
            context: Some(format!("JSON data, line 1: {upto}")),
            ..Default::default()
        };
        Error::input_with(
            InputError::InvalidText,
            "invalid input syntax for type json",
            &fields,
        )
    }

    fn unicode(&self, detail: &str) -> Error {
        self.syntax(detail.to_string())
    }

    fn ended(&self) -> Error {
        self.syntax("The input string ended unexpectedly.".to_string())
    }

    fn invalid_token(&self, token: &str) -> Error {
        self.syntax(format!("Token \"{token}\" is invalid."))
    }

    fn expected(&mut self, what: &str) -> Error {
        if self.at >= self.text.len() {
            return self.ended();
        }
        let start = self.at;
        let token = match self.peek() {
            Some(b'"') => {
                let _ = self.string();
                &self.text[start..self.at.max(start + 1).min(self.text.len())]
            }
            _ => self.token(),
        };
        // A word that is no JSON token is reported as such.
        let word = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let keyword = matches!(token, "true" | "false" | "null");
        if word && !keyword && !token.starts_with(|c: char| c.is_ascii_digit()) {
            let token = token.to_string();
            return self.invalid_token(&token);
        }
        let token = token.to_string();
        self.syntax(format!("Expected {what}, but found \"{token}\"."))
    }
}

impl Node<'_> {
    /// The value as `jsonb` stores it.
    pub fn to_jsonb(&self) -> Result<Jsonb> {
        Ok(match &self.value {
            Value::Null => Jsonb::Null,
            Value::Bool(b) => Jsonb::Bool(*b),
            Value::Number(n) => Jsonb::Number(numeric_text(n)?),
            Value::String(s) => Jsonb::String(sql_text(s)?),
            Value::Array(items) => {
                Jsonb::Array(items.iter().map(Node::to_jsonb).collect::<Result<_>>()?)
            }
            Value::Object(members) => Jsonb::object(
                members
                    .iter()
                    .map(|(k, v)| Ok((sql_text(k)?, v.to_jsonb()?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

/// A decoded JSON string as SQL text (in `jsonb`, or given by `->>`):
/// `\u0000` (which `json` keeps as written) has no place in text (22P05).
pub fn sql_text(s: &str) -> Result<String> {
    match s.contains('\0') {
        true => {
            let fields = ErrorFields {
                detail: Some("\\u0000 cannot be converted to text.".into()),
                ..Default::default()
            };
            Err(Error::input_with(
                InputError::UntranslatableCharacter,
                "unsupported Unicode escape sequence",
                &fields,
            ))
        }
        false => Ok(s.to_string()),
    }
}

/// A JSON number token (already checked against the grammar) as
/// PostgreSQL's `numeric` prints it: the exponent applied, the scale
/// that of the digits written after the point less the exponent, at
/// least 0 (`1.0e2` is `100`, `1.50` is `1.50`, `1E-2` is `0.01`, `-0`
/// is `0`).
pub fn numeric_text(token: &str) -> Result<String> {
    let (negative, unsigned) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let overflow = || Error::input(InputError::OutOfRange, "value overflows numeric format");
    // Past these bounds no value fits (and none is written out).
    let bound = (MAX_INTEGER_DIGITS + MAX_SCALE) as i64;
    let exponent: i64 = exponent
        .parse()
        .ok()
        .filter(|e: &i64| (-bound..=bound).contains(e))
        .ok_or_else(overflow)?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int}{frac}");
    // The value is digits × 10^shift.
    let shift = exponent - frac.len() as i64;
    let mut text = if shift >= 0 {
        let mut t = digits;
        t.extend(std::iter::repeat_n('0', shift as usize));
        t
    } else {
        let scale = (-shift) as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (i, f) = padded.split_at(padded.len() - scale);
        format!("{i}.{f}")
    };
    // Leading zeros of the integer part, but one.
    let int_len = text.find('.').unwrap_or(text.len());
    let zeros = text[..int_len - 1]
        .bytes()
        .take_while(|b| *b == b'0')
        .count();
    text.drain(..zeros);
    let (int_part, scale) = match text.split_once('.') {
        Some((i, f)) => (i.len(), f.len()),
        None => (text.len(), 0),
    };
    if int_part > MAX_INTEGER_DIGITS || scale > MAX_SCALE {
        return Err(overflow());
    }
    let zero = text.bytes().all(|b| b == b'0' || b == b'.');
    Ok(match negative && !zero {
        true => format!("-{text}"),
        false => text,
    })
}

/// A normalized number without trailing fraction zeros, for comparing
/// numbers by value (`1.0` and `1` are equal in `jsonb`).
fn number_value(text: &str) -> &str {
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.'),
        false => text,
    }
}

impl Jsonb {
    /// An object of `members`: sorted as `jsonb` sorts keys, and the last
    /// of repeated keys kept.
    pub fn object(members: Vec<(String, Jsonb)>) -> Jsonb {
        let mut members: Vec<(usize, (String, Jsonb))> = members.into_iter().enumerate().collect();
        // Sort by key, the last written first among equal keys, then keep
        // the first of each key.
        members.sort_by(|(ia, (a, _)), (ib, (b, _))| key_order(a, b).then_with(|| ib.cmp(ia)));
        let mut unique: Vec<(String, Jsonb)> = Vec::with_capacity(members.len());
        for (_, (key, value)) in members {
            if unique.last().is_none_or(|(k, _)| *k != key) {
                unique.push((key, value));
            }
        }
        Jsonb::Object(unique)
    }

    /// `jsonb`'s equality: numbers by value.
    pub fn same(&self, other: &Jsonb) -> bool {
        match (self, other) {
            (Jsonb::Number(a), Jsonb::Number(b)) => number_value(a) == number_value(b),
            (Jsonb::Array(a), Jsonb::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Jsonb::Object(a), Jsonb::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same(vb))
            }
            (a, b) => a == b,
        }
    }

    /// The member `key` of an object.
    pub fn field(&self, key: &str) -> Option<&Jsonb> {
        match self {
            Jsonb::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `jsonb_typeof`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Jsonb::Null => "null",
            Jsonb::Bool(_) => "boolean",
            Jsonb::Number(_) => "number",
            Jsonb::String(_) => "string",
            Jsonb::Array(_) => "array",
            Jsonb::Object(_) => "object",
        }
    }

    /// The value as `->>` gives it: a string's contents, JSON null as
    /// SQL NULL, anything else its JSON text.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Jsonb::Null => None,
            Jsonb::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `jsonb_pretty`: four spaces per level, one member or item a line.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, level: usize) {
        let indent = |out: &mut String, level: usize| {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', 4 * level));
        };
        match self {
            Jsonb::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, level + 1);
                    item.write_pretty(out, level + 1);
                }
                indent(out, level);
                out.push(']');
            }
            Jsonb::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    indent(out, level + 1);
                    write_string(out, key);
                    out.push_str(": ");
                    value.write_pretty(out, level + 1);
                }
                indent(out, level);
                out.push('}');
            }
            scalar => {
                let _ = write!(out, "{scalar}");
            }
        }
    }
}

/// The order of `jsonb` object keys: shorter first, then by bytes.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

impl fmt::Display for Jsonb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jsonb::Null => f.write_str("null"),
            Jsonb::Bool(b) => write!(f, "{b}"),
            Jsonb::Number(n) => f.write_str(n),
            Jsonb::String(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                write_string(&mut out, s);
                f.write_str(&out)
            }
            Jsonb::Array(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_char(']')
            }
            Jsonb::Object(members) => {
                f.write_char('{')?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let mut k = String::with_capacity(key.len() + 2);
                    write_string(&mut k, key);
                    write!(f, "{k}: {value}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// `s` as a JSON string, escaped as PostgreSQL escapes it: quotes,
/// backslashes and control characters only.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a JSON string.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonb(text: &str) -> String {
        parse_jsonb(text).unwrap().to_string()
    }

    #[test]
    fn jsonb_text_is_postgresql_s() {
        assert_eq!(
            jsonb(r#"{"bb":1, "a":2, "c":3, "é":4, "B":5}"#),
            r#"{"B": 5, "a": 2, "c": 3, "bb": 1, "é": 4}"#
        );
        assert_eq!(jsonb(r#"{"a":1,"a":{"x":null}}"#), r#"{"a": {"x": null}}"#);
        assert_eq!(
            jsonb("[1e3, -0, 1.0e2, 1E-2, 0.0, -1.50, 1e-0, -0.0]"),
            "[1000, 0, 100, 0.01, 0.0, -1.50, 1, 0.0]"
        );
        assert_eq!(jsonb(r#""\u00e9\n\"""#), "\"é\\n\\\"\"");
        assert_eq!(jsonb(" [ [], {} ] "), "[[], {}]");
        assert_eq!(jsonb(r#""\ud83d\ude00""#), "\"😀\"");
    }

    #[test]
    fn json_keeps_its_text() {
        let node = parse(r#"{"b": 1, "a": [1,  2.50]}"#).unwrap();
        let Value::Object(members) = node.value else {
            panic!("an object")
        };
        assert_eq!(members[1].1.text, "[1,  2.50]");
    }

    #[test]
    fn bad_json_is_22p02_with_postgresql_s_detail() {
        for (text, detail) in [
            ("nul", "Token \"nul\" is invalid."),
            ("{\"a\":", "The input string ended unexpectedly."),
            ("[1,]", "Expected JSON value, but found \"]\"."),
            ("01", "Token \"01\" is invalid."),
            ("[1] x", "Token \"x\" is invalid."),
            ("[1] 2", "Expected end of input, but found \"2\"."),
            ("{1:2}", "Expected string, but found \"1\"."),
            ("{bad", "Token \"bad\" is invalid."),
        ] {
            let Error::Input(InputError::InvalidText, err) = parse(text).unwrap_err() else {
                panic!("{text}: not 22P02");
            };
            let (message, fields) = ErrorFields::split(&err);
            assert_eq!(message, "invalid input syntax for type json", "{text}");
            assert_eq!(fields.detail.as_deref(), Some(detail), "{text}");
        }
        assert!(parse(r#""\u0000""#).is_ok());
        assert!(parse("\"\\é\"").is_err());
        assert!(parse_jsonb("1e-9223372036854775808").is_err());
        assert!(parse_jsonb("1e131072").is_err());
        assert!(parse_jsonb("1e-16384").is_err());
        assert!(parse_jsonb(r#""\u0000""#).is_err());
        let deep = "[".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn pretty_is_postgresql_s() {
        assert_eq!(
            parse_jsonb(r#"{"a":[1,{"b":2}],"c":{}}"#).unwrap().pretty(),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": 2\n        }\n    ],\n    \"c\": {\n    }\n}"
        );
        assert_eq!(parse_jsonb("[]").unwrap().pretty(), "[\n]");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(parse_jsonb("1.0").unwrap().same(&parse_jsonb("1").unwrap()));
        assert!(!parse_jsonb("10").unwrap().same(&parse_jsonb("1").unwrap()));
    }
}
