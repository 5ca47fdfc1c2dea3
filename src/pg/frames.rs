//! Framing of a client's byte stream into whole protocol messages, with
//! every size the client writes bounded before memory is taken for it.
//!
//! pgwire's own codec trusts what it reads: it accepts messages of up to
//! 1 GiB, reads a message's fields from the shared read buffer (so a Bind
//! that claims more bytes than it has reads into the next message, or
//! panics), and pre-allocates from counts. A [`FrameReader`] sits in front
//! of it. It reads a message's header, checks the type and the length
//! against [the limits below](MAX_LARGE_MESSAGE) before reserving room for
//! the body, and walks the body's fields ([`check_body`]) so that pgwire
//! only ever decodes one complete, well-formed message held in a buffer of
//! its own. What is wrong is reported as PostgreSQL reports it:
//!
//! - a broken frame (unknown message type, a length out of bounds, a bad
//!   startup packet) is fatal: the stream cannot be resynchronised, so the
//!   connection gets a FATAL error and is closed ([`Bad::Fatal`]);
//! - a well-framed message whose fields are wrong (a count larger than its
//!   data, a format code other than 0 or 1, invalid UTF-8) is an ERROR for
//!   that message only ([`Bad::Message`]); the connection goes on.
//!
//! Memory per connection is thus one message (at most
//! [`MAX_LARGE_MESSAGE`]) plus a read chunk, whatever the client sends.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, InputError};

/// The longest startup packet (SSLRequest, StartupMessage, CancelRequest),
/// PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP_PACKET: usize = 10_000;
/// The longest message of the types that carry no data (Sync, Execute,
/// Describe, ...), PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`.
pub const MAX_SMALL_MESSAGE: usize = 10_000;
/// The longest Query, Parse, Bind or CopyData message. PostgreSQL allows
/// 1 GiB; ShardForge holds a message whole in memory while it decodes it,
/// so it takes less: a larger value must come in several parameters or
/// rows, or through COPY, whose data arrives in many messages.
pub const MAX_LARGE_MESSAGE: usize = 64 << 20;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 8 << 10;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
pub(super) const CANCEL_REQUEST: u32 = 80_877_102;

/// One complete message from the client.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// The client asks for TLS (or GSS encryption); it is answered `N`.
    EncryptionRequest,
    /// A CancelRequest: the process id and secret key it names.
    Cancel { pid: i32, key: i32 },
    /// The StartupMessage or a typed message, length word included, ready
    /// for pgwire's decoder.
    Message(BytesMut),
}

/// Why the stream did not yield a message.
#[derive(Debug)]
pub enum Bad {
    /// The stream is broken: answer FATAL and close the connection.
    Fatal(Error),
    /// This message is wrong; it was consumed, the connection goes on.
    /// `extended` is true for an extended-query message, after which the
    /// server skips messages until Sync.
    Message { error: Error, extended: bool },
    /// The socket failed or closed in the middle of a message.
    Closed,
}

/// Reads whole messages from a client stream (see the module docs).
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
    /// The startup packet has been read: messages now start with a type.
    started: bool,
}

impl FrameReader {
    /// The next message; `Ok(None)` when the client closed the stream
    /// between messages.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Option<Frame>, Bad> {
        loop {
            if let Some(frame) = self.split()? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            match io.read_buf(&mut self.buf).await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) | Err(_) => return Err(Bad::Closed),
                Ok(_) => {}
            }
        }
    }

    /// Splits one complete message off the buffer, or reserves room for
    /// the rest of it (only after its length was checked) and says None.
    fn split(&mut self) -> Result<Option<Frame>, Bad> {
        let header = if self.started { 5 } else { 4 };
        if self.buf.len() < header {
            return Ok(None);
        }
        let kind = self.started.then(|| self.buf[0]);
        let at = header - 4;
        let len = u32::from_be_bytes([
            self.buf[at],
            self.buf[at + 1],
            self.buf[at + 2],
            self.buf[at + 3],
        ]) as usize;
        let max = match kind {
            None => MAX_STARTUP_PACKET,
            Some(kind) => max_length(kind)?,
        };
        let min = if kind.is_none() { 8 } else { 4 };
        if len < min || len > max {
            return Err(Bad::Fatal(if len > max && kind.is_some() {
                Error::input(
                    InputError::ProgramLimitExceeded,
                    format!("message of {len} bytes is longer than the limit of {max} bytes"),
                )
            } else {
                violation(format!("invalid message length {len}"))
            }));
        }
        let total = at + len;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let frame = self.buf.split_to(total);
        match kind {
            None => self.startup_packet(frame).map(Some),
            Some(kind) => match check_body(kind, &frame[5..]) {
                Ok(()) => Ok(Some(Frame::Message(frame))),
                Err(error) => Err(Bad::Message {
                    error,
                    extended: matches!(kind, b'P' | b'B' | b'E' | b'D' | b'C' | b'S' | b'H'),
                }),
            },
        }
    }

    fn startup_packet(&mut self, frame: BytesMut) -> Result<Frame, Bad> {
        let mut body = &frame[4..];
        let code = body.get_u32();
        match code {
            SSL_REQUEST | GSSENC_REQUEST if body.is_empty() => Ok(Frame::EncryptionRequest),
            CANCEL_REQUEST if body.len() == 8 => {
                self.started = true;
                Ok(Frame::Cancel {
                    pid: body.get_i32(),
                    key: body.get_i32(),
                })
            }
            SSL_REQUEST | GSSENC_REQUEST | CANCEL_REQUEST => {
                Err(Bad::Fatal(violation("invalid length of startup packet")))
            }
            _ if code >> 16 != 3 => Err(Bad::Fatal(Error::input(
                InputError::Unsupported,
                format!(
                    "unsupported frontend protocol {}.{}: server supports 3.0 to 3.0",
                    code >> 16,
                    code & 0xffff
                ),
            ))),
            _ => {
                // key\0value\0 ... \0: every string terminated, the list too.
                if body.last() != Some(&0) {
                    return Err(Bad::Fatal(violation(
                        "invalid startup packet layout: expected terminator as last byte",
                    )));
                }
                let mut fields = Fields(&body[..body.len() - 1]);
                while !fields.0.is_empty() {
                    fields.cstr().map_err(Bad::Fatal)?;
                }
                self.started = true;
                Ok(Frame::Message(frame))
            }
        }
    }
}

/// The longest message of a type; an unknown type is fatal, as in
/// PostgreSQL ("invalid frontend message type").
fn max_length(kind: u8) -> Result<usize, Bad> {
    match kind {
        b'Q' | b'P' | b'B' | b'd' | b'F' => Ok(MAX_LARGE_MESSAGE),
        b'E' | b'D' | b'C' | b'S' | b'H' | b'X' | b'c' | b'f' | b'p' => Ok(MAX_SMALL_MESSAGE),
        _ => Err(Bad::Fatal(violation(format!(
            "invalid frontend message type {kind}"
        )))),
    }
}

/// Checks that a message body holds exactly the fields its type has, in
/// bounds, so that pgwire's decoder (which panics on a short buffer)
/// cannot fail.
pub fn check_body(kind: u8, body: &[u8]) -> Result<(), Error> {
    let mut f = Fields(body);
    match kind {
        b'Q' | b'f' => {
            f.cstr()?;
        }
        b'P' => {
            f.cstr()?;
            f.cstr()?;
            let types = f.u16()? as usize;
            f.bytes(types * 4)?;
        }
        b'B' => check_bind(&mut f)?,
        b'E' => {
            f.cstr()?;
            f.bytes(4)?;
        }
        b'D' | b'C' => {
            let target = f.bytes(1)?[0];
            if target != b'S' && target != b'P' {
                return Err(violation(format!(
                    "invalid {} message subtype {target}",
                    if kind == b'D' { "DESCRIBE" } else { "CLOSE" }
                )));
            }
            f.cstr()?;
        }
        b'F' => {
            return Err(Error::unsupported(
                "the function call protocol (FunctionCall)",
            ));
        }
        // CopyData and the password family carry opaque bytes.
        b'd' | b'p' => return Ok(()),
        // Sync, Flush, Terminate, CopyDone: no body.
        _ => {}
    }
    f.end()
}

fn check_bind(f: &mut Fields) -> Result<(), Error> {
    f.cstr()?;
    f.cstr()?;
    let formats = f.u16()? as usize;
    for _ in 0..formats {
        format_code(f.i16()?)?;
    }
    let params = f.u16()? as usize;
    if formats > 1 && formats != params {
        return Err(violation(format!(
            "bind message has {formats} parameter formats but {params} parameters"
        )));
    }
    for _ in 0..params {
        let len = f.i32()?;
        if len >= 0 {
            f.bytes(len as usize)?;
        } else if len != -1 {
            return Err(violation(format!("invalid parameter length {len}")));
        }
    }
    let results = f.u16()? as usize;
    for _ in 0..results {
        format_code(f.i16()?)?;
    }
    Ok(())
}

fn format_code(code: i16) -> Result<(), Error> {
    if code == 0 || code == 1 {
        Ok(())
    } else {
        Err(Error::input(
            InputError::InvalidParameterValue,
            format!("unsupported format code: {code}"),
        ))
    }
}

fn violation(message: impl std::fmt::Display) -> Error {
    Error::input(InputError::ProtocolViolation, message)
}

/// A cursor over a message body that fails, rather than panics, at its end.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.0.len() {
            return Err(violation("insufficient data left in message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(self.bytes(2)?.get_u16())
    }

    fn i16(&mut self) -> Result<i16, Error> {
        Ok(self.bytes(2)?.get_i16())
    }

    fn i32(&mut self) -> Result<i32, Error> {
        Ok(self.bytes(4)?.get_i32())
    }

    /// A NUL-terminated string, which must be UTF-8 (the only encoding).
    fn cstr(&mut self) -> Result<&'a str, Error> {
        let Some(nul) = self.0.iter().position(|&b| b == 0) else {
            return Err(violation("invalid string in message"));
        };
        let s = self.bytes(nul + 1)?;
        std::str::from_utf8(&s[..nul]).map_err(|_| {
            Error::input(
                InputError::InvalidEncoding,
                "invalid byte sequence for encoding \"UTF8\"",
            )
        })
    }

    fn end(&self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(violation("invalid message format"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup() -> Vec<u8> {
        let body = b"\x00\x03\x00\x00user\0postgres\0\0";
        let mut m = (body.len() as u32 + 4).to_be_bytes().to_vec();
        m.extend_from_slice(body);
        m
    }

    async fn read_all(bytes: &[u8]) -> Vec<Result<Option<Frame>, String>> {
        let mut reader = FrameReader::default();
        let mut io = bytes;
        let mut out = Vec::new();
        loop {
            let next = reader.next(&mut io).await;
            let end = !matches!(next, Ok(Some(_)) | Err(Bad::Message { .. }));
            out.push(next.map_err(|b| format!("{b:?}")));
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn a_startup_then_messages_are_framed_whole() {
        let mut stream = startup();
        stream.extend(typed(b'Q', b"select 1\0"));
        stream.extend(typed(b'S', b""));
        let frames = read_all(&stream).await;
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert!(matches!(&frames[1], Ok(Some(Frame::Message(m))) if m[0] == b'Q'));
        assert!(matches!(frames[3], Ok(None)));
    }

    #[tokio::test]
    async fn lengths_are_checked_before_any_room_is_reserved() {
        let mut stream = startup();
        // A Query claiming 1 GiB: refused from its header alone.
        stream.push(b'Q');
        stream.extend(((1u32 << 30) - 1).to_be_bytes());
        let frames = read_all(&stream).await;
        let last = frames.last().unwrap().as_ref().unwrap_err();
        assert!(last.contains("ProgramLimitExceeded"), "{last}");
        // A Sync that claims 20 kB, an unknown type, a length below 4.
        for bad in [
            typed(b'S', &[0; 20_000]),
            typed(b'?', b""),
            vec![b'S', 0, 0, 0, 3],
        ] {
            let mut stream = startup();
            stream.extend(bad);
            let frames = read_all(&stream).await;
            assert!(frames
                .last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .contains("Fatal"));
        }
    }

    #[test]
    fn bind_fields_are_checked_against_the_message() {
        let bind = |params: &[Option<&[u8]>], claimed: Option<i32>, formats: &[i16]| {
            let mut b = BytesMut::new();
            b.put_slice(b"\0\0");
            b.put_u16(formats.len() as u16);
            formats.iter().for_each(|f| b.put_i16(*f));
            b.put_u16(params.len() as u16);
            for p in params {
                match p {
                    Some(v) => {
                        b.put_i32(claimed.unwrap_or(v.len() as i32));
                        b.put_slice(v);
                    }
                    None => b.put_i32(-1),
                }
            }
            b.put_u16(0);
            check_body(b'B', &b)
        };
        assert!(bind(&[Some(b"1"), None], None, &[]).is_ok());
        assert!(bind(&[Some(b"1"), None], None, &[1]).is_ok());
        assert!(bind(&[Some(b"1"), None], None, &[0, 1]).is_ok());
        let err = |r: Result<(), Error>| r.unwrap_err().to_string();
        assert_eq!(
            err(bind(&[Some(b"1")], Some(1000), &[])),
            "insufficient data left in message"
        );
        assert_eq!(
            err(bind(&[Some(b"1")], Some(-2), &[])),
            "invalid parameter length -2"
        );
        assert_eq!(
            err(bind(&[Some(b"1"), None, None], None, &[0, 1])),
            "bind message has 2 parameter formats but 3 parameters"
        );
        assert_eq!(err(bind(&[], None, &[7])), "unsupported format code: 7");
    }

    #[test]
    fn other_bodies_must_hold_exactly_their_fields() {
        assert!(check_body(b'E', b"\0\x7f\xff\xff\xff").is_ok());
        assert!(check_body(b'E', b"\0\x7f\xff").is_err());
        assert!(check_body(b'S', b"x").is_err());
        assert!(check_body(b'D', b"Xname\0").is_err());
        assert!(check_body(b'Q', b"select 1").is_err());
        assert!(check_body(b'Q', b"select \xff\0").is_err());
        assert!(check_body(b'P', b"\0select 1\0\x00\x02\0\0\0\x17").is_err());
    }
}
