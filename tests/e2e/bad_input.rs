//! Malformed wire input over raw TCP: garbage instead of a startup packet,
//! absurd message lengths, truncated messages. Whatever the server answers,
//! it must keep serving: a new connection works and a session that was open
//! all along (with a transaction in flight) still works and commits.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use tokio_postgres::Client;

use crate::harness::{query_i64, TestServer};

/// How long to wait for the server's reaction to a bad message before
/// hanging up ourselves (the server may legitimately wait for more bytes).
pub(crate) const REACTION_TIMEOUT: Duration = Duration::from_secs(3);

/// Protocol version 3.0.
pub(crate) const PROTOCOL_3: i32 = 196_608;

pub(crate) fn startup_packet() -> Vec<u8> {
    let mut body = PROTOCOL_3.to_be_bytes().to_vec();
    for s in [
        "user",
        "postgres",
        "database",
        "postgres",
        "application_name",
        "bad_input",
    ] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

/// A frontend message: type byte, length, body.
pub(crate) fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

pub(crate) fn query(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

pub(crate) fn read_message(stream: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header)?;
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if !(4..=1 << 24).contains(&len) {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("backend message length {len}"),
        ));
    }
    let mut body = vec![0u8; len as usize - 4];
    stream.read_exact(&mut body)?;
    Ok((header[0], body))
}

/// Reads backend messages up to and including ReadyForQuery, panicking on an
/// ErrorResponse.
pub(crate) fn read_until_ready(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let (kind, body) = read_message(stream).expect("read a backend message");
        if kind == b'E' {
            panic!(
                "unexpected ErrorResponse: {}",
                String::from_utf8_lossy(&body)
            );
        }
        messages.push((kind, body));
        if kind == b'Z' {
            return messages;
        }
    }
}

/// A raw, authenticated session that is ready for queries.
pub(crate) fn raw_session(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.pg_port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&startup_packet()).unwrap();
    let messages = read_until_ready(&mut stream);
    assert_eq!(messages[0].0, b'R', "authentication request first");
    stream
}

/// Sends `bytes` (the server may hang up half way), then reads whatever it
/// answers until it closes the socket or goes quiet. Returns what was read.
pub(crate) fn send_garbage_and_drain(
    mut stream: TcpStream,
    bytes: &[u8],
    close_write: bool,
) -> Vec<u8> {
    let _ = stream.write_all(bytes);
    if close_write {
        let _ = stream.shutdown(Shutdown::Write);
    }
    stream.set_read_timeout(Some(REACTION_TIMEOUT)).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break, // reset or timeout
        }
    }
    answer
}

pub(crate) fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A session opened before the abuse, with a transaction in flight.
async fn bystander(server: &TestServer) -> Client {
    let client = server.connect().await;
    // Separate messages: in one Query message, statements before a BEGIN
    // would join the transaction block.
    client
        .batch_execute("CREATE TABLE survivors (id integer PRIMARY KEY, note text); INSERT INTO survivors VALUES (1, 'before')")
        .await
        .unwrap();
    client
        .batch_execute("BEGIN; INSERT INTO survivors VALUES (2, 'in flight')")
        .await
        .unwrap();
    client
}

/// The server still works: the bystander's transaction commits, a new
/// connection sees it, and a raw session can still run a query.
async fn assert_still_serving(server: &TestServer, bystander: &Client) {
    assert_eq!(
        query_i64(bystander, "SELECT count(*) FROM survivors").await,
        2
    );
    bystander
        .batch_execute("COMMIT")
        .await
        .expect("bystander commits");
    let fresh = server.connect().await;
    assert_eq!(query_i64(&fresh, "SELECT count(*) FROM survivors").await, 2);
    assert_eq!(query_i64(&fresh, "SELECT 1::bigint + 1").await, 2);
    let mut raw = raw_session(server);
    raw.write_all(&query("SELECT 42")).unwrap();
    let messages = read_until_ready(&mut raw);
    assert!(
        messages
            .iter()
            .any(|(kind, body)| *kind == b'D' && body.ends_with(b"42")),
        "DataRow with 42"
    );
}

#[tokio::test]
async fn garbage_instead_of_a_startup_packet() {
    let server = TestServer::start().await;
    let client = bystander(&server).await;

    let mut bad_protocol = 8i32.to_be_bytes().to_vec();
    bad_protocol.extend_from_slice(&0x0dea_dbeei32.to_be_bytes());
    let mut huge_startup = 0x7fff_ffffi32.to_be_bytes().to_vec();
    huge_startup.extend_from_slice(&PROTOCOL_3.to_be_bytes());
    huge_startup.extend_from_slice(b"user\0postgres\0");
    let mut negative_length = (-5i32).to_be_bytes().to_vec();
    negative_length.extend_from_slice(&PROTOCOL_3.to_be_bytes());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("4 KiB of random bytes", pseudo_random_bytes(0x5eed, 4096)),
        ("64 KiB of random bytes", pseudo_random_bytes(0xbad, 65536)),
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("unknown protocol version", bad_protocol),
        ("startup length 0x7fffffff", huge_startup),
        ("negative startup length", negative_length),
        ("length shorter than the header", vec![0, 0, 0, 3, 0]),
        ("two bytes", vec![0, 0]),
        ("nothing at all", Vec::new()),
    ];
    for (name, bytes) in cases {
        let stream = TcpStream::connect(("127.0.0.1", server.pg_port))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let answer = send_garbage_and_drain(stream, &bytes, true);
        // Whatever it says, it must not have let us in.
        assert!(
            !answer
                .windows(9)
                .any(|w| w == [b'R', 0, 0, 0, 8, 0, 0, 0, 0]),
            "{name}: the server sent AuthenticationOk"
        );
        // And it keeps accepting normal connections between the cases.
        let probe = server.connect().await;
        assert_eq!(
            query_i64(&probe, "SELECT 1::bigint").await,
            1,
            "after {name}"
        );
    }
    assert_still_serving(&server, &client).await;
}

#[tokio::test]
async fn absurd_message_lengths_after_startup() {
    let server = TestServer::start().await;
    let client = bystander(&server).await;

    let huge = |kind: u8, tail: &[u8]| {
        let mut m = vec![kind];
        m.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
        m.extend_from_slice(tail);
        m
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("Query of length 0x7fffffff", huge(b'Q', b"SELECT 1\0")),
        (
            "Parse of length 0x7fffffff",
            huge(b'P', b"\0SELECT 1\0\0\0"),
        ),
        ("Bind of length 0x7fffffff", huge(b'B', &[0; 32])),
        ("length below 4", vec![b'Q', 0, 0, 0, 2]),
        ("negative length", vec![b'Q', 0xff, 0xff, 0xff, 0xf0, b'x']),
        ("Parse claiming 30000 parameters", {
            let mut body = b"\0SELECT $1\0".to_vec();
            body.extend_from_slice(&30_000i16.to_be_bytes());
            message(b'P', &body)
        }),
        ("Bind with a parameter length past the message end", {
            let mut body = b"\0\0".to_vec();
            body.extend_from_slice(&0i16.to_be_bytes()); // no format codes
            body.extend_from_slice(&1i16.to_be_bytes()); // one parameter ...
            body.extend_from_slice(&1_000_000i32.to_be_bytes()); // ... of 1 MB, not sent
            body.extend_from_slice(b"abc");
            message(b'B', &body)
        }),
    ];
    for (name, bytes) in cases {
        let session = raw_session(&server);
        let _ = send_garbage_and_drain(session, &bytes, false);
        let probe = server.connect().await;
        assert_eq!(
            query_i64(&probe, "SELECT 1::bigint").await,
            1,
            "after {name}"
        );
    }
    assert_still_serving(&server, &client).await;
}

#[tokio::test]
async fn truncated_messages_then_close() {
    let server = TestServer::start().await;
    let client = bystander(&server).await;

    // A startup packet cut short.
    let startup = startup_packet();
    let stream = TcpStream::connect(("127.0.0.1", server.pg_port)).unwrap();
    send_garbage_and_drain(stream, &startup[..startup.len() / 2], true);

    // A Query announcing 100 bytes, sending 10, then closing.
    let mut q = vec![b'Q'];
    q.extend_from_slice(&100i32.to_be_bytes());
    q.extend_from_slice(b"SELECT 1; ");
    send_garbage_and_drain(raw_session(&server), &q, true);

    // A Parse cut in the middle of its query string.
    let parse = message(
        b'P',
        b"stmt\0INSERT INTO survivors VALUES (3, 'parsed')\0\0\0",
    );
    send_garbage_and_drain(raw_session(&server), &parse[..20], true);

    // A header cut after two bytes of the length.
    send_garbage_and_drain(raw_session(&server), &[b'Q', 0, 0], true);

    // An unknown message type with a valid length.
    send_garbage_and_drain(raw_session(&server), &message(b'y', b"hello"), false);

    // A session in the middle of a transaction that then sends half a message
    // and hangs up: its writes are not committed.
    let mut session = raw_session(&server);
    session
        .write_all(&query(
            "BEGIN; INSERT INTO survivors VALUES (100, 'never committed')",
        ))
        .unwrap();
    let messages = read_until_ready(&mut session);
    assert_eq!(
        messages.last().map(|(_, body)| body.as_slice()),
        Some(&b"T"[..]),
        "in a transaction block"
    );
    send_garbage_and_drain(session, &q, true);

    let fresh = server.connect().await;
    assert_eq!(
        query_i64(
            &fresh,
            "SELECT count(*) FROM survivors WHERE id IN (3, 100)"
        )
        .await,
        0
    );
    assert_still_serving(&server, &client).await;
    assert_eq!(
        query_i64(&fresh, "SELECT count(*) FROM survivors WHERE id >= 3").await,
        0
    );
}

#[tokio::test]
async fn a_statement_that_trips_a_planner_bug_fails_alone() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    // DataFusion 55 panics planning this (a decimal of negative scale in
    // VALUES, compared with an integer). Whether it answers or fails, the
    // connection and the server go on.
    let result = client
        .query("SELECT x FROM (VALUES (1e6)) v(x) WHERE x = 5", &[])
        .await;
    if let Err(e) = result {
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INTERNAL_ERROR),
            "{e:?}"
        );
    }
    assert_eq!(query_i64(&client, "SELECT 7::bigint").await, 7);
}
