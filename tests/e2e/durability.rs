//! What survives a restart: committed rows and the catalog after SIGTERM,
//! every acknowledged autocommit write after SIGKILL, and nothing of a
//! transaction that had not committed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::harness::{assert_error, query_i64, rows, text_rows, TestServer};

#[tokio::test]
async fn data_and_catalog_survive_a_clean_restart() {
    let mut server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE items (id integer PRIMARY KEY, name varchar(20) NOT NULL, price numeric(8, 2),
                                 stock integer NOT NULL DEFAULT 5, added date);
             CREATE TABLE pairs (a integer, b text, PRIMARY KEY (a, b));
             CREATE TABLE gone (id integer PRIMARY KEY);
             CREATE TABLE loose (x integer);
             INSERT INTO items (id, name, price, added) VALUES
                 (1, 'one', 1.10, '2024-01-01'), (2, 'two', 2.20, '2024-01-02'), (3, 'three', 3.30, NULL);
             UPDATE items SET stock = 9 WHERE id = 2;
             DELETE FROM items WHERE id = 3;
             INSERT INTO pairs VALUES (1, 'a'), (1, 'b');
             INSERT INTO loose VALUES (7), (7);
             DROP TABLE gone;",
        )
        .await
        .unwrap();
    // An idle session stays open across the first restart: SIGTERM must not
    // wait for clients to leave on their own.
    let _idle = client;

    for round in 0..2 {
        server.restart().await;
        let client = server.connect().await;
        assert_eq!(
            text_rows(
                &client,
                "SELECT id, name, price, stock, added FROM items ORDER BY id"
            )
            .await,
            rows(&[
                &[
                    Some("1"),
                    Some("one"),
                    Some("1.10"),
                    Some("5"),
                    Some("2024-01-01")
                ],
                &[
                    Some("2"),
                    Some("two"),
                    Some("2.20"),
                    Some("9"),
                    Some("2024-01-02")
                ],
            ]),
            "after restart {round}"
        );
        // The catalog came back whole: column types, defaults, keys, drops.
        let stmt = client.prepare("SELECT * FROM items").await.unwrap();
        let described: Vec<(&str, Type)> = stmt
            .columns()
            .iter()
            .map(|c| (c.name(), c.type_().clone()))
            .collect();
        assert_eq!(
            described,
            vec![
                ("id", Type::INT4),
                ("name", Type::VARCHAR),
                ("price", Type::NUMERIC),
                ("stock", Type::INT4),
                ("added", Type::DATE)
            ]
        );
        assert_error(
            &client,
            "INSERT INTO items (id, name) VALUES (1, 'dup')",
            SqlState::UNIQUE_VIOLATION,
        )
        .await;
        assert_error(
            &client,
            "INSERT INTO items (id, name) VALUES (50, NULL)",
            SqlState::NOT_NULL_VIOLATION,
        )
        .await;
        assert_error(
            &client,
            "INSERT INTO items (id, name) VALUES (50, 'a name longer than twenty')",
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
        )
        .await;
        assert_error(
            &client,
            "INSERT INTO pairs VALUES (1, 'b')",
            SqlState::UNIQUE_VIOLATION,
        )
        .await;
        assert_error(&client, "SELECT * FROM gone", SqlState::UNDEFINED_TABLE).await;
        assert_eq!(
            query_i64(&client, "SELECT count(*) FROM loose WHERE x = 7").await,
            2
        );

        // New writes work and use the remembered default.
        let id = 10 + round;
        client
            .execute("INSERT INTO items (id, name) VALUES ($1, 'new')", &[&id])
            .await
            .unwrap();
        assert_eq!(
            query_i64(
                &client,
                &format!("SELECT stock::bigint FROM items WHERE id = {id}")
            )
            .await,
            5
        );
        client
            .batch_execute("DELETE FROM items WHERE id >= 10; INSERT INTO loose VALUES (8)")
            .await
            .unwrap();
        assert_eq!(query_i64(&client, "SELECT count(*) FROM loose").await, 3);
        client
            .batch_execute("DELETE FROM loose WHERE x = 8")
            .await
            .unwrap();
        // A new table created now must survive the next round too.
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS later (id integer PRIMARY KEY)")
            .await
            .unwrap();
        client
            .batch_execute(&format!("INSERT INTO later VALUES ({round})"))
            .await
            .unwrap();
        assert_eq!(
            query_i64(&client, "SELECT count(*) FROM later").await,
            1 + round as i64
        );
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_and_uncommitted_ones_do_not() {
    /// Autocommit inserts acknowledged before the kill, at least.
    const ACKED_BEFORE_KILL: usize = 400;
    const WRITERS: i32 = 4;

    let mut server = TestServer::start().await;
    let admin = server.connect().await;
    admin
        .batch_execute(
            "CREATE TABLE events (id integer PRIMARY KEY, writer integer NOT NULL, payload text NOT NULL);
             CREATE TABLE counters (id integer PRIMARY KEY, n bigint NOT NULL);
             INSERT INTO counters VALUES (1, 0), (2, 0);",
        )
        .await
        .unwrap();

    // An open transaction at kill time: none of it may come back.
    let open_txn = server.connect().await;
    open_txn
        .batch_execute(
            "BEGIN;
             INSERT INTO events VALUES (-1, -1, 'uncommitted'), (-2, -1, 'uncommitted');
             UPDATE counters SET n = 999 WHERE id = 1;",
        )
        .await
        .unwrap();

    // Writers insert disjoint ids in autocommit mode and record each id whose
    // INSERT was acknowledged.
    let acked: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let client = server.connect().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let insert = client
                .prepare("INSERT INTO events VALUES ($1, $2, $3)")
                .await
                .expect("prepare insert");
            for i in 0.. {
                let id = i * WRITERS + w;
                match client
                    .execute(&insert, &[&id, &w, &format!("event {id} from writer {w}")])
                    .await
                {
                    Ok(1) => acked.lock().unwrap().push(id),
                    Ok(n) => panic!("INSERT of one row reported {n} rows"),
                    Err(_) => return, // the server went away
                }
            }
        }));
    }
    // Meanwhile this task bumps a counter in autocommit mode; each bump is
    // acknowledged before the next, and before the kill.
    let mut bumps = 0i64;
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        assert_eq!(
            admin
                .execute("UPDATE counters SET n = n + 1 WHERE id = 2", &[])
                .await
                .unwrap(),
            1
        );
        bumps += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if writers.iter().all(|w| w.is_finished()) {
            panic!("every writer stopped before {ACKED_BEFORE_KILL} inserts were acknowledged");
        }
    }

    server.kill9_and_restart().await;
    for writer in writers {
        writer.await.expect("writer task");
    }
    drop(open_txn);
    drop(admin);

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    let client = server.connect().await;
    let present: std::collections::HashSet<i32> = client
        .query("SELECT id FROM events WHERE id >= 0", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<i32> = acked
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged inserts lost after kill -9: {missing:?}",
        missing.len()
    );
    // Rows that are present are whole.
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM events WHERE id >= 0 AND (payload <> 'event ' || id || ' from writer ' || writer OR id % 4 <> writer)"
        )
        .await,
        0
    );
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM events WHERE id < 0").await,
        0,
        "uncommitted rows came back"
    );
    assert_eq!(
        query_i64(&client, "SELECT n FROM counters WHERE id = 1").await,
        0,
        "uncommitted update came back"
    );
    assert_eq!(
        query_i64(&client, "SELECT n FROM counters WHERE id = 2").await,
        bumps,
        "acknowledged updates"
    );

    // The node keeps working, and a second crash loses nothing either.
    let n = client
        .execute("INSERT INTO events SELECT -100 - i, 9, 'second round' FROM generate_series(1, 100) AS s(i)", &[])
        .await
        .unwrap();
    assert_eq!(n, 100);
    let before = query_i64(&client, "SELECT count(*) FROM events").await;
    drop(client);
    server.kill9_and_restart().await;
    let client = server.connect().await;
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM events").await,
        before
    );
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM events WHERE writer = 9").await,
        100
    );
}
