//! SQL behaviour through real drivers: DDL and DML round trips, row counts,
//! defaults, keys, and the SQLSTATE of every kind of bad statement.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::harness::{
    all_types_table, assert_error, query_i64, rows, sqlstate, text_rows, PgNumeric, TestServer,
};

/// The values every driver writes and then expects back.
struct Sample {
    int2: i16,
    int4: i32,
    int8: i64,
    float4: f32,
    float8: f64,
    numeric: Decimal,
    boolean: bool,
    text: &'static str,
    varchar: &'static str,
    chars: &'static str,
    date: NaiveDate,
    ts: NaiveDateTime,
    tstz: DateTime<Utc>,
    bytea: Vec<u8>,
}

fn sample() -> Sample {
    Sample {
        int2: -32768,
        int4: 2_000_000_000,
        int8: -9_000_000_000_000,
        float4: 3.25,
        float8: 1.0e-300,
        numeric: Decimal::new(-99_999_999_999, 2),
        boolean: true,
        text: "multi\nline 'quoted' ünïcødé ✓",
        varchar: "ten chars!",
        chars: "xy",
        date: NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(),
        ts: NaiveDate::from_ymd_opt(2038, 1, 19)
            .unwrap()
            .and_hms_micro_opt(3, 14, 8, 1)
            .unwrap(),
        tstz: Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap(),
        bytea: (0u8..=255).collect(),
    }
}

#[tokio::test]
async fn every_type_and_null_round_trips_through_both_drivers() {
    use sqlx::Row;

    let server = TestServer::start().await;
    let client = server.connect().await;
    let pool = server.sqlx_pool().await;
    client
        .batch_execute(&all_types_table("all_types"))
        .await
        .unwrap();
    let s = sample();

    // Row 1 via tokio-postgres (binary parameters; numeric as a literal because
    // tokio-postgres has no numeric encoder), row 2 via sqlx, rows 3 and 4 all NULLs.
    let n = client
        .execute(
            "INSERT INTO all_types VALUES ($1, $2, $3, $4, $5, $6, -999999999.99, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &1i32, &s.int2, &s.int4, &s.int8, &s.float4, &s.float8, &s.boolean, &s.text, &s.varchar, &s.chars,
                &s.date, &s.ts, &s.tstz, &s.bytea,
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let done = sqlx::query("INSERT INTO all_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
        .bind(2i32)
        .bind(s.int2)
        .bind(s.int4)
        .bind(s.int8)
        .bind(s.float4)
        .bind(s.float8)
        .bind(s.numeric)
        .bind(s.boolean)
        .bind(s.text)
        .bind(s.varchar)
        .bind(s.chars)
        .bind(s.date)
        .bind(s.ts)
        .bind(s.tstz)
        .bind(&s.bytea)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    client
        .execute("INSERT INTO all_types (id) VALUES ($1)", &[&3i32])
        .await
        .unwrap();
    let none = sqlx::query("INSERT INTO all_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)")
        .bind(4i32)
        .bind(None::<i16>)
        .bind(None::<i32>)
        .bind(None::<i64>)
        .bind(None::<f32>)
        .bind(None::<f64>)
        .bind(None::<Decimal>)
        .bind(None::<bool>)
        .bind(None::<String>)
        .bind(None::<String>)
        .bind(None::<String>)
        .bind(None::<NaiveDate>)
        .bind(None::<NaiveDateTime>)
        .bind(None::<DateTime<Utc>>)
        .bind(None::<Vec<u8>>)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(none.rows_affected(), 1);

    // Read back with tokio-postgres.
    let got = client
        .query("SELECT * FROM all_types ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    for r in &got[..2] {
        let id: i32 = r.get("id");
        assert_eq!(r.get::<_, i16>("c_int2"), s.int2, "row {id}");
        assert_eq!(r.get::<_, i32>("c_int4"), s.int4, "row {id}");
        assert_eq!(r.get::<_, i64>("c_int8"), s.int8, "row {id}");
        assert_eq!(r.get::<_, f32>("c_float4"), s.float4, "row {id}");
        assert_eq!(r.get::<_, f64>("c_float8"), s.float8, "row {id}");
        assert_eq!(
            r.get::<_, PgNumeric>("c_numeric"),
            PgNumeric("-999999999.99".into()),
            "row {id}"
        );
        assert_eq!(r.get::<_, bool>("c_bool"), s.boolean, "row {id}");
        assert_eq!(r.get::<_, &str>("c_text"), s.text, "row {id}");
        assert_eq!(r.get::<_, &str>("c_varchar"), s.varchar, "row {id}");
        assert_eq!(r.get::<_, &str>("c_char"), "xy  ", "row {id}");
        assert_eq!(r.get::<_, NaiveDate>("c_date"), s.date, "row {id}");
        assert_eq!(r.get::<_, NaiveDateTime>("c_ts"), s.ts, "row {id}");
        assert_eq!(r.get::<_, DateTime<Utc>>("c_tstz"), s.tstz, "row {id}");
        assert_eq!(r.get::<_, Vec<u8>>("c_bytea"), s.bytea, "row {id}");
    }
    for r in &got[2..] {
        for col in 1..r.len() {
            // Every non-key column is NULL; read each as raw bytes to not care about type.
            let is_null = match r.columns()[col].type_().clone() {
                tokio_postgres::types::Type::NUMERIC => {
                    r.get::<_, Option<PgNumeric>>(col).is_none()
                }
                tokio_postgres::types::Type::INT2 => r.get::<_, Option<i16>>(col).is_none(),
                tokio_postgres::types::Type::INT4 => r.get::<_, Option<i32>>(col).is_none(),
                tokio_postgres::types::Type::INT8 => r.get::<_, Option<i64>>(col).is_none(),
                tokio_postgres::types::Type::FLOAT4 => r.get::<_, Option<f32>>(col).is_none(),
                tokio_postgres::types::Type::FLOAT8 => r.get::<_, Option<f64>>(col).is_none(),
                tokio_postgres::types::Type::BOOL => r.get::<_, Option<bool>>(col).is_none(),
                tokio_postgres::types::Type::DATE => r.get::<_, Option<NaiveDate>>(col).is_none(),
                tokio_postgres::types::Type::TIMESTAMP => {
                    r.get::<_, Option<NaiveDateTime>>(col).is_none()
                }
                tokio_postgres::types::Type::TIMESTAMPTZ => {
                    r.get::<_, Option<DateTime<Utc>>>(col).is_none()
                }
                tokio_postgres::types::Type::BYTEA => r.get::<_, Option<Vec<u8>>>(col).is_none(),
                _ => r.get::<_, Option<String>>(col).is_none(),
            };
            assert!(
                is_null,
                "row {} column {} should be NULL",
                r.get::<_, i32>(0),
                r.columns()[col].name()
            );
        }
    }

    // Read back with sqlx.
    let got = sqlx::query("SELECT * FROM all_types ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    for r in &got[..2] {
        assert_eq!(r.get::<i16, _>("c_int2"), s.int2);
        assert_eq!(r.get::<i32, _>("c_int4"), s.int4);
        assert_eq!(r.get::<i64, _>("c_int8"), s.int8);
        assert_eq!(r.get::<f32, _>("c_float4"), s.float4);
        assert_eq!(r.get::<f64, _>("c_float8"), s.float8);
        assert_eq!(r.get::<Decimal, _>("c_numeric"), s.numeric);
        assert_eq!(r.get::<bool, _>("c_bool"), s.boolean);
        assert_eq!(r.get::<String, _>("c_text"), s.text);
        assert_eq!(r.get::<String, _>("c_varchar"), s.varchar);
        assert_eq!(r.get::<String, _>("c_char"), "xy  ");
        assert_eq!(r.get::<NaiveDate, _>("c_date"), s.date);
        assert_eq!(r.get::<NaiveDateTime, _>("c_ts"), s.ts);
        assert_eq!(r.get::<DateTime<Utc>, _>("c_tstz"), s.tstz);
        assert_eq!(r.get::<Vec<u8>, _>("c_bytea"), s.bytea);
    }
    for r in &got[2..] {
        assert_eq!(r.get::<Option<i16>, _>("c_int2"), None);
        assert_eq!(r.get::<Option<i64>, _>("c_int8"), None);
        assert_eq!(r.get::<Option<f64>, _>("c_float8"), None);
        assert_eq!(r.get::<Option<Decimal>, _>("c_numeric"), None);
        assert_eq!(r.get::<Option<bool>, _>("c_bool"), None);
        assert_eq!(r.get::<Option<String>, _>("c_char"), None);
        assert_eq!(r.get::<Option<NaiveDate>, _>("c_date"), None);
        assert_eq!(r.get::<Option<DateTime<Utc>>, _>("c_tstz"), None);
        assert_eq!(r.get::<Option<Vec<u8>>, _>("c_bytea"), None);
    }

    // NULL semantics in SQL itself.
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM all_types WHERE c_text IS NULL"
        )
        .await,
        2
    );
    assert_eq!(
        query_i64(&client, "SELECT count(c_text) FROM all_types").await,
        2
    );
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM all_types WHERE c_int4 = NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn update_and_delete_with_subqueries_report_row_counts() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE accounts (id integer PRIMARY KEY, region text NOT NULL, balance bigint NOT NULL);
             CREATE TABLE regions (name text PRIMARY KEY, active boolean NOT NULL);
             CREATE TABLE bonuses (account_id integer PRIMARY KEY, bonus bigint NOT NULL);
             INSERT INTO regions VALUES ('eu', true), ('us', true), ('ap', false);
             INSERT INTO bonuses VALUES (1, 1000), (4, 4000), (99, 9900);",
        )
        .await
        .unwrap();
    let inserted = client
        .execute(
            "INSERT INTO accounts VALUES (1, 'eu', 100), (2, 'us', 200), (3, 'ap', 300), (4, 'eu', 400), \
             (5, 'ap', 500), (6, 'us', 600)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 6);

    let n = client
        .execute(
            "UPDATE accounts SET balance = balance + 10 WHERE region IN (SELECT name FROM regions WHERE active)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);

    let n = client
        .execute(
            "UPDATE accounts a SET balance = a.balance + b.bonus FROM bonuses b WHERE a.id = b.account_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "UPDATE ... FROM touches only accounts with a bonus");

    let n = client
        .execute(
            "UPDATE accounts SET balance = (SELECT max(balance) FROM accounts) WHERE id = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);

    // A filter only the query engine can evaluate must not turn into "all rows".
    let n = client
        .execute(
            "UPDATE accounts SET region = upper(region) WHERE id % 2 = 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 3);
    let n = client
        .execute(
            "UPDATE accounts SET balance = 0 WHERE region = 'nowhere'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);

    assert_eq!(
        text_rows(
            &client,
            "SELECT id, region, balance FROM accounts ORDER BY id"
        )
        .await,
        rows(&[
            &[Some("1"), Some("eu"), Some("1110")],
            &[Some("2"), Some("US"), Some("210")],
            &[Some("3"), Some("ap"), Some("4410")],
            &[Some("4"), Some("EU"), Some("4410")],
            &[Some("5"), Some("ap"), Some("500")],
            &[Some("6"), Some("US"), Some("610")],
        ])
    );

    let n = client
        .execute(
            "DELETE FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM regions r WHERE r.name = lower(a.region) AND r.active)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2, "the two 'ap' accounts");
    let n = client
        .execute(
            "DELETE FROM accounts WHERE balance = (SELECT max(balance) FROM accounts)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = client
        .execute(
            "DELETE FROM accounts WHERE id IN (SELECT account_id FROM bonuses WHERE bonus > 5000)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        text_rows(&client, "SELECT id FROM accounts ORDER BY id").await,
        rows(&[&[Some("1")], &[Some("2")], &[Some("6")]])
    );
    let n = client.execute("DELETE FROM accounts", &[]).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM accounts").await, 0);
}

#[tokio::test]
async fn insert_select_and_default_values() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE src (id integer PRIMARY KEY, grp integer NOT NULL, label text);
             CREATE TABLE dst (id integer PRIMARY KEY, grp integer NOT NULL DEFAULT 7, label text DEFAULT 'none',
                               flag boolean NOT NULL DEFAULT false);
             CREATE TABLE defaults_only (a integer DEFAULT 42, b text DEFAULT 'x');",
        )
        .await
        .unwrap();
    let values: Vec<String> = (1..=100)
        .map(|i| format!("({i}, {}, 'l{i}')", i % 5))
        .collect();
    let n = client
        .execute(
            &format!("INSERT INTO src VALUES {}", values.join(", ")),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 100);

    let n = client
        .execute(
            "INSERT INTO dst (id, grp, label) SELECT id, grp, label FROM src WHERE grp = 0",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 20);
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM dst WHERE NOT flag").await,
        20
    );

    let n = client
        .execute("INSERT INTO dst (id) VALUES (1000), (1001)", &[])
        .await
        .unwrap();
    assert_eq!(n, 2);
    let n = client
        .execute(
            "INSERT INTO dst VALUES (1002, DEFAULT, 'given', DEFAULT)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        text_rows(
            &client,
            "SELECT id, grp, label, flag FROM dst WHERE id >= 1000 ORDER BY id"
        )
        .await,
        rows(&[
            &[Some("1000"), Some("7"), Some("none"), Some("f")],
            &[Some("1001"), Some("7"), Some("none"), Some("f")],
            &[Some("1002"), Some("7"), Some("given"), Some("f")],
        ])
    );
    // An explicit NULL is not the default.
    client
        .execute("INSERT INTO dst (id, label) VALUES (1003, NULL)", &[])
        .await
        .unwrap();
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM dst WHERE id = 1003 AND label IS NULL"
        )
        .await,
        1
    );

    client
        .batch_execute("INSERT INTO defaults_only DEFAULT VALUES")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO defaults_only (b) VALUES ('y')")
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT a, b FROM defaults_only ORDER BY b").await,
        rows(&[&[Some("42"), Some("x")], &[Some("42"), Some("y")]])
    );

    // INSERT ... SELECT from a table function, across every shard.
    client
        .batch_execute("CREATE TABLE big (id integer PRIMARY KEY, k integer)")
        .await
        .unwrap();
    let n = client
        .execute(
            "INSERT INTO big SELECT i, i % 7 FROM generate_series(1, 5000) AS s(i)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 5000);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM big").await, 5000);
    assert_eq!(
        query_i64(&client, "SELECT sum(id) FROM big").await,
        5000 * 5001 / 2
    );
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM big WHERE k = 3").await,
        714
    );
    // Self-referencing INSERT ... SELECT reads its snapshot, not its own output.
    let n = client
        .execute("INSERT INTO big SELECT id + 5000, k FROM big", &[])
        .await
        .unwrap();
    assert_eq!(n, 5000);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM big").await, 10000);
}

#[tokio::test]
async fn composite_primary_key() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE cp (tenant integer, name text, v integer NOT NULL, PRIMARY KEY (tenant, name));
             INSERT INTO cp VALUES (1, 'x', 1), (1, 'y', 2), (2, 'x', 3), (2, 'y', 4), (3, 'x', 5);",
        )
        .await
        .unwrap();
    assert_error(
        &client,
        "INSERT INTO cp VALUES (1, 'x', 99)",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    // The fields ORMs read from a duplicate key (node-pg's err.detail and
    // err.constraint, pgjdbc's ServerErrorMessage), as PostgreSQL fills them.
    let error = client
        .batch_execute("INSERT INTO cp VALUES (3, 'x', 99)")
        .await
        .unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(
        db.message(),
        "duplicate key value violates unique constraint \"cp_pkey\""
    );
    assert_eq!(
        db.detail(),
        Some("Key (tenant, name)=(3, x) already exists.")
    );
    assert_eq!(db.schema(), Some("public"));
    assert_eq!(db.table(), Some("cp"));
    assert_eq!(db.constraint(), Some("cp_pkey"));
    let error = client
        .batch_execute("INSERT INTO cp VALUES (9, 'q', NULL)")
        .await
        .unwrap_err();
    let db = error.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::NOT_NULL_VIOLATION);
    assert_eq!((db.table(), db.column()), (Some("cp"), Some("v")));
    // Same first column, different second: not a duplicate.
    client
        .batch_execute("INSERT INTO cp VALUES (1, 'z', 6)")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT v FROM cp WHERE tenant = $1 AND name = $2",
            &[&2i32, &"y"],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 4);
    assert_eq!(
        client
            .execute(
                "UPDATE cp SET v = v * 10 WHERE tenant = 1 AND name = 'y'",
                &[]
            )
            .await
            .unwrap(),
        1
    );
    // Moving a row onto an existing key fails and changes nothing.
    assert_error(
        &client,
        "UPDATE cp SET name = 'x' WHERE tenant = 2 AND name = 'y'",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO cp VALUES (NULL, 'q', 1)",
        SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    assert_eq!(
        client
            .execute("DELETE FROM cp WHERE tenant = 1", &[])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        text_rows(
            &client,
            "SELECT tenant, name, v FROM cp ORDER BY tenant, name"
        )
        .await,
        rows(&[
            &[Some("2"), Some("x"), Some("3")],
            &[Some("2"), Some("y"), Some("4")],
            &[Some("3"), Some("x"), Some("5")],
        ])
    );
}

#[tokio::test]
async fn table_without_primary_key_keeps_duplicate_rows() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE np (a integer, b text)")
        .await
        .unwrap();
    let n = client
        .execute(
            "INSERT INTO np VALUES (1, 'x'), (1, 'x'), (2, 'y'), (NULL, NULL)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM np").await, 4);
    // The hidden row id is not a visible column.
    let stmt = client.prepare("SELECT * FROM np").await.unwrap();
    let names: Vec<&str> = stmt.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["a", "b"]);

    assert_eq!(
        client
            .execute("UPDATE np SET b = 'z' WHERE a = 1", &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM np WHERE b = 'z'").await,
        2
    );
    assert_eq!(
        client
            .execute("DELETE FROM np WHERE a = 1", &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        client
            .execute("DELETE FROM np WHERE a IS NULL", &[])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        text_rows(&client, "SELECT a, b FROM np").await,
        rows(&[&[Some("2"), Some("y")]])
    );
}

#[tokio::test]
async fn queries_with_joins_aggregates_ctes_and_windows() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE dept (id integer PRIMARY KEY, name text NOT NULL);
             CREATE TABLE emp (id integer PRIMARY KEY, dept_id integer, name text NOT NULL, salary integer NOT NULL);
             INSERT INTO dept VALUES (1, 'eng'), (2, 'ops'), (3, 'empty');
             INSERT INTO emp VALUES (1, 1, 'ann', 100), (2, 1, 'bob', 120), (3, 2, 'cy', 90),
                                    (4, 2, 'di', 90), (5, NULL, 'ed', 50);",
        )
        .await
        .unwrap();
    assert_eq!(
        text_rows(
            &client,
            "SELECT d.name, count(e.id), coalesce(sum(e.salary), 0) FROM dept d LEFT JOIN emp e ON e.dept_id = d.id \
             GROUP BY d.name ORDER BY d.name"
        )
        .await,
        rows(&[
            &[Some("empty"), Some("0"), Some("0")],
            &[Some("eng"), Some("2"), Some("220")],
            &[Some("ops"), Some("2"), Some("180")],
        ])
    );
    assert_eq!(
        text_rows(
            &client,
            "WITH totals AS (SELECT dept_id, sum(salary) AS total FROM emp GROUP BY dept_id) \
             SELECT d.name, t.total FROM totals t JOIN dept d ON d.id = t.dept_id WHERE t.total > 200"
        )
        .await,
        rows(&[&[Some("eng"), Some("220")]])
    );
    assert_eq!(
        text_rows(
            &client,
            "SELECT name, rank() OVER (ORDER BY salary DESC), sum(salary) OVER (PARTITION BY dept_id) \
             FROM emp WHERE dept_id IS NOT NULL ORDER BY salary DESC, name"
        )
        .await,
        rows(&[
            &[Some("bob"), Some("1"), Some("220")],
            &[Some("ann"), Some("2"), Some("220")],
            &[Some("cy"), Some("3"), Some("180")],
            &[Some("di"), Some("3"), Some("180")],
        ])
    );
    assert_eq!(
        text_rows(
            &client,
            "SELECT avg(salary)::numeric(10,2), max(name) FROM emp HAVING count(*) > 1"
        )
        .await,
        rows(&[&[Some("90.00"), Some("ed")]])
    );
}

#[tokio::test]
async fn constraint_and_data_errors_have_postgresql_sqlstates_and_change_nothing() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE c (id integer PRIMARY KEY, code varchar(3), small smallint, name text NOT NULL);
             INSERT INTO c VALUES (1, 'abc', 1, 'one'), (2, 'de', 2, 'two');",
        )
        .await
        .unwrap();

    assert_error(
        &client,
        "INSERT INTO c VALUES (1, 'x', 0, 'dup')",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    // A multi-row statement is atomic: row 10 is not left behind.
    assert_error(
        &client,
        "INSERT INTO c VALUES (10, 'x', 0, 'ten'), (2, 'y', 0, 'dup')",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;
    assert_error(
        &client,
        "UPDATE c SET id = 2 WHERE id = 1",
        SqlState::UNIQUE_VIOLATION,
    )
    .await;

    assert_error(
        &client,
        "INSERT INTO c VALUES (3, 'x', 0, NULL)",
        SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO c (id, code) VALUES (3, 'x')",
        SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    assert_error(
        &client,
        "UPDATE c SET name = NULL WHERE id = 2",
        SqlState::NOT_NULL_VIOLATION,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO c (code, name) VALUES ('x', 'no id')",
        SqlState::NOT_NULL_VIOLATION,
    )
    .await;

    assert_error(
        &client,
        "INSERT INTO c VALUES (4, 'abcd', 0, 'four')",
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
    )
    .await;
    assert_error(
        &client,
        "UPDATE c SET code = code || 'zz' WHERE id = 1",
        SqlState::STRING_DATA_RIGHT_TRUNCATION,
    )
    .await;

    assert_error(
        &client,
        "SELECT '12x'::int",
        SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO c VALUES ('12x', 'a', 0, 'n')",
        SqlState::INVALID_TEXT_REPRESENTATION,
    )
    .await;
    assert_error(&client, "SELECT 1 / 0", SqlState::DIVISION_BY_ZERO).await;
    assert_error(
        &client,
        "SELECT id / (small - small) FROM c",
        SqlState::DIVISION_BY_ZERO,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO c VALUES (5, 'a', 40000, 'n')",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    assert_error(
        &client,
        "UPDATE c SET small = small + 32767 WHERE id = 2",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;

    // Bound parameters are checked the same way.
    assert_eq!(
        sqlstate(
            client
                .execute("INSERT INTO c VALUES ($1, $2, 0, 'p')", &[&6i32, &"long"])
                .await
        ),
        SqlState::STRING_DATA_RIGHT_TRUNCATION
    );
    assert_eq!(
        sqlstate(
            client
                .execute("INSERT INTO c VALUES ($1, 'a', 0, $2)", &[&1i32, &"dup"])
                .await
        ),
        SqlState::UNIQUE_VIOLATION
    );

    assert_eq!(
        text_rows(&client, "SELECT id, code, small, name FROM c ORDER BY id").await,
        rows(&[
            &[Some("1"), Some("abc"), Some("1"), Some("one")],
            &[Some("2"), Some("de"), Some("2"), Some("two")],
        ]),
        "failed statements changed nothing"
    );
}

#[tokio::test]
async fn unknown_and_duplicate_objects() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE t (id integer PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'kept')",
        )
        .await
        .unwrap();

    assert_error(
        &client,
        "SELECT * FROM no_such_table",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO no_such_table VALUES (1)",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    assert_error(
        &client,
        "UPDATE no_such_table SET a = 1",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    assert_error(
        &client,
        "DELETE FROM no_such_table",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    assert_error(
        &client,
        "DROP TABLE no_such_table",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    client
        .batch_execute("DROP TABLE IF EXISTS no_such_table")
        .await
        .unwrap();

    assert_error(&client, "SELECT nope FROM t", SqlState::UNDEFINED_COLUMN).await;
    assert_error(
        &client,
        "SELECT id FROM t WHERE nope = 1",
        SqlState::UNDEFINED_COLUMN,
    )
    .await;
    assert_error(
        &client,
        "INSERT INTO t (id, nope) VALUES (2, 'x')",
        SqlState::UNDEFINED_COLUMN,
    )
    .await;
    assert_error(
        &client,
        "UPDATE t SET nope = 'x'",
        SqlState::UNDEFINED_COLUMN,
    )
    .await;

    assert_error(
        &client,
        "CREATE TABLE t (x integer PRIMARY KEY)",
        SqlState::DUPLICATE_TABLE,
    )
    .await;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS t (x integer PRIMARY KEY)")
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, v FROM t").await,
        rows(&[&[Some("1"), Some("kept")]])
    );

    assert_error(&client, "SELEKT * FROM t", SqlState::SYNTAX_ERROR).await;
    assert_error(&client, "SELECT * FROM t WHERE", SqlState::SYNTAX_ERROR).await;
    assert_error(
        &client,
        "CREATE TABLE bad (id integer PRIMARY KEY,)",
        SqlState::SYNTAX_ERROR,
    )
    .await;

    // DROP really removes the table; the name can be reused with a new shape.
    client.batch_execute("DROP TABLE t").await.unwrap();
    assert_error(&client, "SELECT * FROM t", SqlState::UNDEFINED_TABLE).await;
    client
        .batch_execute("CREATE TABLE t (a text PRIMARY KEY, b bigint)")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM t").await, 0);
    client
        .batch_execute("INSERT INTO t VALUES ('k', 5)")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT b FROM t WHERE a = 'k'").await, 5);
}

#[tokio::test]
async fn unsupported_statements_fail_cleanly_without_killing_the_connection() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE u (id integer PRIMARY KEY)")
        .await
        .unwrap();
    let statements = [
        "CREATE TRIGGER trg AFTER INSERT ON u FOR EACH ROW EXECUTE FUNCTION no_such_fn()",
        "LISTEN some_channel",
        "CREATE RULE r AS ON INSERT TO u DO INSTEAD NOTHING",
    ];
    let acceptable = [SqlState::FEATURE_NOT_SUPPORTED, SqlState::SYNTAX_ERROR];
    for sql in statements {
        let code = sqlstate(client.batch_execute(sql).await);
        assert!(
            acceptable.contains(&code),
            "{sql}: got SQLSTATE {}",
            code.code()
        );
        // The extended protocol (Parse) must fail just as cleanly.
        let code = sqlstate(client.prepare(sql).await);
        assert!(
            acceptable.contains(&code),
            "prepare {sql}: got SQLSTATE {}",
            code.code()
        );
        client
            .batch_execute("INSERT INTO u SELECT coalesce(max(id), 0) + 1 FROM u")
            .await
            .unwrap();
    }
    assert_eq!(query_i64(&client, "SELECT count(*) FROM u").await, 3);
    // Arrays have one dimension, numbered from 1; a WITH query does not
    // write (the table is unchanged).
    for sql in [
        "SELECT array_fill(7, ARRAY[2, 2])",
        "SELECT array_fill(7, ARRAY[2], ARRAY[0])",
        "WITH d AS (DELETE FROM u RETURNING id) SELECT count(*) FROM d",
    ] {
        assert_error(&client, sql, SqlState::FEATURE_NOT_SUPPORTED).await;
    }
    assert_eq!(query_i64(&client, "SELECT count(*) FROM u").await, 3);
}

#[tokio::test]
async fn integer_arithmetic_overflow_is_out_of_range() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE ov (id integer PRIMARY KEY, n integer, b bigint)")
        .await
        .unwrap();
    client
        .batch_execute("INSERT INTO ov VALUES (1, 2147483647, 9223372036854775807)")
        .await
        .unwrap();
    assert_error(
        &client,
        "UPDATE ov SET n = n + 1",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    assert_error(
        &client,
        "SELECT b * 2 FROM ov",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    // Arithmetic that fits is unchanged.
    assert_eq!(
        query_i64(&client, "SELECT CAST(n - 1 AS bigint) FROM ov").await,
        2147483646
    );
    assert_error(
        &client,
        "SELECT 32767::smallint + 1::smallint",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
}

#[tokio::test]
async fn integer_literals_are_integer_or_bigint_as_in_postgresql() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    assert_error(
        &client,
        "SELECT 2147483647 + 1",
        SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
    )
    .await;
    // Described and sent as int4 / int8, both in the extended protocol...
    let row = client
        .query_one(
            "SELECT 1, 2147483648, 1 + 2, 2147483647 + 1::bigint, 7 / 2",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i64>(1), 2_147_483_648);
    assert_eq!(row.get::<_, i32>(2), 3);
    assert_eq!(row.get::<_, i64>(3), 2_147_483_648);
    assert_eq!(row.get::<_, i32>(4), 3);
    let types: Vec<_> = client
        .prepare("SELECT 1, 5000000000")
        .await
        .unwrap()
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(types, [Type::INT4, Type::INT8]);
    // ...and where they meet columns, in recursive CTEs and set operations.
    assert_eq!(
        text_rows(
            &client,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3)
             SELECT i FROM n UNION SELECT 10000000000 ORDER BY 1 LIMIT 2 OFFSET 2"
        )
        .await,
        rows(&[&[Some("3")], &[Some("10000000000")]])
    );
}

/// The physical plan of `EXPLAIN sql`, as one string.
async fn physical_plan(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = text_rows(client, &format!("EXPLAIN {sql}")).await;
    rows.into_iter()
        .find(|r| r[0].as_deref() == Some("physical_plan"))
        .and_then(|r| r[1].clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn explain_shows_projection_filter_limit_and_key_pruning_in_the_shard_scan() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE ex (id integer PRIMARY KEY, v integer, s text);
             INSERT INTO ex SELECT i, i % 7, 'x' FROM generate_series(1, 200) AS g(i)",
        )
        .await
        .unwrap();

    let point = physical_plan(&client, "SELECT s FROM ex WHERE id = 5").await;
    assert!(point.contains("point_lookup=true"), "{point}");
    let groups = point
        .split("shard_groups=[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default();
    assert_eq!(groups.split(',').count(), 1, "one shard group: {point}");

    let filtered = physical_plan(&client, "SELECT id FROM ex WHERE v = 3").await;
    assert!(filtered.contains("filter=v@"), "{filtered}");
    assert!(filtered.contains("projection=[id, v]"), "{filtered}");
    assert!(
        filtered.contains(
            "shard_groups=[0@node1, 1@node1, 2@node1, 3@node1, 4@node1, 5@node1, 6@node1, 7@node1]"
        ),
        "{filtered}"
    );

    let limited = physical_plan(&client, "SELECT id FROM ex LIMIT 3").await;
    assert!(limited.contains("limit=3"), "{limited}");

    // And the answers are right.
    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM ex WHERE v = 3").await,
        29
    );
    assert_eq!(
        text_rows(&client, "SELECT s FROM ex WHERE id = 5").await,
        rows(&[&[Some("x")]])
    );
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM (SELECT id FROM ex LIMIT 3) t"
        )
        .await,
        3
    );
}

#[tokio::test]
async fn truncate_is_transactional_and_function_aliases_name_their_column() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    // pgbench -i's server-side generation, as it sends it.
    client
        .batch_execute(
            "CREATE TABLE branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor=100);
             INSERT INTO branches (bid, bbalance) SELECT bid, 0 FROM generate_series(1, 5) AS bid",
        )
        .await
        .unwrap();
    assert_eq!(
        query_i64(&client, "SELECT sum(bid) FROM branches").await,
        15
    );

    client
        .batch_execute("BEGIN; TRUNCATE branches")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM branches").await, 0);
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM branches").await, 5);

    client
        .batch_execute("TRUNCATE TABLE branches")
        .await
        .unwrap();
    assert_eq!(query_i64(&client, "SELECT count(*) FROM branches").await, 0);
    assert_error(&client, "TRUNCATE no_such_table", SqlState::UNDEFINED_TABLE).await;
}

#[tokio::test]
async fn point_selects_by_primary_key_answer_like_planned_queries() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE pt (id integer PRIMARY KEY, name varchar(10), note text);
             INSERT INTO pt VALUES (1, 'one', NULL), (2, 'two', 'second'), (3, NULL, 'third');
             CREATE TABLE tk (k text PRIMARY KEY, v bigint);
             INSERT INTO tk VALUES ('a', 1), ('b', 2);
             CREATE TABLE nopk (v integer);
             INSERT INTO nopk VALUES (7);",
        )
        .await
        .unwrap();
    // Each point SELECT (answered by one key lookup) against the same query
    // in a form only the planner answers.
    for (point, planned) in [
        (
            "SELECT id, name, note FROM pt WHERE id = 2",
            "SELECT id, name, note FROM pt WHERE id = 2 ORDER BY id",
        ),
        (
            "SELECT * FROM pt WHERE 3 = id",
            "SELECT * FROM pt WHERE id + 0 = 3",
        ),
        (
            "SELECT note, id, note FROM pt WHERE (id = 1)",
            "SELECT note, id, note FROM pt WHERE id IN (1)",
        ),
        (
            "SELECT name FROM public.pt WHERE id = 4",
            "SELECT name FROM pt WHERE id = 4 LIMIT 1",
        ),
        (
            "SELECT id FROM pt WHERE id = 99999999999",
            "SELECT id FROM pt WHERE id > 3",
        ),
        (
            "SELECT id FROM pt WHERE id = '2'",
            "SELECT id FROM pt WHERE id = 1 + 1",
        ),
        (
            "SELECT v, k FROM tk WHERE k = 'b'",
            "SELECT v, k FROM tk WHERE k = 'b' ORDER BY k",
        ),
        // No column: the row is there all the same.
        (
            "SELECT FROM pt WHERE id = 2",
            "SELECT FROM pt WHERE id + 0 = 2",
        ),
    ] {
        let expected = text_rows(&client, planned).await;
        assert_eq!(text_rows(&client, point).await, expected, "{point}");
    }
    assert_eq!(
        text_rows(&client, "SELECT * FROM pt WHERE id = 3").await,
        rows(&[&[Some("3"), None, Some("third")]])
    );

    // The extended protocol: a bound key, the column types of the table.
    let statement = client
        .prepare("SELECT id, name FROM pt WHERE id = $1")
        .await
        .unwrap();
    let types: Vec<_> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        [
            tokio_postgres::types::Type::INT4,
            tokio_postgres::types::Type::VARCHAR
        ]
    );
    let row = client.query_one(&statement, &[&1i32]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, &str>(1)), (1, "one"));
    assert!(client.query(&statement, &[&5i32]).await.unwrap().is_empty());

    // Inside a transaction the lookup sees the transaction's own writes.
    client
        .batch_execute(
            "BEGIN; INSERT INTO pt VALUES (10, 'ten', NULL); DELETE FROM pt WHERE id = 2;
             UPDATE pt SET note = 'changed' WHERE id = 1",
        )
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, note FROM pt WHERE id = 10").await,
        rows(&[&[Some("10"), None]])
    );
    assert!(text_rows(&client, "SELECT id FROM pt WHERE id = 2")
        .await
        .is_empty());
    let row = client.query_one(&statement, &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, &str>(1), "one");
    assert_eq!(
        text_rows(&client, "SELECT note FROM pt WHERE id = 1").await,
        rows(&[&[Some("changed")]])
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(text_rows(&client, "SELECT id FROM pt WHERE id = 10")
        .await
        .is_empty());
    assert_eq!(
        text_rows(&client, "SELECT name, note FROM pt WHERE id = 1").await,
        rows(&[&[Some("one"), None]])
    );

    // Statements of the same shape that are wrong fail as the planner fails them.
    assert_error(
        &client,
        "SELECT nope FROM pt WHERE id = 1",
        SqlState::UNDEFINED_COLUMN,
    )
    .await;
    assert_error(
        &client,
        "SELECT id FROM nope WHERE id = 1",
        SqlState::UNDEFINED_TABLE,
    )
    .await;
    assert_error(
        &client,
        "SELECT rowid FROM nopk WHERE rowid = 1",
        SqlState::UNDEFINED_COLUMN,
    )
    .await;
}

/// Single-row INSERTs and UPDATEs by key (written without planning, see
/// `sql::point_insert` and `sql::point_update`) give PostgreSQL's rows,
/// counts and errors, the same as statements only the planner runs.
#[tokio::test]
async fn inserts_and_updates_by_key_write_like_planned_statements() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE acct (id bigint PRIMARY KEY, bal integer NOT NULL, name varchar(5), flag boolean);
             INSERT INTO acct VALUES (1, 100, 'a', true);
             INSERT INTO acct (bal, id) VALUES (-5, 2), (0, 3);
             INSERT INTO acct VALUES (4, 7);
             INSERT INTO acct SELECT 5, 100, 'a', true;",
        )
        .await
        .unwrap();
    for (sql, code) in [
        ("INSERT INTO acct VALUES (1, 1)", SqlState::UNIQUE_VIOLATION),
        (
            "INSERT INTO acct VALUES (6, 1), (6, 2)",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "INSERT INTO acct VALUES (6, NULL)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "INSERT INTO acct (id) VALUES (6)",
            SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "INSERT INTO acct VALUES (6, 1, 'toolong')",
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
        ),
        (
            "INSERT INTO acct VALUES (6, 99999999999)",
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
        (
            "INSERT INTO acct VALUES (6, 1), (7)",
            SqlState::SYNTAX_ERROR,
        ),
        (
            "INSERT INTO acct (id, nope) VALUES (6, 1)",
            SqlState::UNDEFINED_COLUMN,
        ),
        ("INSERT INTO nope VALUES (6, 1)", SqlState::UNDEFINED_TABLE),
    ] {
        assert_error(&client, sql, code).await;
    }
    let insert = client
        .prepare("INSERT INTO acct (id, bal, name) VALUES ($1, $2, $3)")
        .await
        .unwrap();
    let inserted = client
        .execute(&insert, &[&10i64, &1i32, &None::<&str>])
        .await
        .unwrap();
    assert_eq!(inserted, 1);

    for (sql, count) in [
        ("UPDATE acct SET bal = bal - 30 WHERE id = 1", 1),
        ("UPDATE acct SET bal = 1 + bal, name = 'zz' WHERE id = 2", 1),
        ("UPDATE acct SET bal = bal + 1 WHERE id = 99", 0),
        ("UPDATE acct SET id = 30 WHERE id = 1", 1),
    ] {
        assert_eq!(client.execute(sql, &[]).await.unwrap(), count, "{sql}");
    }
    for (sql, code) in [
        (
            "UPDATE acct SET bal = NULL WHERE id = 30",
            SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "UPDATE acct SET bal = bal + 2147483647 WHERE id = 30",
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
        (
            "UPDATE acct SET id = 3 WHERE id = 30",
            SqlState::UNIQUE_VIOLATION,
        ),
        (
            "UPDATE acct SET name = 'toolong' WHERE id = 30",
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
        ),
    ] {
        assert_error(&client, sql, code).await;
    }
    let update = client
        .prepare("UPDATE acct SET bal = bal - 1 WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(client.execute(&update, &[&30i64]).await.unwrap(), 1);
    assert_eq!(
        text_rows(&client, "SELECT * FROM acct ORDER BY id").await,
        rows(&[
            &[Some("2"), Some("-4"), Some("zz"), None],
            &[Some("3"), Some("0"), None, None],
            &[Some("4"), Some("7"), None, None],
            &[Some("5"), Some("100"), Some("a"), Some("t")],
            &[Some("10"), Some("1"), None, None],
            &[Some("30"), Some("69"), Some("a"), Some("t")],
        ])
    );

    // In a transaction, each statement sees the ones before; ROLLBACK
    // undoes them all.
    client
        .batch_execute(
            "BEGIN;
             INSERT INTO acct VALUES (40, 1);
             UPDATE acct SET bal = bal + 1 WHERE id = 40;
             UPDATE acct SET bal = bal * 10 WHERE id = 40;
             UPDATE acct SET bal = bal - 5 WHERE id = 40;",
        )
        .await
        .unwrap();
    assert_eq!(
        query_i64(&client, "SELECT bal::bigint FROM acct WHERE id = 40").await,
        15
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    assert!(text_rows(&client, "SELECT id FROM acct WHERE id = 40")
        .await
        .is_empty());
}

#[tokio::test]
async fn subqueries_in_the_select_list_answer_or_fail_never_null() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE sq_a (k integer PRIMARY KEY);
             CREATE TABLE sq_b (k integer PRIMARY KEY, x integer);
             INSERT INTO sq_a VALUES (1), (2);
             INSERT INTO sq_b VALUES (1, 10), (2, 20);",
        )
        .await
        .unwrap();
    assert_eq!(
        text_rows(
            &client,
            "SELECT k, (SELECT max(x) FROM sq_b WHERE sq_b.k = sq_a.k) FROM sq_a ORDER BY k"
        )
        .await,
        rows(&[&[Some("1"), Some("10")], &[Some("2"), Some("20")]])
    );
    assert_eq!(
        text_rows(&client, "SELECT (SELECT sq_b.x FROM sq_b WHERE sq_b.k = 2)").await,
        rows(&[&[Some("20")]])
    );
    let row = client
        .query_one("SELECT (SELECT x FROM sq_b WHERE k = $1)", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i32>>(0), Some(10));
    // Without an aggregate: each outer row's one row, named after its item.
    let statement = client
        .prepare("SELECT k, (SELECT x FROM sq_b WHERE sq_b.k = sq_a.k) FROM sq_a ORDER BY k")
        .await
        .unwrap();
    assert_eq!(statement.columns()[1].name(), "x");
    let answers: Vec<(i32, Option<i32>)> = client
        .query(&statement, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(answers, vec![(1, Some(10)), (2, Some(20))]);
    // Correlated otherwise than by equality: ShardForge cannot plan it
    // yet, and says so.
    assert_error(
        &client,
        "SELECT k, (SELECT x FROM sq_b WHERE sq_b.k < sq_a.k) FROM sq_a",
        SqlState::FEATURE_NOT_SUPPORTED,
    )
    .await;
    assert_error(
        &client,
        "SELECT (SELECT x FROM sq_b)",
        SqlState::CARDINALITY_VIOLATION,
    )
    .await;
}

/// Result columns carry PostgreSQL's names where DataFusion's differ: a
/// column beside a wildcard, the SQL-standard functions spelled without
/// parentheses, special syntax, typed literals, and items ShardForge
/// respells before planning (`x::varchar(3)` is a call of `left`).
#[tokio::test]
async fn result_columns_are_named_as_postgresql_names_them() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE wn (id integer PRIMARY KEY, v text); INSERT INTO wn VALUES (1, 'a')",
        )
        .await
        .unwrap();
    for (sql, expected) in [
        ("SELECT *, v FROM wn WHERE id = 1", &["id", "v", "v"][..]),
        ("SELECT *, v FROM wn", &["id", "v", "v"]),
        ("SELECT v, *, id + 1 FROM wn", &["v", "id", "v", "?column?"]),
        (
            "SELECT v::varchar(3), 'x'::varchar(2), v::char(2), '{1}'::int[], ceil(1.5), \
             floor(1.5), interval '1 day', date '2024-01-01', now() AT TIME ZONE 'UTC', \
             trim(leading 'a' from v), overlay(v placing 'b' from 1) FROM wn",
            &[
                "v", "varchar", "v", "int4", "ceil", "floor", "interval", "date", "timezone",
                "ltrim", "overlay",
            ],
        ),
        (
            "INSERT INTO wn VALUES (2, 'b') RETURNING v::varchar(1), id + 1",
            &["v", "?column?"],
        ),
        (
            "SELECT localtimestamp, localtime",
            &["localtimestamp", "localtime"],
        ),
        (
            "SELECT current_user, session_user, user, current_schema, current_catalog",
            &[
                "current_user",
                "session_user",
                "user",
                "current_schema",
                "current_catalog",
            ],
        ),
    ] {
        let statement = client.prepare(sql).await.unwrap();
        let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
        assert_eq!(names, expected, "{sql}");
        client.query(&statement, &[]).await.unwrap();
    }
    assert_eq!(
        text_rows(&client, "SELECT current_schema, current_user = user").await,
        rows(&[&[Some("public"), Some("t")]])
    );
    // As column defaults, and a schema-qualified table function.
    client
        .batch_execute(
            "CREATE TABLE wd (id integer PRIMARY KEY, who text DEFAULT current_user, \
             sch text DEFAULT current_schema); INSERT INTO wd (id) VALUES (1)",
        )
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT who = session_user, sch FROM wd").await,
        rows(&[&[Some("t"), Some("public")]])
    );
    assert_eq!(
        query_i64(
            &client,
            "SELECT count(*) FROM public.generate_series(1, 3) AS g"
        )
        .await,
        3
    );
    // The user the client connected as (any name is accepted until there
    // is authentication).
    let alice = server
        .conn_str("postgres")
        .replace("user=postgres", "user=alice");
    let (alice, connection) = tokio_postgres::connect(&alice, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    assert_eq!(
        text_rows(
            &alice,
            "SELECT current_user, session_user, user, current_setting('session_authorization')"
        )
        .await,
        rows(&[&[Some("alice"), Some("alice"), Some("alice"), Some("alice")]])
    );
    // A DEFAULT is planned once for every session, and runs as the one
    // inserting: alice's row is hers, postgres's his.
    alice
        .batch_execute("INSERT INTO wd (id) VALUES (2); INSERT INTO wd (id) SELECT 3")
        .await
        .unwrap();
    client
        .execute("INSERT INTO wd (id) VALUES (4)", &[])
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, who FROM wd WHERE id > 1 ORDER BY id").await,
        rows(&[
            &[Some("2"), Some("alice")],
            &[Some("3"), Some("alice")],
            &[Some("4"), Some("postgres")]
        ])
    );
}

/// `time` columns: binary parameters and results (microseconds since
/// midnight), a key, and COPY in binary, as tokio-postgres sends them.
#[tokio::test]
async fn time_columns_round_trip_in_binary() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE tm (t time PRIMARY KEY, n integer)")
        .await
        .unwrap();
    let times = [
        NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
        NaiveTime::from_hms_micro_opt(12, 30, 1, 5).unwrap(),
        NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
    ];
    for (n, t) in times.iter().enumerate() {
        client
            .execute("INSERT INTO tm VALUES ($1, $2)", &[t, &(n as i32)])
            .await
            .unwrap();
    }
    let read: Vec<NaiveTime> = client
        .query("SELECT t FROM tm ORDER BY t", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(read, times);
    let row = client
        .query_one(
            "SELECT n, t + interval '1 second' FROM tm WHERE t = $1",
            &[&times[1]],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(
        row.get::<_, NaiveTime>(1),
        NaiveTime::from_hms_micro_opt(12, 30, 2, 5).unwrap()
    );
    assert_error(
        &client,
        "INSERT INTO tm VALUES ('24:00:01', 9)",
        SqlState::DATETIME_FIELD_OVERFLOW,
    )
    .await;
}
