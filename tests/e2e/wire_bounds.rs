//! Sizes and counts a client writes on the wire, each at and past its
//! bound: Execute's row limit (2^31-1 once aborted the whole node), message
//! lengths, Bind's parameter and format counts, the startup packet, the
//! number of prepared statements. Each gets PostgreSQL's answer, and the
//! node goes on serving everyone else.

use std::io::Write;
use std::net::TcpStream;

use crate::bad_input::{message, query, raw_session, read_message, startup_packet};
use crate::harness::{query_i64, TestServer};

pub(crate) fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut body = cstr(name);
    body.extend(cstr(sql));
    body.extend((types.len() as i16).to_be_bytes());
    types.iter().for_each(|t| body.extend(t.to_be_bytes()));
    message(b'P', &body)
}

pub(crate) fn bind(portal: &str, stmt: &str, params: &[Option<&[u8]>], results: &[i16]) -> Vec<u8> {
    let mut body = cstr(portal);
    body.extend(cstr(stmt));
    body.extend(0i16.to_be_bytes());
    body.extend((params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                body.extend((v.len() as i32).to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend((-1i32).to_be_bytes()),
        }
    }
    body.extend((results.len() as i16).to_be_bytes());
    results.iter().for_each(|f| body.extend(f.to_be_bytes()));
    message(b'B', &body)
}

pub(crate) fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut body = cstr(portal);
    body.extend(max_rows.to_be_bytes());
    message(b'E', &body)
}

pub(crate) fn sync() -> Vec<u8> {
    message(b'S', b"")
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Reads backend messages up to ReadyForQuery (or until the server closes
/// the connection), errors included.
pub(crate) fn read_reply(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    while let Ok((kind, body)) = read_message(stream) {
        messages.push((kind, body));
        if kind == b'Z' {
            break;
        }
    }
    messages
}

/// The SQLSTATE and severity of the ErrorResponse in `reply`.
pub(crate) fn error_of(reply: &[(u8, Vec<u8>)]) -> Option<(String, String, String)> {
    let (_, body) = reply.iter().find(|(kind, _)| *kind == b'E')?;
    let mut code = String::new();
    let mut severity = String::new();
    let mut text = String::new();
    for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = value,
            b'S' => severity = value,
            b'M' => text = value,
            _ => {}
        }
    }
    Some((severity, code, text))
}

pub(crate) fn kinds(reply: &[(u8, Vec<u8>)]) -> String {
    reply.iter().map(|(k, _)| *k as char).collect()
}

async fn assert_serving(server: &TestServer) {
    let client = server.connect().await;
    assert_eq!(query_i64(&client, "SELECT 1::bigint").await, 1);
}

#[tokio::test]
async fn execute_honours_every_row_limit_as_postgresql_does() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE five (id integer PRIMARY KEY); INSERT INTO five VALUES (1), (2), (3), (4), (5)",
        )
        .await
        .unwrap();
    let mut session = raw_session(&server);
    // 0, negative and 2^31-1 all mean "every row" (pgjdbc sends 2^31-1
    // with setFetchSize(Integer.MAX_VALUE)); 2^31-1 once made pgwire
    // reserve 80 GiB and abort the process.
    for max_rows in [i32::MAX, 0, -1, i32::MIN, 6] {
        let mut script = parse("", "SELECT id FROM five ORDER BY id", &[]);
        script.extend(bind("", "", &[], &[]));
        script.extend(execute("", max_rows));
        script.extend(sync());
        session.write_all(&script).unwrap();
        let reply = read_reply(&mut session);
        assert_eq!(kinds(&reply), "12DDDDDCZ", "max_rows {max_rows}");
        assert_eq!(reply[7].1, b"SELECT 5\0", "max_rows {max_rows}");
    }
    // Exactly as many as there are: PostgreSQL does not look ahead, so the
    // portal is suspended, and the next Execute finds it done ("SELECT 0").
    let mut script = parse("", "SELECT id FROM five ORDER BY id", &[]);
    script.extend(bind("", "", &[], &[]));
    script.extend(execute("", 5));
    script.extend(execute("", 5));
    script.extend(sync());
    session.write_all(&script).unwrap();
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "12DDDDDsCZ");
    assert_eq!(reply[8].1, b"SELECT 0\0");
    // 2 at a time: suspended twice, then the last row and the tag.
    let mut script = parse("", "SELECT id FROM five ORDER BY id", &[]);
    script.extend(bind("", "", &[], &[]));
    for _ in 0..3 {
        script.extend(execute("", 2));
    }
    script.extend(sync());
    session.write_all(&script).unwrap();
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "12DDsDDsDCZ");
    let values: Vec<&[u8]> = reply
        .iter()
        .filter(|(k, _)| *k == b'D')
        .map(|(_, body)| &body[body.len() - 1..])
        .collect();
    assert_eq!(values, [b"1", b"2", b"3", b"4", b"5"]);
    assert_eq!(reply[9].1, b"SELECT 1\0");
    assert_serving(&server).await;
}

#[tokio::test]
async fn every_bound_a_client_can_reach_gets_a_clear_error() {
    let server = TestServer::start().await;

    // A message longer than the limit: refused from its header, FATAL 54000.
    let mut session = raw_session(&server);
    let mut huge = vec![b'Q'];
    huge.extend(((64 << 20) + 1i32).to_be_bytes());
    session.write_all(&huge).unwrap();
    let (severity, code, text) = error_of(&read_reply(&mut session)).expect("an error");
    assert_eq!(
        (severity.as_str(), code.as_str()),
        ("FATAL", "54000"),
        "{text}"
    );
    assert!(
        read_message(&mut session).is_err(),
        "the connection is closed"
    );

    // An unknown message type: FATAL 08P01, as PostgreSQL says it.
    let mut session = raw_session(&server);
    session.write_all(&message(b'y', b"hello")).unwrap();
    let (severity, code, text) = error_of(&read_reply(&mut session)).expect("an error");
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "08P01"));
    assert_eq!(text, "invalid frontend message type 121");

    // A startup packet above 10,000 bytes: FATAL 08P01, not authenticated.
    let mut stream = TcpStream::connect(("127.0.0.1", server.pg_port)).unwrap();
    let mut packet = startup_packet();
    packet.splice(0..4, 10_001i32.to_be_bytes());
    stream.write_all(&packet[..64]).unwrap();
    let (severity, code, _) = error_of(&read_reply(&mut stream)).expect("an error");
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "08P01"));

    // Errors in one message: ERROR, skip to Sync, then the session goes on.
    let mut session = raw_session(&server);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "too few parameters",
            [parse("", "SELECT $1::integer", &[]), bind("", "", &[], &[])].concat(),
            "08P01",
            "bind message supplies 0 parameters, but prepared statement \"\" requires 1",
        ),
        (
            "too many parameters",
            [
                parse("", "SELECT 1", &[]),
                bind("", "", &[Some(b"1"), None], &[]),
            ]
            .concat(),
            "08P01",
            "bind message supplies 2 parameters, but prepared statement \"\" requires 0",
        ),
        (
            "result formats for 3 columns of 2",
            [parse("", "SELECT 1, 2", &[]), bind("", "", &[], &[0, 1, 0])].concat(),
            "08P01",
            "bind message has 3 result formats but query has 2 columns",
        ),
        (
            "format code 7",
            [parse("", "SELECT 1", &[]), bind("", "", &[], &[7])].concat(),
            "22023",
            "unsupported format code: 7",
        ),
        (
            "a parameter longer than its message",
            {
                let mut b = bind("", "", &[Some(b"12")], &[]);
                b[11..15].copy_from_slice(&1_000_000i32.to_be_bytes());
                [parse("", "SELECT $1::integer", &[]), b].concat()
            },
            "08P01",
            "insufficient data left in message",
        ),
        (
            "the function call protocol",
            // Not an extended-query message: answered at once, no Sync needed.
            message(b'F', b"\0\0\0\x01\0\0\0\0\0\0"),
            "0A000",
            "the function call protocol (FunctionCall) is not supported by ShardForge yet",
        ),
    ];
    for (name, script, expected_code, expected_text) in cases {
        session.write_all(&script).unwrap();
        if script[0] != b'F' {
            session
                .write_all(&[execute("", 0), sync()].concat())
                .unwrap();
        }
        let reply = read_reply(&mut session);
        let (severity, code, text) = error_of(&reply).unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(
            (severity.as_str(), code.as_str()),
            ("ERROR", expected_code),
            "{name}: {text}"
        );
        assert_eq!(text, expected_text, "{name}");
        assert_eq!(
            reply.last().map(|(k, _)| *k),
            Some(b'Z'),
            "{name}: ready again"
        );
        session.write_all(&query("SELECT 7")).unwrap();
        let reply = read_reply(&mut session);
        assert!(error_of(&reply).is_none(), "{name}: the session goes on");
    }
    assert_serving(&server).await;
}

/// Fills a session with 10,000 named objects made by `make(name)`, checks
/// that one more is refused with 54000, and that closing one (Close of
/// `kind`, b'S' or b'P') makes room again; `reply` is what the last one
/// answers.
fn fill_to_the_limit(
    session: &mut TcpStream,
    kind: u8,
    make: impl Fn(&str) -> Vec<u8>,
    reply: &str,
) {
    let mut script = Vec::new();
    for i in 0..10_000 {
        script.extend(make(&format!("n{i}")));
    }
    script.extend(sync());
    session.write_all(&script).unwrap();
    let answer = read_reply(session);
    assert!(error_of(&answer).is_none());
    assert_eq!(answer.len(), 10_001);

    session
        .write_all(&[make("one_more"), sync()].concat())
        .unwrap();
    let (_, code, text) = error_of(&read_reply(session)).expect("an error");
    assert_eq!(code, "54000", "{text}");

    let mut close = vec![kind];
    close.extend(cstr("n0"));
    session
        .write_all(&[message(b'C', &close), make("one_more"), sync()].concat())
        .unwrap();
    let answer = read_reply(session);
    assert!(error_of(&answer).is_none(), "{answer:?}");
    assert_eq!(kinds(&answer), reply);
}

#[tokio::test]
async fn prepared_statements_and_portals_per_session_are_bounded() {
    let server = TestServer::start().await;
    let mut session = raw_session(&server);
    // Empty statements cost no planning; they count like any other, and
    // so do portals bound from one.
    fill_to_the_limit(&mut session, b'S', |name| parse(name, "", &[]), "31Z");
    fill_to_the_limit(&mut session, b'P', |name| bind(name, "n1", &[], &[]), "32Z");
    assert_serving(&server).await;
}
