//! RETURNING and ON CONFLICT as ORMs use them: prepared statements that
//! describe their result, bound parameters, portals read in parts, and
//! transactions that roll the writes back.

use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::harness::{query_i64, sqlstate, TestServer};

async fn items(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE items (
                 id bigint PRIMARY KEY,
                 name varchar(20) NOT NULL,
                 qty integer DEFAULT 1,
                 price numeric(8,2) DEFAULT 9.99
             )",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_writes_describe_and_return_their_rows() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    items(&client).await;

    // An ORM's insert: the key and the defaults come back, typed.
    let insert = client
        .prepare(
            "INSERT INTO items (id, name) VALUES ($1, $2) RETURNING id, qty, price, name AS label",
        )
        .await
        .unwrap();
    // (PostgreSQL types $2 varchar, after its column; ShardForge says text.)
    assert_eq!(insert.params()[0], Type::INT8);
    let described: Vec<(&str, &Type)> = insert
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_()))
        .collect();
    assert_eq!(
        described,
        [
            ("id", &Type::INT8),
            ("qty", &Type::INT4),
            ("price", &Type::NUMERIC),
            ("label", &Type::VARCHAR)
        ]
    );
    for (id, name) in [(1i64, "pen"), (2, "ink"), (3, "pad")] {
        let row = client.query_one(&insert, &[&id, &name]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), id);
        assert_eq!(row.get::<_, i32>(1), 1);
        assert_eq!(row.get::<_, Decimal>(2), Decimal::new(999, 2));
        assert_eq!(row.get::<_, &str>(3), name);
    }

    // UPDATE gives the new values, DELETE the old ones.
    let update = client
        .prepare("UPDATE items SET qty = qty + $1 WHERE id <= $2 RETURNING id, qty")
        .await
        .unwrap();
    let mut updated: Vec<(i64, i32)> = client
        .query(&update, &[&5i32, &2i64])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    updated.sort();
    assert_eq!(updated, [(1, 6), (2, 6)]);
    let deleted = client
        .query_one("DELETE FROM items WHERE id = $1 RETURNING *", &[&1i64])
        .await
        .unwrap();
    let names: Vec<&str> = deleted.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "name", "qty", "price"]);
    assert_eq!(deleted.get::<_, i32>("qty"), 6);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 2);

    // A statement that matches nothing returns no rows and changes nothing.
    let none = client
        .query("DELETE FROM items WHERE id = $1 RETURNING id", &[&99i64])
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_statement_runs_whole_and_fails_whole() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    items(&client).await;

    // Read in parts through a portal, the INSERT still wrote every row
    // before the first one came back, as in PostgreSQL.
    let txn = client.transaction().await.unwrap();
    let insert = txn
        .prepare("INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(1, 5) AS s(g) RETURNING id")
        .await
        .unwrap();
    let portal = txn.bind(&insert, &[]).await.unwrap();
    let first = txn.query_portal(&portal, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(query_i64(&txn, "SELECT count(*) FROM items").await, 5);
    let rest = txn.query_portal(&portal, 10).await.unwrap();
    assert_eq!(rest.len(), 3);
    txn.rollback().await.unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 0);

    // An error while computing the list undoes the statement.
    client
        .execute("INSERT INTO items (id, name) VALUES (1, 'pen')", &[])
        .await
        .unwrap();
    let failed = client
        .query("UPDATE items SET qty = 100 RETURNING 1 / (qty - 100)", &[])
        .await;
    assert_eq!(sqlstate(failed), SqlState::DIVISION_BY_ZERO);
    assert_eq!(
        query_i64(&client, "SELECT qty::bigint FROM items WHERE id = 1").await,
        1
    );

    // Inside a block the rows are the block's own; ROLLBACK discards them.
    client.batch_execute("BEGIN").await.unwrap();
    let row = client
        .query_one("INSERT INTO items VALUES (2, 'ink', 7) RETURNING qty", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    let moved = client
        .query_one(
            "UPDATE items SET id = 20 WHERE id = 2 RETURNING id, name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (moved.get::<_, i64>(0), moved.get::<_, &str>(1)),
        (20, "ink")
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_that_may_conflict_returns_only_the_rows_it_wrote() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    items(&client).await;
    let insert = client
        .prepare(
            "INSERT INTO items (id, name) VALUES ($1, $2) \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .await
        .unwrap();
    let first = client.query(&insert, &[&1i64, &"pen"]).await.unwrap();
    assert_eq!(first.len(), 1);
    let again = client.query(&insert, &[&1i64, &"ink"]).await.unwrap();
    assert!(again.is_empty());
    let name: String = client
        .query_one("SELECT name::text FROM items WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "pen");
    // Many rows, some taken: the count says how many went in.
    let inserted = client
        .execute(
            "INSERT INTO items (id, name) SELECT g, 'n' FROM generate_series(1, 100) AS s(g) \
             ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 99);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_inserts_or_updates_and_returns_the_row() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    items(&client).await;
    // What ORMs send for an upsert: parameters in the row and in SET.
    let upsert = client
        .prepare(
            "INSERT INTO items (id, name, qty) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, qty = items.qty + $3 \
             RETURNING id, name, qty",
        )
        .await
        .unwrap();
    let types: Vec<&Type> = upsert.columns().iter().map(|c| c.type_()).collect();
    assert_eq!(types, [&Type::INT8, &Type::VARCHAR, &Type::INT4]);
    let mut rows = Vec::new();
    for (name, qty) in [("pen", 1i32), ("ink", 10), ("pad", 100)] {
        let row = client
            .query_one(&upsert, &[&7i64, &name, &qty])
            .await
            .unwrap();
        rows.push((row.get::<_, String>(1), row.get::<_, i32>(2)));
    }
    let want = [("pen", 1), ("ink", 11), ("pad", 111)].map(|(n, q)| (n.to_string(), q));
    assert_eq!(rows, want);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 1);
    // A parameter only SET uses is described with the others.
    let set_qty = client
        .prepare(
            "INSERT INTO items (id, name) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET qty = $3 WHERE items.qty < $3",
        )
        .await
        .unwrap();
    assert_eq!(set_qty.params()[2], Type::INT4);
    let updated = client
        .execute(&set_qty, &[&7i64, &"x", &500i32])
        .await
        .unwrap();
    assert_eq!(updated, 1);
    let skipped = client
        .execute(&set_qty, &[&7i64, &"x", &5i32])
        .await
        .unwrap();
    assert_eq!(skipped, 0);
    let qty = "SELECT qty::bigint FROM items WHERE id = 7";
    assert_eq!(query_i64(&client, qty).await, 500);
    // A row proposed twice in one statement is 21000, and nothing is written.
    let twice = client
        .execute(
            "INSERT INTO items (id, name) VALUES (8, 'a'), (8, 'b') \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            &[],
        )
        .await;
    assert_eq!(sqlstate(twice), SqlState::CARDINALITY_VIOLATION);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM items").await, 1);
}
