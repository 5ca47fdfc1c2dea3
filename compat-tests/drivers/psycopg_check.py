#!/usr/bin/env python3
"""Driver check with psycopg 3 (extended query protocol, server-side parameter binding).

Creates a table with a column of every supported type, inserts rows through bound
parameters, reads every value back (text and binary result formats) and compares it
with what was written, NULLs included. Then checks that a rolled-back transaction
leaves nothing, a committed one persists, a duplicate key raises SQLSTATE 23505,
RETURNING gives back the rows written (in a pipeline, as executemany sends it), and
COPY carries every type out and in, text and binary, failing whole on a bad line,
named (server-side) cursors read a query in pieces, and a uuid primary key is found
by a bound uuid.UUID (text and binary) and filled in by DEFAULT gen_random_uuid().
json and jsonb columns: Python values written through the Jsonb / Json wrappers (text
and binary parameters) load back as dicts and lists with text and binary results;
JSON texts come back as PostgreSQL writes them (jsonb canonical: keys sorted and
unique, numbers as numeric prints them; json verbatim) and load with Decimal numbers;
JSON null is not SQL NULL; @> with a bound Jsonb, ->, ->>, #>>, ?, ||,
jsonb_build_object, and malformed JSON (22P02) and \\u0000 in jsonb (22P05); JSON
text as a plain str (sent untyped: the server infers jsonb) in %s::jsonb, data @> %s
and data || %s. interval columns: datetime.timedelta values through text (%t) and
binary (%b, and %s, which psycopg sends in binary) parameters, read back as timedelta
with text and binary results and as PostgreSQL's text (d::text); months (which
timedelta cannot hold) written as text and checked as text; ORDER BY d by length with
a month as 30 days, WHERE d = '30 days' finding '1 mon', WHERE d = / > a timedelta.
Rows read by column name (dict_row) under PostgreSQL's column names, AT TIME ZONE as a
naive datetime, and a day added across a change to summer time.

Cases ShardForge does not pass yet run with --pending (and with `run --postgres`):
an interval with a time part past 2562047 hours (PostgreSQL's range goes to
2562047788:00:54.775807, the largest 8-byte microsecond count).

Usage: psycopg_check.py [--host 127.0.0.1] [--port 5432] [--pending]
Prints one line `PASS psycopg ...` or `FAIL psycopg: ...`; exit status 0 on PASS.
"""

import argparse
import datetime as dt
import json
import sys
import threading
import time
import uuid
from decimal import Decimal
from functools import partial

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb, set_json_loads

TABLE = "compat_psycopg"

COLUMNS = [
    ("c_smallint", "smallint"),
    ("c_integer", "integer"),
    ("c_bigint", "bigint"),
    ("c_real", "real"),
    ("c_double", "double precision"),
    ("c_numeric", "numeric(12,3)"),
    ("c_boolean", "boolean"),
    ("c_text", "text"),
    ("c_varchar", "varchar(10)"),
    ("c_char", "char(4)"),
    ("c_date", "date"),
    ("c_timestamp", "timestamp"),
    ("c_timestamptz", "timestamptz"),
    ("c_bytea", "bytea"),
    ("c_uuid", "uuid"),
]

UTC = dt.timezone.utc
# (id, values in COLUMNS order); every value is exactly representable in its column,
# char(4) values are written already padded, as PostgreSQL returns them.
ROWS = [
    (1, (-12, 123456, 9007199254740993, 3.25, -0.000123, Decimal("12345.678"), True,
         "hello, world", "short", "ab  ", dt.date(1999, 12, 31),
         dt.datetime(2000, 1, 1, 0, 0, 0, 1),
         dt.datetime(2020, 2, 29, 12, 0, tzinfo=UTC), b"\xde\xad\xbe\xef",
         uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))),
    (2, (None,) * len(COLUMNS)),
    (3, (-32768, -2147483648, -9223372036854775808, -0.15625, 1e300,
         Decimal("-999999999.999"), False, "", "", "    ", dt.date(1, 1, 1),
         dt.datetime(1970, 1, 1), dt.datetime(2024, 7, 1, 6, 59, 59, 500000, tzinfo=UTC),
         b"", uuid.UUID("00000000-0000-0000-0000-000000000000"))),
    (4, (32767, 2147483647, 9223372036854775807, 16777216.0, 0.1, Decimal("0.001"), True,
         "unicodé ☃ 'quotes' \"double\" \\back", "ten chars!", "abcd",
         dt.date(2024, 2, 29), dt.datetime(2038, 1, 19, 3, 14, 8),
         dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
         bytes(range(256)), uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff"))),
]

# JSON documents as Python values (what json.loads gives back), written through
# Jsonb / Json: nested objects and arrays, non-ASCII text (é, an emoji, a non-ASCII
# key), quotes, backslashes and control characters (json.dumps sends them, and the
# non-ASCII, as escapes), an integer past 64 bits, an empty object and array, a bare
# string, and JSON null (JSON_NULL_ID) next to an SQL NULL (SQL_NULL_ID).
JSON_NULL_ID, SQL_NULL_ID = 6, 7
JSON_VALUES = [
    (1, {"name": "widget", "tags": ["a", "b"],
         "dims": {"w": 1.5, "h": [2, {"deep": [True, False, None]}]}}),
    (2, {"s": "café 😀 \"quoted\" back\\slash\nnewline\ttab /", "é": "ключ", "😀": []}),
    (3, {"big": 12345678901234567890, "neg": -7, "half": 1.5, "zero": 0}),
    (4, {}),
    (5, []),
    (JSON_NULL_ID, None),
    (SQL_NULL_ID, None),
    (8, "just a string"),
    (9, [1, "two", [3], {"four": 4.25}, True, None]),
]

# JSON texts written as text: (id, the text, the text PostgreSQL's jsonb gives back).
# json keeps the text as written; jsonb writes numbers as numeric prints them (1.50
# keeps its zero, 1e3 is 1000, 1.0e-3 is 0.0010), sorts keys shorter first (in bytes:
# "é" is two) then bytewise, keeps the last of duplicate keys, decodes \u escapes
# and writes its own spacing.
JSON_TEXTS = [
    (10, '{"n": [1.50, 12345678901234567890.123, 1e3, -0, 0.1E1, 1.0e-3]}',
     '{"n": [1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]}'),
    (11, '{"k": 1, "bb": {"y": 1, "x": 2}, "é": "e", "b": true, "a": [], "k": 2}',
     '{"a": [], "b": true, "k": 2, "bb": {"x": 2, "y": 1}, "é": "e"}'),
    (12, r' [ "\u00e9\ud83d\ude00", "\"\\\n\u001f\/" ,{ } ,[ ], null ] ',
     r'["é😀", "\"\\\n\u001f/", {}, [], null]'),
    (13, '{"name":"widget","tags":["a","b"],"dims":{"w":1.5,"h":[2,{"deep":[true,false,null]}]}}',
     '{"dims": {"h": [2, {"deep": [true, false, null]}], "w": 1.5}, "name": "widget", '
     '"tags": ["a", "b"]}'),
    (14, '"café 😀 ключ"', '"café 😀 ключ"'),
    (15, 'null', 'null'),
    (16, '{}', '{}'),
    (17, '[ ]', '[]'),
    (18, '{\n  "x" : [ 1 ,\t2 ],\r\n  "s": "line\\nbreak" }', '{"s": "line\\nbreak", "x": [1, 2]}'),
]
# Row 10's numbers loaded with parse_float=Decimal, as str().
JSON_NUMBERS = ["1.50", "12345678901234567890.123", "1000", "0", "1", "0.0010"]

# Intervals: (id, the text PostgreSQL writes, the value as a timedelta). Rows with a
# timedelta are written through parameters (a timedelta's time part is 0 to 24 hours
# and it has no months, so its text is one of these); rows with None (months, a time
# part of 720 hours, a negative time part) are written as their text in the SQL and
# checked as text.
INTERVALS = [
    (1, "1 day 02:03:04.000005", dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5)),
    (2, "-3 days +00:00:01", dt.timedelta(days=-3, seconds=1)),
    (3, "00:00:00", dt.timedelta(0)),
    (4, "00:00:00.000001", dt.timedelta(microseconds=1)),
    (5, "40 days", dt.timedelta(days=40)),
    (6, "1 year 2 mons", None),
    (7, "10000 days", dt.timedelta(days=10000)),
    (8, "29 days", dt.timedelta(days=29)),
    (9, "1 mon", None),
    (10, "31 days", dt.timedelta(days=31)),
    (11, "720:00:00", None),
    (12, "-10000 days +23:59:59.999999", dt.timedelta(days=-10000, seconds=86399, microseconds=999999)),
    (13, "-00:00:00.000001", None),
]
# ORDER BY d, id: by length, a month as 30 days, a year as 12 months ('1 mon' and
# '720:00:00' are both 30 days, after '29 days' and before '31 days').
INTERVAL_ORDER = [12, 2, 13, 3, 4, 1, 8, 9, 11, 10, 5, 6, 7]


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def connect(args, autocommit=False):
    return psycopg.connect(host=args.host, port=args.port, user="postgres",
                           dbname="postgres", autocommit=autocommit, connect_timeout=10)


def count(conn, where):
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}")
        return cur.fetchone()[0]


def run(args):
    names = ", ".join(name for name, _ in COLUMNS)
    with connect(args, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cols = ", ".join(f"{name} {ty}" for name, ty in COLUMNS)
        conn.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, {cols})")

        placeholders = ", ".join(["%s"] * (len(COLUMNS) + 1))
        with conn.cursor() as cur:
            for row_id, values in ROWS:
                cur.execute(f"INSERT INTO {TABLE} (id, {names}) VALUES ({placeholders})",
                            (row_id, *values))
                check(cur.rowcount == 1, f"insert of row {row_id} reported {cur.rowcount} rows")

        # Read back with text and binary result formats, one row at a time by bound id.
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                for row_id, values in ROWS:
                    cur.execute(f"SELECT {names} FROM {TABLE} WHERE id = %s", (row_id,))
                    got = cur.fetchall()
                    check(len(got) == 1, f"row {row_id}: expected 1 row, got {len(got)}")
                    for (name, _), want, have in zip(COLUMNS, values, got[0]):
                        check(want == have and (want is None) == (have is None),
                              f"row {row_id} {name} (binary={binary}): wrote {want!r}, read {have!r}")

        # A bound parameter in WHERE over several types at once.
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {TABLE} WHERE c_text = %s AND c_numeric = %s AND c_date = %s",
                        ("hello, world", Decimal("12345.678"), dt.date(1999, 12, 31)))
            check(cur.fetchall() == [(1,)], "bound WHERE on text/numeric/date did not find row 1")
            cur.execute(f"SELECT id FROM {TABLE} WHERE c_integer IS NULL")
            check(cur.fetchall() == [(2,)], "IS NULL did not find exactly row 2")

    # Rolled-back transaction leaves nothing; committed one persists.
    with connect(args) as conn, connect(args, autocommit=True) as other:
        conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", (100, "rolled back"))
        check(count(conn, "id = 100") == 1, "transaction does not see its own insert")
        check(count(other, "id = 100") == 0, "uncommitted insert visible to another session")
        conn.rollback()
        check(count(conn, "id = 100") == 0, "rolled-back insert still visible")
        conn.rollback()

        with conn.transaction():
            conn.execute(f"INSERT INTO {TABLE} (id, c_text) VALUES (%s, %s)", (101, "committed"))
            conn.execute(f"UPDATE {TABLE} SET c_integer = %s WHERE id = %s", (7, 101))
        conn.commit()
    with connect(args, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute(f"SELECT c_text, c_integer FROM {TABLE} WHERE id = %s", (101,))
            check(cur.fetchall() == [("committed", 7)], "committed row missing in a new session")
        check(count(conn, "id = 100") == 0, "rolled-back row visible in a new session")

        # Duplicate key: SQLSTATE 23505, and the session stays usable.
        try:
            conn.execute(f"INSERT INTO {TABLE} (id) VALUES (%s)", (1,))
            raise CheckFailed("duplicate key insert succeeded")
        except errors.UniqueViolation as e:
            check(e.sqlstate == "23505", f"duplicate key gave SQLSTATE {e.sqlstate}")
        check(count(conn, "true") == len(ROWS) + 1, "row count wrong after duplicate key error")

        check_copy(conn, names)
        check_named_cursors(conn, names)
        conn.execute(f"DROP TABLE {TABLE}")
        check_uuid_key(conn)
        check_json(conn)
        check_json_text_parameters(conn)
        check_interval(conn)
        check_array_columns(conn)
        check_unconstrained_numeric(conn)
        check_wall_clock_parameters(conn)
        if args.pending:
            pending_interval_large_time(conn)

        # SET of a reported variable sends ParameterStatus; timestamptz
        # values come back in the session time zone.
        initial_zone = conn.info.parameter_status("TimeZone")
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        check(conn.info.parameter_status("TimeZone") == "Asia/Tokyo",
              "no ParameterStatus for SET TimeZone")
        at = conn.execute("SELECT '2024-01-01 00:00:00+00'::timestamptz").fetchone()[0]
        check(at.utcoffset().total_seconds() == 9 * 3600 and at.hour == 9,
              f"timestamptz in Asia/Tokyo came back as {at!r}")
        # Rows read by column name (dict_row) carry PostgreSQL's names; AT
        # TIME ZONE gives a naive wall-clock datetime; an interval literal
        # in PostgreSQL's output form reads; a day added across the change
        # to summer time is a calendar day.
        conn.execute("SET TimeZone = 'America/New_York'")
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT %s::varchar(3), ceil(%s), "
                        "'2024-01-01 00:00:00+00'::timestamptz AT TIME ZONE 'Asia/Tokyo', "
                        "'2024-03-09 22:30:00-05'::timestamptz + interval '1 day', "
                        "interval '1 day 02:00'", ("abcd", Decimal("1.5")))
            got = cur.fetchone()
            want = {"varchar": "abc", "ceil": Decimal("2"),
                    "timezone": dt.datetime(2024, 1, 1, 9, 0),
                    "?column?": dt.datetime(2024, 3, 11, 2, 30, tzinfo=dt.timezone.utc),
                    "interval": dt.timedelta(days=1, hours=2)}
            check(got == want, f"named row {got!r}, want {want!r}")
        conn.execute("RESET TimeZone")
        check(conn.info.parameter_status("TimeZone") == initial_zone,
              "no ParameterStatus for RESET")

        # Parameters with nothing around them to type them: psycopg declares
        # their types in Parse (int2/int8 for ints, float8, text...), and the
        # values come back as the same Python types, in text and binary.
        sent = (42, 2**40, 2.5, "x", Decimal("1.25"), True, dt.date(2024, 2, 29))
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                cur.execute("SELECT %s, %s, %s, %s, %s, %s, %s", sent)
                got = cur.fetchone()
                check(got == sent and [type(v) for v in got] == [type(v) for v in sent],
                      f"SELECT of bare parameters (binary={binary}) gave {got!r}, sent {sent!r}")

        # A numeric zero keeps its scale in both formats (the binary
        # encoder once sent 0 for 0.00).
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                cur.execute("SELECT 0::numeric(10,2), -0.0::numeric(5,1), 0.5::numeric(4,3)")
                got = [str(v) for v in cur.fetchone()]
                check(got == ["0.00", "0.0", "0.500"], f"numeric zeros (binary={binary}): {got}")

        # RETURNING as ORMs use it: one INSERT per row in a pipeline
        # (executemany with returning=True), the keys and defaults back;
        # UPDATE's new values and DELETE's old ones, in text and binary.
        conn.execute("DROP TABLE IF EXISTS compat_returning")
        conn.execute("CREATE TABLE compat_returning (id bigint PRIMARY KEY, "
                     "name varchar(20) NOT NULL, qty integer DEFAULT 1, "
                     "price numeric(8,2) DEFAULT 9.99)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO compat_returning (id, name) VALUES (%s, %s) "
                            "RETURNING id, qty, price",
                            [(i, f"n{i}") for i in range(1, 6)], returning=True)
            got = [cur.fetchone()]
            while cur.nextset():
                got.append(cur.fetchone())
            check(got == [(i, 1, Decimal("9.99")) for i in range(1, 6)],
                  f"INSERT ... RETURNING in a pipeline gave {got!r}")
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                cur.execute("UPDATE compat_returning SET qty = qty + %s WHERE id <= %s "
                            "RETURNING id, qty", (10, 2))
                got = sorted(cur.fetchall())
                want = [(1, 11 + 10 * binary), (2, 11 + 10 * binary)]
                check(got == want and cur.rowcount == 2,
                      f"UPDATE ... RETURNING (binary={binary}) gave {got!r}")
        got = sorted(conn.execute("DELETE FROM compat_returning WHERE id > %s RETURNING name, qty",
                                  (3,)).fetchall())
        check(got == [("n4", 1), ("n5", 1)], f"DELETE ... RETURNING gave {got!r}")
        conn.execute("DROP TABLE compat_returning")
        check_description(conn)
        check_cancel(conn)


def check_description(conn):
    """cursor.description's sizes come from RowDescription: the type's length (typlen)
    and, for char(n), its n (the type modifier)."""
    conn.execute("CREATE TABLE compat_description (id int PRIMARY KEY, code char(3), "
                 "n bigint, note text, at timestamp, flag boolean)")
    cur = conn.execute("SELECT id, code, n, note, at, flag FROM compat_description")
    got = [(d.name, d.internal_size, d.display_size) for d in cur.description]
    want = [("id", 4, None), ("code", None, 3), ("n", 8, None), ("note", None, None),
            ("at", 8, None), ("flag", 1, None)]
    check(got == want, f"cursor.description gave {got!r}")
    conn.execute("DROP TABLE compat_description")


# The type names psycopg's COPY adapters know the columns by.
COPY_TYPES = ["int2", "int4", "int8", "float4", "float8", "numeric", "bool", "text", "varchar",
              "bpchar", "date", "timestamp", "timestamptz", "bytea", "uuid"]


def check_copy(conn, names):
    """COPY as psycopg's cursor.copy() runs it: every type out and back in, text and
    binary; a bad line fails the whole load (22P02); an exception in the block sends
    CopyFail; either way nothing of the load stays."""
    conn.execute("DROP TABLE IF EXISTS compat_copy")
    cols = ", ".join(f"{name} {ty}" for name, ty in COLUMNS)
    conn.execute(f"CREATE TABLE compat_copy (id integer PRIMARY KEY, {cols})")
    written = [(row_id, *values) for row_id, values in ROWS]
    for fmt in ("TEXT", "BINARY"):
        with conn.cursor() as cur:
            copied = []
            with cur.copy(f"COPY (SELECT id, {names} FROM {TABLE} WHERE id <= {len(ROWS)} "
                          f"ORDER BY id) TO STDOUT (FORMAT {fmt})") as copy:
                copy.set_types(["int4"] + COPY_TYPES)
                copied = list(copy.rows())
            check(copied == written, f"COPY TO ({fmt}) gave {copied!r}")
            conn.execute("DELETE FROM compat_copy")
            with cur.copy(f"COPY compat_copy (id, {names}) FROM STDIN (FORMAT {fmt})") as copy:
                if fmt == "BINARY":
                    # (psycopg has no binary dumper for bpchar; its bytes are text's.)
                    copy.set_types(["int4"] + [t if t != "bpchar" else "text" for t in COPY_TYPES])
                for row in written:
                    copy.write_row(row)
            check(cur.rowcount == len(ROWS), f"COPY FROM ({fmt}) reported {cur.rowcount} rows")
            cur.execute(f"SELECT id, {names} FROM compat_copy ORDER BY id")
            back = cur.fetchall()
            check(back == written, f"COPY FROM ({fmt}) then SELECT gave {back!r}")

    conn.execute("DELETE FROM compat_copy")
    with conn.cursor() as cur:
        try:
            with cur.copy("COPY compat_copy (id, c_integer) FROM STDIN (FORMAT csv)") as copy:
                copy.write("1,10\n2,20\n3,thirty\n")
            raise CheckFailed("COPY of a malformed line succeeded")
        except errors.InvalidTextRepresentation as e:
            check("line 3" in str(e), f"COPY error does not name line 3: {e}")
        # psycopg sends CopyFail and raises the application's own exception.
        try:
            with cur.copy("COPY compat_copy (id) FROM STDIN") as copy:
                copy.write_row((1,))
                raise ValueError("the application gives up")
        except ValueError:
            pass
        cur.execute("SELECT count(*) FROM compat_copy")
        check(cur.fetchone()[0] == 0, "a failed COPY left rows behind")
    conn.execute("DROP TABLE compat_copy")


def check_uuid_key(conn):
    """A uuid primary key: a row found by a bound uuid.UUID, sent in text (%t) and
    binary (%b), read in both formats; an INSERT leaving the key to DEFAULT
    gen_random_uuid() gets a version 4 UUID back from RETURNING."""
    conn.execute("DROP TABLE IF EXISTS compat_psycopg_uuid")
    conn.execute("CREATE TABLE compat_psycopg_uuid "
                 "(id uuid PRIMARY KEY DEFAULT gen_random_uuid(), v text)")
    keys = {uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"): "one",
            uuid.UUID("f47ac10b-58cc-4372-a567-0e02b2c3d479"): "two"}
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO compat_psycopg_uuid (id, v) VALUES (%s, %s)", list(keys.items()))
    for binary in (False, True):
        for mark in ("%t", "%b"):
            with conn.cursor(binary=binary) as cur:
                for key, v in keys.items():
                    cur.execute(f"SELECT id, v FROM compat_psycopg_uuid WHERE id = {mark}", (key,))
                    got = cur.fetchall()
                    check(got == [(key, v)],
                          f"WHERE id = {mark} with {key} (binary={binary}) gave {got!r}")
    new_id = conn.execute("INSERT INTO compat_psycopg_uuid (v) VALUES (%s) RETURNING id",
                          ("generated",)).fetchone()[0]
    check(isinstance(new_id, uuid.UUID) and new_id.version == 4
          and new_id.variant == uuid.RFC_4122 and new_id not in keys,
          f"DEFAULT gen_random_uuid() RETURNING id gave {new_id!r}")
    got = conn.execute("SELECT v FROM compat_psycopg_uuid WHERE id = %s", (new_id,)).fetchall()
    check(got == [("generated",)], f"the generated key {new_id} found {got!r}")
    conn.execute("DROP TABLE compat_psycopg_uuid")


def check_json(conn):
    """json and jsonb columns as applications use them with psycopg: Python values
    through Jsonb / Json (sent in text, %t, and binary, %b) read back as the same dicts
    and lists with text and binary results; JSON null and SQL NULL apart; JSON texts
    read back as PostgreSQL writes them, and loaded with Decimal numbers; @> with a
    bound Jsonb (text and binary), ->, ->>, #>>, ?, || in an UPDATE ... RETURNING,
    jsonb_build_object; whole rows as JSON (json_agg(t), to_jsonb(t)); malformed JSON
    and \\u0000 in jsonb refused."""
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            rows = "(SELECT 1 AS id, 'a' AS name UNION ALL SELECT 2, 'b') t"
            want = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
            got = cur.execute(f"SELECT json_agg(t ORDER BY id) FROM {rows}").fetchone()[0]
            check(got == want, f"json_agg(t) (binary={binary}) gave {got!r}")
            got = [r[0] for r in cur.execute(f"SELECT to_jsonb(t) FROM {rows} ORDER BY id")]
            check(got == want, f"to_jsonb(t) (binary={binary}) gave {got!r}")
    table = "compat_psycopg_json"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb, doc json)")
    with conn.cursor() as cur:
        for row_id, value in JSON_VALUES:
            mark = "%t" if row_id % 2 else "%b"
            params = ((row_id, None, None) if row_id == SQL_NULL_ID
                      else (row_id, Jsonb(value), Json(value)))
            cur.execute(f"INSERT INTO {table} (id, data, doc) VALUES (%s, {mark}, {mark})", params)
        for row_id, text, _ in JSON_TEXTS:
            cur.execute(f"INSERT INTO {table} (id, data, doc) VALUES (%s, %s, %s)",
                        (row_id, text, text))

    want = [(row_id, value, value) for row_id, value in JSON_VALUES]
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"SELECT id, data, doc FROM {table} WHERE id < %s ORDER BY id", (10,))
            got = cur.fetchall()
            check(got == want, f"Jsonb/Json values (binary={binary}) read back as {got!r}")
            check([type(r[1]) for r in got[:2]] == [dict, dict] and type(got[4][1]) is list,
                  f"jsonb (binary={binary}) did not load as dict/list: {got[:5]!r}")

            # JSON null is a value; SQL NULL is none.
            cur.execute(f"SELECT id, data IS NULL, doc IS NULL, jsonb_typeof(data), "
                        f"data = 'null'::jsonb FROM {table} WHERE id IN (%s, %s) ORDER BY id",
                        (JSON_NULL_ID, SQL_NULL_ID))
            got = cur.fetchall()
            check(got == [(JSON_NULL_ID, False, False, "null", True),
                          (SQL_NULL_ID, True, True, None, None)],
                  f"JSON null and SQL NULL (binary={binary}): {got!r}")

            # JSON texts: the text PostgreSQL writes, and values with Decimal numbers.
            set_json_loads(partial(json.loads, parse_float=Decimal), cur)
            cur.execute(f"SELECT id, data, doc, data::text, doc::text FROM {table} "
                        "WHERE id >= %s ORDER BY id", (10,))
            rows = cur.fetchall()
            check([r[0] for r in rows] == [t[0] for t in JSON_TEXTS],
                  f"JSON text rows (binary={binary}): ids {[r[0] for r in rows]}")
            for (row_id, text, canonical), (_, data, doc, data_text, doc_text) in zip(JSON_TEXTS, rows):
                check(data_text == canonical, f"jsonb {text!r} read back as text {data_text!r}, "
                      f"want {canonical!r}")
                check(doc_text == text, f"json {text!r} read back as text {doc_text!r}")
                check(data == json.loads(canonical, parse_float=Decimal)
                      and doc == json.loads(text, parse_float=Decimal),
                      f"JSON text {text!r} (binary={binary}) loaded as {data!r} (jsonb), {doc!r} (json)")
            numbers = [str(n) for n in rows[0][1]["n"]]
            check(numbers == JSON_NUMBERS,
                  f"jsonb numbers (binary={binary}) loaded with Decimal as {numbers}")

    # Containment with a bound Jsonb, text and binary both ways; {} is in every object.
    for binary in (False, True):
        for mark in ("%t", "%b"):
            with conn.cursor(binary=binary) as cur:
                for probe, ids in (({"tags": ["b"]}, [1, 13]), ({"dims": {"w": 1.5}}, [1, 13]),
                                   ({}, [1, 2, 3, 4, 10, 11, 13, 16, 18]), ([None], [9, 12]),
                                   ("just a string", [8])):
                    cur.execute(f"SELECT id FROM {table} WHERE data @> {mark} ORDER BY id",
                                (Jsonb(probe),))
                    got = [r[0] for r in cur.fetchall()]
                    check(got == ids, f"WHERE data @> {mark} with Jsonb({probe!r}) "
                          f"(binary={binary}) found {got}, want {ids}")

    with conn.cursor() as cur:
        cur.execute(f"SELECT data ->> 'name', data -> 'dims' -> 'h', data #>> '{{dims,h,1,deep,0}}', "
                    f"data ? 'tags', data ? 'nope', doc ->> 'name' FROM {table} WHERE id = %s", (1,))
        got = cur.fetchone()
        check(got == ("widget", [2, {"deep": [True, False, None]}], "true", True, False, "widget"),
              f"->>, ->, #>>, ? on row 1 gave {got!r}")
        cur.execute(f"SELECT data ->> 's', doc ->> 's', data ->> %s, data -> %s FROM {table} "
                    "WHERE id = %s", ("é", "😀", 2))
        got = cur.fetchone()
        check(got == (JSON_VALUES[1][1]["s"], JSON_VALUES[1][1]["s"], "ключ", []),
              f"->> 's', ->> %s, -> %s on row 2 gave {got!r}")
        cur.execute(f"SELECT id, data ->> 'big', (data ->> 'half')::numeric FROM {table} "
                    "WHERE data ->> 'name' = %s OR data ? %s ORDER BY id", ("widget", "big"))
        got = cur.fetchall()
        check(got == [(1, None, None), (3, "12345678901234567890", Decimal("1.5")),
                      (13, None, None)],
              f"WHERE data ->> 'name' = %s OR data ? %s gave {got!r}")

        for binary in (False, True):
            with conn.cursor(binary=binary) as bcur:
                bcur.execute(f"SELECT jsonb_build_object('id', id, 'name', data ->> 'name', "
                             "'tags', data -> 'tags', 'n', %s::int, 'none', NULL) "
                             f"FROM {table} WHERE id = %s", (7, 1))
                got = bcur.fetchone()[0]
                want = {"id": 1, "name": "widget", "tags": ["a", "b"], "n": 7, "none": None}
                check(got == want, f"jsonb_build_object (binary={binary}) gave {got!r}")

        cur.execute(f"UPDATE {table} SET data = data || %s WHERE id = %s RETURNING data",
                    (Jsonb({"added": [1, "x"], "é": None}), 4))
        got = cur.fetchall()
        check(got == [({"added": [1, "x"], "é": None},)], f"UPDATE SET data = data || %s gave {got!r}")

        # Malformed JSON is 22P02; \u0000 cannot be jsonb text (22P05), json keeps it.
        for text, error in (('{"a": ', errors.InvalidTextRepresentation),
                            (r'"\u0000"', errors.UntranslatableCharacter)):
            try:
                cur.execute(f"INSERT INTO {table} (id, data) VALUES (%s, %s)", (99, text))
                raise CheckFailed(f"jsonb {text!r} was accepted")
            except error:
                pass
        cur.execute(f"INSERT INTO {table} (id, doc) VALUES (%s, %s) RETURNING doc::text", (99, r'"\u0000"'))
        got = cur.fetchall()
        check(got == [(r'"\u0000"',)], f"json '\"\\u0000\"' read back as {got!r}")
    conn.execute(f"DROP TABLE {table}")


def check_json_text_parameters(conn):
    """JSON text passed as a plain str, which psycopg sends untyped (the server infers
    jsonb): in %s::jsonb / %s::json, in WHERE data @> %s and in data || %s."""
    table = "compat_psycopg_json_text"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, data jsonb)")
    with conn.cursor() as cur:
        for row_id, text, _ in JSON_TEXTS:
            cur.execute(f"INSERT INTO {table} (id, data) VALUES (%s, %s)", (row_id, text))
        for row_id, text, canonical in JSON_TEXTS:
            cur.execute("SELECT %s::jsonb::text, %s::json::text", (text, text))
            got = cur.fetchone()
            check(got == (canonical, text), f"SELECT %s::jsonb, %s::json with {text!r} gave {got!r}")
        for probe, ids in (('{"tags": ["b"]}', [13]), ('{"k": 2}', [11]),
                           ('{}', [10, 11, 13, 16, 18]), ('[null]', [12])):
            cur.execute(f"SELECT id FROM {table} WHERE data @> %s ORDER BY id", (probe,))
            got = [r[0] for r in cur.fetchall()]
            check(got == ids, f"WHERE data @> %s with the str {probe!r} found {got}, want {ids}")
        cur.execute(f"UPDATE {table} SET data = data || %s WHERE id = %s RETURNING data::text",
                    ('{"added": [1]}', 16))
        got = cur.fetchall()
        check(got == [('{"added": [1]}',)], f"UPDATE SET data = data || %s with a str gave {got!r}")
    conn.execute(f"DROP TABLE {table}")


def check_interval(conn):
    """interval columns: INTERVALS' timedelta values written through text (%t) and
    binary (%b; %s, which psycopg sends in binary) parameters, the others as text in
    the SQL; read back as timedelta (text and binary results) and as PostgreSQL's
    text; ORDER BY d; WHERE d = '30 days' finds the month; WHERE d = / > a bound
    timedelta, text and binary."""
    table = "compat_psycopg_interval"
    marks = ("%t", "%b", "%s")
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, d interval)")
    with conn.cursor() as cur:
        for i, (row_id, text, value) in enumerate(INTERVALS):
            if value is None:
                cur.execute(f"INSERT INTO {table} (id, d) VALUES (%s, '{text}')", (row_id,))
            else:
                cur.execute(f"INSERT INTO {table} (id, d) VALUES (%s, {marks[i % 3]})", (row_id, value))

    want_text = [(row_id, text) for row_id, text, _ in INTERVALS]
    loaded = {}
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"SELECT id, d, d::text FROM {table} ORDER BY id")
            got = cur.fetchall()
            check([(r[0], r[2]) for r in got] == want_text,
                  f"intervals (binary={binary}) read back as text {[(r[0], r[2]) for r in got]!r}, "
                  f"want {want_text!r}")
            for (row_id, text, value), (_, have, _) in zip(INTERVALS, got):
                check(value is None or (type(have) is dt.timedelta and have == value),
                      f"interval {text!r} (binary={binary}) read back as {have!r}, want {value!r}")
            loaded[binary] = [r[1] for r in got]
    # psycopg loads months as 30 days (a year as 365) from either format: the binary
    # months, days and microseconds agree with the text.
    check(loaded[False] == loaded[True],
          f"intervals loaded from text {loaded[False]!r} and from binary {loaded[True]!r}")
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"SELECT id FROM {table} ORDER BY d, id")
            got = [r[0] for r in cur.fetchall()]
            check(got == INTERVAL_ORDER, f"ORDER BY d (binary={binary}) gave ids {got}, want {INTERVAL_ORDER}")
            cur.execute(f"SELECT id, d::text FROM {table} WHERE d = '30 days' ORDER BY id")
            got = cur.fetchall()
            check(got == [(9, "1 mon"), (11, "720:00:00")],
                  f"WHERE d = '30 days' (binary={binary}) gave {got!r}")

            for mark in marks:
                for row_id, text, value in INTERVALS:
                    if value is None:
                        continue
                    cur.execute(f"SELECT id FROM {table} WHERE d = {mark}", (value,))
                    got = [r[0] for r in cur.fetchall()]
                    check(got == [row_id], f"WHERE d = {mark} with {value!r} (binary={binary}) found {got}")
                cur.execute(f"SELECT id FROM {table} WHERE d = {mark} ORDER BY id", (dt.timedelta(days=30),))
                got = [r[0] for r in cur.fetchall()]
                check(got == [9, 11], f"WHERE d = {mark} with timedelta(days=30) (binary={binary}) found {got}")
                cur.execute(f"SELECT id FROM {table} WHERE d > {mark} ORDER BY id", (dt.timedelta(days=30),))
                got = [r[0] for r in cur.fetchall()]
                check(got == [5, 6, 7, 10], f"WHERE d > {mark} with timedelta(days=30) (binary={binary}) found {got}")
    conn.execute(f"DROP TABLE {table}")


def pending_interval_large_time(conn):
    """An interval's time part at the ends of its 8-byte microsecond count, written as
    text, read back as text and as timedelta (text and binary results)."""
    table = "compat_psycopg_interval_large"
    values = [(1, "2562047788:00:54.775807", dt.timedelta(microseconds=2**63 - 1)),
              (2, "-2562047788:00:54.775807", dt.timedelta(microseconds=-(2**63 - 1)))]
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, d interval)")
    for row_id, text, _ in values:
        conn.execute(f"INSERT INTO {table} (id, d) VALUES (%s, '{text}')", (row_id,))
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"SELECT id, d::text AS t, d FROM {table} ORDER BY d")
            got = cur.fetchall()
            check(got == [(2, values[1][1], values[1][2]), (1, values[0][1], values[0][2])],
                  f"intervals of +/-(2^63 - 1) microseconds (binary={binary}) read back as {got!r}")
    conn.execute(f"DROP TABLE {table}")


def check_array_columns(conn):
    """Array columns as psycopg sends lists (text, typed int2[]/int8[]/text[]/numeric[]
    by the values' Python types, and binary) and reads them back in both formats,
    through COPY (text and binary) too, NULL elements and quoting included."""
    table = "compat_psycopg_arrays"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, ints bigint[], "
                 "words text[], amounts numeric(10,2)[], stamps timestamp[])")
    rows = [
        (1, [1, None, -9223372036854775808], ['a b', None, '', '{}', 'q"r', 'x,y', 'back\\slash'],
         [Decimal("1.50"), Decimal("-99999999.99")], [dt.datetime(2024, 2, 29, 12, 30, 0, 5)]),
        (2, [], [], [], []),
        (3, None, None, None, None),
    ]
    for binary in (False, True):
        conn.execute(f"DELETE FROM {table}")
        with conn.cursor(binary=binary) as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)", rows)
            cur.execute(f"SELECT * FROM {table} ORDER BY id")
            got = cur.fetchall()
            check(got == rows, f"array columns (binary={binary}) read back as {got!r}")
            cur.execute(f"SELECT id FROM {table} WHERE %s = ANY(words)", ("x,y",))
            check(cur.fetchall() == [(1,)], "WHERE %s = ANY(words) did not find row 1")
    for fmt in ("text", "binary"):
        with conn.cursor() as cur:
            with cur.copy(f"COPY {table} TO STDOUT (FORMAT {fmt})") as copy:
                data = b"".join(bytes(block) for block in copy)
            cur.execute(f"DELETE FROM {table}")
            with cur.copy(f"COPY {table} FROM STDIN (FORMAT {fmt})") as copy:
                copy.write(data)
            cur.execute(f"SELECT * FROM {table} ORDER BY id")
            got = cur.fetchall()
            check(got == rows, f"array columns after COPY {fmt} out and in: {got!r}")
    conn.execute(f"DROP TABLE {table}")


def check_unconstrained_numeric(conn):
    """A `numeric` column without precision and scale (SQLAlchemy's Numeric(), Rails'
    decimal) gives back the Decimals written to it, in text and binary and through COPY,
    and sums them without padding them to a fixed scale."""
    table = "compat_psycopg_amounts"
    amounts = [Decimal("19.99"), Decimal("-0.123"), Decimal("100"), Decimal("0.0000000001"),
               Decimal("123456789012345678.5"), None]
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, amount numeric)")
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(amounts)))
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            got = [r[0] for r in cur.execute(f"SELECT amount FROM {table} ORDER BY id")]
            check(list(map(str, got)) == list(map(str, amounts)),
                  f"numeric column (binary={binary}) read back as {got!r}")
            total = cur.execute(f"SELECT sum(amount), min(amount) * 2 FROM {table}").fetchone()
            check(tuple(map(str, total)) == ("123456789012345798.3670000001",
                                             "-0.246"),
                  f"sum and min * 2 (binary={binary}) gave {total!r}")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (amount) TO STDOUT") as copy:
            data = b"".join(bytes(block) for block in copy)
    want = sorted(b"19.99 -0.123 100 0.0000000001 123456789012345678.5 \\N".split())
    check(sorted(data.split()) == want, f"COPY of a numeric column gave {data!r}")
    conn.execute(f"DROP TABLE {table}")


def check_wall_clock_parameters(conn):
    """Under a session TimeZone, a naive datetime (sent as `timestamp`) stored in a
    `timestamptz` column is a wall-clock time there, and an aware one stored in a
    `timestamp` column is the wall-clock time there, in text and binary (it was read as
    UTC: stored five hours early in New York)."""
    table = "compat_psycopg_wall_clocks"
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, tz timestamptz, ts timestamp)")
    conn.execute("SET TimeZone = 'America/New_York'")
    naive = dt.datetime(2024, 1, 15, 10, 30)
    aware = dt.datetime(2024, 7, 15, 15, 30, tzinfo=UTC)
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(f"INSERT INTO {table} VALUES (%s, %s, %s)", (int(binary), naive, aware))
    conn.execute("RESET TimeZone")
    got = conn.execute(f"SELECT tz::text, ts::text FROM {table} ORDER BY id").fetchall()
    want = [("2024-01-15 15:30:00+00", "2024-07-15 11:30:00")] * 2
    check(got == want, f"wall-clock parameters stored as {got!r}, want {want!r}")
    conn.execute(f"DROP TABLE {table}")


def check_cancel(conn):
    """conn.cancel() from another thread stops a pg_sleep (57014) at once, and the
    connection goes on; now() is the transaction's start in each of its statements."""
    timer = threading.Timer(0.3, conn.cancel)
    timer.start()
    started = time.monotonic()
    try:
        conn.execute("SELECT pg_sleep(30)")
        check(False, "pg_sleep(30) was not cancelled")
    except psycopg.errors.QueryCanceled:
        pass
    check(time.monotonic() - started < 10, "the cancel took more than 10 s")
    check(conn.execute("SELECT 1").fetchone() == (1,), "the connection after a cancel")
    with conn.transaction():
        first = conn.execute("SELECT now()").fetchone()[0]
        conn.execute("SELECT pg_sleep(0.05)")
        second, statement = conn.execute("SELECT now(), statement_timestamp()").fetchone()
    check(first == second and statement > second,
          f"now() in one transaction gave {first} then {second} (statement {statement})")


def check_named_cursors(conn, names):
    """Server-side cursors as psycopg runs them: DECLARE with bound parameters,
    Describe of the cursor's portal, FETCH FORWARD itersize at a time (binary);
    a WITH HOLD cursor read after its transaction committed, and scroll() (MOVE); a
    scrollable cursor (SCROLL) moved back with scroll(-2) and to the start."""
    conn.autocommit = False
    want = [(row_id, *values) for row_id, values in ROWS if row_id >= 2]
    with conn.cursor(name="compat_named", binary=True) as cur:
        cur.itersize = 2
        cur.execute(f"SELECT id, {names} FROM {TABLE} WHERE id >= %s AND id <= %s ORDER BY id",
                    (2, len(ROWS)))
        got = list(cur)
        check(got == want, f"named cursor read {got!r}")
        check([c.name for c in cur.description][:2] == ["id", "c_smallint"],
              f"named cursor described as {cur.description!r}")
    conn.commit()
    with conn.cursor(name="compat_held", withhold=True) as cur:
        cur.execute(f"SELECT id FROM {TABLE} WHERE id <= %s ORDER BY id", (len(ROWS),))
        conn.commit()
        check(cur.fetchone() == (1,), "WITH HOLD cursor's first row after COMMIT")
        cur.scroll(1)
        check(cur.fetchall() == [(3,), (4,)], "WITH HOLD cursor after scroll(1)")
    conn.commit()
    with conn.cursor(name="compat_scroll", scrollable=True) as cur:
        cur.execute(f"SELECT id FROM {TABLE} WHERE id <= %s ORDER BY id", (len(ROWS),))
        check(cur.fetchmany(3) == [(1,), (2,), (3,)], "scrollable cursor's first 3 rows")
        cur.scroll(-2)
        check(cur.fetchone() == (2,), "scrollable cursor after scroll(-2)")
        cur.scroll(0, mode="absolute")
        check(cur.fetchall() == [(1,), (2,), (3,), (4,)], "scrollable cursor after scroll(0, absolute)")
    conn.commit()
    conn.autocommit = True


def check_main(name, run, driver_error, sqlstate_of, passed):
    """A driver check's command line: runs `run(args)` and prints one line,
    `PASS name passed` or `FAIL name: why`; the exit status. With `--pending`,
    `args.pending` is true and the check also runs the cases ShardForge does not
    pass yet (compat-tests/README.md lists them; `run --postgres` runs them)."""
    parser = argparse.ArgumentParser(description=f"{name} driver check")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--pending", action="store_true",
                        help="also run the cases ShardForge does not pass yet")
    args = parser.parse_args()
    try:
        run(args)
    except CheckFailed as e:
        print(f"FAIL {name}: {e}")
        return 1
    except driver_error as e:
        print(f"FAIL {name}: {type(e).__name__} (SQLSTATE {sqlstate_of(e)}): {e}")
        return 1
    print(f"PASS {name} {passed}")
    return 0


def main():
    return check_main(
        "psycopg", run, psycopg.Error, lambda e: e.sqlstate,
        f"{psycopg.__version__}: {len(COLUMNS)} types x {len(ROWS)} rows (text+binary), "
        "rollback/commit, 23505, TimeZone, bare parameters, RETURNING, description sizes, "
        "cancel of pg_sleep, now() in a transaction, "
        "COPY (text+binary, errors, CopyFail), named cursors, uuid key, gen_random_uuid(), "
        f"json/jsonb ({len(JSON_VALUES)} values + {len(JSON_TEXTS)} texts, text+binary, "
        "@>, ->>, jsonb_build_object), "
        f"interval ({len(INTERVALS)} values, timedelta text+binary, ORDER BY, = '30 days'), "
        "array columns (text+binary, COPY), unconstrained numeric column, column names (dict_row), AT TIME ZONE, DST day, "
        "wall-clock parameters")


if __name__ == "__main__":
    sys.exit(main())
