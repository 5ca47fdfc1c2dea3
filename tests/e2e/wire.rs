//! The PostgreSQL wire protocol as drivers see it: startup, simple and
//! extended query, binary and text results, session variables, and errors
//! that leave the connection usable.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::harness::{
    all_types_table, assert_error, query_i64, rows, sqlstate, sqlx_sqlstate, text_rows, PgNumeric,
    TestServer,
};

/// A row of values and a row of NULLs for the table of every type.
const TYPES_ROWS: &str = "
    INSERT INTO types VALUES
        (1, 12345, -2147483648, 9223372036854775807, 1.5, -2.25e100, -12345.67, true,
         'héllo wörld', 'abc', 'ab', '2024-02-29', '2024-02-29 13:45:10.123456',
         '2024-02-29 13:45:10.123456+02', '\\x0001ff'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, -1, 0, -1, -0.25, 0.5, 12.5, false, '', '', '', '1999-12-31', '2000-01-01 00:00:00',
         '2000-01-01 00:00:00+00', '\\x');
";

#[tokio::test]
async fn startup_parameters_look_like_postgresql_15() {
    let server = TestServer::start().await;
    let (client, connection) = tokio_postgres::connect(&server.conn_str("postgres"), NoTls)
        .await
        .expect("connect");
    let param = |name: &str| connection.parameter(name).map(str::to_owned);
    let server_version = param("server_version");
    let client_encoding = param("client_encoding");
    let server_encoding = param("server_encoding");
    let date_style = param("DateStyle");
    let integer_datetimes = param("integer_datetimes");
    let standard_conforming_strings = param("standard_conforming_strings");
    tokio::spawn(connection);

    let server_version = server_version.expect("server_version is reported");
    assert!(
        server_version.starts_with("15"),
        "server_version = {server_version}"
    );
    assert_eq!(client_encoding.as_deref(), Some("UTF8"));
    assert_eq!(server_encoding.as_deref(), Some("UTF8"));
    let date_style = date_style.expect("DateStyle is reported");
    assert!(date_style.starts_with("ISO"), "DateStyle = {date_style}");
    assert_eq!(integer_datetimes.as_deref(), Some("on"));
    assert_eq!(standard_conforming_strings.as_deref(), Some("on"));

    let shown = text_rows(&client, "SHOW server_version").await;
    assert!(
        shown[0][0].as_deref().is_some_and(|v| v.starts_with("15")),
        "SHOW server_version = {shown:?}"
    );
}

#[tokio::test]
async fn unknown_database_is_rejected_with_3d000() {
    let server = TestServer::start().await;
    let result = tokio_postgres::connect(&server.conn_str("no_such_db"), NoTls).await;
    match result {
        Ok(_) => panic!("connecting to an unknown database succeeded"),
        Err(err) => assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME), "{err:?}"),
    }
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/no_such_db",
        server.pg_port
    );
    let result = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await;
    assert_eq!(sqlx_sqlstate(result.map(|_| ())), "3D000");

    // The server is still fine for the right database.
    let client = server.connect().await;
    assert_eq!(query_i64(&client, "SELECT 1::bigint").await, 1);
}

#[tokio::test]
async fn simple_query_runs_several_statements_in_one_message() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE w1 (id integer PRIMARY KEY, s text);
             INSERT INTO w1 VALUES (1, 'a'), (2, 'b'), (3, 'c');
             UPDATE w1 SET s = 'B' WHERE id = 2;
             DELETE FROM w1 WHERE id = 3;",
        )
        .await
        .expect("batch of DDL and DML");

    let messages = client
        .simple_query("SELECT id, s FROM w1 ORDER BY id; SELECT count(*) AS n FROM w1; INSERT INTO w1 VALUES (5, 'e'), (6, 'f')")
        .await
        .expect("three statements in one Query message");
    let mut rows_seen = Vec::new();
    let mut completions = Vec::new();
    let mut descriptions = Vec::new();
    for message in &messages {
        match message {
            SimpleQueryMessage::Row(row) => rows_seen.push(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                    .collect::<Vec<_>>(),
            ),
            SimpleQueryMessage::CommandComplete(n) => completions.push(*n),
            SimpleQueryMessage::RowDescription(columns) => descriptions.push(
                columns
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect::<Vec<_>>(),
            ),
            _ => {}
        }
    }
    assert_eq!(rows_seen, vec![vec!["1", "a"], vec!["2", "B"], vec!["2"]]);
    assert_eq!(
        completions,
        vec![2, 1, 2],
        "rows per statement: SELECT 2, SELECT 1, INSERT 2"
    );
    assert_eq!(descriptions, vec![vec!["id", "s"], vec!["n"]]);
    assert_eq!(query_i64(&client, "SELECT count(*) FROM w1").await, 4);
}

#[tokio::test]
async fn multi_statement_query_is_one_implicit_transaction() {
    // PostgreSQL runs the statements of one simple Query message as a single
    // transaction: an error in the third undoes the first.
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE m (id integer PRIMARY KEY)")
        .await
        .unwrap();
    assert_error(
        &client,
        "INSERT INTO m VALUES (1); INSERT INTO m VALUES (2); SELECT 1 / 0; INSERT INTO m VALUES (3)",
        SqlState::DIVISION_BY_ZERO,
    )
    .await;
    assert_eq!(query_i64(&client, "SELECT count(*) FROM m").await, 0);
    // And the session is not left inside a transaction.
    client
        .batch_execute("INSERT INTO m VALUES (4)")
        .await
        .unwrap();
    let other = server.connect().await;
    assert_eq!(query_i64(&other, "SELECT count(*) FROM m").await, 1);
}

#[tokio::test]
async fn empty_query_is_answered() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    // EmptyQueryResponse is reported by tokio-postgres as a completion of 0 rows.
    let messages = client.simple_query("").await.expect("empty query");
    assert!(
        messages
            .iter()
            .all(|m| matches!(m, SimpleQueryMessage::CommandComplete(0))),
        "{messages:?}"
    );
    client.batch_execute("").await.expect("empty batch");
    client.batch_execute(";").await.expect("lone semicolon");
    client
        .batch_execute("  -- only a comment\n")
        .await
        .expect("only a comment");
    assert_eq!(query_i64(&client, "SELECT 7::bigint").await, 7);
}

/// psycopg 3 sends `SELECT %s` as `SELECT $1` with the parameter's type in
/// Parse: the result is described, and comes back, as that type (it was
/// described as text, so 42 came back as the string "42").
#[tokio::test]
async fn parameter_types_declared_in_parse_type_the_result() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let declared = [Type::INT2, Type::INT8, Type::FLOAT8, Type::TEXT, Type::BOOL];
    let stmt = client
        .prepare_typed("SELECT $1, $2, $3, $4, $5", &declared)
        .await
        .unwrap();
    let described: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(described, declared);
    assert_eq!(stmt.params(), &declared);
    let row = client
        .query_one(&stmt, &[&7i16, &(1i64 << 40), &2.5f64, &"x", &true])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 7);
    assert_eq!(row.get::<_, i64>(1), 1 << 40);
    assert_eq!(row.get::<_, f64>(2), 2.5);
    assert_eq!(row.get::<_, &str>(3), "x");
    assert!(row.get::<_, bool>(4));
}

#[tokio::test]
async fn numbers_sent_as_integers_or_floats_fill_numeric_columns() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE n (id integer PRIMARY KEY, b numeric(10,2))")
        .await
        .unwrap();
    // What an ORM sends for `balance = 0`: the Python int as int8.
    let by_int = client
        .prepare_typed("INSERT INTO n VALUES ($1, $2)", &[Type::INT4, Type::INT8])
        .await
        .unwrap();
    client.execute(&by_int, &[&1i32, &0i64]).await.unwrap();
    client
        .execute(&by_int, &[&2i32, &12345678i64])
        .await
        .unwrap();
    let too_big = client.execute(&by_int, &[&3i32, &(1i64 << 40)]).await;
    assert_eq!(sqlstate(too_big), SqlState::NUMERIC_VALUE_OUT_OF_RANGE);
    let by_float = client
        .prepare_typed("INSERT INTO n VALUES ($1, $2)", &[Type::INT4, Type::FLOAT8])
        .await
        .unwrap();
    client
        .execute(&by_float, &[&4i32, &2.675f64])
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, b FROM n ORDER BY id").await,
        rows(&[
            &[Some("1"), Some("0.00")],
            &[Some("2"), Some("12345678.00")],
            &[Some("4"), Some("2.68")],
        ])
    );
}

#[tokio::test]
async fn deallocate_drops_prepared_statements_by_name_or_all() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let one = client.prepare("SELECT 1::bigint").await.unwrap();
    let two = client.prepare("SELECT 2::bigint").await.unwrap();
    let gone = SqlState::INVALID_SQL_STATEMENT_NAME;
    // Statements prepared by Parse are named in DEALLOCATE, as in
    // PostgreSQL (tokio-postgres shows the name it gave only in Debug).
    let debug = format!("{one:?}");
    let name = debug.split('"').nth(1).unwrap();
    client
        .batch_execute(&format!("DEALLOCATE {name}"))
        .await
        .unwrap();
    assert_eq!(sqlstate(client.query(&one, &[]).await), gone);
    assert_eq!(
        client.query_one(&two, &[]).await.unwrap().get::<_, i64>(0),
        2
    );
    assert_error(&client, &format!("DEALLOCATE PREPARE {name}"), gone.clone()).await;
    // What psycopg sends after DDL when it has prepared statements.
    client.batch_execute("DEALLOCATE ALL").await.unwrap();
    assert_eq!(sqlstate(client.query(&two, &[]).await), gone);
    assert_eq!(query_i64(&client, "SELECT 3::bigint").await, 3);

    // DISCARD ALL, as a connection pool sends it before handing the
    // connection on: statements and settings are gone; not in a block.
    let three = client.prepare("SELECT 3::bigint").await.unwrap();
    client
        .batch_execute("SET TimeZone = 'Asia/Tokyo'; SET application_name = 'pooled'")
        .await
        .unwrap();
    client.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(sqlstate(client.query(&three, &[]).await), gone);
    let shown = client.simple_query("SHOW TimeZone").await.unwrap();
    let tokio_postgres::SimpleQueryMessage::Row(row) = &shown[1] else {
        panic!("SHOW gave {shown:?}");
    };
    assert_eq!(row.get(0), Some("UTC"));
    client.batch_execute("BEGIN").await.unwrap();
    assert_error(&client, "DISCARD ALL", SqlState::INVALID_TRANSACTION_STATE).await;
    client.batch_execute("ROLLBACK").await.unwrap();
    client.batch_execute("DISCARD PLANS").await.unwrap();
}

#[tokio::test]
async fn extended_query_infers_untyped_parameters_and_accepts_typed_ones() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE w (id integer PRIMARY KEY, name text NOT NULL, score double precision);
             INSERT INTO w VALUES (1, 'one', 1.5), (2, 'two', 2.5);",
        )
        .await
        .unwrap();

    // Untyped: the server infers each parameter's type from its context.
    let select = client
        .prepare("SELECT name, score FROM w WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(select.params(), &[Type::INT4]);
    assert_eq!(
        select
            .columns()
            .iter()
            .map(|c| (c.name(), c.type_().clone()))
            .collect::<Vec<_>>(),
        vec![("name", Type::TEXT), ("score", Type::FLOAT8)]
    );
    let row = client.query_one(&select, &[&2i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "two");
    assert_eq!(row.get::<_, f64>(1), 2.5);
    // NULL parameter: `id = NULL` matches nothing.
    assert!(client
        .query(&select, &[&None::<i32>])
        .await
        .unwrap()
        .is_empty());

    let insert = client
        .prepare("INSERT INTO w (id, name, score) VALUES ($1, $2, $3)")
        .await
        .unwrap();
    assert_eq!(insert.params(), &[Type::INT4, Type::TEXT, Type::FLOAT8]);
    for i in 10..15i32 {
        let n = client
            .execute(&insert, &[&i, &format!("n{i}"), &(i as f64 / 2.0)])
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    let update = client
        .prepare("UPDATE w SET name = $1 WHERE id >= $2")
        .await
        .unwrap();
    assert_eq!(update.params(), &[Type::TEXT, Type::INT4]);
    assert_eq!(client.execute(&update, &[&"big", &12i32]).await.unwrap(), 3);

    let cast = client.prepare("SELECT $1::bigint + 1 AS n").await.unwrap();
    assert_eq!(cast.params(), &[Type::INT8]);
    assert_eq!(cast.columns()[0].name(), "n");
    assert_eq!(cast.columns()[0].type_(), &Type::INT8);
    assert_eq!(
        client
            .query_one(&cast, &[&41i64])
            .await
            .unwrap()
            .get::<_, i64>(0),
        42
    );

    // Typed: the client declares the types, including one that differs from
    // the column's (int8 parameter compared with an int4 column).
    let typed = client
        .prepare_typed("SELECT name FROM w WHERE id = $1", &[Type::INT8])
        .await
        .unwrap();
    assert_eq!(typed.params(), &[Type::INT8]);
    assert_eq!(
        client
            .query_one(&typed, &[&1i64])
            .await
            .unwrap()
            .get::<_, String>(0),
        "one"
    );
    let concat = client
        .prepare_typed("SELECT $1 || '!'", &[Type::TEXT])
        .await
        .unwrap();
    assert_eq!(concat.columns()[0].type_(), &Type::TEXT);
    assert_eq!(
        client
            .query_one(&concat, &[&"hi"])
            .await
            .unwrap()
            .get::<_, String>(0),
        "hi!"
    );

    assert_eq!(
        query_i64(&client, "SELECT count(*) FROM w WHERE name = 'big'").await,
        3
    );
}

#[tokio::test]
async fn binary_results_for_every_type() {
    // tokio-postgres asks for binary results on prepared statements.
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(&format!("{}; {TYPES_ROWS}", all_types_table("types")))
        .await
        .expect("create and fill the types table");

    let stmt = client
        .prepare("SELECT * FROM types ORDER BY id")
        .await
        .unwrap();
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(
        types,
        vec![
            Type::INT4,
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::NUMERIC,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::DATE,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ,
            Type::BYTEA,
        ]
    );
    let rows = client.query(&stmt, &[]).await.unwrap();
    assert_eq!(rows.len(), 3);

    let r = &rows[0];
    assert_eq!(r.get::<_, i32>("id"), 1);
    assert_eq!(r.get::<_, i16>("c_int2"), 12345);
    assert_eq!(r.get::<_, i32>("c_int4"), i32::MIN);
    assert_eq!(r.get::<_, i64>("c_int8"), i64::MAX);
    assert_eq!(r.get::<_, f32>("c_float4"), 1.5);
    assert_eq!(r.get::<_, f64>("c_float8"), -2.25e100);
    assert_eq!(
        r.get::<_, PgNumeric>("c_numeric"),
        PgNumeric("-12345.67".into())
    );
    assert!(r.get::<_, bool>("c_bool"));
    assert_eq!(r.get::<_, String>("c_text"), "héllo wörld");
    assert_eq!(r.get::<_, String>("c_varchar"), "abc");
    assert_eq!(
        r.get::<_, String>("c_char"),
        "ab  ",
        "char(n) is blank-padded"
    );
    assert_eq!(
        r.get::<_, NaiveDate>("c_date"),
        NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
    );
    assert_eq!(
        r.get::<_, NaiveDateTime>("c_ts"),
        NaiveDate::from_ymd_opt(2024, 2, 29)
            .unwrap()
            .and_hms_micro_opt(13, 45, 10, 123_456)
            .unwrap()
    );
    assert_eq!(
        r.get::<_, chrono::DateTime<Utc>>("c_tstz"),
        Utc.with_ymd_and_hms(2024, 2, 29, 11, 45, 10).unwrap()
            + chrono::Duration::microseconds(123_456)
    );
    assert_eq!(r.get::<_, Vec<u8>>("c_bytea"), vec![0u8, 1, 255]);

    let r = &rows[1];
    assert_eq!(r.get::<_, Option<i16>>("c_int2"), None);
    assert_eq!(r.get::<_, Option<i32>>("c_int4"), None);
    assert_eq!(r.get::<_, Option<i64>>("c_int8"), None);
    assert_eq!(r.get::<_, Option<f32>>("c_float4"), None);
    assert_eq!(r.get::<_, Option<f64>>("c_float8"), None);
    assert_eq!(r.get::<_, Option<PgNumeric>>("c_numeric"), None);
    assert_eq!(r.get::<_, Option<bool>>("c_bool"), None);
    assert_eq!(r.get::<_, Option<String>>("c_text"), None);
    assert_eq!(r.get::<_, Option<String>>("c_varchar"), None);
    assert_eq!(r.get::<_, Option<String>>("c_char"), None);
    assert_eq!(r.get::<_, Option<NaiveDate>>("c_date"), None);
    assert_eq!(r.get::<_, Option<NaiveDateTime>>("c_ts"), None);
    assert_eq!(r.get::<_, Option<chrono::DateTime<Utc>>>("c_tstz"), None);
    assert_eq!(r.get::<_, Option<Vec<u8>>>("c_bytea"), None);

    let r = &rows[2];
    assert_eq!(r.get::<_, f32>("c_float4"), -0.25);
    assert_eq!(
        r.get::<_, PgNumeric>("c_numeric"),
        PgNumeric("12.50".into()),
        "numeric(12,2) keeps scale 2"
    );
    assert!(!r.get::<_, bool>("c_bool"));
    assert_eq!(r.get::<_, String>("c_text"), "");
    assert_eq!(r.get::<_, String>("c_char"), "    ");
    assert_eq!(r.get::<_, Vec<u8>>("c_bytea"), Vec::<u8>::new());
}

#[tokio::test]
async fn text_results_for_every_type_match_postgresql() {
    // The simple query protocol returns text: PostgreSQL's text forms, not Arrow's.
    let server = TestServer::start().await;
    let client = server.connect().await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    client
        .batch_execute(&format!("{}; {TYPES_ROWS}", all_types_table("types")))
        .await
        .unwrap();
    let got = text_rows(&client, "SELECT * FROM types ORDER BY id").await;
    let nulls: Vec<Option<&str>> = std::iter::once(Some("2"))
        .chain(std::iter::repeat_n(None, 14))
        .collect();
    assert_eq!(
        got,
        rows(&[
            &[
                Some("1"),
                Some("12345"),
                Some("-2147483648"),
                Some("9223372036854775807"),
                Some("1.5"),
                Some("-2.25e+100"),
                Some("-12345.67"),
                Some("t"),
                Some("héllo wörld"),
                Some("abc"),
                Some("ab  "),
                Some("2024-02-29"),
                Some("2024-02-29 13:45:10.123456"),
                Some("2024-02-29 11:45:10.123456+00"),
                Some("\\x0001ff"),
            ],
            &nulls,
            &[
                Some("3"),
                Some("-1"),
                Some("0"),
                Some("-1"),
                Some("-0.25"),
                Some("0.5"),
                Some("12.50"),
                Some("f"),
                Some(""),
                Some(""),
                Some("    "),
                Some("1999-12-31"),
                Some("2000-01-01 00:00:00"),
                Some("2000-01-01 00:00:00+00"),
                Some("\\x"),
            ],
        ])
    );
}

#[tokio::test]
async fn zero_row_select_still_describes_its_columns() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE empty_t (id bigint PRIMARY KEY, label varchar(20), at timestamptz)",
        )
        .await
        .unwrap();

    let stmt = client
        .prepare("SELECT id, label, at FROM empty_t WHERE id > 0")
        .await
        .unwrap();
    let described: Vec<(&str, Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_().clone()))
        .collect();
    assert_eq!(
        described,
        vec![
            ("id", Type::INT8),
            ("label", Type::VARCHAR),
            ("at", Type::TIMESTAMPTZ)
        ]
    );
    assert!(client.query(&stmt, &[]).await.unwrap().is_empty());

    let computed = client
        .prepare("SELECT count(*) AS n, 1.5::float8 AS x FROM empty_t WHERE false")
        .await
        .unwrap();
    assert_eq!(computed.columns()[0].type_(), &Type::INT8);
    assert_eq!(computed.columns()[1].name(), "x");

    let messages = client
        .simple_query("SELECT id, label FROM empty_t")
        .await
        .unwrap();
    let names: Vec<Vec<String>> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::RowDescription(cols) => {
                Some(cols.iter().map(|c| c.name().to_owned()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![vec!["id".to_owned(), "label".to_owned()]]);
    assert!(!messages
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(_))));
}

#[tokio::test]
async fn sqlx_queries_with_binds() {
    use rust_decimal::Decimal;
    use sqlx::Row;

    let server = TestServer::start().await;
    let pool = server.sqlx_pool().await;
    sqlx::query(
        "CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL, amount numeric(10, 2), \
         placed date, paid boolean, note text)",
    )
    .execute(&pool)
    .await
    .unwrap();

    for i in 1..=5i32 {
        let result = sqlx::query("INSERT INTO orders VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(i)
            .bind(if i % 2 == 0 { "ann" } else { "bob" })
            .bind(Decimal::new(i as i64 * 1050, 2))
            .bind(NaiveDate::from_ymd_opt(2024, 1, i as u32).unwrap())
            .bind(i > 2)
            .bind(if i == 5 {
                None
            } else {
                Some(format!("note {i}"))
            })
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(result.rows_affected(), 1);
    }

    let rows = sqlx::query(
        "SELECT id, amount, placed, paid, note FROM orders WHERE customer = $1 ORDER BY id",
    )
    .bind("bob")
    .fetch_all(&pool)
    .await
    .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get("id")).collect();
    assert_eq!(ids, vec![1, 3, 5]);
    assert_eq!(rows[1].get::<Decimal, _>("amount"), Decimal::new(3150, 2));
    assert_eq!(
        rows[1].get::<NaiveDate, _>("placed"),
        NaiveDate::from_ymd_opt(2024, 1, 3).unwrap()
    );
    assert!(rows[1].get::<bool, _>("paid"));
    assert_eq!(rows[2].get::<Option<String>, _>("note"), None);

    let total: Decimal = sqlx::query_scalar("SELECT sum(amount) FROM orders WHERE paid = $1")
        .bind(true)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, Decimal::new(3150 + 4200 + 5250, 2));

    let updated = sqlx::query("UPDATE orders SET paid = $1 WHERE amount < $2")
        .bind(true)
        .bind(Decimal::new(2500, 2))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 2);
    let unpaid: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE NOT paid")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unpaid, 0);

    let dup = sqlx::query("INSERT INTO orders (id, customer) VALUES ($1, $2)")
        .bind(1i32)
        .bind("dup")
        .execute(&pool)
        .await;
    assert_eq!(sqlx_sqlstate(dup), "23505");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 5);
}

/// Reads one setting with SHOW.
async fn show(client: &tokio_postgres::Client, name: &str) -> String {
    let got = text_rows(client, &format!("SHOW {name}")).await;
    assert_eq!(got.len(), 1, "SHOW {name} returns one row");
    got[0][0]
        .clone()
        .unwrap_or_else(|| panic!("SHOW {name} returned NULL"))
}

#[tokio::test]
async fn set_show_and_reset_session_variables() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let other = server.connect().await;

    assert_eq!(show(&client, "application_name").await, "");
    client
        .batch_execute("SET application_name = 'e2e-tests'")
        .await
        .unwrap();
    assert_eq!(show(&client, "application_name").await, "e2e-tests");
    assert_eq!(
        show(&other, "application_name").await,
        "",
        "SET is per session"
    );
    client
        .batch_execute("RESET application_name")
        .await
        .unwrap();
    assert_eq!(show(&client, "application_name").await, "");

    assert_eq!(show(&client, "search_path").await, "\"$user\", public");
    client
        .batch_execute("SET search_path TO public")
        .await
        .unwrap();
    assert_eq!(show(&client, "search_path").await, "public");
    client.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(show(&client, "search_path").await, "\"$user\", public");

    let initial_tz = show(&client, "TimeZone").await;
    client.batch_execute("SET TimeZone = 'UTC'").await.unwrap();
    assert_eq!(show(&client, "TimeZone").await, "UTC");
    let at = "SELECT '2024-01-01 12:00:00+02'::timestamptz";
    assert_eq!(
        text_rows(&client, at).await,
        rows(&[&[Some("2024-01-01 10:00:00+00")]])
    );
    client.batch_execute("RESET TimeZone").await.unwrap();
    assert_eq!(show(&client, "TimeZone").await, initial_tz);

    let initial_digits = show(&client, "extra_float_digits").await;
    client
        .batch_execute("SET extra_float_digits = 3")
        .await
        .unwrap();
    assert_eq!(show(&client, "extra_float_digits").await, "3");
    client
        .batch_execute("RESET extra_float_digits")
        .await
        .unwrap();
    assert_eq!(show(&client, "extra_float_digits").await, initial_digits);

    assert_eq!(show(&client, "statement_timeout").await, "0");
    client
        .batch_execute("SET statement_timeout = 5000")
        .await
        .unwrap();
    assert_eq!(show(&client, "statement_timeout").await, "5s");
    client
        .batch_execute("SET statement_timeout TO '2min'")
        .await
        .unwrap();
    assert_eq!(show(&client, "statement_timeout").await, "2min");
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    assert_eq!(show(&client, "statement_timeout").await, "0");

    client
        .batch_execute(
            "SET application_name = 'x'; SET search_path = public; SET statement_timeout = 1000",
        )
        .await
        .unwrap();
    client.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(show(&client, "application_name").await, "");
    assert_eq!(show(&client, "search_path").await, "\"$user\", public");
    assert_eq!(show(&client, "statement_timeout").await, "0");

    assert_error(&client, "SHOW no_such_setting", SqlState::UNDEFINED_OBJECT).await;
    assert_eq!(show(&client, "application_name").await, "");
}

#[tokio::test]
async fn version_and_session_functions() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let sql = "SELECT version(), current_database(), current_schema(), current_user";

    let got = text_rows(&client, sql).await;
    let version = got[0][0].clone().expect("version() is not NULL");
    assert!(
        version.starts_with("PostgreSQL 15"),
        "version() = {version}"
    );
    assert_eq!(
        got[0][1..],
        [
            Some("postgres".to_owned()),
            Some("public".to_owned()),
            Some("postgres".to_owned())
        ]
    );

    // The same through the extended protocol (binary results).
    let row = client.query_one(sql, &[]).await.unwrap();
    assert!(row.get::<_, String>(0).starts_with("PostgreSQL 15"));
    assert_eq!(row.get::<_, String>(1), "postgres");
    assert_eq!(row.get::<_, String>(2), "public");
    assert_eq!(row.get::<_, String>(3), "postgres");
}

#[tokio::test]
async fn connection_stays_usable_after_errors() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE e (id integer PRIMARY KEY, v integer); INSERT INTO e VALUES (1, 10)",
        )
        .await
        .unwrap();

    assert_error(&client, "SELEC 1", SqlState::SYNTAX_ERROR).await;
    assert_eq!(query_i64(&client, "SELECT count(*) FROM e").await, 1);

    // Errors while preparing (Parse) ...
    assert_eq!(
        sqlstate(client.prepare("SELECT * FROM no_such_table").await),
        SqlState::UNDEFINED_TABLE
    );
    // ... and while executing (Bind/Execute).
    let div = client
        .prepare("SELECT v / $1 FROM e WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        sqlstate(client.query(&div, &[&0i32]).await),
        SqlState::DIVISION_BY_ZERO
    );
    assert_eq!(
        client
            .query_one(&div, &[&5i32])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    assert_eq!(
        sqlstate(
            client
                .execute("INSERT INTO e VALUES ($1, $2)", &[&1i32, &0i32])
                .await
        ),
        SqlState::UNIQUE_VIOLATION
    );
    assert_eq!(
        client
            .execute("INSERT INTO e VALUES ($1, $2)", &[&2i32, &20i32])
            .await
            .unwrap(),
        1
    );
    assert_eq!(query_i64(&client, "SELECT sum(v) FROM e").await, 30);

    // sqlx: the pooled connection that saw the error is reused.
    let pool = server.sqlx_pool().await;
    for _ in 0..3 {
        assert_eq!(
            sqlx_sqlstate(sqlx::query("SELECT * FROM nope").execute(&pool).await),
            "42P01"
        );
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM e")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
    }
}

#[tokio::test]
async fn non_utc_session_time_zone() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let at = "SELECT '2024-01-01 12:00:00+02'::timestamptz";
    client
        .batch_execute("SET TIME ZONE 'Asia/Tokyo'")
        .await
        .unwrap();
    assert_eq!(show(&client, "timezone").await, "Asia/Tokyo");
    assert_eq!(
        text_rows(&client, at).await,
        rows(&[&[Some("2024-01-01 19:00:00+09")]])
    );
}

#[tokio::test]
#[ignore = "sqlparser reads `SELECT FROM WHERE` as a table named where; PostgreSQL reserves WHERE"]
async fn reserved_word_as_table_name_is_a_syntax_error() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    assert_eq!(
        sqlstate(client.prepare("SELECT FROM WHERE").await),
        SqlState::SYNTAX_ERROR
    );
}

#[tokio::test]
async fn null_parameters_of_any_declared_type_keep_their_places() {
    // A NULL declared as bpchar (as pgjdbc sends setNull for char columns)
    // must not shift the parameters after it.
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE np (id integer PRIMARY KEY, c char(3), n integer)")
        .await
        .unwrap();
    let insert = client
        .prepare_typed(
            "INSERT INTO np VALUES ($1, $2, $3)",
            &[Type::INT4, Type::BPCHAR, Type::INT4],
        )
        .await
        .unwrap();
    client
        .execute(&insert, &[&1i32, &None::<String>, &7i32])
        .await
        .unwrap();
    client
        .execute(&insert, &[&2i32, &Some("ab".to_string()), &8i32])
        .await
        .unwrap();
    assert_eq!(
        text_rows(&client, "SELECT id, c, n FROM np ORDER BY id").await,
        rows(&[
            &[Some("1"), None, Some("7")],
            &[Some("2"), Some("ab "), Some("8")]
        ])
    );
}

#[tokio::test]
async fn cursors_read_a_query_in_pieces_through_the_extended_protocol() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE c (id integer PRIMARY KEY, v text);
             INSERT INTO c SELECT i, 'v' || i FROM generate_series(1, 5000) AS s(i)",
        )
        .await
        .unwrap();
    let txn = client.transaction().await.unwrap();
    // DECLARE with a bound parameter; FETCH described with the cursor's columns.
    txn.execute(
        "DECLARE big CURSOR FOR SELECT id, v FROM c WHERE id > $1 ORDER BY id",
        &[&1000i32],
    )
    .await
    .unwrap();
    let fetch = txn.prepare("FETCH FORWARD 1000 FROM big").await.unwrap();
    let described: Vec<(&str, &Type)> = fetch
        .columns()
        .iter()
        .map(|c| (c.name(), c.type_()))
        .collect();
    assert_eq!(described, [("id", &Type::INT4), ("v", &Type::TEXT)]);
    let mut seen = 0;
    loop {
        let rows = txn.query(&fetch, &[]).await.unwrap();
        if let Some(first) = rows.first() {
            assert_eq!(first.get::<_, i32>(0), 1001 + seen);
        }
        seen += rows.len() as i32;
        if rows.len() < 1000 {
            break;
        }
    }
    assert_eq!(seen, 4000);
    assert_eq!(
        sqlstate(txn.execute("FETCH BACKWARD 1 FROM big", &[]).await),
        SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
    );
    txn.rollback().await.unwrap();
    // The cursor ended with its transaction.
    assert_eq!(
        sqlstate(client.batch_execute("FETCH big").await),
        SqlState::INVALID_CURSOR_NAME
    );
}

#[tokio::test]
async fn sql_prepare_and_execute_through_both_protocols() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute("PREPARE plus (bigint) AS SELECT $1 + 1 AS next")
        .await
        .unwrap();
    // An EXECUTE is described with its statement's columns.
    let execute = client.prepare("EXECUTE plus (41)").await.unwrap();
    assert_eq!(execute.columns()[0].name(), "next");
    assert_eq!(execute.columns()[0].type_(), &Type::INT8);
    let row = client.query_one(&execute, &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    // One namespace with statements prepared by Parse, in DEALLOCATE.
    client.batch_execute("DEALLOCATE plus").await.unwrap();
    assert_eq!(
        sqlstate(client.query("EXECUTE plus (1)", &[]).await),
        SqlState::INVALID_SQL_STATEMENT_NAME
    );
}
