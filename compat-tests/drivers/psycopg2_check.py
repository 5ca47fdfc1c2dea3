#!/usr/bin/env python3
"""Driver check with psycopg2 (simple query protocol, client-side parameter interpolation).

psycopg2 writes every parameter into the SQL text as a literal (`'1999-12-31'::date`,
`'\\x00ff'::bytea`, `'NaN'::float`, and with register_uuid() `'...'::uuid`) and runs
statements in a transaction it opens with BEGIN. The check writes a row of every supported
type that way and reads it back, moves data with copy_from / copy_expert (text and CSV, in
and out), reads a table through a named (server-side) cursor in pieces, as psycopg2 does
with DECLARE and FETCH FORWARD, finds a row by a uuid primary key, and checks RETURNING,
rollback and a 23505. The rows are psycopg_check.py's.

json and jsonb columns: Python values written through psycopg2.extras.Json (a quoted
literal) come back as dicts and lists (psycopg2's default json/jsonb typecasters),
JSON null apart from SQL NULL; psycopg_check.py's JSON texts come back as PostgreSQL
writes them (jsonb canonical, json verbatim) and load with Decimal numbers through
register_default_jsonb; @> with a Json parameter, ->, ->>, #>>, ?, jsonb_build_object
and || in an UPDATE ... RETURNING.

Usage: psycopg2_check.py [--host 127.0.0.1] [--port 5432]
Prints one line `PASS psycopg2 ...` or `FAIL psycopg2: ...`; exit status 0 on PASS.
"""

import io
import json
import sys
import uuid
from decimal import Decimal
from functools import partial

import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2.extras import Json

from psycopg_check import (COLUMNS, JSON_NULL_ID, JSON_NUMBERS, JSON_TEXTS, JSON_VALUES, ROWS,
                           SQL_NULL_ID, CheckFailed, check, check_main)

TABLE = "compat_psycopg2"


def normalized(value):
    """psycopg2 reads bytea as a memoryview."""
    return bytes(value) if isinstance(value, memoryview) else value


def run(args):
    # uuid.UUID parameters as '...'::uuid literals, and uuid results as uuid.UUID.
    psycopg2.extras.register_uuid()
    conn = psycopg2.connect(host=args.host, port=args.port, user="postgres", dbname="postgres",
                            connect_timeout=10)
    names = ", ".join(name for name, _ in COLUMNS)
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cols = ", ".join(f"{name} {ty}" for name, ty in COLUMNS)
    cur.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, {cols})")
    placeholders = ", ".join(["%s"] * (len(COLUMNS) + 1))
    for row_id, values in ROWS:
        cur.execute(f"INSERT INTO {TABLE} (id, {names}) VALUES ({placeholders})", (row_id, *values))
    conn.commit()

    cur.execute(f"SELECT id, {names} FROM {TABLE} ORDER BY id")
    got = [tuple(normalized(v) for v in row) for row in cur.fetchall()]
    want = [(row_id, *values) for row_id, values in ROWS]
    check(got == want, f"rows read back as {got!r}")
    cur.execute(f"SELECT id FROM {TABLE} WHERE c_text = %s AND c_bytea = %s",
                ("hello, world", b"\xde\xad\xbe\xef"))
    check(cur.fetchall() == [(1,)], "interpolated WHERE on text and bytea did not find row 1")

    # COPY: copy_expert out as CSV, into a second table, and out again unchanged;
    # copy_from with its defaults (tab, \N), and a bad line failing the whole load.
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}_copy")
    cur.execute(f"CREATE TABLE {TABLE}_copy (id integer PRIMARY KEY, {cols})")
    out = io.StringIO()
    cur.copy_expert(f"COPY (SELECT * FROM {TABLE} ORDER BY id) TO STDOUT WITH CSV", out)
    cur.copy_expert(f"COPY {TABLE}_copy FROM STDIN WITH CSV", io.StringIO(out.getvalue()))
    back = io.StringIO()
    cur.copy_expert(f"COPY (SELECT * FROM {TABLE}_copy ORDER BY id) TO STDOUT WITH CSV", back)
    check(back.getvalue() == out.getvalue(), f"CSV round trip changed the rows: {back.getvalue()!r}")
    cur.copy_from(io.StringIO("10\tten\n11\t\\N\n"), f"{TABLE}_copy", columns=("id", "c_text"))
    conn.commit()
    cur.execute(f"SELECT id, c_text FROM {TABLE}_copy WHERE id >= 10 ORDER BY id")
    check(cur.fetchall() == [(10, "ten"), (11, None)], "copy_from rows wrong")
    try:
        cur.copy_from(io.StringIO("12\ttwelve\nxiii\tbad\n"), f"{TABLE}_copy", columns=("id", "c_text"))
        raise CheckFailed("copy_from of a malformed line succeeded")
    except psycopg2.errors.InvalidTextRepresentation:
        conn.rollback()
    cur.execute(f"SELECT count(*) FROM {TABLE}_copy WHERE id = 12")
    check(cur.fetchone()[0] == 0, "a failed copy_from left a row")

    # A named cursor: DECLARE, then FETCH FORWARD itersize at a time.
    cur.execute(f"INSERT INTO {TABLE}_copy (id, c_integer) "
                "SELECT i, i * 2 FROM generate_series(100, 1099) AS s(i)")
    conn.commit()
    named = conn.cursor(name="compat_named")
    named.itersize = 64
    named.execute(f"SELECT id, c_integer FROM {TABLE}_copy WHERE id >= %s ORDER BY id", (100,))
    seen = [row for row in named]
    check(len(seen) == 1000 and seen[0] == (100, 200) and seen[-1] == (1099, 2198),
          f"named cursor read {len(seen)} rows: {seen[:2]!r} ... {seen[-1:]!r}")
    named.close()
    conn.commit()

    # A uuid primary key found by an interpolated uuid.UUID.
    cur.execute(f"DROP TABLE IF EXISTS {TABLE}_uuid")
    cur.execute(f"CREATE TABLE {TABLE}_uuid (id uuid PRIMARY KEY, v text)")
    keys = {uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"): "one",
            uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"): "two"}
    cur.executemany(f"INSERT INTO {TABLE}_uuid (id, v) VALUES (%s, %s)", list(keys.items()))
    conn.commit()
    for key, v in keys.items():
        cur.execute(f"SELECT id, v FROM {TABLE}_uuid WHERE id = %s", (key,))
        got = cur.fetchall()
        check(got == [(key, v)], f"WHERE id = %s with {key} gave {got!r}")

    # RETURNING, rollback, duplicate key.
    cur.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s) RETURNING id, c_text", (50, "r"))
    check(cur.fetchall() == [(50, "r")], "INSERT ... RETURNING gave the wrong row")
    conn.rollback()
    cur.execute(f"SELECT count(*) FROM {TABLE} WHERE id = 50")
    check(cur.fetchone()[0] == 0, "rolled-back insert visible")
    try:
        cur.execute(f"INSERT INTO {TABLE} (id) VALUES (%s)", (1,))
        raise CheckFailed("duplicate key insert succeeded")
    except psycopg2.errors.UniqueViolation:
        conn.rollback()
    cur.execute(f"DROP TABLE {TABLE}")
    cur.execute(f"DROP TABLE {TABLE}_copy")
    cur.execute(f"DROP TABLE {TABLE}_uuid")
    conn.commit()
    check_json(conn)
    conn.close()


def check_json(conn):
    """json and jsonb columns through psycopg2: Json(value) parameters (literals in the
    SQL text) read back as the same Python values; the JSON texts as PostgreSQL writes
    them and, through register_default_jsonb / register_default_json with
    parse_float=Decimal, with their numbers exact; @> with a Json parameter, ->, ->>,
    #>>, ?, jsonb_build_object, ||."""
    table = f"{TABLE}_json"
    cur = conn.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb, doc json)")
    for row_id, value in JSON_VALUES:
        params = (row_id, None, None) if row_id == SQL_NULL_ID else (row_id, Json(value), Json(value))
        cur.execute(f"INSERT INTO {table} (id, data, doc) VALUES (%s, %s, %s)", params)
    for row_id, text, _ in JSON_TEXTS:
        cur.execute(f"INSERT INTO {table} (id, data, doc) VALUES (%s, %s, %s)", (row_id, text, text))
    conn.commit()

    cur.execute(f"SELECT id, data, doc FROM {table} WHERE id < %s ORDER BY id", (10,))
    got = cur.fetchall()
    want = [(row_id, value, value) for row_id, value in JSON_VALUES]
    check(got == want, f"Json values read back as {got!r}")
    check([type(r[1]) for r in got[:2]] == [dict, dict] and type(got[4][1]) is list,
          f"jsonb did not load as dict/list: {got[:5]!r}")
    cur.execute(f"SELECT id, data IS NULL, doc IS NULL, jsonb_typeof(data), data = 'null'::jsonb "
                f"FROM {table} WHERE id IN (%s, %s) ORDER BY id", (JSON_NULL_ID, SQL_NULL_ID))
    got = cur.fetchall()
    check(got == [(JSON_NULL_ID, False, False, "null", True), (SQL_NULL_ID, True, True, None, None)],
          f"JSON null and SQL NULL: {got!r}")

    # The JSON texts, and their values with Decimal numbers (on this cursor only).
    dec = conn.cursor()
    loads = partial(json.loads, parse_float=Decimal)
    psycopg2.extras.register_default_jsonb(dec, loads=loads)
    psycopg2.extras.register_default_json(dec, loads=loads)
    dec.execute(f"SELECT id, data, doc, data::text, doc::text FROM {table} WHERE id >= %s "
                "ORDER BY id", (10,))
    rows = dec.fetchall()
    check([r[0] for r in rows] == [t[0] for t in JSON_TEXTS], f"JSON text rows: ids {[r[0] for r in rows]}")
    for (row_id, text, canonical), (_, data, doc, data_text, doc_text) in zip(JSON_TEXTS, rows):
        check(data_text == canonical, f"jsonb {text!r} read back as text {data_text!r}, want {canonical!r}")
        check(doc_text == text, f"json {text!r} read back as text {doc_text!r}")
        check(data == json.loads(canonical, parse_float=Decimal)
              and doc == json.loads(text, parse_float=Decimal),
              f"JSON text {text!r} loaded as {data!r} (jsonb), {doc!r} (json)")
    numbers = [str(n) for n in rows[0][1]["n"]]
    check(numbers == JSON_NUMBERS, f"jsonb numbers loaded with Decimal as {numbers}")

    for probe, ids in (({"tags": ["b"]}, [1, 13]), ({"dims": {"w": 1.5}}, [1, 13]),
                       ({}, [1, 2, 3, 4, 10, 11, 13, 16, 18]), ([None], [9, 12])):
        cur.execute(f"SELECT id FROM {table} WHERE data @> %s ORDER BY id", (Json(probe),))
        got = [r[0] for r in cur.fetchall()]
        check(got == ids, f"WHERE data @> %s with Json({probe!r}) found {got}, want {ids}")
    cur.execute(f"SELECT data ->> 'name', data -> 'dims' -> 'h', data #>> '{{dims,h,1,deep,0}}', "
                f"data ? 'tags', doc ->> 'name' FROM {table} WHERE id = %s", (1,))
    got = cur.fetchone()
    check(got == ("widget", [2, {"deep": [True, False, None]}], "true", True, "widget"),
          f"->>, ->, #>>, ? on row 1 gave {got!r}")
    cur.execute(f"SELECT data ->> 's', data ->> %s FROM {table} WHERE id = %s", ("é", 2))
    got = cur.fetchone()
    check(got == (JSON_VALUES[1][1]["s"], "ключ"), f"->> 's', ->> %s on row 2 gave {got!r}")
    cur.execute("SELECT jsonb_build_object('id', id, 'name', data ->> 'name', 'tags', data -> 'tags', "
                f"'doc', %s::jsonb, 'none', NULL) FROM {table} WHERE id = %s", (Json({"k": [1.5]}), 1))
    got = cur.fetchone()[0]
    want = {"id": 1, "name": "widget", "tags": ["a", "b"], "doc": {"k": [1.5]}, "none": None}
    check(got == want, f"jsonb_build_object gave {got!r}")
    cur.execute(f"UPDATE {table} SET data = data || %s WHERE id = %s RETURNING data",
                (Json({"added": [1, "x"], "é": None}), 4))
    got = cur.fetchall()
    check(got == [({"added": [1, "x"], "é": None},)], f"UPDATE SET data = data || %s gave {got!r}")
    conn.rollback()
    cur.execute(f"DROP TABLE {table}")
    conn.commit()


def main():
    return check_main(
        "psycopg2", run, psycopg2.Error, lambda e: e.pgcode,
        f"{psycopg2.__version__.split()[0]}: {len(COLUMNS)} types x {len(ROWS)} rows, "
        "copy_from/copy_expert, named cursor, uuid key, RETURNING, rollback, 23505, "
        "json/jsonb (Json, texts, @>, ->>, jsonb_build_object)")


if __name__ == "__main__":
    sys.exit(main())
