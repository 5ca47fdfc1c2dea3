#!/usr/bin/env node
// Driver check with node-postgres: `pg`, `pg-copy-streams` and `pg-cursor`.
//
// node-pg sends every parameter as text with no declared type (Parse lists no
// parameter types, so the server infers them; a Buffer goes as a binary-format
// parameter), asks for text results, and runs a query without parameters through
// the simple protocol. It parses int2/int4/float/bool/bytea/timestamptz results
// into JS values and leaves bigint and numeric as PostgreSQL's text.
//
// The check writes psycopg_check.py's rows (a column of every type) through $n
// parameters (uuid as strings) and reads them back through both protocols, as JS values
// (uuid as PostgreSQL's lower-case text: node-pg has no uuid parser), as raw text
// and with rowMode 'array', with the RowDescription node-pg exposes as `fields`;
// runs the numeric and bigint parameter cases and a 30-digit numeric; a named
// prepared statement, RETURNING *, ON CONFLICT DO UPDATE, rollback, the fields of a
// 23505 error, an error inside a transaction; a uuid primary key found by a string
// parameter; COPY FROM STDIN (text and CSV) and COPY TO STDOUT through
// pg-copy-streams, with a bad line; a pg-cursor reading 100
// rows at a time (Execute with a row limit, PortalSuspended); statement_timeout and
// a CancelRequest (client.cancel) giving 57014; json and jsonb columns: values
// written as JSON.stringify text (and plain objects, which node-pg stringifies)
// come back parsed as objects, arrays and scalars (node-pg parses json/jsonb with
// JSON.parse), JSON null apart from SQL NULL; psycopg_check.py's JSON texts come
// back as raw text exactly as PostgreSQL writes them (jsonb canonical, json
// verbatim), through both protocols; ->, ->>, #>>, ? with $n, jsonb_build_object,
// type OIDs 3802/114; json parameters the server must type: $1::jsonb, data @> $1,
// data || $1; interval columns: values sent as text in several of PostgreSQL's
// input forms ('1 day 02:03:04', '1 year 2 months', '720 hours', '-0.000001 seconds')
// come back as PostgreSQL's text and as node-pg's PostgresInterval objects (their
// fields and toPostgres()), which written back as parameters give the same values;
// array columns written from JS arrays (text, untyped) and read back parsed;
// ORDER BY d by length (a month is 30 days), WHERE d = '30 days' finding '1 mon',
// WHERE d > $1. With --pending, also the cases ShardForge does not pass yet
// (RowDescription's table, column and modifier; an interval time part past
// 2562047 hours).
//
// Usage: node node_pg_check.mjs [--host 127.0.0.1] [--port 5432] [--keep-going] [--pending]
// Prints one line `PASS node-pg ...` or `FAIL node-pg: ...`; exit status 0 on PASS.
// With --keep-going every case runs even after one fails and the FAIL line lists
// every failing case (separated by ' | ').

import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'
import Cursor from 'pg-cursor'

const require = createRequire(import.meta.url)
const PG_VERSION = require('pg/package.json').version

const TABLE = 'compat_node_pg'

// psycopg_check.py's COLUMNS.
const COLUMNS = [
  ['c_smallint', 'smallint'],
  ['c_integer', 'integer'],
  ['c_bigint', 'bigint'],
  ['c_real', 'real'],
  ['c_double', 'double precision'],
  ['c_numeric', 'numeric(12,3)'],
  ['c_boolean', 'boolean'],
  ['c_text', 'text'],
  ['c_varchar', 'varchar(10)'],
  ['c_char', 'char(4)'],
  ['c_date', 'date'],
  ['c_timestamp', 'timestamp'],
  ['c_timestamptz', 'timestamptz'],
  ['c_bytea', 'bytea'],
  ['c_uuid', 'uuid'],
]
const NAMES = COLUMNS.map(([name]) => name).join(', ')
const COLUMN_DEFS = COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i))

// psycopg_check.py's ROWS, as node-pg reads them back: bigint and numeric as
// strings, date and timestamp as strings too (this check's type parsers; node-pg's
// default Date would drop the microseconds), timestamptz as a Date, bytea a Buffer.
const ROWS = [
  [1, [-12, 123456, '9007199254740993', 3.25, -0.000123, '12345.678', true,
    'hello, world', 'short', 'ab  ', '1999-12-31', '2000-01-01 00:00:00.000001',
    new Date('2020-02-29T12:00:00Z'), Buffer.from('deadbeef', 'hex'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']],
  [2, COLUMNS.map(() => null)],
  [3, [-32768, -2147483648, '-9223372036854775808', -0.15625, 1e300, '-999999999.999', false,
    '', '', '    ', '0001-01-01', '1970-01-01 00:00:00',
    new Date('2024-07-01T06:59:59.5Z'), Buffer.alloc(0), '00000000-0000-0000-0000-000000000000']],
  [4, [32767, 2147483647, '9223372036854775807', 16777216.0, 0.1, '0.001', true,
    'unicodé ☃ \'quotes\' "double" \\back', 'ten chars!', 'abcd', '2024-02-29',
    '2038-01-19 03:14:08', new Date('1969-12-31T23:59:59-07:00'), ALL_BYTES, 'ffffffff-ffff-ffff-ffff-ffffffffffff']],
]

// The same rows as PostgreSQL 15 writes them in text (TimeZone UTC).
const ROWS_TEXT = [
  [1, ['-12', '123456', '9007199254740993', '3.25', '-0.000123', '12345.678', 't',
    'hello, world', 'short', 'ab  ', '1999-12-31', '2000-01-01 00:00:00.000001',
    '2020-02-29 12:00:00+00', '\\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']],
  [2, COLUMNS.map(() => null)],
  [3, ['-32768', '-2147483648', '-9223372036854775808', '-0.15625', '1e+300',
    '-999999999.999', 'f', '', '', '    ', '0001-01-01', '1970-01-01 00:00:00',
    '2024-07-01 06:59:59.5+00', '\\x', '00000000-0000-0000-0000-000000000000']],
  [4, ['32767', '2147483647', '9223372036854775807', '1.6777216e+07', '0.1', '0.001', 't',
    'unicodé ☃ \'quotes\' "double" \\back', 'ten chars!', 'abcd', '2024-02-29',
    '2038-01-19 03:14:08', '1970-01-01 06:59:59+00', '\\x' + ALL_BYTES.toString('hex'),
    'ffffffff-ffff-ffff-ffff-ffffffffffff']],
]

// What an application passes as parameters: the values above, the bigint as a
// BigInt (node-pg sends its toString()).
const sendValues = (values) => values.map((v, i) => (COLUMNS[i][1] === 'bigint' && v !== null ? BigInt(v) : v))

// Text results as the server sent them, for every type.
const RAW_TEXT = { getTypeParser: () => (value) => value }

// A query that runs well over a second on both servers (PostgreSQL: ~20 s; a
// bare count(*) over generate_series is answered without producing the rows by
// ShardForge, a filter is not).
const SLOW_QUERY = 'SELECT count(*) FROM generate_series(1, 20000) a, generate_series(1, 20000) b WHERE a + b = 1'

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what)
}

const show = (v) => {
  if (Buffer.isBuffer(v)) return v.length > 16 ? `<Buffer ${v.length} bytes>` : `<Buffer ${v.toString('hex')}>`
  if (v instanceof Date) return `Date(${isNaN(v) ? 'Invalid' : v.toISOString()})`
  if (typeof v === 'bigint') return `${v}n`
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join(', ')}}`
  return JSON.stringify(v)
}

function same(a, b) {
  if (a === null || b === null) return a === b
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b)
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime()
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (typeof a === 'object') {
    const keys = Object.keys(a)
    return typeof b === 'object' && b !== null && !Array.isArray(b) && keys.length === Object.keys(b).length && keys.every((k) => same(a[k], b[k]))
  }
  return a === b
}

function checkSame(have, want, what) {
  if (same(have, want)) return
  // Long lists: the first element that differs, and how many do.
  if (Array.isArray(have) && Array.isArray(want) && have.length === want.length && want.length > 4) {
    const differ = want.map((w, i) => i).filter((i) => !same(have[i], want[i]))
    const i = differ[0]
    throw new CheckFailed(`${what}: [${i}] got ${show(have[i])}, want ${show(want[i])} (${differ.length} of ${want.length} differ)`)
  }
  throw new CheckFailed(`${what}: got ${show(have)}, want ${show(want)}`)
}

// The error a promise rejects with (fails if it resolves).
async function errorOf(promise, what) {
  try {
    const res = await promise
    throw new CheckFailed(`${what} succeeded (${res && res.command} ${res && res.rowCount})`)
  } catch (e) {
    if (e instanceof CheckFailed) throw e
    return e
  }
}

// A query's result; its error becomes a failure naming `what`.
async function named(what, promise) {
  try {
    return await promise
  } catch (e) {
    if (!(e instanceof pg.DatabaseError)) throw e
    throw new CheckFailed(`${what}: SQLSTATE ${e.code}: ${e.message}`)
  }
}

function checkCode(err, code, what) {
  check(err.code === code, `${what}: want SQLSTATE ${code}, got ${err.code} (${err.message})`)
}

let args

async function connect() {
  const client = new pg.Client({
    host: args.host, port: args.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 10000,
  })
  client.on('error', () => {}) // a dropped connection shows up in the query that fails
  await client.connect()
  // date and timestamp as PostgreSQL's text (node-pg's Date has milliseconds only).
  client.setTypeParser(1082, (v) => v)
  client.setTypeParser(1114, (v) => v)
  await client.query("SET TimeZone = 'UTC'")
  return client
}

async function count(client, table, where = 'true') {
  const res = await client.query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)
  return Number(res.rows[0].n)
}

// ---------------------------------------------------------------- cases

// Every type through $n parameters (extended protocol, parameter types left to the
// server), read back by bound id, all rows through the simple protocol as raw text
// and with rowMode 'array'.
async function caseTypes(client) {
  await client.query(`DROP TABLE IF EXISTS ${TABLE}`)
  await client.query(`CREATE TABLE ${TABLE} (id integer PRIMARY KEY, ${COLUMN_DEFS})`)
  const placeholders = COLUMNS.map((_, i) => `$${i + 2}`).join(', ')
  for (const [id, values] of ROWS) {
    const res = await client.query(`INSERT INTO ${TABLE} (id, ${NAMES}) VALUES ($1, ${placeholders})`,
      [id, ...sendValues(values)])
    check(res.rowCount === 1, `insert of row ${id} with $n parameters reported ${res.rowCount} rows`)
  }

  for (const [id, values] of ROWS) {
    const res = await client.query(`SELECT ${NAMES} FROM ${TABLE} WHERE id = $1`, [id])
    check(res.rows.length === 1, `SELECT row ${id} by $1: ${res.rows.length} rows`)
    COLUMNS.forEach(([name], i) => checkSame(res.rows[0][name], values[i], `row ${id} ${name} read by $1`))
  }

  // No parameters: the simple protocol. Raw text first, then node-pg's parsing.
  const wantText = ROWS_TEXT.map(([id, values]) => [String(id), ...values])
  const raw = await client.query({ text: `SELECT id, ${NAMES} FROM ${TABLE} ORDER BY id`, rowMode: 'array', types: RAW_TEXT })
  wantText.forEach((want, r) => want.forEach((value, i) =>
    checkSame(raw.rows[r]?.[i], value, `row ${want[0]} ${i ? COLUMNS[i - 1][0] : 'id'} as text (simple protocol)`)))
  check(raw.rows.length === ROWS.length, `simple-protocol SELECT gave ${raw.rows.length} rows`)
  const wantTypes = [23, 21, 23, 20, 700, 701, 1700, 16, 25, 1043, 1042, 1082, 1114, 1184, 17, 2950]
  checkSame(raw.fields.map((f) => f.dataTypeID), wantTypes, 'column type OIDs in RowDescription')

  const simple = await client.query(`SELECT id, ${NAMES} FROM ${TABLE} ORDER BY id`)
  ROWS.forEach(([id, values], r) => COLUMNS.forEach(([name], i) =>
    checkSame(simple.rows[r]?.[name], values[i], `row ${id} ${name} (simple protocol)`)))

  // rowMode 'array' through the extended protocol, raw text too.
  const arrays = await client.query({ text: `SELECT id, ${NAMES} FROM ${TABLE} WHERE id >= $1 ORDER BY id`, values: [0], rowMode: 'array' })
  checkSame(arrays.rows, ROWS.map(([id, values]) => [id, ...values]), "rowMode 'array' with $1")
  const rawExt = await client.query({ text: `SELECT id, ${NAMES} FROM ${TABLE} WHERE id >= $1 ORDER BY id`, values: [0], rowMode: 'array', types: RAW_TEXT })
  checkSame(rawExt.rows, wantText, 'all rows as text (extended protocol)')

  // Parameters compared against columns of each type.
  const where = await client.query(`SELECT id FROM ${TABLE} WHERE c_text = $1 AND c_numeric = $2 AND c_date = $3 AND c_bigint = $4 AND c_bytea = $5 AND c_boolean = $6`,
    ['hello, world', '12345.678', '1999-12-31', '9007199254740993', Buffer.from('deadbeef', 'hex'), true])
  checkSame(where.rows, [{ id: 1 }], 'WHERE on text/numeric/date/bigint/bytea/boolean = $n')
  const isNull = await client.query(`SELECT id FROM ${TABLE} WHERE c_integer IS NULL`)
  checkSame(isNull.rows, [{ id: 2 }], 'IS NULL')

}

// Pending: RowDescription as node-pg exposes it in `fields`: the type's size,
// the modifier (numeric(12,3), varchar(10), char(4)), the table's OID and the
// column's number (1 = id). Runs after caseTypes, on its table.
async function pendingRowDescription(client) {
  const described = await client.query(`SELECT id, ${NAMES} FROM ${TABLE} WHERE id = $1`, [1])
  const { rows: [{ oid }] } = await client.query(`SELECT '${TABLE}'::regclass::oid AS oid`)
  const wantSizes = [4, 2, 4, 8, 4, 8, -1, 1, -1, -1, -1, 4, 8, 8, -1, 16]
  const wantModifiers = [-1, -1, -1, -1, -1, -1, (12 << 16) + 3 + 4, -1, -1, 10 + 4, 4 + 4, -1, -1, -1, -1, -1]
  const fieldsOf = (f) => `${f.name} size ${f.dataTypeSize} modifier ${f.dataTypeModifier} table ${f.tableID} column ${f.columnID}`
  checkSame(described.fields.map(fieldsOf),
    ['id', ...COLUMNS.map(([name]) => name)].map((name, i) =>
      `${name} size ${wantSizes[i]} modifier ${wantModifiers[i]} table ${oid} column ${i + 1}`),
    `RowDescription fields (table ${TABLE} has OID ${oid})`)
}

// Parameters whose type comes from a cast around them; a parameter cast to
// numeric keeps its own digits and scale.
async function caseParams(client) {
  let res = await client.query('SELECT $1::numeric * 2 AS v', ['1.25'])
  check(res.fields[0].dataTypeID === 1700, `$1::numeric * 2 has type OID ${res.fields[0].dataTypeID}, want 1700`)
  checkSame(res.rows[0].v, '2.50', "SELECT $1::numeric * 2 with '1.25'")
  res = await client.query('SELECT $1::numeric AS v, $2::numeric / 3 AS w', ['0.123456789012345', '1'])
  checkSame(res.rows[0], { v: '0.123456789012345', w: '0.33333333333333333333' },
    "SELECT $1::numeric, $2::numeric / 3 with '0.123456789012345', '1'")
  res = await client.query('SELECT $1::int + 1 AS v', ['41'])
  checkSame(res.rows[0].v, 42, "SELECT $1::int + 1 with '41'")
  res = await client.query('SELECT $1::bigint AS v, $2::bigint + 1 AS w', [2n ** 53n + 1n, '9223372036854775806'])
  checkSame(res.rows[0], { v: '9007199254740993', w: '9223372036854775807' }, 'bigint beyond 2^53 ($1::bigint)')
  res = await client.query('SELECT $1::text AS t, $2::boolean AS b, $3::date AS d, $4::bytea AS x',
    ['x', false, '2024-02-29', Buffer.from([0, 255])])
  checkSame(res.rows[0], { t: 'x', b: false, d: '2024-02-29', x: Buffer.from([0, 255]) }, 'SELECT $1::text, $2::boolean, $3::date, $4::bytea')
}

// A numeric of 30 digits, as a parameter and in a numeric(30,10) column.
async function caseWideNumeric(client) {
  const wide = '-12345678901234567890.0123456789'
  const table = `${TABLE}_wide`
  await client.query(`DROP TABLE IF EXISTS ${table}`)
  await client.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, n numeric(30,10))`)
  await named(`INSERT of the literal ${wide} into a numeric(30,10) column`,
    client.query(`INSERT INTO ${table} VALUES (1, ${wide})`))
  const read = await named('SELECT of a numeric(30,10) column holding it', client.query(`SELECT n FROM ${table}`))
  checkSame(read.rows, [{ n: wide }], 'SELECT of a numeric(30,10) column holding it')
  const res = await named(`SELECT $1::numeric(30,10) with '${wide}'`, client.query('SELECT $1::numeric(30,10) AS v', [wide]))
  checkSame(res.rows[0].v, wide, 'SELECT $1::numeric(30,10)')
  await client.query(`INSERT INTO ${table} VALUES ($1, $2)`, [2, wide])
  checkSame((await client.query(`SELECT count(*) AS n FROM ${table} WHERE n = $1`, [wide])).rows, [{ n: '2' }],
    'numeric(30,10) compared with a 30-digit $1')
  await client.query(`DROP TABLE ${table}`)
}

const KV = `${TABLE}_kv`

// Named prepared statements, RETURNING *, ON CONFLICT DO UPDATE.
async function caseStatements(client) {
  await client.query(`DROP TABLE IF EXISTS ${KV}`)
  await client.query(`CREATE TABLE ${KV} (id integer PRIMARY KEY, name varchar(20) NOT NULL, qty integer DEFAULT 1, price numeric(8,2) DEFAULT 9.99)`)
  let res = await client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2), ($3, $4) RETURNING *`, [1, 'one', 2, 'two'])
  checkSame(res.rows, [{ id: 1, name: 'one', qty: 1, price: '9.99' }, { id: 2, name: 'two', qty: 1, price: '9.99' }],
    'INSERT ... RETURNING *')
  check(res.command === 'INSERT' && res.rowCount === 2, `INSERT ... RETURNING * reported ${res.command} ${res.rowCount}`)

  const q1 = `SELECT id, name, qty FROM ${KV} WHERE id = $1`
  res = await client.query({ name: 'q1', text: q1, values: [1] })
  checkSame(res.rows, [{ id: 1, name: 'one', qty: 1 }], 'named statement q1, first run (Parse+Bind)')
  res = await client.query({ name: 'q1', text: q1, values: [2] })
  checkSame(res.rows, [{ id: 2, name: 'two', qty: 1 }], 'named statement q1, second run (Bind only)')

  res = await client.query(`INSERT INTO ${KV} (id, name, qty) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, qty = ${KV}.qty + EXCLUDED.qty RETURNING id, name, qty`,
    [1, 'uno', 5])
  checkSame(res.rows, [{ id: 1, name: 'uno', qty: 6 }], 'ON CONFLICT (id) DO UPDATE SET ... = EXCLUDED.x RETURNING')
  check(res.rowCount === 1, `ON CONFLICT DO UPDATE reported ${res.rowCount} rows`)
  res = await client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [2, 'dos'])
  check(res.rowCount === 0, `ON CONFLICT DO NOTHING reported ${res.rowCount} rows`)
  res = await client.query(`SELECT id, name, qty FROM ${KV} ORDER BY id`)
  checkSame(res.rows, [{ id: 1, name: 'uno', qty: 6 }, { id: 2, name: 'two', qty: 1 }], 'rows after ON CONFLICT')

  res = await client.query(`UPDATE ${KV} SET qty = qty + $1 WHERE id = $2 RETURNING qty`, [10, 2])
  checkSame(res.rows, [{ qty: 11 }], 'UPDATE ... RETURNING')
  res = await client.query(`DELETE FROM ${KV} WHERE id = $1 RETURNING name`, [2])
  checkSame(res.rows, [{ name: 'two' }], 'DELETE ... RETURNING')
  check(res.command === 'DELETE' && res.rowCount === 1, `DELETE reported ${res.command} ${res.rowCount}`)
}

// A uuid primary key: rows written and found by a string parameter (node-pg sends
// it as untyped text); an upper-case string finds the same row, returned in
// PostgreSQL's lower-case form.
async function caseUuidKey(client) {
  const table = `${TABLE}_uuid`
  await client.query(`DROP TABLE IF EXISTS ${table}`)
  await client.query(`CREATE TABLE ${table} (id uuid PRIMARY KEY, v text)`)
  const keys = [['6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'one'], ['f47ac10b-58cc-4372-a567-0e02b2c3d479', 'two']]
  for (const [id, v] of keys) await client.query(`INSERT INTO ${table} (id, v) VALUES ($1, $2)`, [id, v])
  for (const [id, v] of keys) {
    const res = await client.query(`SELECT id, v FROM ${table} WHERE id = $1`, [id])
    checkSame(res.rows, [{ id, v }], `WHERE id = $1 with '${id}'`)
  }
  const [id, v] = keys[1]
  const res = await client.query(`SELECT id, v FROM ${table} WHERE id = $1`, [id.toUpperCase()])
  checkSame(res.rows, [{ id, v }], `WHERE id = $1 with '${id.toUpperCase()}'`)
  await client.query(`DROP TABLE ${table}`)
}

// Array columns: JS arrays as node-pg sends them (text, '{...}' with quoting, no
// declared type), read back parsed by node-pg (int4[]/text[]/bool[] as JS arrays,
// bigint[] elements as strings, numeric[] ones as numbers) and found with = ANY($1).
async function caseArrayColumns(client) {
  const table = `${TABLE}_arrays`
  await client.query(`DROP TABLE IF EXISTS ${table}`)
  await client.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, ints integer[], words text[], `
    + 'big bigint[], amounts numeric(10,2)[], flags boolean[])')
  const rows = [
    [1, [1, null, -2147483648], ['a b', null, '', '{}', 'q"r', 'x,y', 'back\\slash'],
      ['9007199254740993'], ['1.50', '-99999999.99'], [true, false, null]],
    [2, [], [], [], [], []],
    [3, null, null, null, null, null],
  ]
  for (const row of rows) await client.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5, $6)`, row)
  const res = await client.query({ text: `SELECT * FROM ${table} ORDER BY id`, rowMode: 'array' })
  // node-pg parses numeric[] elements as JS numbers (numeric alone stays text).
  const parsed = rows.map((row) => row.map((v, i) => (i === 4 && v ? v.map(Number) : v)))
  checkSame(res.rows, parsed, 'array columns read back')
  checkSame(res.fields.map((f) => f.dataTypeID), [23, 1007, 1009, 1016, 1231, 1000], 'array columns\' type OIDs')
  const found = await client.query(`SELECT id FROM ${table} WHERE $1 = ANY(words)`, ['x,y'])
  checkSame(found.rows, [{ id: 1 }], 'WHERE $1 = ANY(words)')
  await client.query(`DROP TABLE ${table}`)
}

const INTERVAL_TABLE = `${TABLE}_interval`

// psycopg_check.py's INTERVALS and one more (14), as [id, the text sent, the text
// PostgreSQL writes, the fields of node-pg's PostgresInterval (postgres-interval:
// no zero fields, microseconds as fractional milliseconds), its toPostgres()].
const INTERVALS = [
  [1, '1 day 02:03:04.000005', '1 day 02:03:04.000005', { days: 1, hours: 2, minutes: 3, seconds: 4, milliseconds: 0.005 },
    '4.000005 seconds 3 minutes 2 hours 1 days'],
  [2, '-3 days 00:00:01', '-3 days +00:00:01', { days: -3, seconds: 1 }, '1 seconds -3 days'],
  [3, '0', '00:00:00', {}, '0'],
  [4, '1 microsecond', '00:00:00.000001', { milliseconds: 0.001 }, '0.000001 seconds'],
  [5, '40 days', '40 days', { days: 40 }, '40 days'],
  [6, '1 year 2 months', '1 year 2 mons', { years: 1, months: 2 }, '2 months 1 years'],
  [7, '10000 days', '10000 days', { days: 10000 }, '10000 days'],
  [8, '29 days', '29 days', { days: 29 }, '29 days'],
  [9, '1 mon', '1 mon', { months: 1 }, '1 months'],
  [10, '31 days', '31 days', { days: 31 }, '31 days'],
  [11, '720 hours', '720:00:00', { hours: 720 }, '720 hours'],
  [12, '-10000 days +23:59:59.999999', '-10000 days +23:59:59.999999',
    { days: -10000, hours: 23, minutes: 59, seconds: 59, milliseconds: 999.999 }, '59.999999 seconds 59 minutes 23 hours -10000 days'],
  [13, '-0.000001 seconds', '-00:00:00.000001', { milliseconds: -0.001 }, '-0.000001 seconds'],
  [14, '1 day 02:03:04', '1 day 02:03:04', { days: 1, hours: 2, minutes: 3, seconds: 4 }, '4 seconds 3 minutes 2 hours 1 days'],
]
// ORDER BY d, id: by length, a month as 30 days ('1 mon' and '720:00:00' are both
// 30 days, after '29 days' and before '31 days').
const INTERVAL_ORDER = [12, 2, 13, 3, 4, 14, 1, 8, 9, 11, 10, 5, 6, 7]

// interval: text parameters (untyped: the server types them from the column), read
// back as text (both protocols) and as PostgresInterval objects, which node-pg
// sends back as their toPostgres() text; ORDER BY d, WHERE d = '30 days', WHERE d > $1.
async function caseInterval(client) {
  await client.query(`DROP TABLE IF EXISTS ${INTERVAL_TABLE}`)
  await client.query(`CREATE TABLE ${INTERVAL_TABLE} (id integer PRIMARY KEY, d interval)`)
  for (const [id, text] of INTERVALS) {
    await named(`INSERT of interval '${text}' as $2`, client.query(`INSERT INTO ${INTERVAL_TABLE} (id, d) VALUES ($1, $2)`, [id, text]))
  }
  const wantText = INTERVALS.map(([id, , pgText]) => [id, pgText])
  let res = await client.query({ text: `SELECT id, d FROM ${INTERVAL_TABLE} ORDER BY id`, rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows.map(([id, d]) => [Number(id), d]), wantText, 'intervals as text (simple protocol)')
  checkSame(res.fields.map((f) => f.dataTypeID), [23, 1186], 'interval type OID in RowDescription')
  res = await client.query({ text: `SELECT id, d FROM ${INTERVAL_TABLE} WHERE id > $1 ORDER BY id`, values: [0], rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows.map(([id, d]) => [Number(id), d]), wantText, 'intervals as text (extended protocol)')

  for (const query of [{ text: `SELECT id, d FROM ${INTERVAL_TABLE} ORDER BY id` },
    { text: `SELECT id, d FROM ${INTERVAL_TABLE} WHERE id > $1 ORDER BY id`, values: [0] }]) {
    const protocol = query.values ? 'extended' : 'simple'
    res = await client.query(query)
    checkSame(res.rows.map((r) => r.id), INTERVALS.map(([id]) => id), `interval row ids (${protocol} protocol)`)
    INTERVALS.forEach(([id, text, pgText, fields, toPostgres], i) => {
      const d = res.rows[i].d
      check(d !== null && typeof d === 'object' && typeof d.toPostgres === 'function',
        `interval '${pgText}' (${protocol} protocol) parsed as ${show(d)}, not a PostgresInterval`)
      checkSame({ ...d }, fields, `interval '${pgText}' (${protocol} protocol) as a PostgresInterval`)
      checkSame(d.toPostgres(), toPostgres, `interval '${pgText}' (${protocol} protocol): toPostgres()`)
    })
  }

  // The PostgresInterval objects back as parameters (node-pg sends toPostgres()).
  for (const row of res.rows) {
    await named(`INSERT of a PostgresInterval (${row.d.toPostgres()}) as $2`,
      client.query(`INSERT INTO ${INTERVAL_TABLE} (id, d) VALUES ($1, $2)`, [row.id + 100, row.d]))
  }
  res = await client.query({ text: `SELECT id - 100, d FROM ${INTERVAL_TABLE} WHERE id > $1 ORDER BY id`, values: [100], rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows.map(([id, d]) => [Number(id), d]), wantText, 'PostgresIntervals written back as $2, read as text')
  await client.query(`DELETE FROM ${INTERVAL_TABLE} WHERE id > 100`)

  res = await client.query(`SELECT id FROM ${INTERVAL_TABLE} ORDER BY d, id`)
  checkSame(res.rows.map((r) => r.id), INTERVAL_ORDER, 'ORDER BY d, id')
  res = await client.query({ text: `SELECT id, d FROM ${INTERVAL_TABLE} WHERE d = '30 days' ORDER BY id`, rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows, [['9', '1 mon'], ['11', '720:00:00']], "WHERE d = '30 days'")
  for (const [param, ids] of [['30 days', [5, 6, 7, 10]], ['1 mon', [5, 6, 7, 10]], ['1 day 02:03:04', [1, 5, 6, 7, 8, 9, 10, 11]],
    ['-3 days 00:00:01', [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]]]) {
    res = await named(`WHERE d > $1 with '${param}'`, client.query(`SELECT id FROM ${INTERVAL_TABLE} WHERE d > $1 ORDER BY id`, [param]))
    checkSame(res.rows.map((r) => r.id), ids, `WHERE d > $1 with '${param}'`)
  }
  res = await client.query(`SELECT id FROM ${INTERVAL_TABLE} WHERE d = $1 ORDER BY id`, ['720:00:00'])
  checkSame(res.rows.map((r) => r.id), [9, 11], "WHERE d = $1 with '720:00:00'")
  await client.query(`DROP TABLE ${INTERVAL_TABLE}`)
}

// Pending: an interval's time part at the ends of its 8-byte microsecond count.
async function pendingIntervalLargeTime(client) {
  const table = `${INTERVAL_TABLE}_large`
  await client.query(`DROP TABLE IF EXISTS ${table}`)
  await client.query(`CREATE TABLE ${table} (id integer PRIMARY KEY, d interval)`)
  const values = [[1, '2562047788:00:54.775807', { hours: 2562047788, seconds: 54, milliseconds: 775.807 }],
    [2, '-2562047788:00:54.775807', { hours: -2562047788, seconds: -54, milliseconds: -775.807 }]]
  for (const [id, text] of values) {
    await named(`INSERT of interval '${text}' as $2`, client.query(`INSERT INTO ${table} (id, d) VALUES ($1, $2)`, [id, text]))
  }
  let res = await client.query({ text: `SELECT id, d FROM ${table} ORDER BY d`, rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows, [['2', values[1][1]], ['1', values[0][1]]], 'intervals of +/-(2^63 - 1) microseconds as text')
  res = await client.query(`SELECT id, d FROM ${table} ORDER BY id`)
  checkSame(res.rows.map((r) => ({ ...r.d })), values.map(([, , fields]) => fields), 'intervals of +/-(2^63 - 1) microseconds as PostgresIntervals')
  await client.query(`DROP TABLE ${table}`)
}

const JSON_TABLE = `${TABLE}_json`

// psycopg_check.py's JSON_VALUES as JS values (the integer past 64 bits is
// Number.MAX_SAFE_INTEGER here: JSON.parse gives doubles): nested objects and
// arrays, é and an emoji, quotes, backslashes, control characters, empty object
// and array, JSON null (id 6), SQL NULL (id 7), a bare string.
const JSON_NULL_ID = 6
const SQL_NULL_ID = 7
const JSON_VALUES = [
  [1, { name: 'widget', tags: ['a', 'b'], dims: { w: 1.5, h: [2, { deep: [true, false, null] }] } }],
  [2, { s: 'café 😀 "quoted" back\\slash\nnewline\ttab /', é: 'ключ', '😀': [] }],
  [3, { big: Number.MAX_SAFE_INTEGER, neg: -7, half: 1.5, zero: 0 }],
  [4, {}],
  [5, []],
  [JSON_NULL_ID, null],
  [SQL_NULL_ID, null],
  [8, 'just a string'],
  [9, [1, 'two', [3], { four: 4.25 }, true, null]],
]

// psycopg_check.py's JSON_TEXTS: [id, the text written, the text jsonb gives back].
const JSON_TEXTS = [
  [10, '{"n": [1.50, 12345678901234567890.123, 1e3, -0, 0.1E1, 1.0e-3]}',
    '{"n": [1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]}'],
  [11, '{"k": 1, "bb": {"y": 1, "x": 2}, "é": "e", "b": true, "a": [], "k": 2}',
    '{"a": [], "b": true, "k": 2, "bb": {"x": 2, "y": 1}, "é": "e"}'],
  [12, String.raw` [ "\u00e9\ud83d\ude00", "\"\\\n\u001f\/" ,{ } ,[ ], null ] `,
    String.raw`["é😀", "\"\\\n\u001f/", {}, [], null]`],
  [13, '{"name":"widget","tags":["a","b"],"dims":{"w":1.5,"h":[2,{"deep":[true,false,null]}]}}',
    '{"dims": {"h": [2, {"deep": [true, false, null]}], "w": 1.5}, "name": "widget", "tags": ["a", "b"]}'],
  [14, '"café 😀 ключ"', '"café 😀 ключ"'],
  [15, 'null', 'null'],
  [16, '{}', '{}'],
  [17, '[ ]', '[]'],
  [18, '{\n  "x" : [ 1 ,\t2 ],\r\n  "s": "line\\nbreak" }', '{"s": "line\\nbreak", "x": [1, 2]}'],
]

// JSON_TABLE with JSON_VALUES and JSON_TEXTS written through $n parameters: JSON
// text, as applications send it (JSON.stringify; rows 1 and 2 as plain objects,
// which node-pg stringifies itself; arrays must be stringified, node-pg would send
// them as PostgreSQL arrays).
async function jsonTable(client) {
  await client.query(`DROP TABLE IF EXISTS ${JSON_TABLE}`)
  await client.query(`CREATE TABLE ${JSON_TABLE} (id integer PRIMARY KEY, data jsonb, doc json)`)
  const insert = `INSERT INTO ${JSON_TABLE} (id, data, doc) VALUES ($1, $2, $3)`
  for (const [id, value] of JSON_VALUES) {
    const param = id === SQL_NULL_ID ? null : id <= 2 ? value : JSON.stringify(value)
    await named(`INSERT of JSON value ${id}`, client.query(insert, [id, param, param]))
  }
  for (const [id, text] of JSON_TEXTS) await named(`INSERT of JSON text ${id}`, client.query(insert, [id, text, text]))
}

// json and jsonb read back: parsed values, raw text (simple and extended
// protocol), JSON null and SQL NULL, operators with $n keys, jsonb_build_object.
async function caseJson(client) {
  await jsonTable(client)
  let res = await client.query(`SELECT id, data, doc FROM ${JSON_TABLE} WHERE id < $1 ORDER BY id`, [10])
  checkSame(res.rows, JSON_VALUES.map(([id, value]) => ({ id, data: value, doc: value })), 'JSON values read back parsed')
  checkSame(res.fields.map((f) => f.dataTypeID), [23, 3802, 114], 'json/jsonb type OIDs in RowDescription')
  res = await client.query(`SELECT id, data IS NULL AS sql_null, jsonb_typeof(data) AS t FROM ${JSON_TABLE} WHERE id IN (${JSON_NULL_ID}, ${SQL_NULL_ID}) ORDER BY id`)
  checkSame(res.rows, [{ id: JSON_NULL_ID, sql_null: false, t: 'null' }, { id: SQL_NULL_ID, sql_null: true, t: null }],
    'JSON null and SQL NULL')

  const wantText = JSON_TEXTS.map(([id, text, canonical]) => [id, canonical, text])
  const wantParsed = JSON_TEXTS.map(([id, text, canonical]) => [id, JSON.parse(canonical), JSON.parse(text)])
  const query = `SELECT id, data, doc FROM ${JSON_TABLE} WHERE id >= 10 ORDER BY id`
  res = await client.query({ text: query, rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows.map(([id, ...rest]) => [Number(id), ...rest]), wantText, 'JSON texts as raw text (simple protocol)')
  res = await client.query({ text: `${query.replace('>= 10', '>= $1')}`, values: [10], rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows.map(([id, ...rest]) => [Number(id), ...rest]), wantText, 'JSON texts as raw text (extended protocol)')
  res = await client.query({ text: query, rowMode: 'array' })
  checkSame(res.rows, wantParsed, 'JSON texts parsed (simple protocol)')
  res = await client.query({ text: `${query.replace('>= 10', '>= $1')}`, values: [10], rowMode: 'array' })
  checkSame(res.rows, wantParsed, 'JSON texts parsed (extended protocol)')

  res = await client.query(`SELECT data ->> $1 AS name, data -> 'dims' -> 'h' AS h, data #>> '{dims,h,1,deep,0}' AS deep, data ? $2 AS has, doc ->> 'name' AS doc_name FROM ${JSON_TABLE} WHERE id = $3`,
    ['name', 'tags', 1])
  checkSame(res.rows, [{ name: 'widget', h: [2, { deep: [true, false, null] }], deep: 'true', has: true, doc_name: 'widget' }],
    '->> $1, ->, #>>, ? $2 on row 1')
  res = await client.query(`SELECT data ->> 's' AS s, data ->> $1 AS e FROM ${JSON_TABLE} WHERE id = $2`, ['é', 2])
  checkSame(res.rows, [{ s: JSON_VALUES[1][1].s, e: 'ключ' }], "->> 's', ->> $1 on row 2")
  res = await client.query({ text: `SELECT data -> 'n', data #>> '{n,1}' FROM ${JSON_TABLE} WHERE id = $1`, values: [10], rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows, [['[1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]', '12345678901234567890.123']], "-> 'n', #>> '{n,1}' on row 10 as text")
  res = await client.query(`SELECT id FROM ${JSON_TABLE} WHERE data ->> $1 = $2 OR data ? $3 ORDER BY id`, ['name', 'widget', 'big'])
  checkSame(res.rows.map((r) => r.id), [1, 3, 13], 'WHERE data ->> $1 = $2 OR data ? $3')
  res = await client.query(`SELECT jsonb_build_object('id', id, 'name', data ->> 'name', 'tags', data -> 'tags', 'n', $1::int, 'none', NULL) AS o FROM ${JSON_TABLE} WHERE id = $2`, [7, 1])
  checkSame(res.rows, [{ o: { id: 1, name: 'widget', tags: ['a', 'b'], n: 7, none: null } }], 'jsonb_build_object')
  res = await client.query({ text: `SELECT jsonb_build_object('n', $1::int, 'id', id, 'name', data ->> 'name') FROM ${JSON_TABLE} WHERE id = $2`, values: [7, 13], rowMode: 'array', types: RAW_TEXT })
  checkSame(res.rows, [['{"n": 7, "id": 13, "name": "widget"}']], 'jsonb_build_object as text')
  await client.query(`DROP TABLE ${JSON_TABLE}`)
}

// json parameters the server types itself (node-pg declares none):
// $1::jsonb and $2::json, data @> $1 (a JSON.stringify string and a plain object),
// data || $1 in an UPDATE.
async function caseJsonParameters(client) {
  await jsonTable(client)
  for (const [id, text, canonical] of JSON_TEXTS) {
    const res = await named(`SELECT $1::jsonb, $2::json with ${JSON.stringify(text)}`,
      client.query({ text: 'SELECT $1::jsonb, $2::json', values: [text, text], rowMode: 'array', types: RAW_TEXT }))
    checkSame(res.rows, [[canonical, text]], `SELECT $1::jsonb, $2::json with row ${id}'s text`)
  }
  const probes = [
    [JSON.stringify({ tags: ['b'] }), [1, 13]], [{ dims: { w: 1.5 } }, [1, 13]], [JSON.stringify({ k: 2 }), [11]],
    [JSON.stringify({}), [1, 2, 3, 4, 10, 11, 13, 16, 18]], [JSON.stringify([null]), [9, 12]],
  ]
  for (const [probe, ids] of probes) {
    const res = await named(`WHERE data @> $1 with ${show(probe)}`,
      client.query(`SELECT id FROM ${JSON_TABLE} WHERE data @> $1 ORDER BY id`, [probe]))
    checkSame(res.rows.map((r) => r.id), ids, `WHERE data @> $1 with ${show(probe)}`)
  }
  const res = await named('UPDATE ... SET data = data || $1', client.query(
    `UPDATE ${JSON_TABLE} SET data = data || $1 WHERE id = $2 RETURNING data`, [JSON.stringify({ added: [1, 'x'], é: null }), 4]))
  checkSame(res.rows, [{ data: { added: [1, 'x'], é: null } }], 'UPDATE SET data = data || $1 RETURNING data')
  await client.query(`DROP TABLE ${JSON_TABLE}`)
}

// BEGIN/ROLLBACK, the fields of a 23505, an error inside a transaction.
async function caseTransactions(client) {
  await client.query(`DROP TABLE IF EXISTS ${KV}`)
  await client.query(`CREATE TABLE ${KV} (id integer PRIMARY KEY, name varchar(20) NOT NULL, qty integer DEFAULT 1)`)
  await client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2)`, [1, 'one'])

  await client.query('BEGIN')
  await client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2)`, [10, 'rolled back'])
  check(await count(client, KV, 'id = 10') === 1, 'transaction does not see its own insert')
  await client.query('ROLLBACK')
  check(await count(client, KV, 'id = 10') === 0, 'BEGIN/INSERT/ROLLBACK left the row')

  await client.query('BEGIN')
  await client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2)`, [11, 'in txn'])
  const dup2 = await errorOf(client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2)`, [1, 'dup']), 'duplicate key inside a transaction')
  checkCode(dup2, '23505', 'duplicate key inside a transaction')
  const aborted = await errorOf(client.query('SELECT 1'), 'a query after an error in a transaction')
  checkCode(aborted, '25P02', 'a query after an error in a transaction')
  const abortedExt = await errorOf(client.query('SELECT $1::int', [1]), 'an extended-protocol query after an error in a transaction')
  checkCode(abortedExt, '25P02', 'an extended-protocol query after an error in a transaction')
  const rb = await client.query('ROLLBACK')
  check(rb.command === 'ROLLBACK', `ROLLBACK of a failed transaction reported ${rb.command}`)
  check(await count(client, KV, 'id = 11') === 0, 'the failed transaction left its insert')

  const zero = await errorOf(client.query('SELECT 1 / $1::int AS v', [0]), 'division by zero')
  checkCode(zero, '22012', 'SELECT 1 / $1::int with 0')

  const dup = await errorOf(client.query(`INSERT INTO ${KV} (id, name) VALUES ($1, $2)`, [1, 'again']), 'duplicate key insert')
  const fields = (e) => ({ code: e.code, severity: e.severity, message: e.message, detail: e.detail, schema: e.schema, table: e.table, constraint: e.constraint })
  checkSame(fields(dup), {
    code: '23505', severity: 'ERROR',
    message: `duplicate key value violates unique constraint "${KV}_pkey"`,
    detail: 'Key (id)=(1) already exists.', schema: 'public', table: KV, constraint: `${KV}_pkey`,
  }, '23505 error fields')
  check(await count(client, KV) === 1, 'row count wrong after the duplicate key error')
  await client.query(`DROP TABLE ${KV}`)
}

const COPY_TABLE = `${TABLE}_copy`

const copyTextValue = (v) => (v === null ? '\\N'
  : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r'))
const csvValue = (v) => (v === null ? ''
  : (v === '' || /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v))
const COPY_TEXT = ROWS_TEXT.map(([id, values]) => [String(id), ...values].map(copyTextValue).join('\t') + '\n').join('')
const COPY_CSV = ROWS_TEXT.map(([id, values]) => [String(id), ...values].map(csvValue).join(',') + '\n').join('')

async function copyIn(client, sql, data, chunk = 7) {
  const stream = client.query(copyStreams.from(sql))
  const bytes = Buffer.from(data)
  // In small pieces, so that rows and characters straddle CopyData messages.
  const pieces = []
  for (let i = 0; i < bytes.length; i += chunk) pieces.push(bytes.subarray(i, i + chunk))
  await pipeline(Readable.from(pieces), stream)
  return stream.rowCount
}

async function copyOut(client, sql) {
  const chunks = []
  const stream = client.query(copyStreams.to(sql))
  for await (const chunk of stream) chunks.push(chunk)
  return { text: Buffer.concat(chunks).toString('utf8'), rowCount: stream.rowCount }
}

// pg-copy-streams: COPY FROM STDIN (text, CSV) and COPY TO STDOUT; a bad line.
async function caseCopy(client) {
  await client.query(`DROP TABLE IF EXISTS ${COPY_TABLE}`)
  await client.query(`CREATE TABLE ${COPY_TABLE} (id integer PRIMARY KEY, ${COLUMN_DEFS})`)
  const selectAll = `SELECT id, ${NAMES} FROM ${COPY_TABLE} ORDER BY id`

  let n = await copyIn(client, `COPY ${COPY_TABLE} (id, ${NAMES}) FROM STDIN`, COPY_TEXT)
  check(n === ROWS.length, `COPY FROM STDIN (text) reported ${n} rows`)
  let res = await client.query({ text: selectAll, rowMode: 'array' })
  checkSame(res.rows, ROWS.map(([id, values]) => [id, ...values]), 'rows after COPY FROM STDIN (text)')
  let out = await copyOut(client, `COPY (${selectAll}) TO STDOUT`)
  checkSame(out.text, COPY_TEXT, 'COPY (SELECT ...) TO STDOUT (text)')
  check(out.rowCount === ROWS.length, `COPY TO STDOUT reported ${out.rowCount} rows`)
  out = await copyOut(client, `COPY ${COPY_TABLE} TO STDOUT WITH (FORMAT csv)`)
  checkSame(out.text.split('\n').sort().join('\n'), COPY_CSV.split('\n').sort().join('\n'), 'COPY table TO STDOUT (csv)')

  await client.query(`DELETE FROM ${COPY_TABLE}`)
  n = await copyIn(client, `COPY ${COPY_TABLE} FROM STDIN WITH (FORMAT csv)`, COPY_CSV)
  check(n === ROWS.length, `COPY FROM STDIN (csv) reported ${n} rows`)
  res = await client.query({ text: selectAll, rowMode: 'array' })
  checkSame(res.rows, ROWS.map(([id, values]) => [id, ...values]), 'rows after COPY FROM STDIN (csv)')
  out = await copyOut(client, `COPY (${selectAll}) TO STDOUT WITH CSV HEADER`)
  checkSame(out.text, `id,${NAMES.replace(/ /g, '')}\n` + COPY_CSV, 'COPY (SELECT ...) TO STDOUT WITH CSV HEADER')

  // A bad line fails the whole load and leaves nothing; the session stays usable.
  await client.query(`DELETE FROM ${COPY_TABLE}`)
  let err = await errorOf(copyIn(client, `COPY ${COPY_TABLE} (id, c_integer) FROM STDIN`, '1\t10\n2\t20\n3\tthirty\n'), 'COPY FROM STDIN of a bad line (text)')
  checkCode(err, '22P02', 'COPY FROM STDIN (text) with "thirty" for an integer')
  const csvErr = await errorOf(copyIn(client, `COPY ${COPY_TABLE} (id, c_integer) FROM STDIN WITH (FORMAT csv)`, '1,10\n2,20\n3,20,30\n'), 'COPY FROM STDIN of a bad line (csv)')
  checkCode(csvErr, '22P04', 'COPY FROM STDIN (csv) with an extra column')
  check(await count(client, COPY_TABLE) === 0, 'a failed COPY left rows behind')
  // The line goes in the error's Where field (node-pg's err.where), not the message.
  checkSame({ message: err.message, where: err.where },
    { message: 'invalid input syntax for type integer: "thirty"', where: `COPY ${COPY_TABLE}, line 3, column c_integer: "thirty"` },
    'COPY FROM STDIN (text) bad line error')
  checkSame({ message: csvErr.message, where: csvErr.where },
    { message: 'extra data after last expected column', where: `COPY ${COPY_TABLE}, line 3: "3,20,30"` },
    'COPY FROM STDIN (csv) bad line error')
  await client.query(`DROP TABLE ${COPY_TABLE}`)
}

const CURSOR_TABLE = `${TABLE}_cursor`

// pg-cursor: Parse/Bind/Describe to a named portal with Flush (no Sync), then
// Execute with a 100-row limit until the portal is done, inside a transaction.
async function caseCursor(client) {
  await client.query(`DROP TABLE IF EXISTS ${CURSOR_TABLE}`)
  await client.query(`CREATE TABLE ${CURSOR_TABLE} (id integer PRIMARY KEY, v bigint, t text)`)
  await client.query(`INSERT INTO ${CURSOR_TABLE} SELECT i, i::bigint * 1000000000, 'row ' || i FROM generate_series(1, 3000) AS s(i)`)
  await client.query('BEGIN')
  const cursor = client.query(new Cursor(`SELECT id, v, t FROM ${CURSOR_TABLE} WHERE id > $1 ORDER BY id`, [500]))
  const batches = []
  const seen = []
  for (;;) {
    const rows = await cursor.read(100)
    if (rows.length === 0) break
    batches.push(rows.length)
    seen.push(...rows)
    check(batches.length <= 100, 'pg-cursor read more than 100 batches')
  }
  await cursor.close()
  check(seen.length === 2500, `pg-cursor read ${seen.length} rows in ${batches.length} batches, want 2500`)
  check(batches.every((b) => b === 100), `pg-cursor batch sizes ${batches.join(',')}`)
  checkSame(seen[0], { id: 501, v: '501000000000', t: 'row 501' }, 'pg-cursor first row')
  checkSame(seen[2499], { id: 3000, v: '3000000000000', t: 'row 3000' }, 'pg-cursor last row')
  check(seen.every((r, i) => r.id === 501 + i), 'pg-cursor rows out of order')

  // A cursor closed before its end, then more work in the same transaction.
  const partial = client.query(new Cursor(`SELECT id FROM ${CURSOR_TABLE} ORDER BY id`))
  checkSame(await partial.read(3), [{ id: 1 }, { id: 2 }, { id: 3 }], 'pg-cursor first 3 rows')
  await partial.close()
  check(await count(client, CURSOR_TABLE) === 3000, 'count after closing a cursor early')
  await client.query('COMMIT')
  await client.query(`DROP TABLE ${CURSOR_TABLE}`)
}

// Runs SLOW_QUERY on `client`, calling `start` once it is sent; the error it
// ends with and after how many ms. Fails if it completes or runs past 15 s.
async function cancelled(client, what, start, limit = 15000) {
  let timer
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`${what}: the query was still running after ${limit} ms`)), limit)
  })
  const t0 = Date.now()
  try {
    const running = client.query(SLOW_QUERY).then(
      (res) => { throw new CheckFailed(`${what}: ${SLOW_QUERY} completed (${res.rowCount} row) after ${Date.now() - t0} ms instead of failing with 57014`) },
      (err) => err)
    start()
    const err = await Promise.race([running, guard])
    return { err, ms: Date.now() - t0 }
  } finally {
    clearTimeout(timer)
  }
}

// statement_timeout and a CancelRequest both end a running query with 57014,
// the connection usable after.
async function caseStatementTimeout(client) {
  // The SET right before the query, as an application sets a timeout for one query.
  await client.query("SET statement_timeout = '200ms'")
  let { err, ms } = await cancelled(client, "SET statement_timeout = '200ms' then a query of ~20 s", () => {})
  checkSame({ code: err.code, message: err.message }, { code: '57014', message: 'canceling statement due to statement timeout' },
    `statement_timeout 200ms (query ran ${ms} ms)`)
  await client.query('RESET statement_timeout')
  checkSame((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'a query after the statement timeout')
}

async function caseCancelRequest(client) {
  let err, ms

  // node-pg's client.cancel(client, query): a CancelRequest with the BackendKeyData
  // key on a new connection. (pg's query_timeout only stops waiting: it sends no
  // CancelRequest and the query keeps running on the server.)
  check(Number.isInteger(client.processID) && Number.isInteger(client.secretKey),
    `no BackendKeyData: processID ${client.processID}, secretKey ${client.secretKey}`)
  const canceller = new pg.Client({ host: args.host, port: args.port, user: 'postgres', database: 'postgres' })
  canceller.on('error', () => {})
  ;({ err, ms } = await cancelled(client, 'CancelRequest', () => {
    setTimeout(() => {
      const noDeprecation = process.noDeprecation
      process.noDeprecation = true // client.cancel() reads the deprecated client.activeQuery
      canceller.cancel(client, client._activeQuery)
      process.noDeprecation = noDeprecation
    }, 300)
  }))
  checkSame({ code: err.code, message: err.message }, { code: '57014', message: 'canceling statement due to user request' },
    `CancelRequest after 300 ms (query ran ${ms} ms)`)
  checkSame((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'a query after the cancel')
}

const CASES = [
  ['types', caseTypes],
  ['parameters', caseParams],
  ['wide-numeric', caseWideNumeric],
  ['statements', caseStatements],
  ['uuid-key', caseUuidKey],
  ['interval', caseInterval],
  ['array-columns', caseArrayColumns],
  ['json', caseJson],
  ['json-parameters', caseJsonParameters],
  ['transactions', caseTransactions],
  ['copy', caseCopy],
  ['cursor', caseCursor],
  ['statement-timeout', caseStatementTimeout],
  ['cancel-request', caseCancelRequest],
]

// The cases ShardForge does not pass yet: run with --pending (and by
// `run --postgres`); compat-tests/README.md lists them.
const PENDING = [
  ['row-description', pendingRowDescription],
  ['interval-large-time', pendingIntervalLargeTime],
]

function describeError(e) {
  if (e instanceof CheckFailed) return e.message
  if (e instanceof pg.DatabaseError) return `${e.constructor.name} (SQLSTATE ${e.code}): ${e.message}`
  return `${e && e.constructor ? e.constructor.name : 'error'}: ${e && e.message}`
}

async function main() {
  ({ values: args } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5432' },
      'keep-going': { type: 'boolean', default: false },
      pending: { type: 'boolean', default: false },
    },
  }))
  args.port = Number(args.port)
  const failures = []
  for (const [name, run] of args.pending ? [...CASES, ...PENDING] : CASES) {
    let client
    try {
      // Each case on its own connection, so that one left broken does not hide the next.
      client = await connect()
      await run(client)
    } catch (e) {
      failures.push(`${name}: ${describeError(e)}`)
      if (!args['keep-going']) break
    } finally {
      if (client) await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))])
    }
  }
  if (failures.length === 0) {
    try {
      const client = await connect()
      await client.query(`DROP TABLE IF EXISTS ${TABLE}`)
      await client.end()
    } catch (e) {
      failures.push(`cleanup: ${describeError(e)}`)
    }
  }
  if (failures.length) {
    console.log(`FAIL node-pg: ${failures.join(' | ')}`)
    return 1
  }
  console.log(`PASS node-pg ${PG_VERSION}: ${COLUMNS.length} types x ${ROWS.length} rows ($n text parameters, `
    + "simple+extended protocol, rowMode 'array', RowDescription), $1::numeric/int/bigint, numeric(30,10), named statements, uuid key, "
    + `interval (${INTERVALS.length} values, text and PostgresInterval, ORDER BY, d > $1), `
    + 'json/jsonb (parsed and raw text, ->>, ?, jsonb_build_object), RETURNING, '
    + 'ON CONFLICT DO UPDATE, rollback, 23505 fields, 25P02, pg-copy-streams COPY in/out (text+csv, bad lines), '
    + 'pg-cursor 100-row batches, statement_timeout and CancelRequest (57014), array columns')
  return 0
}

process.exitCode = await main()
// A cancelled or timed-out connection can keep the event loop alive.
setTimeout(() => process.exit(process.exitCode), 100).unref()
