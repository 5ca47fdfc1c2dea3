//! COPY as clients use it: tokio-postgres's `copy_in` / `copy_out` (the
//! extended protocol), raw protocol messages for what drivers do not send
//! on purpose (CopyFail, a client that vanishes mid-load, data after an
//! error), every format, and loads larger than a transaction's buffer.

use std::io::Write;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::bad_input::{message, query, raw_session};
use crate::harness::{all_types_table, query_i64, rows, sqlstate, text_rows, TestServer};
use crate::wire_bounds::{kinds, read_reply};

async fn copy_in(client: &Client, sql: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    futures::pin_mut!(sink);
    // In pieces that split lines and values, as a client's buffer does.
    for piece in data.chunks(7) {
        sink.send(Bytes::copy_from_slice(piece)).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &Client, sql: &str) -> Vec<u8> {
    let stream = client.copy_out(sql).await.unwrap();
    futures::pin_mut!(stream);
    let mut data = Vec::new();
    while let Some(piece) = stream.next().await {
        data.extend_from_slice(&piece.unwrap());
    }
    data
}

/// Values at the edges of each type's range, and the characters each
/// format must escape or quote.
const EDGE_ROWS: &str = "INSERT INTO src VALUES
    (1, -32768, -2147483648, -9223372036854775808, '-3.4e38', '-1.7976931348623157e308',
     -9999999999.99, false, 'tab\there, \"quoted\", back\\slash', 'comma,semi', 'ab',
     '0001-01-01', '1970-01-01 00:00:00.000001', '2000-02-29 12:30:45.5+00', '\\x00ff'),
    (2, 32767, 2147483647, 9223372036854775807, '3.4e38', '1.7976931348623157e308',
     9999999999.99, true, E'line\\nbreak\\r\\n', '\\N', '', '9999-12-31',
     '2262-04-11 23:47:16', '1677-09-21 00:12:44+00', ''),
    (3, 0, 0, 0, 'NaN', '-Infinity', 0, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL),
    (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_every_format() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client.batch_execute(&all_types_table("src")).await.unwrap();
    client.batch_execute(EDGE_ROWS).await.unwrap();
    let all = "SELECT * FROM src ORDER BY id";
    let expected = text_rows(&client, all).await;
    for (n, format) in ["text", "csv", "binary"].iter().enumerate() {
        let copied = copy_out(&client, &format!("COPY src TO STDOUT (FORMAT {format})")).await;
        let table = format!("dst{n}");
        client
            .batch_execute(&all_types_table(&table))
            .await
            .unwrap();
        let sql = format!("COPY {table} FROM STDIN (FORMAT {format})");
        assert_eq!(
            copy_in(&client, &sql, &copied).await.unwrap(),
            4,
            "{format}"
        );
        let read_back = text_rows(&client, &format!("SELECT * FROM {table} ORDER BY id")).await;
        assert_eq!(read_back, expected, "{format}");
    }
    // The text format as PostgreSQL writes it (checked against PostgreSQL 15).
    let text = copy_out(
        &client,
        "COPY (SELECT id, c_text, c_varchar, c_tstz, c_bytea FROM src WHERE id < 4 ORDER BY id) TO STDOUT",
    )
    .await;
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "1\ttab\\there, \"quoted\", back\\\\slash\tcomma,semi\t2000-02-29 12:30:45.5+00\t\\\\x00ff\n\
         2\tline\\nbreak\\r\\n\t\\\\N\t1677-09-21 00:12:44+00\t\\\\x\n\
         3\t\t\\N\t\\N\t\\N\n"
    );
    let csv = copy_out(
        &client,
        "COPY (SELECT id, c_text, c_varchar FROM src ORDER BY id) TO STDOUT \
         WITH (FORMAT csv, HEADER, FORCE_QUOTE (c_varchar))",
    )
    .await;
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        "id,c_text,c_varchar\n\
         1,\"tab\there, \"\"quoted\"\", back\\slash\",\"comma,semi\"\n\
         2,\"line\nbreak\r\n\",\"\\N\"\n\
         3,\"\",\n\
         4,,\n"
    );
}

/// `json` and `jsonb` columns loaded by COPY: jsonb in its canonical text
/// (keys sorted and unique, as PostgreSQL 15 stores it), json as written;
/// both back out through the binary format (jsonb with its version byte)
/// into another table unchanged; text that is no JSON fails the load with
/// 22P02 naming the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_columns_load_in_every_format() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE docs (id int PRIMARY KEY, b jsonb, j json);
             CREATE TABLE docs2 (id int PRIMARY KEY, b jsonb, j json);",
        )
        .await
        .unwrap();
    let data = "1\t{\"b\": 1, \"a\": [1,  2.50], \"a\": 1e3}\t{\"b\": 1,  \"a\": 2}\n\
                2\t\"\\\\u00e9\"\t[]\n\
                3\t\\N\t\\N\n";
    assert_eq!(
        copy_in(&client, "COPY docs FROM STDIN", data.as_bytes())
            .await
            .unwrap(),
        3
    );
    let expected = vec![
        vec![
            Some("1".to_string()),
            Some(r#"{"a": 1000, "b": 1}"#.to_string()),
            Some(r#"{"b": 1,  "a": 2}"#.to_string()),
        ],
        vec![Some("2".into()), Some(r#""é""#.into()), Some("[]".into())],
        vec![Some("3".into()), None, None],
    ];
    let all = "SELECT id, b, j FROM docs ORDER BY id";
    assert_eq!(text_rows(&client, all).await, expected);
    let binary = copy_out(&client, "COPY docs TO STDOUT (FORMAT binary)").await;
    assert_eq!(
        copy_in(&client, "COPY docs2 FROM STDIN (FORMAT binary)", &binary)
            .await
            .unwrap(),
        3
    );
    let copied = "SELECT id, b, j FROM docs2 ORDER BY id";
    assert_eq!(text_rows(&client, copied).await, expected);
    let bad = copy_in(
        &client,
        "COPY docs FROM STDIN",
        b"7\t{\"a\":1}\t{}\n8\t{bad\t{}\n",
    )
    .await;
    let error = bad.unwrap_err();
    let db = error.as_db_error().unwrap();
    assert_eq!(*db.code(), SqlState::INVALID_TEXT_REPRESENTATION);
    assert!(db.where_().unwrap_or_default().contains("line 2"), "{db:?}");
    assert_eq!(query_i64(&client, "SELECT count(*) FROM docs").await, 3);
}

/// `now`, `today`, `tomorrow` and `epoch` in COPY data are read as
/// PostgreSQL reads them: as of the transaction's start, so in a block
/// `now` is the block's `now()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_words_load_as_of_the_transactions_start() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE stamped (id int PRIMARY KEY, t timestamptz, d date); BEGIN")
        .await
        .unwrap();
    let data = "1\tnow\ttoday\n2\tepoch\ttomorrow\n";
    let copied = copy_in(&client, "COPY stamped FROM STDIN", data.as_bytes()).await;
    assert_eq!(copied.unwrap(), 2);
    let rows = text_rows(
        &client,
        "SELECT id, t = now(), d - current_date, t = 'epoch' FROM stamped ORDER BY id",
    )
    .await;
    let row = |cells: [&str; 4]| cells.map(|c| Some(c.to_string())).to_vec();
    assert_eq!(
        rows,
        vec![row(["1", "t", "0", "f"]), row(["2", "f", "1", "t"])]
    );
    client.batch_execute("COMMIT").await.unwrap();
}

/// `interval` columns loaded by COPY in PostgreSQL's input forms, shown
/// in its output style, carried out and back in through the binary format
/// unchanged; text that is no interval fails the load with 22007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_columns_load_in_every_format() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE spans (id int PRIMARY KEY, d interval);
             CREATE TABLE spans2 (id int PRIMARY KEY, d interval);",
        )
        .await
        .unwrap();
    let data = "1\t1 day 02:03:04.000005\n2\t@ 1 year 2 mons ago\n3\tP1DT2H\n4\t\\N\n";
    assert_eq!(
        copy_in(&client, "COPY spans FROM STDIN", data.as_bytes())
            .await
            .unwrap(),
        4
    );
    // PostgreSQL 15's text for each.
    let expected = vec![
        vec![
            Some("1".to_string()),
            Some("1 day 02:03:04.000005".to_string()),
        ],
        vec![Some("2".into()), Some("-1 years -2 mons".into())],
        vec![Some("3".into()), Some("1 day 02:00:00".into())],
        vec![Some("4".into()), None],
    ];
    assert_eq!(
        text_rows(&client, "SELECT id, d FROM spans ORDER BY id").await,
        expected
    );
    let binary = copy_out(&client, "COPY spans TO STDOUT (FORMAT binary)").await;
    assert_eq!(
        copy_in(&client, "COPY spans2 FROM STDIN (FORMAT binary)", &binary)
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        text_rows(&client, "SELECT id, d FROM spans2 ORDER BY id").await,
        expected
    );
    let bad = copy_in(&client, "COPY spans FROM STDIN", b"7\t1 fortnight\n").await;
    assert_eq!(sqlstate(bad), SqlState::INVALID_DATETIME_FORMAT);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM spans").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_options_column_lists_and_defaults() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE people (id integer PRIMARY KEY, name text, city text DEFAULT 'Oslo', born date)",
        )
        .await
        .unwrap();
    let data = b"born;id;name\n\
                 1990-05-01;1;'Ann; the first'\n\
                 NA;2;NA\n\
                 2001-01-31;3;''\n\
                 \\.\n\
                 ignored after the end marker\n";
    let sql = "COPY people (born, id, name) FROM STDIN \
               WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'NA', QUOTE '''', FORCE_NOT_NULL (name))";
    assert_eq!(copy_in(&client, sql, data).await.unwrap(), 3);
    assert_eq!(
        text_rows(
            &client,
            "SELECT id, name, city, born FROM people ORDER BY id"
        )
        .await,
        rows(&[
            &[
                Some("1"),
                Some("Ann; the first"),
                Some("Oslo"),
                Some("1990-05-01")
            ],
            &[Some("2"), Some("NA"), Some("Oslo"), None],
            &[Some("3"), Some(""), Some("Oslo"), Some("2001-01-31")],
        ])
    );
    // psycopg2's copy_from: the pre-9.0 option syntax.
    let legacy = "COPY people (id, name) FROM STDIN WITH DELIMITER AS '|' NULL AS 'nil'";
    assert_eq!(copy_in(&client, legacy, b"4|nil\n5|Bo\n").await.unwrap(), 2);
    assert_eq!(
        text_rows(
            &client,
            "SELECT id, name IS NULL FROM people WHERE id > 3 ORDER BY id"
        )
        .await,
        rows(&[&[Some("4"), Some("t")], &[Some("5"), Some("f")]])
    );
    // What PostgreSQL refuses, it refuses with its codes. (A fresh client
    // each: tokio-postgres answers a failed copy_in with CopyFail and Sync,
    // whose ReadyForQuery its next request would take for its own.)
    for (sql, code) in [
        (
            "COPY people FROM STDIN (QUOTE '\"')",
            SqlState::FEATURE_NOT_SUPPORTED,
        ),
        (
            "COPY people FROM STDIN (FORMAT xml)",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        ("COPY people (nope) FROM STDIN", SqlState::UNDEFINED_COLUMN),
        ("COPY nope FROM STDIN", SqlState::UNDEFINED_TABLE),
        (
            "COPY people FROM '/etc/passwd'",
            SqlState::FEATURE_NOT_SUPPORTED,
        ),
    ] {
        let client = server.connect().await;
        let result = client.copy_in::<_, Bytes>(sql).await.map(|_| ());
        let found = result.as_ref().err().and_then(|e| e.code());
        assert_eq!(found, Some(&code), "{sql}: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_fails_the_whole_load_and_names_the_line() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (id bigint PRIMARY KEY, note text)")
        .await
        .unwrap();
    // More than a transaction's 16 MiB write buffer, so the first rows were
    // sent to the shards before the bad line arrives.
    let n = 120_000;
    let note = "x".repeat(150);
    let mut data = String::new();
    for id in 1..=n {
        data.push_str(&format!("{id}\t{note}\n"));
    }
    data.push_str("oops\tnot a number\n");
    let error = copy_in(&client, "COPY big FROM STDIN", data.as_bytes())
        .await
        .unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::INVALID_TEXT_REPRESENTATION);
    assert_eq!(
        db.message(),
        "invalid input syntax for type bigint: \"oops\""
    );
    // The line is named in CONTEXT, as PostgreSQL names it.
    assert_eq!(
        db.where_(),
        Some(format!("COPY big, line {}, column id: \"oops\"", n + 1).as_str())
    );
    assert_eq!(query_i64(&client, "SELECT count(*) FROM big").await, 0);

    // Wrong column counts and an unterminated quote: 22P04.
    for (sql, data) in [
        ("COPY big FROM STDIN", &b"1\ta\textra\n"[..]),
        ("COPY big FROM STDIN", b"1\n"),
        ("COPY big FROM STDIN (FORMAT csv)", b"1,\"open\n"),
    ] {
        let result = copy_in(&client, sql, data).await;
        assert_eq!(sqlstate(result), SqlState::BAD_COPY_FILE_FORMAT);
    }

    // In a block, a failed COPY fails the block, as any statement does.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("INSERT INTO big VALUES (1, 'kept until the rollback')")
        .await
        .unwrap();
    let result = copy_in(&client, "COPY big FROM STDIN", b"2\tok\n3\t\\xff\\xfe\n").await;
    assert_eq!(sqlstate(result), SqlState::CHARACTER_NOT_IN_REPERTOIRE);
    assert_eq!(
        sqlstate(client.batch_execute("SELECT 1").await),
        SqlState::IN_FAILED_SQL_TRANSACTION
    );
    client.batch_execute("ROLLBACK").await.unwrap();

    // A good load in a block commits with the block.
    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY big FROM STDIN", b"7\tseven\n")
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM big").await, 1);

    // A COPY among other statements of one query: refused, not misordered.
    let mut session = raw_session(&server);
    session
        .write_all(&query("SELECT 1; COPY big TO STDOUT"))
        .unwrap();
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "TDCEZ");
    let error = String::from_utf8_lossy(&reply[3].1).into_owned();
    assert!(error.contains("C0A000"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_fail_a_vanished_client_and_late_data_leave_nothing() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id integer PRIMARY KEY)")
        .await
        .unwrap();
    let copy_data = |data: &[u8]| message(b'd', data);

    // CopyFail: 57014, and the data sent before it is gone.
    let mut session = raw_session(&server);
    session.write_all(&query("COPY t FROM STDIN")).unwrap();
    let mut script = copy_data(b"1\n2\n");
    script.extend(message(b'f', b"the client changed its mind\0"));
    session.write_all(&script).unwrap();
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "GEZ");
    let error = String::from_utf8_lossy(&reply[1].1).into_owned();
    assert!(error.contains("C57014"), "{error}");
    assert!(error.contains("the client changed its mind"), "{error}");

    // After a failed COPY, the rest of its data is dropped, as PostgreSQL
    // drops it, and the session goes on.
    session.write_all(&query("COPY t FROM STDIN")).unwrap();
    let mut script = copy_data(b"x\n");
    script.extend(copy_data(b"3\n"));
    script.extend(message(b'c', b""));
    script.extend(query("SELECT count(*) FROM t"));
    session.write_all(&script).unwrap();
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "GEZ");
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "TDCZ");
    assert!(reply[1].1.ends_with(b"0"), "{:?}", reply[1]);

    // A client that vanishes mid-load: nothing of it stays.
    let mut session = raw_session(&server);
    session.write_all(&query("COPY t FROM STDIN")).unwrap();
    session.write_all(&copy_data(b"10\n11\n12")).unwrap();
    drop(session);

    // A binary stream that is not one.
    let mut session = raw_session(&server);
    session
        .write_all(&query("COPY t FROM STDIN (FORMAT binary)"))
        .unwrap();
    let mut script = copy_data(b"PGCOPY\nthis is not the signature");
    script.extend(message(b'c', b""));
    session.write_all(&script).unwrap();
    let reply = read_reply(&mut session);
    let error = String::from_utf8_lossy(&reply[1].1).into_owned();
    assert!(error.contains("C22P04"), "{error}");

    let client2 = server.connect().await;
    assert_eq!(query_i64(&client2, "SELECT count(*) FROM t").await, 0);
    // The vanished load's keys are free.
    copy_in(&client, "COPY t FROM STDIN", b"10\n")
        .await
        .unwrap();
    assert_eq!(query_i64(&client2, "SELECT count(*) FROM t").await, 1);
}

/// `SHARDFORGE_BIG_COPY_ROWS` sets the rows of the big load (100,000 by
/// default, about 12 MiB of text); the test prints the server's peak memory
/// with it. The transaction's write buffer is 64 KiB here, so the load's
/// writes are sent ahead to the shards many times while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_load_streams_through_in_batches() {
    let n: u64 = std::env::var("SHARDFORGE_BIG_COPY_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let server = TestServer::start_with(&[("SHARDFORGE_CLUSTER_TXN_WRITE_BUFFER_KIB", "64")]).await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE loaded (id bigint PRIMARY KEY, k integer, note text)")
        .await
        .unwrap();
    let sink = client
        .copy_in("COPY loaded FROM STDIN (FORMAT csv)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    // Generated as it is sent, 10,000 rows per CopyData: the test holds
    // one piece, never the load.
    let mut id = 0;
    while id < n {
        let mut piece = String::new();
        for _ in 0..10_000.min(n - id) {
            id += 1;
            piece.push_str(&format!("{id},{},\"note, number {id}\"\n", id % 97));
        }
        sink.send(Bytes::from(piece)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), n);
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM loaded").await,
        n as i64
    );
    assert_eq!(
        text_rows(
            &client,
            &format!("SELECT k, note FROM loaded WHERE id = {n}")
        )
        .await,
        rows(&[&[
            Some((n % 97).to_string().as_str()),
            Some(format!("note, number {n}").as_str())
        ]])
    );
    println!(
        "{n} rows loaded by one COPY: server peak memory {} MiB",
        server.peak_memory_kib() / 1024
    );
}

/// A result far larger than a fetch: read through a portal 1,000 rows per
/// Execute, as JDBC with a fetch size reads it, it streams from the scan to
/// the socket. `SHARDFORGE_BIG_RESULT_ROWS` sets its rows (200,000 by
/// default; the issue's 5M-row run is in `tests/README.md`); the test
/// prints the server's peak memory after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_result_streams_through_a_portal_in_fetches() {
    let n: i64 = std::env::var("SHARDFORGE_BIG_RESULT_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .batch_execute("CREATE TABLE wide (id bigint PRIMARY KEY, note text)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY wide FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let note = "n".repeat(100);
    let mut id = 0;
    while id < n {
        let mut piece = String::new();
        for _ in 0..10_000.min(n - id) {
            id += 1;
            piece.push_str(&format!("{id}\t{note}\n"));
        }
        sink.send(Bytes::from(piece)).await.unwrap();
    }
    sink.finish().await.unwrap();
    let loaded_kib = server.peak_memory_kib();

    let txn = client.transaction().await.unwrap();
    let select = txn.prepare("SELECT id, note FROM wide").await.unwrap();
    let portal = txn.bind(&select, &[]).await.unwrap();
    let (mut rows, mut sum) = (0i64, 0i64);
    loop {
        let fetched = txn.query_portal(&portal, 1000).await.unwrap();
        assert!(fetched.len() <= 1000);
        for row in &fetched {
            sum += row.get::<_, i64>(0);
            assert_eq!(row.get::<_, &str>(1).len(), 100);
        }
        rows += fetched.len() as i64;
        if fetched.len() < 1000 {
            break;
        }
    }
    txn.commit().await.unwrap();
    assert_eq!(rows, n);
    assert_eq!(sum, n * (n + 1) / 2);
    println!(
        "{n} rows read 1,000 per Execute: server peak memory {} MiB ({} MiB after loading them)",
        server.peak_memory_kib() / 1024,
        loaded_kib / 1024
    );
}
