#!/usr/bin/env python3
"""Driver check with asyncpg (extended query protocol, binary formats, prepared statements).

asyncpg prepares every statement (Parse/Describe), binds parameters in binary with the
types the server describes, reads results in binary and looks unknown types up in
pg_catalog. The check writes a row of every supported type with executemany and reads
it back with fetch; checks numeric in binary, fetchrow/fetchval, array parameters
(which makes asyncpg query pg_catalog for the type), RETURNING, ON CONFLICT,
a transaction rolled back by an exception, 23505 as UniqueViolationError, the COPY
helpers (copy_records_to_table, copy_to_table, copy_from_query, copy_from_table),
cursors (portal fetches with prefetch, fetch(n), forward(n) = MOVE), a uuid primary key
found by a binary uuid.UUID parameter, statement_timeout (57014) and a query cancelled
from the client (CancelRequest). The rows are psycopg_check.py's. Array columns
(integer[], text[], numeric(10,2)[], date[], boolean[]) written with array parameters,
read back, copied in binary and as CSV, and out as CSV.

json and jsonb: asyncpg sends and reads jsonb in binary (a version byte 1, then the
text) and gives json/jsonb as str: psycopg_check.py's JSON texts, written as str
parameters, come back exactly as PostgreSQL writes them (jsonb canonical: keys sorted
and unique, numbers as numeric prints them; json verbatim); JSON null apart from SQL
NULL; ->, ->>, #>>, ?, jsonb_build_object. Then, on a second connection with
set_type_codec('jsonb'/'json', encoder=json.dumps, decoder=json.loads) as applications
set it (text format), psycopg_check.py's Python values come back as dicts and lists;
json/jsonb parameters whose type the server infers ($1::jsonb, data @> $1, dict
parameters through the type codec).

interval: psycopg_check.py's INTERVALS, the timedelta values written with executemany
(binary: microseconds, days, months 0), months as text; read back with fetch as
timedelta (binary) and as PostgreSQL's text; ORDER BY d by length (a month is 30 days),
WHERE d = '30 days' finding '1 mon', WHERE d > $1 and d = $1 with a timedelta; then
through set_type_codec('interval', format='tuple') as (months, days, microseconds),
months included, written and read in binary.

asyncpg writes date.min and date.max as -infinity and infinity, which ShardForge
cannot store (0A000): row 3's date(1, 1, 1) is written as date(1, 1, 2) here.

A numeric parameter cast to numeric keeps its own digits and scale.

Cases ShardForge does not pass yet run with --pending (and with `run --postgres`):
numeric NaN, an array
parameter (asyncpg's type introspection), Cursor.forward (MOVE on a protocol
portal), an interval of +/-(2^63 - 1) microseconds (text and binary).

Usage: asyncpg_check.py [--host 127.0.0.1] [--port 5432] [--pending]
Prints one line `PASS asyncpg ...` or `FAIL asyncpg: ...`; exit status 0 on PASS.
"""

import asyncio
import datetime as dt
import io
import json
import math
import sys
import time
import uuid
from decimal import Decimal

import asyncpg

from psycopg_check import (COLUMNS, INTERVAL_ORDER, INTERVALS, JSON_NULL_ID, JSON_TEXTS,
                           JSON_VALUES, ROWS, SQL_NULL_ID, CheckFailed, check, check_main)

TABLE = "compat_asyncpg"
# asyncpg sends date.min as -infinity (see the module header).
ROWS = [(row_id, tuple(dt.date(1, 1, 2) if v == dt.date(1, 1, 1) else v for v in values))
        for row_id, values in ROWS]
NAMES = ", ".join(name for name, _ in COLUMNS)
# A query that runs for seconds on both servers: 3000 x 3000 rows of a table
# (compat_asyncpg_long, made by check_cancel) x 30, counted.
LONG_QUERY = ("SELECT count(*) FROM compat_asyncpg_long AS a, compat_asyncpg_long AS b, "
              "generate_series(1, 30) AS g(i) WHERE a.v + b.v + g.i > 0")


async def connect(args):
    return await asyncpg.connect(host=args.host, port=args.port, user="postgres",
                                 database="postgres", timeout=10)


def same(want, have):
    """Exact equality, None only equal to None. asyncpg's Python types are psycopg's
    (Decimal, date, naive datetime for timestamp, bytes for bytea, str for char(n)
    with its padding) except that timestamptz comes back in UTC rather than in the
    session zone; aware datetimes compare by instant, so that needs no normalisation;
    and uuid comes back as asyncpg's own UUID class, a subclass of uuid.UUID.
    """
    if want is None or have is None:
        return want is None and have is None
    if isinstance(want, uuid.UUID):
        return isinstance(have, uuid.UUID) and want == have
    return type(want) is type(have) and want == have


async def check_types(conn):
    """Every type of COLUMNS written with executemany (binary parameters) and read back
    with fetch (binary results), and one row with execute."""
    await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cols = ", ".join(f"{name} {ty}" for name, ty in COLUMNS)
    await conn.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, {cols})")
    placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 2))
    insert = f"INSERT INTO {TABLE} (id, {NAMES}) VALUES ({placeholders})"
    await conn.executemany(insert, [(row_id, *values) for row_id, values in ROWS[:-1]])
    row_id, values = ROWS[-1]
    status = await conn.execute(insert, row_id, *values)
    check(status == "INSERT 0 1", f"execute of an INSERT returned status {status!r}")

    records = await conn.fetch(f"SELECT id, {NAMES} FROM {TABLE} ORDER BY id")
    check([r["id"] for r in records] == [row_id for row_id, _ in ROWS],
          f"fetch of all rows gave ids {[r['id'] for r in records]!r}")
    for record, (row_id, values) in zip(records, ROWS):
        for (name, _), want in zip(COLUMNS, values):
            check(same(want, record[name]),
                  f"row {row_id} {name}: wrote {want!r}, read {record[name]!r}")

    # Binary parameters in WHERE over several types at once.
    got = await conn.fetch(f"SELECT id FROM {TABLE} WHERE c_text = $1 AND c_numeric = $2 "
                           "AND c_date = $3 AND c_bytea = $4",
                           "hello, world", Decimal("12345.678"), dt.date(1999, 12, 31),
                           b"\xde\xad\xbe\xef")
    check([tuple(r) for r in got] == [(1,)], f"bound WHERE on text/numeric/date/bytea gave {got!r}")

    # Timestamps far from 1970 as binary parameters (microseconds since 2000 on the wire).
    for value, ty in ((dt.datetime(1600, 1, 1, 12, 30), "timestamp"),
                      (dt.datetime(2300, 1, 1, tzinfo=dt.timezone.utc), "timestamptz")):
        got = await conn.fetchval(f"SELECT $1::{ty}", value)
        check(same(value, got), f"SELECT $1::{ty} with {value!r} gave {got!r}")


async def check_numeric_and_floats(conn):
    """numeric in binary both ways (the issue's case), and float/numeric NaN and infinities."""
    want = Decimal("-12345678901234567890.0123456789")
    got = await conn.fetchval("SELECT $1::numeric(30,10)", want)
    check(same(want, got) and str(got) == str(want),
          f"SELECT $1::numeric(30,10) with {want!r} gave {got!r}")
    want = Decimal("9999999999999999999999999999.9999999999")
    got = await conn.fetchval("SELECT $1::numeric(38,10)", want)
    check(same(want, got), f"SELECT $1::numeric(38,10) with {want!r} gave {got!r}")

    # NaN and the infinities; NaN compares unequal to itself, so it is checked by kind.
    specials = [math.nan, math.inf, -math.inf]
    row = await conn.fetchrow("SELECT $1::float8 AS a, $2::float8 AS b, $3::float8 AS c, "
                              "$1::float4 AS d, $2::float4 AS e, $3::float4 AS f", *specials)
    check(math.isnan(row["a"]) and row["b"] == math.inf and row["c"] == -math.inf
          and math.isnan(row["d"]) and row["e"] == math.inf and row["f"] == -math.inf,
          f"float8/float4 NaN, inf, -inf gave {tuple(row)!r}")


async def check_numeric_parameters(conn):
    """A numeric parameter cast to numeric keeps its own digits and scale (binary, with
    its display scale); `$1 + 1` is described and answered with one type (it was
    described int8 and sent as int4)."""
    got = await conn.fetchval("SELECT $1::numeric * 2", Decimal("1.25"))
    check(same(Decimal("2.50"), got) and str(got) == "2.50",
          f"SELECT $1::numeric * 2 with Decimal('1.25') gave {got!r}")
    got = await conn.fetchval("SELECT $1 + 1", 41)
    check(got == 42, f"SELECT $1 + 1 with 41 gave {got!r}")
    for value in (Decimal("0.00"), Decimal("1000"), Decimal("-0.0000001"),
                  Decimal("123456789012345678901234567890.123456789")):
        got = await conn.fetchval("SELECT $1::numeric", value)
        check(same(value, got) and str(got) == str(value),
              f"SELECT $1::numeric with {value!r} gave {got!r}")


async def check_numeric_nan(conn):
    """numeric NaN."""
    got = await conn.fetchval("SELECT 'NaN'::numeric")
    check(isinstance(got, Decimal) and got.is_nan(), f"'NaN'::numeric gave {got!r}")
    got = await conn.fetchval("SELECT $1::numeric", Decimal("NaN"))
    check(isinstance(got, Decimal) and got.is_nan(), f"SELECT $1::numeric with NaN gave {got!r}")


async def check_statements(conn):
    """fetchrow, fetchval, INSERT ...
    RETURNING, ON CONFLICT DO UPDATE, a transaction rolled back by an exception, and a
    duplicate key as UniqueViolationError."""
    row = await conn.fetchrow(f"SELECT id, c_text, c_numeric FROM {TABLE} WHERE id = $1", 1)
    check(row is not None and tuple(row) == (1, "hello, world", Decimal("12345.678")),
          f"fetchrow gave {row!r}")
    check(await conn.fetchrow(f"SELECT id FROM {TABLE} WHERE id = $1", 999) is None,
          "fetchrow of no rows did not give None")
    got = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE c_integer IS NULL")
    check(got == 1, f"fetchval of count(*) gave {got!r}")
    got = await conn.fetchval(f"SELECT c_bigint FROM {TABLE} WHERE id = $1", 4)
    check(got == 9223372036854775807, f"fetchval of a bigint gave {got!r}")

    got = await conn.fetchval(f"INSERT INTO {TABLE} (id, c_text) VALUES ($1, $2) RETURNING id",
                              50, "returned")
    check(got == 50, f"INSERT ... RETURNING id gave {got!r}")
    upsert = (f"INSERT INTO {TABLE} (id, c_text, c_integer) VALUES ($1, $2, $3) "
              "ON CONFLICT (id) DO UPDATE SET c_text = EXCLUDED.c_text, "
              "c_integer = EXCLUDED.c_integer RETURNING id, c_text, c_integer")
    row = await conn.fetchrow(upsert, 50, "upserted", 5)
    check(row is not None and tuple(row) == (50, "upserted", 5),
          f"ON CONFLICT DO UPDATE of an existing row returned {row!r}")
    row = await conn.fetchrow(upsert, 51, "inserted", 6)
    check(row is not None and tuple(row) == (51, "inserted", 6),
          f"ON CONFLICT DO UPDATE of a new row returned {row!r}")
    got = [tuple(r) for r in await conn.fetch(
        f"SELECT id, c_text, c_integer FROM {TABLE} WHERE id >= 50 ORDER BY id")]
    check(got == [(50, "upserted", 5), (51, "inserted", 6)], f"rows after the upserts: {got!r}")

    class Abort(Exception):
        pass
    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES ($1, $2)", 60, "gone")
            await conn.execute(f"UPDATE {TABLE} SET c_text = $1 WHERE id = $2", "changed", 50)
            check(await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = 60") == 1,
                  "transaction does not see its own insert")
            raise Abort()
    except Abort:
        pass
    check(not conn.is_in_transaction(), "still in a transaction after the rollback")
    got = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = 60")
    check(got == 0, "insert of a rolled-back transaction still visible")
    got = await conn.fetchval(f"SELECT c_text FROM {TABLE} WHERE id = 50")
    check(got == "upserted", f"update of a rolled-back transaction left c_text = {got!r}")

    try:
        await conn.execute(f"INSERT INTO {TABLE} (id) VALUES ($1)", 1)
        raise CheckFailed("duplicate key insert succeeded")
    except asyncpg.UniqueViolationError as e:
        check(e.sqlstate == "23505", f"duplicate key gave SQLSTATE {e.sqlstate}")
    got = await conn.fetchval(f"SELECT count(*) FROM {TABLE}")
    check(got == len(ROWS) + 2, f"row count {got} after the duplicate key error")
    await conn.execute(f"DELETE FROM {TABLE} WHERE id >= 50")


async def check_uuid_key(conn):
    """A uuid primary key: rows written and found by a uuid.UUID parameter (binary)."""
    await conn.execute("DROP TABLE IF EXISTS compat_asyncpg_uuid")
    await conn.execute("CREATE TABLE compat_asyncpg_uuid (id uuid PRIMARY KEY, v text)")
    keys = {uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"): "one",
            uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"): "two"}
    await conn.executemany("INSERT INTO compat_asyncpg_uuid (id, v) VALUES ($1, $2)", keys.items())
    for key, v in keys.items():
        row = await conn.fetchrow("SELECT id, v FROM compat_asyncpg_uuid WHERE id = $1", key)
        check(row is not None and same(key, row["id"]) and row["v"] == v,
              f"WHERE id = $1 with {key} gave {row!r}")
    await conn.execute("DROP TABLE compat_asyncpg_uuid")


JSON_TABLE = "compat_asyncpg_json"
JSON_SQL_NULL_ID = 19


async def check_json(args, conn):
    """json and jsonb columns: str parameters in, str results back (jsonb in binary),
    the text exactly PostgreSQL's; ->>, ->, #>>, ?, jsonb_build_object; then values
    read as dicts and lists through a json.dumps / json.loads type codec set on a
    second connection. Leaves JSON_TABLE for check_json_parameters."""
    table = JSON_TABLE
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb, doc json)")
    await conn.executemany(f"INSERT INTO {table} (id, data, doc) VALUES ($1, $2, $3)",
                           [(row_id, text, text) for row_id, text, _ in JSON_TEXTS]
                           + [(JSON_SQL_NULL_ID, None, None)])
    got = [tuple(r) for r in await conn.fetch(f"SELECT id, data, doc FROM {table} ORDER BY id")]
    want = ([(row_id, canonical, text) for row_id, text, canonical in JSON_TEXTS]
            + [(JSON_SQL_NULL_ID, None, None)])
    check(len(got) == len(want), f"json rows: {got!r}")
    for w, g in zip(want, got):
        check(g == w, f"row {w[0]}: wrote {w[2]!r}, read jsonb {g[1]!r} and json {g[2]!r}; "
              f"want jsonb {w[1]!r}")
    got = [tuple(r) for r in await conn.fetch(
        f"SELECT id, data IS NULL, jsonb_typeof(data) FROM {table} "
        "WHERE data = 'null' OR data IS NULL ORDER BY id")]
    check(got == [(15, False, "null"), (JSON_SQL_NULL_ID, True, None)],
          f"JSON null and SQL NULL rows: {got!r}")

    row = await conn.fetchrow(f"SELECT data ->> $1 AS name, data -> 'dims' AS dims, "
                              f"data #>> '{{dims,h,1,deep}}' AS deep, data ? 'tags' AS has, "
                              f"doc -> 'tags' AS tags FROM {table} WHERE id = $2", "name", 13)
    check(tuple(row) == ("widget", '{"h": [2, {"deep": [true, false, null]}], "w": 1.5}',
                         "[true, false, null]", True, '["a","b"]'),
          f"->>, ->, #>>, ? on row 13 gave {tuple(row)!r}")
    row = await conn.fetchrow(f"SELECT data -> 'n' AS n, data #>> '{{n,1}}' AS big, "
                              f"data -> 'n' -> 0 AS first FROM {table} WHERE id = $1", 10)
    check(tuple(row) == ("[1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]",
                         "12345678901234567890.123", "1.50"),
          f"-> 'n', #>> '{{n,1}}' on row 10 gave {tuple(row)!r}")
    got = [r["id"] for r in await conn.fetch(
        f"SELECT id FROM {table} WHERE data ->> $1 = $2 OR data ? $3 ORDER BY id", "k", "2", "s")]
    check(got == [11, 18], f"WHERE data ->> $1 = $2 OR data ? $3 found {got}")
    got = await conn.fetchval(f"SELECT jsonb_build_object('id', id, 'name', data ->> 'name', "
                              f"'n', $1::int, 'none', NULL) FROM {table} WHERE id = $2", 7, 13)
    check(got == '{"n": 7, "id": 13, "name": "widget", "none": null}',
          f"jsonb_build_object gave {got!r}")

    # psycopg_check.py's Python values, written as json.dumps text here and read
    # through a type codec, as applications set one, on its own connection.
    await conn.executemany(f"INSERT INTO {table} (id, data, doc) VALUES ($1, $2, $3)",
                           [(row_id, None, None) if row_id == SQL_NULL_ID
                            else (row_id, json.dumps(value), json.dumps(value))
                            for row_id, value in JSON_VALUES])
    coded = await connect(args)
    try:
        for name in ("jsonb", "json"):
            await coded.set_type_codec(name, encoder=json.dumps, decoder=json.loads,
                                       schema="pg_catalog")
        got = [tuple(r) for r in await coded.fetch(
            f"SELECT id, data, doc FROM {table} WHERE id < 10 ORDER BY id")]
        want = [(row_id, value, value) for row_id, value in JSON_VALUES]
        check(got == want, f"json.loads codec: values read back as {got!r}")
        got = [tuple(r) for r in await coded.fetch(
            f"SELECT id, data IS NULL, data FROM {table} WHERE id IN ($1, $2) ORDER BY id",
            JSON_NULL_ID, SQL_NULL_ID)]
        check(got == [(JSON_NULL_ID, False, None), (SQL_NULL_ID, True, None)],
              f"JSON null and SQL NULL through the codec: {got!r}")
        for row_id, text, canonical in JSON_TEXTS:
            got = tuple(await coded.fetchrow(f"SELECT data, doc FROM {table} WHERE id = $1", row_id))
            check(got == (json.loads(canonical), json.loads(text)),
                  f"row {row_id} through the codec gave {got!r}")
        got = await coded.fetchval(f"SELECT jsonb_build_object('doc', data, 'n', $1::int) "
                                   f"FROM {table} WHERE id = $2", 5, 2)
        check(got == {"doc": JSON_VALUES[1][1], "n": 5},
              f"jsonb_build_object through the codec gave {got!r}")
    finally:
        await coded.close(timeout=10)


async def check_json_parameters(args, conn):
    """json and jsonb parameters whose type the server infers (asyncpg declares none):
    $1::jsonb / $2::json and data @> $1 with str values, and dict values through the
    json.dumps codec (asyncpg encodes a parameter by the type ParameterDescription
    gives). Runs after check_json, on its table."""
    table = JSON_TABLE
    for row_id, text, canonical in JSON_TEXTS:
        got = tuple(await conn.fetchrow("SELECT $1::jsonb, $2::json", text, text))
        check(got == (canonical, text), f"SELECT $1::jsonb, $2::json with {text!r} gave {got!r}")
    for probe, ids in (('{"tags": ["b"]}', [1, 13]), ('{"n": [1.5]}', [10]), ('{"k": 2}', [11]),
                       ('{}', [1, 2, 3, 4, 10, 11, 13, 16, 18]), ('[null]', [9, 12])):
        got = [r["id"] for r in await conn.fetch(
            f"SELECT id FROM {table} WHERE data @> $1 ORDER BY id", probe)]
        check(got == ids, f"WHERE data @> $1 with {probe!r} found {got}, want {ids}")

    coded = await connect(args)
    try:
        for name in ("jsonb", "json"):
            await coded.set_type_codec(name, encoder=json.dumps, decoder=json.loads,
                                       schema="pg_catalog")
        # asyncpg passes None as SQL NULL: no JSON null here.
        values = [(row_id + 100, value) for row_id, value in JSON_VALUES
                  if row_id not in (JSON_NULL_ID, SQL_NULL_ID)]
        await coded.executemany(f"INSERT INTO {table} (id, data, doc) VALUES ($1, $2, $3)",
                                [(row_id, value, value) for row_id, value in values])
        got = [tuple(r) for r in await coded.fetch(
            f"SELECT id, data, doc FROM {table} WHERE id > 100 ORDER BY id")]
        check(got == [(row_id, value, value) for row_id, value in values],
              f"dicts written through the codec read back as {got!r}")
        got = [r["id"] for r in await coded.fetch(
            f"SELECT id FROM {table} WHERE data @> $1 ORDER BY id", {"tags": ["b"]})]
        check(got == [1, 13, 101], f"WHERE data @> $1 with a dict found {got}")
        got = await coded.fetchval("SELECT jsonb_build_object('k', $1::jsonb)", {"é": [1.5, None]})
        check(got == {"k": {"é": [1.5, None]}}, f"jsonb_build_object('k', $1::jsonb) gave {got!r}")
        got = await coded.fetchval("SELECT $1::jsonb", {"b": 1, "a": {"c": [True]}})
        check(got == {"a": {"c": [True]}, "b": 1}, f"SELECT $1::jsonb with a dict gave {got!r}")
    finally:
        await coded.close(timeout=10)


INTERVAL_TABLE = "compat_asyncpg_interval"
# INTERVALS as the 'tuple' interval codec gives them: (months, days, microseconds).
INTERVAL_TUPLES = {1: (0, 1, 7_384_000_005), 2: (0, -3, 1_000_000), 3: (0, 0, 0), 4: (0, 0, 1),
                   5: (0, 40, 0), 6: (14, 0, 0), 7: (0, 10000, 0), 8: (0, 29, 0), 9: (1, 0, 0),
                   10: (0, 31, 0), 11: (0, 0, 720 * 3600 * 10**6), 12: (0, -10000, 86_399_999_999),
                   13: (0, 0, -1)}


async def tuple_interval_connection(args):
    """A connection reading and writing interval as (months, days, microseconds)."""
    coded = await connect(args)
    await coded.set_type_codec("interval", schema="pg_catalog", encoder=lambda t: t,
                               decoder=lambda t: t, format="tuple")
    return coded


async def check_interval(args, conn):
    """interval columns: INTERVALS' timedelta values written with executemany (binary
    parameters), the others as text in the SQL; read back with fetch as timedelta and
    as PostgreSQL's text; ORDER BY d, WHERE d = '30 days', WHERE d > $1 and d = $1
    with a timedelta; then (months, days, microseconds) through the 'tuple' codec,
    both ways."""
    table = INTERVAL_TABLE
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, d interval)")
    await conn.executemany(f"INSERT INTO {table} (id, d) VALUES ($1, $2)",
                           [(row_id, value) for row_id, _, value in INTERVALS if value is not None])
    for row_id, text, value in INTERVALS:
        if value is None:
            await conn.execute(f"INSERT INTO {table} (id, d) VALUES ($1, '{text}')", row_id)

    records = await conn.fetch(f"SELECT id, d, d::text AS t FROM {table} ORDER BY id")
    got = [(r["id"], r["t"]) for r in records]
    want = [(row_id, text) for row_id, text, _ in INTERVALS]
    check(got == want, f"intervals read back as text {got!r}, want {want!r}")
    for (row_id, text, value), record in zip(INTERVALS, records):
        check(value is None or same(value, record["d"]),
              f"interval {text!r} read back as {record['d']!r}, want {value!r}")

    got = [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY d, id")]
    check(got == INTERVAL_ORDER, f"ORDER BY d gave ids {got}, want {INTERVAL_ORDER}")
    got = [tuple(r) for r in await conn.fetch(
        f"SELECT id, d::text FROM {table} WHERE d = '30 days' ORDER BY id")]
    check(got == [(9, "1 mon"), (11, "720:00:00")], f"WHERE d = '30 days' gave {got!r}")
    for value, ids in ((dt.timedelta(days=30), [5, 6, 7, 10]),
                       (dt.timedelta(0), [1, 4, 5, 6, 7, 8, 9, 10, 11]),
                       (dt.timedelta(days=-3), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13])):
        got = [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} WHERE d > $1 ORDER BY id", value)]
        check(got == ids, f"WHERE d > $1 with {value!r} found {got}, want {ids}")
    for row_id, text, value in INTERVALS:
        if value is not None:
            got = [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} WHERE d = $1", value)]
            check(got == [row_id], f"WHERE d = $1 with {value!r} found {got}")

    coded = await tuple_interval_connection(args)
    try:
        got = {r["id"]: r["d"] for r in await coded.fetch(f"SELECT id, d FROM {table}")}
        check(got == INTERVAL_TUPLES, f"intervals through the tuple codec: {got!r}, "
              f"want {INTERVAL_TUPLES!r}")
        await coded.executemany(f"INSERT INTO {table} (id, d) VALUES ($1, $2)",
                                [(row_id + 100, t) for row_id, t in INTERVAL_TUPLES.items()])
        got = [tuple(r) for r in await coded.fetch(
            f"SELECT id - 100, d::text, d FROM {table} WHERE id > 100 ORDER BY id")]
        want = [(row_id, text, INTERVAL_TUPLES[row_id]) for row_id, text, _ in INTERVALS]
        check(got == want, f"tuples written through the tuple codec read back as {got!r}, want {want!r}")
        got = [r["id"] for r in await coded.fetch(
            f"SELECT id FROM {table} WHERE d = $1 ORDER BY id", (1, 0, 0))]
        check(got == [9, 11, 109, 111], f"WHERE d = $1 with (1 month, 0, 0) found {got}")
    finally:
        await coded.close(timeout=10)
    await conn.execute(f"DROP TABLE {table}")


async def pending_interval_large_time(args, conn):
    """An interval's time part at the ends of its 8-byte microsecond count, as text
    and as a binary (months, days, microseconds) parameter."""
    table = INTERVAL_TABLE + "_large"
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, d interval)")
    await conn.execute(f"INSERT INTO {table} (id, d) VALUES (1, '2562047788:00:54.775807'), "
                       "(2, '-2562047788:00:54.775807')")
    coded = await tuple_interval_connection(args)
    try:
        await coded.executemany(f"INSERT INTO {table} (id, d) VALUES ($1, $2)",
                                [(3, (0, 0, 2**63 - 1)), (4, (0, 0, -(2**63 - 1)))])
        got = [tuple(r) for r in await coded.fetch(f"SELECT id, d::text, d FROM {table} ORDER BY id")]
        big, small = (0, 0, 2**63 - 1), (0, 0, -(2**63 - 1))
        want = [(1, "2562047788:00:54.775807", big), (2, "-2562047788:00:54.775807", small),
                (3, "2562047788:00:54.775807", big), (4, "-2562047788:00:54.775807", small)]
        check(got == want, f"intervals of +/-(2^63 - 1) microseconds read back as {got!r}")
        got = [r["id"] for r in await coded.fetch(f"SELECT id FROM {table} ORDER BY d, id")]
        check(got == [2, 4, 1, 3], f"ORDER BY d of +/-(2^63 - 1) microseconds gave ids {got}")
    finally:
        await coded.close(timeout=10)
    # (Not as timedelta: asyncpg's decoder wraps microsecond counts this large.)
    await conn.execute(f"DROP TABLE {table}")


async def check_array_parameters(conn):
    """Array parameters: asyncpg looks their types up in pg_catalog (its type
    introspection, whose own parameter is an oid[]), typed by a cast or by
    `x = ANY($1)` (an array of x's type)."""
    got = [r["id"] for r in await conn.fetch(
        f"SELECT id FROM {TABLE} WHERE id = any($1::integer[]) ORDER BY id", [1, 3, 99])]
    check(got == [1, 3], f"WHERE id = any($1::integer[]) with [1, 3, 99] gave {got!r}")
    got = [r["id"] for r in await conn.fetch(
        f"SELECT id FROM {TABLE} WHERE id = any($1) ORDER BY id", [1, 3, 99])]
    check(got == [1, 3], f"WHERE id = any($1) with [1, 3, 99] gave {got!r}")
    got = [r["id"] for r in await conn.fetch(
        f"SELECT id FROM {TABLE} WHERE c_text = any($1) ORDER BY id", ["hello, world"])]
    check(got == [1], f"WHERE c_text = any($1) with ['hello, world'] gave {got!r}")
    got = await conn.fetchrow("SELECT $1::bigint[], $2::float8[], $3::bool[], $4::text[]",
                              [1, None, -9223372036854775808], [1.5, -0.0], [True, None],
                              ["a b", None, "", "{}"])
    check(tuple(got) == ([1, None, -9223372036854775808], [1.5, -0.0], [True, None],
                         ["a b", None, "", "{}"]),
          f"array parameters came back as {tuple(got)!r}")


async def check_array_columns(conn):
    """Array columns: rows written with array parameters (binary), read back
    (binary results), copied in with copy_records_to_table (binary COPY) and
    out as CSV (text), with NULL elements, empty arrays and quoting."""
    table = "compat_asyncpg_arrays"
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, ints integer[], "
                       "words text[], amounts numeric(10,2)[], days date[], flags boolean[])")
    rows = [
        (1, [1, None, -2147483648], ["a b", None, "", "{}", 'q"r', "x,y"],
         [Decimal("1.50"), Decimal("-99999999.99")],
         [dt.date(2024, 2, 29)], [True, False, None]),
        (2, [], [], [], [], []),
        (3, None, None, None, None, None),
    ]
    await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6)", rows)
    back = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
    check(back == rows, f"array columns written and read back as {back!r}")
    got = await conn.fetchval(f"SELECT id FROM {table} WHERE $1 = ANY(words)", "x,y")
    check(got == 1, f"WHERE $1 = ANY(words) gave {got!r}")
    out = io.BytesIO()
    await conn.copy_from_table(table, output=out, format="csv")
    lines = sorted(out.getvalue().decode().splitlines())
    want = ['1,"{1,NULL,-2147483648}","{""a b"",NULL,"""",""{}"",""q\\""r"",""x,y""}",'
            '"{1.50,-99999999.99}",{2024-02-29},"{t,f,NULL}"', "2,{},{},{},{},{}", "3,,,,,"]
    check(lines == want, f"COPY TO of array columns as CSV gave {lines!r}")
    await conn.execute(f"DELETE FROM {table}")
    await conn.copy_records_to_table(table, records=rows)
    back = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
    check(back == rows, f"array columns copied in (binary) read back as {back!r}")
    await conn.execute(f"DELETE FROM {table}")
    await conn.copy_to_table(table, source=io.BytesIO("\n".join(want).encode()), format="csv")
    back = [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY id")]
    check(back == rows, f"array columns copied in (CSV) read back as {back!r}")
    await conn.execute(f"DROP TABLE {table}")


async def check_copied(conn, written, what):
    """compat_asyncpg_copy holds exactly the rows `written`."""
    back = [tuple(r) for r in await conn.fetch(f"SELECT id, {NAMES} FROM compat_asyncpg_copy "
                                               "ORDER BY id")]
    check(len(back) == len(written) and all(same(w, h) for wr, hr in zip(written, back)
                                            for w, h in zip(wr, hr)),
          f"{what} then fetch gave {back!r}")


async def check_copy(conn):
    """copy_records_to_table (binary COPY FROM, column types looked up by asyncpg),
    copy_to_table from a CSV file, copy_from_query / copy_from_table to a file."""
    cols = ", ".join(f"{name} {ty}" for name, ty in COLUMNS)
    await conn.execute("DROP TABLE IF EXISTS compat_asyncpg_copy")
    await conn.execute(f"CREATE TABLE compat_asyncpg_copy (id integer PRIMARY KEY, {cols})")
    written = [(row_id, *values) for row_id, values in ROWS]
    status = await conn.copy_records_to_table(
        "compat_asyncpg_copy", records=written, columns=["id"] + [n for n, _ in COLUMNS])
    check(status == f"COPY {len(ROWS)}", f"copy_records_to_table returned {status!r}")
    await check_copied(conn, written, "copy_records_to_table")

    # CSV out of the query and of the whole table: the same text, and PostgreSQL's.
    out = io.BytesIO()
    status = await conn.copy_from_query(f"SELECT id, {NAMES} FROM {TABLE} WHERE id <= $1 "
                                        "ORDER BY id", len(ROWS), output=out, format="csv")
    check(status == f"COPY {len(ROWS)}", f"copy_from_query returned {status!r}")
    csv = out.getvalue().decode()
    lines = csv.splitlines()
    check(len(lines) == len(ROWS) and lines[1] == "2" + "," * len(COLUMNS)
          and lines[0].startswith("1,-12,123456,9007199254740993,3.25,-0.000123,12345.678,t,"
                                  "\"hello, world\",short,ab  ,1999-12-31,"
                                  "2000-01-01 00:00:00.000001,"),
          f"copy_from_query CSV: {csv!r}")
    out_table = io.BytesIO()
    status = await conn.copy_from_table("compat_asyncpg_copy", output=out_table, format="csv")
    check(status == f"COPY {len(ROWS)}", f"copy_from_table returned {status!r}")
    check(sorted(out_table.getvalue().decode().splitlines()) == sorted(lines),
          f"copy_from_table CSV differs from copy_from_query's: {out_table.getvalue()!r}")

    # The CSV back in with copy_to_table, into an emptied table, gives the same rows.
    await conn.execute("DELETE FROM compat_asyncpg_copy")
    status = await conn.copy_to_table("compat_asyncpg_copy", source=io.BytesIO(csv.encode()),
                                      format="csv")
    check(status == f"COPY {len(ROWS)}", f"copy_to_table returned {status!r}")
    await check_copied(conn, written, "copy_to_table of the CSV")
    await conn.execute("DROP TABLE compat_asyncpg_copy")


async def cursor_table(conn):
    """A table of 3000 rows (id, 2 * id) to read through cursors; the query over it."""
    await conn.execute("DROP TABLE IF EXISTS compat_asyncpg_cursor")
    await conn.execute("CREATE TABLE compat_asyncpg_cursor (id integer PRIMARY KEY, v bigint)")
    await conn.execute("INSERT INTO compat_asyncpg_cursor SELECT i, i * 2 "
                       "FROM generate_series(1, 3000) AS s(i)")
    return "SELECT id, v FROM compat_asyncpg_cursor WHERE id >= $1 ORDER BY id"


async def check_cursors(conn):
    """Cursors as asyncpg runs them, inside a transaction: a portal read prefetch rows per
    Execute; fetch(n) on a cursor object, and forward(n), which sends MOVE FORWARD n."""
    query = await cursor_table(conn)
    async with conn.transaction():
        seen = [tuple(r) async for r in conn.cursor(query, 1, prefetch=100)]
        check(len(seen) == 3000 and seen[0] == (1, 2) and seen[-1] == (3000, 6000)
              and seen == [(i, 2 * i) for i in range(1, 3001)],
              f"cursor iteration read {len(seen)} rows: {seen[:2]!r} ... {seen[-1:]!r}")

        cur = await conn.cursor(query, 11)
        got = [tuple(r) for r in await cur.fetch(10)]
        check(got == [(i, 2 * i) for i in range(11, 21)], f"cursor fetch(10) gave {got!r}")
        got = [tuple(r) for r in await cur.fetch(3)]
        check(got == [(21, 42), (22, 44), (23, 46)], f"second cursor fetch(3) gave {got!r}")
    await conn.execute("DROP TABLE compat_asyncpg_cursor")


async def pending_cursor_forward(conn):
    """Cursor.forward(n), which sends MOVE FORWARD n on the protocol portal."""
    query = await cursor_table(conn)
    async with conn.transaction():
        cur = await conn.cursor(query, 11)
        got = [tuple(r) for r in await cur.fetch(10)]
        check(got == [(i, 2 * i) for i in range(11, 21)], f"cursor fetch(10) gave {got!r}")
        moved = await cur.forward(5)
        check(moved == 5, f"cursor forward(5) moved {moved}")
        got = await cur.fetchrow()
        check(got is not None and tuple(got) == (26, 52),
              f"cursor fetchrow after forward(5) gave {got!r}")
        got = [tuple(r) for r in await cur.fetch(3)]
        check(got == [(27, 54), (28, 56), (29, 58)], f"second cursor fetch(3) gave {got!r}")
        moved = await cur.forward(5000)
        check(moved == 3000 - 29, f"cursor forward past the end moved {moved}")
        check(await cur.fetch(1) == [], "cursor fetch after the end gave rows")
    await conn.execute("DROP TABLE compat_asyncpg_cursor")


async def check_cancel(conn):
    """statement_timeout cancels a long query with 57014; a query cancelled by the client
    (asyncio.wait_for; asyncpg sends a CancelRequest) leaves the connection usable.
    Both fire after half a second, when the server is well past reading the table."""
    await conn.execute("DROP TABLE IF EXISTS compat_asyncpg_long")
    await conn.execute("CREATE TABLE compat_asyncpg_long (id integer PRIMARY KEY, v bigint)")
    await conn.execute("INSERT INTO compat_asyncpg_long SELECT i, i "
                       "FROM generate_series(1, 3000) AS s(i)")
    await conn.execute("SET statement_timeout = '500ms'")
    started = time.monotonic()
    try:
        await conn.fetchval(LONG_QUERY)
        raise CheckFailed(f"statement_timeout = 500ms: the long query finished after "
                          f"{time.monotonic() - started:.1f} s")
    except asyncpg.QueryCanceledError as e:
        check(e.sqlstate == "57014", f"statement_timeout gave SQLSTATE {e.sqlstate}")
    got = await conn.fetchval("SELECT 1")
    check(got == 1, f"SELECT 1 after the statement timeout gave {got!r}")
    await conn.execute("RESET statement_timeout")

    started = time.monotonic()
    try:
        await asyncio.wait_for(conn.execute(LONG_QUERY), timeout=0.5)
        raise CheckFailed(f"the long query finished after {time.monotonic() - started:.1f} s, "
                          "before asyncio.wait_for cancelled it")
    except asyncio.TimeoutError:
        pass
    # The next query waits until the server has answered the cancelled one.
    got = await asyncio.wait_for(conn.fetchval("SELECT $1::int + 1", 41), timeout=30)
    check(got == 42, f"query after the cancelled one gave {got!r}")
    check(not conn.is_in_transaction(), "in a transaction after the cancelled query")
    await conn.execute("DROP TABLE compat_asyncpg_long")


async def run_async(args):
    conn = await connect(args)
    try:
        await check_types(conn)
        await check_numeric_and_floats(conn)
        await check_numeric_parameters(conn)
        await check_numeric_nan(conn)
        await check_statements(conn)
        await check_array_parameters(conn)
        await check_array_columns(conn)
        await check_uuid_key(conn)
        await check_json(args, conn)
        await check_copy(conn)
        await check_cursors(conn)
        await check_cancel(conn)
        await check_json_parameters(args, conn)
        await check_interval(args, conn)
        if args.pending:
            await pending_interval_large_time(args, conn)
            await pending_cursor_forward(conn)
        await conn.execute(f"DROP TABLE {TABLE}")
        await conn.execute(f"DROP TABLE {JSON_TABLE}")
    finally:
        await conn.close(timeout=10)


def run(args):
    asyncio.run(run_async(args))


def main():
    return check_main(
        "asyncpg", run, asyncpg.PostgresError, lambda e: e.sqlstate,
        f"{asyncpg.__version__}: {len(COLUMNS)} types x {len(ROWS)} rows (binary), numeric, "
        "NaN/inf, fetchrow/fetchval, array parameters, array columns, uuid key, json/jsonb (str and codec), "
        f"interval ({len(INTERVALS)} values, timedelta and tuple codec, ORDER BY, d > $1), RETURNING, ON CONFLICT, rollback, 23505, "
        "COPY (records, CSV in and out), cursors (prefetch, fetch), "
        "statement_timeout, CancelRequest")


if __name__ == "__main__":
    sys.exit(main())
