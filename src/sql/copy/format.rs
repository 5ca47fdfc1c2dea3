//! COPY's three data formats, as PostgreSQL reads and writes them: text
//! (delimited fields with backslash escapes), CSV (RFC 4180 quoting) and
//! binary (PGCOPY: a header, length-prefixed fields, a trailer).
//!
//! [`Decoder`] splits a COPY FROM stream that arrives in arbitrary pieces
//! into records and fields; it holds at most one incomplete record (up to
//! [`MAX_RECORD`] bytes) plus the piece being read. The `write_*`
//! functions encode one field of COPY TO.

use std::borrow::Cow;

use bytes::{Buf, BytesMut};

use crate::error::{Error, InputError, Result};

/// The longest record (line, CSV record or binary tuple) a COPY FROM
/// reads. PostgreSQL allows a field of up to 1 GiB; ShardForge holds one
/// record whole while it reads it, so it takes less.
pub const MAX_RECORD: usize = 64 << 20;

/// The signature a binary COPY stream starts with.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Binary,
}

impl Format {
    /// The format code of CopyInResponse / CopyOutResponse.
    pub fn code(self) -> i8 {
        match self {
            Format::Binary => 1,
            Format::Text | Format::Csv => 0,
        }
    }
}

/// How a COPY's data is laid out (its WITH options, checked).
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub delimiter: u8,
    pub null: String,
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
}

/// One field of a record: None for NULL; `quoted` says a CSV field was
/// written in quotes (which a null string does not match).
pub struct Field<'r> {
    pub value: Option<Cow<'r, [u8]>>,
    pub quoted: bool,
}

/// Splits a COPY FROM stream into records (see the module docs).
pub struct Decoder {
    layout: Layout,
    buf: BytesMut,
    /// How far the current record was scanned for its end, and whether
    /// the scan stopped inside CSV quotes.
    scanned: usize,
    in_quotes: bool,
    /// The line the next record starts on (1-based, as PostgreSQL counts
    /// them in its errors; a binary stream counts tuples).
    line: u64,
    header_pending: bool,
    /// The end-of-data marker (`\.` or the binary trailer) was read: the
    /// rest of the stream is ignored.
    ended: bool,
}

impl Decoder {
    pub fn new(layout: Layout) -> Self {
        let header_pending = layout.header || layout.format == Format::Binary;
        Decoder {
            layout,
            buf: BytesMut::new(),
            scanned: 0,
            in_quotes: false,
            line: 1,
            header_pending,
            ended: false,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The line (or, in binary, the tuple) the last record returned began on.
    pub fn line(&self) -> u64 {
        self.line - 1
    }

    /// Takes the next piece of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.ended {
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete record, or None until more data comes. With
    /// `last`, the stream has ended: what remains is the last record.
    pub fn next_record(&mut self, last: bool) -> Result<Option<BytesMut>> {
        loop {
            if self.ended {
                self.buf.clear();
                return Ok(None);
            }
            let record = match self.layout.format {
                Format::Binary => self.next_tuple(last)?,
                Format::Text | Format::Csv => self.next_line(last)?,
            };
            let Some(record) = record else {
                if self.buf.len() > MAX_RECORD {
                    return Err(Error::input(
                        InputError::ProgramLimitExceeded,
                        format!(
                            "COPY record at line {} is longer than the limit of {MAX_RECORD} bytes",
                            self.line
                        ),
                    ));
                }
                return Ok(None);
            };
            self.line += 1;
            if std::mem::take(&mut self.header_pending) {
                if self.layout.format == Format::Binary {
                    self.line = 1;
                }
                continue;
            }
            if self.layout.format != Format::Binary && &record[..] == b"\\." {
                self.ended = true;
                continue;
            }
            return Ok(Some(record));
        }
    }

    /// A text or CSV record: bytes up to a newline that is not escaped
    /// (text) or quoted (CSV); `\r\n` ends a line too.
    fn next_line(&mut self, last: bool) -> Result<Option<BytesMut>> {
        let csv = self.layout.format == Format::Csv;
        let (quote, escape) = (self.layout.quote, self.layout.escape);
        let mut i = self.scanned;
        let end = loop {
            let Some(&byte) = self.buf.get(i) else {
                break None;
            };
            if csv && self.in_quotes {
                if byte == escape && escape != quote {
                    match self.buf.get(i + 1) {
                        Some(&next) if next == quote || next == escape => i += 1,
                        Some(_) => {}
                        None if last => {}
                        None => break None,
                    }
                } else if byte == quote {
                    self.in_quotes = false;
                }
            } else if csv && byte == quote {
                self.in_quotes = true;
            } else if !csv && byte == b'\\' {
                // The escaped byte may not have come yet.
                if i + 1 >= self.buf.len() && !last {
                    break None;
                }
                i += 1;
            } else if byte == b'\n' {
                break Some(i);
            }
            i += 1;
        };
        let Some(end) = end else {
            self.scanned = i.min(self.buf.len());
            if !last || self.buf.is_empty() {
                return Ok(None);
            }
            if self.in_quotes {
                return Err(Error::input(
                    InputError::BadCopyFormat,
                    format!("unterminated CSV quoted field (line {})", self.line),
                ));
            }
            self.scanned = 0;
            return Ok(Some(self.buf.split()));
        };
        let mut line = self.buf.split_to(end + 1);
        line.truncate(end);
        if line.last() == Some(&b'\r') {
            line.truncate(end - 1);
        }
        self.scanned = 0;
        Ok(Some(line))
    }

    /// A binary tuple (or the header first): whole once every field's
    /// length word and bytes are in.
    fn next_tuple(&mut self, last: bool) -> Result<Option<BytesMut>> {
        let bad = |what: &str| Error::input(InputError::BadCopyFormat, what.to_string());
        let len = if self.header_pending {
            if self.buf.len() < BINARY_SIGNATURE.len() + 8 {
                None
            } else if &self.buf[..BINARY_SIGNATURE.len()] != BINARY_SIGNATURE {
                return Err(bad("COPY file signature not recognized"));
            } else {
                let flags = be_i32(&self.buf[11..15]);
                if flags & (1 << 16) != 0 {
                    return Err(bad("invalid COPY file header (WITH OIDS)"));
                }
                let extension = be_i32(&self.buf[15..19]);
                if extension < 0 {
                    return Err(bad("invalid COPY file header (missing length)"));
                }
                Some(19 + extension as usize).filter(|&n| n <= self.buf.len())
            }
        } else if self.buf.len() < 2 {
            None
        } else if i16::from_be_bytes([self.buf[0], self.buf[1]]) == -1 {
            self.ended = true;
            return Ok(None);
        } else {
            let count = i16::from_be_bytes([self.buf[0], self.buf[1]]);
            let mut at = 2usize;
            let mut complete = true;
            for _ in 0..count.max(0) {
                let Some(word) = self.buf.get(at..at + 4) else {
                    complete = false;
                    break;
                };
                let field = be_i32(word);
                at += 4 + field.max(0) as usize;
                if field < -1 || at > MAX_RECORD {
                    return Err(bad("invalid field length in binary COPY data"));
                }
            }
            Some(at).filter(|&n| complete && n <= self.buf.len())
        };
        match len {
            Some(len) => Ok(Some(self.buf.split_to(len))),
            None if last && !self.buf.is_empty() => Err(bad("unexpected EOF in COPY data")),
            None if last && self.header_pending => Err(bad("COPY file signature not recognized")),
            None => Ok(None),
        }
    }

    /// The fields of a record `next_record` returned.
    pub fn fields<'r>(&self, record: &'r [u8], out: &mut Vec<Field<'r>>) -> Result<()> {
        out.clear();
        match self.layout.format {
            Format::Text => text_fields(record, &self.layout, out),
            Format::Csv => csv_fields(record, &self.layout, out),
            Format::Binary => binary_fields(record, out),
        }
    }
}

fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Text format: fields split at the delimiter, the null string matched
/// before escapes are read (as PostgreSQL does), then `\n`, `\t`, octal
/// `\123`, hex `\x4f` and `\<other>` read.
fn text_fields<'r>(record: &'r [u8], layout: &Layout, out: &mut Vec<Field<'r>>) -> Result<()> {
    let mut start = 0;
    let mut i = 0;
    loop {
        let end = i >= record.len() || record[i] == layout.delimiter;
        if !end {
            i += if record[i] == b'\\' { 2 } else { 1 };
            continue;
        }
        let raw = &record[start..i.min(record.len())];
        let value = if raw == layout.null.as_bytes() {
            None
        } else if raw.contains(&b'\\') {
            Some(Cow::Owned(unescape(raw)))
        } else {
            Some(Cow::Borrowed(raw))
        };
        out.push(Field {
            value,
            quoted: false,
        });
        if i >= record.len() {
            return Ok(());
        }
        i += 1;
        start = i;
    }
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' || i + 1 == raw.len() {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let next = raw[i + 1];
        i += 2;
        let digits = |from: usize, max: usize, radix: u32| {
            raw[from..]
                .iter()
                .take(max)
                .take_while(|b| (**b as char).is_digit(radix))
                .count()
        };
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let n = 1 + digits(i, 2, 8);
                let octal = std::str::from_utf8(&raw[i - 1..i - 1 + n]).unwrap_or("0");
                out.push(u32::from_str_radix(octal, 8).unwrap_or(0) as u8);
                i += n - 1;
            }
            b'x' if digits(i, 2, 16) > 0 => {
                let n = digits(i, 2, 16);
                let hex = std::str::from_utf8(&raw[i..i + n]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += n;
            }
            other => out.push(other),
        }
    }
    out
}

/// CSV: fields split at the delimiter outside quotes; in quotes, the
/// escape character before a quote or escape gives that character (with
/// the default escape, a doubled quote is a quote).
fn csv_fields<'r>(record: &'r [u8], layout: &Layout, out: &mut Vec<Field<'r>>) -> Result<()> {
    let (delimiter, quote, escape) = (layout.delimiter, layout.quote, layout.escape);
    let mut i = 0;
    loop {
        let start = i;
        let mut quoted = false;
        let mut owned: Option<Vec<u8>> = None;
        let mut in_quotes = false;
        while i < record.len() {
            let byte = record[i];
            if in_quotes {
                let next = record.get(i + 1).copied();
                if byte == escape && next.is_some_and(|n| n == quote || n == escape) {
                    owned
                        .get_or_insert_with(Vec::new)
                        .push(next.unwrap_or(byte));
                    i += 2;
                    continue;
                }
                if byte == quote {
                    in_quotes = false;
                } else {
                    owned.get_or_insert_with(Vec::new).push(byte);
                }
            } else if byte == delimiter {
                break;
            } else if byte == quote {
                quoted = true;
                in_quotes = true;
                owned.get_or_insert_with(|| record[start..i].to_vec());
            } else if let Some(owned) = owned.as_mut() {
                owned.push(byte);
            }
            i += 1;
        }
        if in_quotes {
            return Err(Error::input(
                InputError::BadCopyFormat,
                "unterminated CSV quoted field",
            ));
        }
        let raw = &record[start..i];
        let value = match owned {
            Some(owned) => Some(Cow::Owned(owned)),
            None if raw == layout.null.as_bytes() => None,
            None => Some(Cow::Borrowed(raw)),
        };
        out.push(Field { value, quoted });
        if i >= record.len() {
            return Ok(());
        }
        i += 1;
    }
}

/// Binary: a field count, then each field's length (-1: NULL) and bytes.
/// The tuple was checked whole by [`Decoder::next_tuple`].
fn binary_fields<'r>(record: &'r [u8], out: &mut Vec<Field<'r>>) -> Result<()> {
    let mut rest = &record[2..];
    while rest.len() >= 4 {
        let len = rest.get_i32();
        let value = (len >= 0).then(|| {
            let (value, tail) = rest.split_at(len as usize);
            rest = tail;
            Cow::Borrowed(value)
        });
        out.push(Field {
            value,
            quoted: false,
        });
    }
    Ok(())
}

/// Appends one field of a text-format COPY TO: `value` as the type's text
/// output gave it (None: NULL), with backslash escapes.
pub fn write_text(out: &mut Vec<u8>, value: Option<&[u8]>, layout: &Layout) {
    let Some(value) = value else {
        out.extend_from_slice(layout.null.as_bytes());
        return;
    };
    for &byte in value {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            11 => out.extend_from_slice(b"\\v"),
            b if b == layout.delimiter => out.extend_from_slice(&[b'\\', b]),
            b => out.push(b),
        }
    }
}

/// Appends one field of a CSV COPY TO: quoted when `force` says so or when
/// it holds the delimiter, a quote, a line break, or reads as the null
/// string (or is the end marker `\.`).
pub fn write_csv(out: &mut Vec<u8>, value: Option<&[u8]>, layout: &Layout, force: bool) {
    let Some(value) = value else {
        out.extend_from_slice(layout.null.as_bytes());
        return;
    };
    let special =
        |b: &u8| *b == layout.delimiter || *b == layout.quote || *b == b'\n' || *b == b'\r';
    let must_quote =
        force || value.iter().any(special) || value == layout.null.as_bytes() || value == b"\\.";
    if !must_quote {
        out.extend_from_slice(value);
        return;
    }
    out.push(layout.quote);
    for &byte in value {
        if byte == layout.quote || byte == layout.escape {
            out.push(layout.escape);
        }
        out.push(byte);
    }
    out.push(layout.quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(format: Format) -> Layout {
        let csv = format == Format::Csv;
        Layout {
            format,
            delimiter: if csv { b',' } else { b'\t' },
            null: if csv { String::new() } else { "\\N".into() },
            header: false,
            quote: b'"',
            escape: b'"',
        }
    }

    /// Every record of `pieces` fed one after another, as field texts.
    fn decode(layout: Layout, pieces: &[&[u8]]) -> Result<Vec<Vec<Option<String>>>> {
        let mut decoder = Decoder::new(layout);
        let mut rows = Vec::new();
        for (n, piece) in pieces.iter().enumerate() {
            decoder.feed(piece);
            let last = n + 1 == pieces.len();
            while let Some(record) = decoder.next_record(last)? {
                let mut fields = Vec::new();
                decoder.fields(&record, &mut fields)?;
                rows.push(
                    fields
                        .iter()
                        .map(|f| {
                            f.value
                                .as_ref()
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                        })
                        .collect(),
                );
            }
        }
        Ok(rows)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn text_lines_in_pieces_with_escapes_and_nulls() {
        let rows = decode(
            layout(Format::Text),
            &[
                b"1\ta\\tb\\\\c\n2\t\\",
                b"N\r\n3\t\\101\\x42\\.x\n\\.\nignored\n",
                b"",
            ],
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a\tb\\c")],
                vec![s("2"), None],
                vec![s("3"), s("AB.x")],
            ]
        );
        // The last line may go without its newline; an escaped newline is data.
        let rows = decode(layout(Format::Text), &[b"a\\\nb\tc"]).unwrap();
        assert_eq!(rows, vec![vec![s("a\nb"), s("c")]]);
    }

    #[test]
    fn csv_quotes_span_lines_and_pieces() {
        let rows = decode(
            layout(Format::Csv),
            &[b"1,\"a,\"\"b\"\"\n", b"c\",,\"\"\n2,x\"y\"z,\n", b"\\.\n"],
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![s("1"), s("a,\"b\"\nc"), None, s("")],
                vec![s("2"), s("xyz"), None],
            ]
        );
        let err = decode(layout(Format::Csv), &[b"1,\"open\n"]).unwrap_err();
        assert!(err.to_string().contains("unterminated CSV quoted field"));
    }

    #[test]
    fn binary_tuples_after_the_header() {
        let mut data = BINARY_SIGNATURE.to_vec();
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&0i32.to_be_bytes());
        data.extend_from_slice(&2i16.to_be_bytes());
        data.extend_from_slice(&4i32.to_be_bytes());
        data.extend_from_slice(&7i32.to_be_bytes());
        data.extend_from_slice(&(-1i32).to_be_bytes());
        data.extend_from_slice(&(-1i16).to_be_bytes());
        let (a, b) = data.split_at(21);
        let mut decoder = Decoder::new(layout(Format::Binary));
        decoder.feed(a);
        assert!(decoder.next_record(false).unwrap().is_none());
        decoder.feed(b);
        let record = decoder.next_record(false).unwrap().unwrap();
        let mut fields = Vec::new();
        decoder.fields(&record, &mut fields).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].value.as_deref(), Some(&7i32.to_be_bytes()[..]));
        assert!(fields[1].value.is_none());
        assert!(decoder.next_record(true).unwrap().is_none());
        let mut bad = Decoder::new(layout(Format::Binary));
        bad.feed(b"PGCOPY\nnot it at all....");
        assert!(bad.next_record(false).is_err());
    }

    #[test]
    fn writing_escapes_and_quotes() {
        let mut out = Vec::new();
        write_text(&mut out, Some(b"a\tb\\c\nd"), &layout(Format::Text));
        out.push(b'|');
        write_text(&mut out, None, &layout(Format::Text));
        assert_eq!(out, b"a\\tb\\\\c\\nd|\\N");
        let mut out = Vec::new();
        let csv = layout(Format::Csv);
        for (value, force) in [
            (Some(&b"plain"[..]), false),
            (Some(b"a,\"b\""), false),
            (Some(b""), false),
            (None, false),
            (Some(b"x"), true),
        ] {
            write_csv(&mut out, value, &csv, force);
            out.push(b'|');
        }
        assert_eq!(out, b"plain|\"a,\"\"b\"\"\"|\"\"||\"x\"|");
    }
}
