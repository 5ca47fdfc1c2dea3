//! Stopping a running statement as clients do: tokio-postgres's cancel
//! token (the CancelRequest psql sends on Ctrl-C, on a connection of its
//! own) and `statement_timeout`, both 57014; a cancel sent to another node
//! of a cluster than the session's (as a load balancer may send it); and
//! cancel requests that name no session or give the wrong key, which do
//! nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::bad_input::{query, read_message, startup_packet};
use crate::cluster::start_cluster;
use crate::harness::{query_i64, sqlstate, TestServer};
use crate::wire_bounds::{error_of, kinds, read_reply};

/// A query that runs for minutes unless stopped.
const ENDLESS: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

fn cancel_request(server: &TestServer, pid: i32, key: i32) {
    let mut packet = 16i32.to_be_bytes().to_vec();
    packet.extend(80_877_102i32.to_be_bytes());
    packet.extend(pid.to_be_bytes());
    packet.extend(key.to_be_bytes());
    let mut stream = TcpStream::connect(("127.0.0.1", server.pg_port)).unwrap();
    stream.write_all(&packet).unwrap();
    // The server answers nothing and closes the connection.
    let mut rest = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(stream.read_to_end(&mut rest).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_stops_the_running_statement_only() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id integer PRIMARY KEY)")
        .await
        .unwrap();

    for in_block in [false, true] {
        if in_block {
            client
                .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
                .await
                .unwrap();
        }
        let token = client.cancel_token();
        let cancel = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            token.cancel_query(NoTls).await.unwrap();
        });
        let error = client.simple_query(ENDLESS).await.unwrap_err();
        cancel.await.unwrap();
        let db = error.as_db_error().expect("a server error");
        assert_eq!(db.code(), &SqlState::QUERY_CANCELED);
        assert_eq!(db.message(), "canceling statement due to user request");
        if in_block {
            // As any error: the block failed, and its insert is undone.
            assert_eq!(
                sqlstate(client.batch_execute("SELECT 1").await),
                SqlState::IN_FAILED_SQL_TRANSACTION
            );
            client.batch_execute("ROLLBACK").await.unwrap();
        }
    }
    // A cancel between statements does nothing to the next one. (The
    // client does not wait for the server to act on it, as PostgreSQL's
    // protocol has no answer to a cancel: give it time to land before the
    // next statement, or it may stop that one, in PostgreSQL too.)
    client.cancel_token().cancel_query(NoTls).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(query_i64(&client, "SELECT count(*) FROM t").await, 0);

    // Through the extended protocol, too.
    let token = client.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await.unwrap();
    });
    assert_eq!(
        sqlstate(client.query(ENDLESS, &[]).await),
        SqlState::QUERY_CANCELED
    );
    assert_eq!(query_i64(&client, "SELECT 7::bigint").await, 7);
}

/// A raw session on `server`, with its process id and key from
/// BackendKeyData, ready for a query.
fn raw_session(server: &TestServer) -> (TcpStream, i32, i32) {
    let mut session = TcpStream::connect(("127.0.0.1", server.pg_port)).unwrap();
    // A statement a cancel missed would run for minutes: fail instead.
    session
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    session.write_all(&startup_packet()).unwrap();
    let (pid, key) = loop {
        let (kind, body) = read_message(&mut session).unwrap();
        if kind == b'K' {
            let word = |at: usize| i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
            break (word(0), word(4));
        }
    };
    assert!(pid > 0);
    read_reply(&mut session);
    (session, pid, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_with_the_wrong_key_or_pid_does_nothing() {
    let server = TestServer::start().await;
    let (mut session, pid, key) = raw_session(&server);
    session
        .write_all(&query("SELECT count(*) FROM generate_series(1, 3000000)"))
        .unwrap();
    cancel_request(&server, pid, key.wrapping_add(1));
    cancel_request(&server, pid.wrapping_add(1000), key);
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "TDCZ", "the query ran to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_stops_statements_that_run_past_it() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id integer PRIMARY KEY)")
        .await
        .unwrap();
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let shown = client.simple_query("SHOW statement_timeout").await.unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &shown[1] else {
        panic!("SHOW gave {shown:?}");
    };
    assert_eq!(row.get(0), Some("300ms"));
    let error = client.simple_query(ENDLESS).await.unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED);
    assert_eq!(db.message(), "canceling statement due to statement timeout");
    // Each statement has its own time.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(query_i64(&client, "SELECT 1::bigint").await, 1);
    }
    // A COPY FROM whose data comes too late: nothing of it stays.
    let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\n")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = async {
        sink.send(Bytes::from_static(b"2\n")).await?;
        sink.finish().await
    };
    assert_eq!(sqlstate(late.await), SqlState::QUERY_CANCELED);
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM t").await, 0);
    for bad in ["'1 fortnight'", "'-5'", "'abc'"] {
        let result = client
            .batch_execute(&format!("SET statement_timeout = {bad}"))
            .await;
        assert_eq!(sqlstate(result), SqlState::INVALID_PARAMETER_VALUE, "{bad}");
    }
}

/// A query that computes for seconds without waiting on a shard: a join
/// of two series, every pair tested (400 million). Its operators hold
/// their thread for a whole batch, which must not keep a cancel or other
/// sessions out.
const COMPUTING: &str = "SELECT count(*) FROM generate_series(1, 20000) a, \
                         generate_series(1, 20000) b WHERE a + b = 1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_computes_is_stopped_and_others_are_served_meanwhile() {
    let server = TestServer::start().await;
    let client = server.connect().await;

    // A CancelRequest, with another session served while the join runs.
    let token = client.cancel_token();
    let other = server.connect().await;
    let cancel = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(query_i64(&other, "SELECT 41::bigint + 1").await, 42);
        token.cancel_query(NoTls).await.unwrap();
    });
    let error = client.simple_query(COMPUTING).await.unwrap_err();
    cancel.await.unwrap();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED);
    assert_eq!(db.message(), "canceling statement due to user request");

    // statement_timeout, as the first statement after the SET.
    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let error = client.simple_query(COMPUTING).await.unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::QUERY_CANCELED);
    assert_eq!(db.message(), "canceling statement due to statement timeout");
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT 1::bigint").await, 1);
}

/// Behind a load balancer a cancel connection may reach another node than
/// the one serving the session: that node passes it on, and the statement
/// stops as if the cancel had gone to its own node. A wrong key passed on
/// does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_sent_to_another_node_stops_the_statement_on_its_own() {
    let cluster = start_cluster(3).await;
    let (mut session, pid, key) = raw_session(&cluster[0]);
    for other in &cluster[1..] {
        session.write_all(&query(ENDLESS)).unwrap();
        // Once the statement runs (a cancel between statements does
        // nothing).
        std::thread::sleep(Duration::from_millis(500));
        cancel_request(other, pid, key);
        let reply = read_reply(&mut session);
        assert!(kinds(&reply).ends_with("EZ"), "the statement stopped");
        let (_, code, text) = error_of(&reply).unwrap();
        assert_eq!(code, "57014");
        assert_eq!(text, "canceling statement due to user request");
    }
    session
        .write_all(&query("SELECT count(*) FROM generate_series(1, 3000000)"))
        .unwrap();
    cancel_request(&cluster[1], pid, key.wrapping_add(1));
    let reply = read_reply(&mut session);
    assert_eq!(kinds(&reply), "TDCZ", "the query ran to its end");
}
