//! Transactions: visibility, rollback, snapshot isolation and write
//! conflicts (40001), failed blocks (25P02), abandoned sessions, and
//! atomic commit of rows spread over every shard.
//!
//! Tests that rely on a transaction keeping one snapshot start it with
//! `BEGIN ISOLATION LEVEL REPEATABLE READ`, which is snapshot isolation in
//! PostgreSQL too, so the expectations are PostgreSQL's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::harness::{assert_error, query_i64, rows, sqlstate, text_rows, TestServer};

/// Number of rows in `table`, as seen by `client`.
async fn count(client: &Client, table: &str) -> i64 {
    query_i64(client, &format!("SELECT count(*) FROM {table}")).await
}

#[tokio::test]
async fn transaction_reads_its_own_writes_and_commit_publishes_them() {
    let server = TestServer::start().await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute(
        "CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL); INSERT INTO t VALUES (1, 'old')",
    )
    .await
    .unwrap();

    a.batch_execute("BEGIN").await.unwrap();
    a.batch_execute("INSERT INTO t VALUES (2, 'new')")
        .await
        .unwrap();
    assert_eq!(count(&a, "t").await, 2);
    assert_eq!(
        a.execute("UPDATE t SET v = 'changed' WHERE id = 1", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        a.execute("UPDATE t SET v = v || '!' WHERE id = 2", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        text_rows(&a, "SELECT id, v FROM t ORDER BY id").await,
        rows(&[&[Some("1"), Some("changed")], &[Some("2"), Some("new!")]])
    );
    assert_eq!(
        a.execute("DELETE FROM t WHERE id = 1", &[]).await.unwrap(),
        1
    );
    assert_eq!(count(&a, "t").await, 1);
    // Own writes also count for key checks inside the transaction.
    assert_error(
        &a,
        "INSERT INTO t VALUES (2, 'dup')",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    a.batch_execute("ROLLBACK").await.unwrap();

    // The same through the driver's transaction API, then committed.
    let mut a = a;
    let tx = a.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (3, 'three')", &[])
        .await
        .unwrap();
    tx.execute("UPDATE t SET v = 'first' WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(query_i64(&tx, "SELECT count(*) FROM t").await, 2);
    tx.commit().await.unwrap();

    assert_eq!(
        text_rows(&b, "SELECT id, v FROM t ORDER BY id").await,
        rows(&[&[Some("1"), Some("first")], &[Some("3"), Some("three")]])
    );
}

#[tokio::test]
async fn rollback_discards_inserts_updates_and_deletes() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE r (id integer PRIMARY KEY, v integer NOT NULL);
             INSERT INTO r VALUES (1, 10), (2, 20), (3, 30);",
        )
        .await
        .unwrap();
    let before = text_rows(&client, "SELECT id, v FROM r ORDER BY id").await;

    client
        .batch_execute(
            "BEGIN;
             INSERT INTO r VALUES (4, 40), (5, 50);
             UPDATE r SET v = v + 1;
             DELETE FROM r WHERE id = 2;",
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "r").await, 4);
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, v FROM r ORDER BY id").await,
        before
    );

    // A driver transaction dropped without commit rolls back.
    {
        let tx = client.transaction().await.unwrap();
        tx.execute("DELETE FROM r", &[]).await.unwrap();
        assert_eq!(query_i64(&tx, "SELECT count(*) FROM r").await, 0);
    }
    assert_eq!(
        text_rows(&client, "SELECT id, v FROM r ORDER BY id").await,
        before
    );
    let other = server.connect().await;
    assert_eq!(
        text_rows(&other, "SELECT id, v FROM r ORDER BY id").await,
        before
    );
}

#[tokio::test]
async fn uncommitted_rows_are_invisible_and_a_transaction_keeps_its_snapshot() {
    let server = TestServer::start().await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute(
        "CREATE TABLE s (id integer PRIMARY KEY, v integer NOT NULL); INSERT INTO s VALUES (1, 1)",
    )
    .await
    .unwrap();

    // Writer A, uncommitted: B sees none of it.
    a.batch_execute("BEGIN; INSERT INTO s VALUES (2, 2); UPDATE s SET v = 100 WHERE id = 1; DELETE FROM s WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        text_rows(&b, "SELECT id, v FROM s ORDER BY id").await,
        rows(&[&[Some("1"), Some("1")]])
    );

    // Reader B opens a snapshot, then A commits.
    b.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    assert_eq!(count(&b, "s").await, 1);
    a.batch_execute("COMMIT").await.unwrap();
    a.batch_execute("INSERT INTO s VALUES (3, 3)")
        .await
        .unwrap();

    // B still sees its snapshot: neither the commit nor the later autocommit insert.
    assert_eq!(
        text_rows(&b, "SELECT id, v FROM s ORDER BY id").await,
        rows(&[&[Some("1"), Some("1")]])
    );
    assert_eq!(query_i64(&b, "SELECT sum(v) FROM s").await, 1);
    b.batch_execute("COMMIT").await.unwrap();

    // A new transaction (or statement) sees everything committed.
    assert_eq!(
        text_rows(&b, "SELECT id, v FROM s ORDER BY id").await,
        rows(&[&[Some("2"), Some("2")], &[Some("3"), Some("3")]])
    );
}

#[tokio::test]
async fn concurrent_updates_of_one_row_make_the_later_committer_fail_with_40001() {
    let server = TestServer::start().await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute(
        "CREATE TABLE acct (id integer PRIMARY KEY, balance integer NOT NULL);
         INSERT INTO acct VALUES (1, 0), (2, 0), (3, 0);",
    )
    .await
    .unwrap();

    for client in [&a, &b] {
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        assert_eq!(query_i64(client, "SELECT sum(balance) FROM acct").await, 0);
    }
    assert_eq!(
        a.execute("UPDATE acct SET balance = balance + 1 WHERE id = 1", &[])
            .await
            .unwrap(),
        1
    );
    // Disjoint rows do not conflict.
    assert_eq!(
        a.execute("UPDATE acct SET balance = balance + 1 WHERE id = 2", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.execute("UPDATE acct SET balance = balance + 10 WHERE id = 3", &[])
            .await
            .unwrap(),
        1
    );

    // B writes row 1 too. Depending on the engine the write waits for A
    // (PostgreSQL) or goes ahead optimistically, so run it in its own task
    // while A commits; B commits only after A did (else, optimistically,
    // B could be the first committer on a busy machine).
    let (a_committed, wait_for_a) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn(async move {
        let outcome = match b
            .execute("UPDATE acct SET balance = balance + 10 WHERE id = 1", &[])
            .await
        {
            Err(e) => Err(("UPDATE", e)),
            Ok(_) => {
                let _ = wait_for_a.await;
                b.batch_execute("COMMIT").await.map_err(|e| ("COMMIT", e))
            }
        };
        (b, outcome)
    });
    a.batch_execute("COMMIT")
        .await
        .expect("the first committer wins");
    let _ = a_committed.send(());
    let (b, outcome) = b_task.await.unwrap();
    match outcome {
        Ok(()) => panic!("the later writer committed a conflicting update (lost update)"),
        Err((step, err)) => {
            assert_eq!(
                err.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE),
                "{step} failed with {err:?}"
            )
        }
    }
    // Whether it failed at the write or at COMMIT, the transaction is over
    // after ROLLBACK, and none of B's writes (not even row 3) survive.
    b.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        text_rows(&b, "SELECT id, balance FROM acct ORDER BY id").await,
        rows(&[
            &[Some("1"), Some("1")],
            &[Some("2"), Some("1")],
            &[Some("3"), Some("0")]
        ])
    );

    // The retried transaction goes through.
    b.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; UPDATE acct SET balance = balance + 10 WHERE id = 1; COMMIT")
        .await
        .unwrap();
    assert_eq!(
        query_i64(&a, "SELECT balance::bigint FROM acct WHERE id = 1").await,
        11
    );
}

#[tokio::test]
async fn error_in_a_block_aborts_it_until_rollback() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE f (id integer PRIMARY KEY)")
        .await
        .unwrap();

    client.batch_execute("BEGIN").await.unwrap();
    client
        .batch_execute("INSERT INTO f VALUES (1)")
        .await
        .unwrap();
    assert_error(
        &client,
        "INSERT INTO f VALUES (1)",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert_error(&client, "SELECT 1", SqlState::IN_FAILED_SQL_TRANSACTION).await;
    assert_error(
        &client,
        "INSERT INTO f VALUES (2)",
        SqlState::IN_FAILED_SQL_TRANSACTION,
    )
    .await;
    // The extended protocol is refused too.
    assert_eq!(
        sqlstate(client.query("SELECT count(*) FROM f", &[]).await),
        SqlState::IN_FAILED_SQL_TRANSACTION
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        count(&client, "f").await,
        0,
        "nothing of the failed block survives"
    );

    // COMMIT of a failed block is answered, but rolls back.
    client
        .batch_execute("BEGIN; INSERT INTO f VALUES (3)")
        .await
        .unwrap();
    assert_error(&client, "SELECT 1 / 0", SqlState::DIVISION_BY_ZERO).await;
    assert_error(&client, "SELECT 1", SqlState::IN_FAILED_SQL_TRANSACTION).await;
    client
        .batch_execute("COMMIT")
        .await
        .expect("COMMIT of a failed block is not an error");
    assert_eq!(count(&client, "f").await, 0);

    // And an ordinary transaction works afterwards.
    client
        .batch_execute("BEGIN; INSERT INTO f VALUES (4); COMMIT")
        .await
        .unwrap();
    assert_eq!(count(&client, "f").await, 1);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_transaction_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    admin
        .batch_execute("CREATE TABLE d (id integer PRIMARY KEY, v integer NOT NULL); INSERT INTO d VALUES (1, 1)")
        .await
        .unwrap();

    // One client leaves politely (Terminate), the other just drops the socket.
    for polite in [true, false] {
        let (client, connection) = server.connect_with_handle().await;
        client
            .batch_execute("BEGIN; INSERT INTO d VALUES (200, 2), (201, 2); UPDATE d SET v = v + 50 WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(count(&client, "d").await, 3);
        if polite {
            drop(client);
            let _ = connection.await;
        } else {
            connection.abort();
            let _ = connection.await;
            drop(client);
        }

        assert_eq!(
            text_rows(&admin, "SELECT id, v FROM d ORDER BY id").await,
            rows(&[&[Some("1"), Some("1")]])
        );
        // The abandoned transaction holds nothing: the same row and keys can be
        // written. The server may need a moment to notice the disconnect, so a
        // serialization failure is retried, as an application would.
        let mut attempts = 0;
        loop {
            let result = admin
                .batch_execute("BEGIN; UPDATE d SET v = v + 1 WHERE id = 1; INSERT INTO d VALUES (200, 3); COMMIT")
                .await;
            match result {
                Ok(()) => break,
                Err(e)
                    if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) && attempts < 50 =>
                {
                    attempts += 1;
                    let _ = admin.batch_execute("ROLLBACK").await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("writing after an abandoned transaction: {e:?}"),
            }
        }
        assert_eq!(count(&admin, "d").await, 2);
        admin
            .batch_execute("DELETE FROM d WHERE id = 200; UPDATE d SET v = 1 WHERE id = 1")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn many_keys_commit_atomically_across_shards() {
    const N: i64 = 300;
    let server = TestServer::start().await;
    let writer = server.connect().await;
    let reader = server.connect().await;
    writer
        .batch_execute("CREATE TABLE m (id bigint PRIMARY KEY, v bigint NOT NULL)")
        .await
        .unwrap();
    let values: Vec<String> = (1..=N).map(|i| format!("({i}, {i})")).collect();
    let insert_all = format!("INSERT INTO m VALUES {}", values.join(", "));

    // Rolled back: nothing anywhere.
    writer.batch_execute("BEGIN").await.unwrap();
    writer.batch_execute(&insert_all).await.unwrap();
    assert_eq!(count(&writer, "m").await, N);
    assert_eq!(count(&reader, "m").await, 0);
    writer.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&reader, "m").await, 0);

    // Committed while a reader keeps counting: it sees 0 or N, never a part.
    writer.batch_execute("BEGIN").await.unwrap();
    writer.batch_execute(&insert_all).await.unwrap();
    writer
        .batch_execute("UPDATE m SET v = v * 2 WHERE id % 3 = 0")
        .await
        .unwrap();
    let committed = Arc::new(AtomicBool::new(false));
    let watcher = {
        let committed = committed.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                // Read the flag first: a read that starts after COMMIT returned must see N.
                let done = committed.load(Ordering::SeqCst);
                seen.push(query_i64(&reader, "SELECT count(*) FROM m").await);
                if done {
                    return (reader, seen);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    writer.batch_execute("COMMIT").await.unwrap();
    committed.store(true, Ordering::SeqCst);
    let (reader, seen) = watcher.await.unwrap();
    assert!(
        seen.iter().all(|&n| n == 0 || n == N),
        "a reader saw a partial commit: {seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&N),
        "a read after COMMIT returned sees every row"
    );

    let expected_sum: i64 = (1..=N).map(|i| if i % 3 == 0 { 2 * i } else { i }).sum();
    assert_eq!(
        query_i64(&reader, "SELECT sum(v)::bigint FROM m").await,
        expected_sum
    );
    assert_eq!(
        query_i64(&reader, "SELECT count(DISTINCT id) FROM m").await,
        N
    );

    // A multi-key transaction that fails half way leaves nothing either.
    writer
        .batch_execute("BEGIN; DELETE FROM m WHERE id <= 150")
        .await
        .unwrap();
    assert_error(
        &writer,
        "INSERT INTO m VALUES (1000, 0), (200, 0)",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    writer.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&reader, "m").await, N);
    assert_eq!(
        query_i64(&reader, "SELECT sum(v)::bigint FROM m").await,
        expected_sum
    );
}

#[tokio::test]
async fn ddl_is_transactional_and_private_until_commit() {
    let mut server = TestServer::start().await;
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE kept (id integer PRIMARY KEY); INSERT INTO kept VALUES (1)")
        .await
        .unwrap();

    // Rolled back: neither the table nor the drop happened.
    a.batch_execute(
        "BEGIN; CREATE TABLE made (id integer PRIMARY KEY, v text DEFAULT 'd');
         INSERT INTO made (id) VALUES (1), (2); DROP TABLE kept",
    )
    .await
    .unwrap();
    assert_eq!(count(&a, "made").await, 2);
    // The other session sees the catalog as committed.
    assert_error(&b, "SELECT * FROM made", SqlState::UNDEFINED_TABLE).await;
    assert_eq!(count(&b, "kept").await, 1);
    // (An error, so the block fails; it is rolled back anyway.)
    assert_error(&a, "SELECT * FROM kept", SqlState::UNDEFINED_TABLE).await;
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_error(&a, "SELECT * FROM made", SqlState::UNDEFINED_TABLE).await;
    assert_eq!(count(&a, "kept").await, 1);

    // Committed: the table and its rows appear together, and the dropped
    // table is gone for everyone.
    a.batch_execute(
        "BEGIN; CREATE TABLE made (id integer PRIMARY KEY, v text DEFAULT 'd');
         INSERT INTO made (id) VALUES (1), (2); DROP TABLE kept; COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(
        text_rows(&b, "SELECT id, v FROM made ORDER BY id").await,
        rows(&[&[Some("1"), Some("d")], &[Some("2"), Some("d")]])
    );
    assert_error(&b, "SELECT * FROM kept", SqlState::UNDEFINED_TABLE).await;

    // Two sessions create the same name: the first to commit wins, the
    // other's COMMIT fails with 42P07 and leaves nothing.
    a.batch_execute("BEGIN; CREATE TABLE race (x integer); INSERT INTO race VALUES (1)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; CREATE TABLE race (y text); INSERT INTO race VALUES ('b')")
        .await
        .unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        sqlstate(a.batch_execute("COMMIT").await),
        SqlState::DUPLICATE_TABLE
    );
    assert_eq!(
        text_rows(&a, "SELECT * FROM race").await,
        rows(&[&[Some("b")]])
    );

    // All of it is on disk.
    drop((a, b));
    server.kill9_and_restart().await;
    let c = server.connect().await;
    assert_eq!(count(&c, "made").await, 2);
    assert_eq!(count(&c, "race").await, 1);
    assert_error(&c, "SELECT * FROM kept", SqlState::UNDEFINED_TABLE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoints_undo_what_came_after_them_and_nothing_before() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .batch_execute("CREATE TABLE s (id integer PRIMARY KEY, v text)")
        .await
        .unwrap();
    // tokio-postgres, like psycopg and SQLAlchemy, nests a transaction in
    // another with SAVEPOINT / RELEASE / ROLLBACK TO.
    let mut outer = client.transaction().await.unwrap();
    outer
        .execute("INSERT INTO s VALUES (1, 'kept')", &[])
        .await
        .unwrap();
    let inner = outer.transaction().await.unwrap();
    inner
        .execute("UPDATE s SET v = 'undone' WHERE id = 1", &[])
        .await
        .unwrap();
    inner
        .batch_execute("CREATE TABLE s2 (a integer PRIMARY KEY); INSERT INTO s2 VALUES (1)")
        .await
        .unwrap();
    let failed = inner.execute("INSERT INTO s VALUES (1, 'dup')", &[]).await;
    assert_eq!(sqlstate(failed), SqlState::UNIQUE_VIOLATION);
    inner.rollback().await.unwrap();
    // The failed block works again, as it was before the savepoint.
    let v: String = outer
        .query_one("SELECT v FROM s WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "kept");
    let gone = outer.execute("SELECT * FROM s2", &[]).await;
    assert_eq!(sqlstate(gone), SqlState::UNDEFINED_TABLE);
    let inner = outer.transaction().await.unwrap();
    inner
        .execute("INSERT INTO s VALUES (2, 'released')", &[])
        .await
        .unwrap();
    inner.commit().await.unwrap();
    outer.commit().await.unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, v FROM s ORDER BY id").await,
        rows(&[&[Some("1"), Some("kept")], &[Some("2"), Some("released")]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_cannot_take_back_writes_sent_ahead_since() {
    // A 64 KiB buffer: a few thousand rows are sent ahead to the groups.
    let server = TestServer::start_with(&[("SHARDFORGE_CLUSTER_TXN_WRITE_BUFFER_KIB", "64")]).await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (id integer PRIMARY KEY, v text)")
        .await
        .unwrap();
    client
        .batch_execute("BEGIN; SAVEPOINT before")
        .await
        .unwrap();
    let big = "INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g";
    client.execute(big, &[]).await.unwrap();
    client.batch_execute("SAVEPOINT after").await.unwrap();
    client
        .execute("INSERT INTO big VALUES (0, 'small')", &[])
        .await
        .unwrap();
    // Back to after the big insert works; to before it is refused, clearly.
    client.batch_execute("ROLLBACK TO after").await.unwrap();
    assert_error(
        &client,
        "ROLLBACK TO before",
        SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&client, "big").await, 0);
}

/// An autocommit INSERT is checked as its commit applies, not by a read
/// first (`TxnCoordinator::insert_alone`): of inserts of one key racing,
/// one writes its row and each other gets 23505 naming the key, as in
/// PostgreSQL; a deleted key takes a new row; a key twice in one
/// statement, or a taken key among rows of many shard groups, writes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_autocommit_inserts_of_one_key_leave_one_row() {
    let server = TestServer::start().await;
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE u (id integer PRIMARY KEY, who bigint NOT NULL)")
        .await
        .unwrap();
    let clients = futures::future::join_all((0..4).map(|_| server.connect())).await;
    const ROUNDS: i64 = 20;
    for round in 0..ROUNDS {
        let inserts = clients.iter().enumerate().map(|(who, client)| async move {
            client
                .execute(&format!("INSERT INTO u VALUES ({round}, {who})"), &[])
                .await
        });
        let results = futures::future::join_all(inserts).await;
        let written: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(written.len(), 1, "round {round}: {results:?}");
        for failed in results.iter().filter_map(|r| r.as_ref().err()) {
            let db = failed.as_db_error().expect("a server error");
            assert_eq!(db.code(), &SqlState::UNIQUE_VIOLATION, "{db:?}");
            assert_eq!(
                db.detail(),
                Some(format!("Key (id)=({round}) already exists.").as_str())
            );
        }
    }
    assert_eq!(count(&setup, "u").await, ROUNDS);

    setup
        .batch_execute("DELETE FROM u WHERE id = 0")
        .await
        .unwrap();
    setup
        .execute("INSERT INTO u VALUES (0, 9)", &[])
        .await
        .unwrap();
    assert_eq!(query_i64(&setup, "SELECT who FROM u WHERE id = 0").await, 9);

    assert_error(
        &setup,
        "INSERT INTO u VALUES (100, 1), (100, 2)",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    let many: Vec<String> = (200..264).map(|id| format!("({id}, 1)")).collect();
    assert_error(
        &setup,
        &format!("INSERT INTO u VALUES {}, (5, 1)", many.join(", ")),
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert_eq!(count(&setup, "u").await, ROUNDS);
}

#[tokio::test]
async fn select_for_update_is_refused_until_rows_can_be_locked() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE locked (id integer PRIMARY KEY); INSERT INTO locked VALUES (1)",
        )
        .await
        .unwrap();
    // Without the lock, a second transaction would not wait: refused, in
    // both protocols, wherever the clause stands.
    for sql in [
        "SELECT * FROM locked WHERE id = 1 FOR UPDATE",
        "SELECT * FROM locked FOR SHARE SKIP LOCKED",
        "SELECT * FROM (SELECT * FROM locked FOR UPDATE OF locked) s",
    ] {
        assert_error(&client, sql, SqlState::FEATURE_NOT_SUPPORTED).await;
        assert_eq!(
            sqlstate(client.query(sql, &[]).await),
            SqlState::FEATURE_NOT_SUPPORTED,
            "{sql}"
        );
    }
    assert_eq!(count(&client, "locked").await, 1, "the session goes on");
}
