#!/usr/bin/env bash
# psql check: psql's \l, \dt, \d TABLE, \dn, \dt+, \l+, \df, \du, \dT, \di, \d INDEX and \d+ TABLE run catalog queries
# (pg_catalog, format_type, regclass casts, ...). Creates a table, runs them, and checks
# that psql exits 0, prints no ERROR line, names the table, its columns and their declared
# types, and lists nothing but the public schema (no internal ones). Then \copy loads a CSV
# file and writes one back, as PostgreSQL writes it.
#
# Usage: compat-tests/psql_check.sh [HOST] [PORT]   (default 127.0.0.1 5432)
# Prints `PASS psql ...` or `FAIL psql: ...`; exit status 0 on PASS.
set -euo pipefail

host=${1:-127.0.0.1}
port=${2:-5432}
table=compat_psql
psql_cmd=(psql -X -h "$host" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 --no-password)

fail() {
    echo "FAIL psql: $*"
    exit 1
}

# Set up with plain SQL first, so that a failure here is not blamed on the meta-commands.
setup=$("${psql_cmd[@]}" -q 2>&1 <<SQL
DROP TABLE IF EXISTS $table;
CREATE TABLE $table (
    id integer PRIMARY KEY,
    name varchar(20) NOT NULL,
    price numeric(10,2) DEFAULT 0,
    created timestamp,
    code char(3),
    doc jsonb,
    raw json,
    span interval,
    note text
);
SQL
) || fail "could not create $table: $setup"

status=0
output=$("${psql_cmd[@]}" -c '\l' -c '\dt' -c "\\d $table" -c '\dn' -c '\dt+' -c '\l+' -c '\df' \
    -c '\du' -c '\dT' -c '\di' -c "\\d ${table}_pkey" -c "\\d+ $table" -c '\db' -c '\do' -c '\dc' 2>&1) || status=$?
"${psql_cmd[@]}" -q -c "DROP TABLE IF EXISTS $table" >/dev/null 2>&1 || true

show_output() {
    echo "--- psql output ---"
    echo "$output"
    echo "-------------------"
}

if [[ $status -ne 0 ]]; then
    show_output
    fail "psql exited with status $status"
fi
if grep -q 'ERROR' <<<"$output"; then
    show_output
    fail "psql printed an ERROR"
fi
if grep -q 'shardforge_internal' <<<"$output"; then
    show_output
    fail "psql lists the internal schema"
fi

# Each pattern must appear somewhere in the output (extended regex).
expect=(
    'postgres[[:space:]]*\|[[:space:]]*postgres[[:space:]]*\|[[:space:]]*UTF8[[:space:]]*\|'  # \l: the database
    "public[[:space:]]*\\|[[:space:]]*$table[[:space:]]*\\|[[:space:]]*table"  # \dt row
    "Table \"public\\.$table\""                  # \d title
    'id[[:space:]]*\|[[:space:]]*integer'
    'name[[:space:]]*\|[[:space:]]*character varying\(20\)'
    'price[[:space:]]*\|[[:space:]]*numeric\(10,2\)[[:space:]]*\|[[:space:]]*\|[[:space:]]*\|[[:space:]]*0'  # with its default
    'created[[:space:]]*\|[[:space:]]*timestamp without time zone'
    'code[[:space:]]*\|[[:space:]]*character\(3\)'
    'doc[[:space:]]*\|[[:space:]]*jsonb'
    'raw[[:space:]]*\|[[:space:]]*json'
    'span[[:space:]]*\|[[:space:]]*interval'
    'note[[:space:]]*\|[[:space:]]*text'
    'not null'                                   # \d: NOT NULL columns
    'Indexes:'                                   # \d: the primary key's index
    "\"${table}_pkey\" PRIMARY KEY, btree \\(id\\)"
    "public[[:space:]]*\\|[[:space:]]*${table}_pkey[[:space:]]*\\|[[:space:]]*index[[:space:]]*\\|[[:space:]]*postgres[[:space:]]*\\|[[:space:]]*$table"  # \di row
    'public[[:space:]]*\|'                       # \dn: the public schema
    "public[[:space:]]*\\|[[:space:]]*$table[[:space:]]*\\|[[:space:]]*table[[:space:]]*\\|[[:space:]]*postgres[[:space:]]*\\|[[:space:]]*permanent"  # \dt+ row
    'List of functions'                          # \df
    'List of roles'                              # \du, and its one role
    'postgres[[:space:]]*\|[[:space:]]*Superuser, Create role, Create DB'
    'List of data types'                         # \dT
    "Index \"public\\.${table}_pkey\""          # \d INDEX: its title and column
    'id[[:space:]]*\|[[:space:]]*integer[[:space:]]*\|[[:space:]]*yes[[:space:]]*\|[[:space:]]*id'
    "primary key, btree, for table \"public\\.$table\""
    'Storage[[:space:]]*\|[[:space:]]*Compression'  # \d+ TABLE
    'Access method: heap'
    'pg_default[[:space:]]*\|[[:space:]]*postgres'  # \db: the built-in tablespaces
    'List of operators'                          # \do
    'List of conversions'                        # \dc
)
for pattern in "${expect[@]}"; do
    if ! grep -Eq -- "$pattern" <<<"$output"; then
        show_output
        fail "output does not match /$pattern/"
    fi
done

# \copy: a CSV file in (a header, quotes, an empty value read as NULL) and out again.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf 'id,name,note\n1,"Smith, Ann",\n2,Bo,"said ""hi"""\n' >"$dir/in.csv"
copied=$("${psql_cmd[@]}" -q 2>&1 <<SQL
CREATE TABLE $table (id integer PRIMARY KEY, name varchar(20) NOT NULL, note text);
\copy $table from '$dir/in.csv' with (format csv, header)
\copy (SELECT id, name, note, note IS NULL FROM $table ORDER BY id) to '$dir/out.csv' with (format csv)
DROP TABLE $table;
SQL
) || fail "\\copy: $copied"
expected=$'1,"Smith, Ann",,t\n2,Bo,"said ""hi""",f'
[[ "$(cat "$dir/out.csv")" == "$expected" ]] || fail "\\copy round trip wrote: $(cat "$dir/out.csv")"
echo "PASS psql: \\l, \\dt, \\d $table, \\dn, \\dt+, \\l+, \\df, \\du, \\dT, \\di, \\d INDEX, \\d+ TABLE, \\db, \\do, \\dc, \\copy in and out"
