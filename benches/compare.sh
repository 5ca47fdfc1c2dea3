#!/usr/bin/env bash
# Runs the same workloads on ShardForge and on a local PostgreSQL 15 and prints
# both figures side by side. See benches/README.md.
#
#   benches/compare.sh [--rows N] [--duration SECONDS] [--nodes N] [--only postgres|shardforge] [--keep]
#
# Both servers are started here, on spare loopback ports, with data in one temp
# dir, and are stopped on exit (trap), however the script ends. With --nodes N
# (N > 1) ShardForge also runs as an N-node cluster, in a third column.
set -euo pipefail

ROWS=1000000          # rows loaded by (c) and scanned by (d); (b) reads among them
DURATION=10           # seconds per pgbench run, (a) and (b)
INSERT_CLIENTS=4      # pgbench clients for (a)
NODES=1               # also run ShardForge as a cluster of this many nodes
ONLY=""               # run only one side
KEEP=0                # keep the temp dir (logs, pgbench logs) afterwards
STATEMENT_TIMEOUT=1800  # seconds before giving up on one psql statement

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --nodes) NODES="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 1 ;;
    esac
done
[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -gt 0 ]] || { echo "--rows must be a positive integer" >&2; exit 1; }
[[ "$NODES" =~ ^[0-9]+$ && "$NODES" -gt 0 ]] || { echo "--nodes must be a positive integer" >&2; exit 1; }
[[ -z "$ONLY" || "$ONLY" == postgres || "$ONLY" == shardforge ]] || { echo "--only postgres|shardforge" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardforge-target}"
# SHARDFORGE_BIN overrides the binary (e.g. a debug build for a quick check of the script).
SHARDFORGE_BIN="${SHARDFORGE_BIN:-$CARGO_TARGET_DIR/release/shardforge}"
PG_BIN="/usr/lib/postgresql/15/bin"

log() { echo "== $*" >&2; }

# ---------------------------------------------------------------- setup

WORK="$(mktemp -d /tmp/shardforge-bench.XXXXXX)"
chmod 755 "$WORK"
PG_PID_DIR=""
SF_PIDS=()

stop_shardforge() {
    local pid
    for pid in "${SF_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        log "stopping ShardForge (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        wait "$pid" 2>/dev/null
    done
    SF_PIDS=()
}

cleanup() {
    set +e
    stop_shardforge
    if [[ -n "$PG_PID_DIR" && -f "$PG_PID_DIR/postmaster.pid" ]]; then
        log "stopping PostgreSQL"
        as_pg "$PG_BIN/pg_ctl" -D "$PG_PID_DIR" -m fast -w stop >/dev/null
    fi
    if [[ "$KEEP" == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: run its commands as the postgres OS user.
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then
        local cmd; printf -v cmd '%q ' "$@"
        su postgres -s /bin/bash -c "cd /tmp && $cmd"
    else
        "$@"
    fi
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
spare_port() {
    local p
    while true; do
        # Below Linux's ephemeral range (32768 up): a port in it may be
        # taken by an outgoing connection (pgbench's, a node's) between
        # this check and the server binding it.
        p=$(( 20000 + RANDOM % 12000 ))
        if [[ "$USED_PORTS" != *" $p "* ]] && port_is_free "$p"; then
            USED_PORTS+="$p "
            echo "$p"
            return
        fi
    done
}

http_ok() {  # GET /health answers 200
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null
}

start_postgres() {
    if [[ ! -x "$PG_BIN/postgres" ]]; then
        log "installing postgresql-15"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    fi
    PG_PORT=$(spare_port)
    local data="$WORK/pg-data"
    mkdir -p "$data"
    [[ "$(id -u)" == 0 ]] && chown postgres: "$data"
    log "PostgreSQL 15: initdb in $data, port $PG_PORT"
    as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/pg-initdb.log" 2>&1
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
        -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$data -c max_connections=50" \
        start >/dev/null
    PG_PID_DIR="$data"
}

start_shardforge() {  # nodes; sets SF_PORT
    local nodes=$1 i rpc=() pg=() http=() join=()
    if [[ ! -x "$SHARDFORGE_BIN" ]]; then
        log "building $SHARDFORGE_BIN (cargo build --release; a cold build takes ~40 minutes)"
        (cd "$REPO" && CARGO_TARGET_DIR="$CARGO_TARGET_DIR" cargo build --release --bin shardforge)
    fi
    for i in $(seq "$nodes"); do
        pg+=("$(spare_port)"); rpc+=("$(spare_port)"); http+=("$(spare_port)")
    done
    if [[ $nodes -gt 1 ]]; then
        join=(--join "$(printf '127.0.0.1:%s,' "${rpc[@]}" | sed 's/,$//')")
    fi
    for i in $(seq 0 $((nodes - 1))); do
        local data="$WORK/sf$nodes-data$i"
        log "ShardForge node $((i + 1)) of $nodes: pg port ${pg[i]}, data in $data"
        "$SHARDFORGE_BIN" start --data-dir "$data" --pg-addr "127.0.0.1:${pg[i]}" \
            --rpc-addr "127.0.0.1:${rpc[i]}" --http-addr "127.0.0.1:${http[i]}" "${join[@]}" \
            >"$WORK/sf$nodes-$i.log" 2>&1 &
        SF_PIDS+=($!)
    done
    if [[ $nodes -gt 1 ]]; then
        for _ in $(seq 1 120); do
            "$SHARDFORGE_BIN" init --host "127.0.0.1:${rpc[0]}" >/dev/null 2>&1 && break
            sleep 0.5
        done
    fi
    for i in $(seq 0 $((nodes - 1))); do
        local up=0
        for _ in $(seq 1 600); do
            http_ok "${http[i]}" && { up=1; break; }
            kill -0 "${SF_PIDS[i]}" 2>/dev/null || break
            sleep 0.1
        done
        if [[ $up == 0 ]]; then
            echo "ShardForge node $((i + 1)) did not become healthy; log:" >&2
            tail -50 "$WORK/sf$nodes-$i.log" >&2
            return 1
        fi
    done
    # A cluster is measured through node 2, which is not the meta node: its
    # commits take the cluster's timestamp and most rows are on other nodes.
    SF_PORT=${pg[$((nodes > 1 ? 1 : 0))]}
}

# ---------------------------------------------------------------- workloads
# Each function takes a target name and a port, prints one number (or "error")
# to stdout; details go to stderr and to files under $WORK.

psql_at() {  # port sql...
    local port=$1; shift
    local args=()
    for sql in "$@"; do args+=(-c "$sql"); done
    timeout "$STATEMENT_TIMEOUT" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "${args[@]}"
}

# Milliseconds taken by one statement, from psql's \timing.
timed_ms() {  # port sql
    local out
    out=$(psql_at "$1" '\timing on' "$2") || return 1
    grep -E '^Time: ' <<<"$out" | tail -1 | sed -E 's/^Time: ([0-9.]+) ms.*/\1/'
}

setup_tables() {  # port
    psql_at "$1" \
        "DROP TABLE IF EXISTS bench_insert" \
        "DROP TABLE IF EXISTS t" \
        "DROP TABLE IF EXISTS copied" \
        "CREATE TABLE bench_insert (id bigint PRIMARY KEY, v integer NOT NULL, s text)" \
        "CREATE TABLE copied (k bigint PRIMARY KEY, v integer NOT NULL, s text)" \
        "CREATE TABLE t (k bigint PRIMARY KEY, v integer NOT NULL, s text)" >/dev/null 2>"$WORK/setup.err" \
        || { cat "$WORK/setup.err" >&2; return 1; }
}

# (a) single-row INSERT throughput, autocommit: transactions per second.
bench_insert() {  # name port
    local script="$WORK/insert.sql" out
    cat >"$script" <<'EOF'
\set id random(1, 9000000000000000000)
\set v random(1, 1000)
INSERT INTO bench_insert (id, v, s) VALUES (:id, :v, 'payload');
EOF
    out=$(pgbench -n -f "$script" -c "$INSERT_CLIENTS" -j "$INSERT_CLIENTS" -T "$DURATION" \
        -h 127.0.0.1 -p "$2" -U postgres postgres 2>&1) || { echo "$out" | tail -5 >&2; echo error; return; }
    echo "$out" >"$WORK/$1-insert.pgbench"
    grep -E '^tps = ' <<<"$out" | head -1 | sed -E 's/^tps = ([0-9.]+).*/\1/' | awk '{ printf "%.1f\n", $1 }'
}

# (c) INSERT ... SELECT of $ROWS rows: seconds. If the target does not accept
# generate_series, load the same rows with multi-row VALUES statements of
# 1000 rows each, and say so.
bench_load() {  # name port
    local sql="INSERT INTO t SELECT i, i % 100, 'x' || i FROM generate_series(1, $ROWS) AS s(i)" ms
    rm -f "$WORK/$1-load.note"
    if ! ms=$(timed_ms "$2" "$sql" 2>"$WORK/$1-load.err"); then
        log "$1: INSERT ... SELECT generate_series failed ($(head -1 "$WORK/$1-load.err")); loading with VALUES batches"
        psql_at "$2" "TRUNCATE t" >/dev/null 2>&1 || psql_at "$2" "DELETE FROM t" >/dev/null
        awk -v n="$ROWS" 'BEGIN {
            print "\\timing on"
            for (i = 1; i <= n; i += 1000) {
                line = "INSERT INTO t VALUES "
                for (j = i; j < i + 1000 && j <= n; j++)
                    line = line (j > i ? "," : "") "(" j "," j % 100 ",'"'"'x" j "'"'"')"
                print line ";"
            }
        }' >"$WORK/load-values.sql"
        local out
        out=$(timeout "$STATEMENT_TIMEOUT" psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$2" -U postgres \
            -d postgres -f "$WORK/load-values.sql") || { echo error; return; }
        ms=$(grep -E '^Time: ' <<<"$out" | sed -E 's/^Time: ([0-9.]+) ms.*/\1/' | awk '{ s += $1 } END { print s }')
        echo " (VALUES batches)" >"$WORK/$1-load.note"
    fi
    local count
    count=$(psql_at "$2" "SELECT count(*) FROM t") || count="?"
    [[ "$count" == "$ROWS" ]] || log "$1: t holds $count rows, expected $ROWS"
    awk -v ms="$ms" 'BEGIN { printf "%.3f\n", ms / 1000 }'
}

# (g) COPY ... FROM STDIN of $ROWS rows of t's shape, sent by psql's \copy
# from a text file (as a load is run): rows per second, and the server's
# peak memory after it.
bench_copy() {  # name port
    local data="$WORK/copy.tsv" start end
    [[ -f "$data" ]] || awk -v n="$ROWS" 'BEGIN { for (i = 1; i <= n; i++) printf "%d\t%d\tx%d\n", i, i % 100, i }' >"$data"
    start=$(date +%s%N)
    timeout "$STATEMENT_TIMEOUT" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$2" -U postgres -d postgres \
        -c "\\copy copied from '$data'" >/dev/null 2>"$WORK/$1-copy.err" \
        || { head -3 "$WORK/$1-copy.err" >&2; echo error; return; }
    end=$(date +%s%N)
    local count
    count=$(psql_at "$2" "SELECT count(*) FROM copied") || count="?"
    [[ "$count" == "$ROWS" ]] || log "$1: copied holds $count rows, expected $ROWS"
    awk -v n="$ROWS" -v ns=$((end - start)) 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'
}

# (b) point SELECT by primary key, one client: p50 and p99 latency in ms,
# from pgbench's per-transaction log (third field: latency in microseconds).
bench_point_select() {  # name port -> "p50 p99"
    local script="$WORK/select.sql" prefix="$WORK/$1-select"
    cat >"$script" <<EOF
\\set k random(1, $ROWS)
SELECT k, v, s FROM t WHERE k = :k;
EOF
    rm -f "$prefix".*
    if ! (cd "$WORK" && pgbench -n -f "$script" -c 1 -T "$DURATION" --log --log-prefix="$prefix" \
        -h 127.0.0.1 -p "$2" -U postgres postgres >"$WORK/$1-select.pgbench" 2>&1); then
        tail -5 "$WORK/$1-select.pgbench" >&2
        echo "error error"
        return
    fi
    cat "$prefix".* | awk '{ print $3 }' | sort -n | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "error error"; exit }
            p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1]
            printf "%.3f %.3f\n", p50 / 1000, p99 / 1000
        }'
}

# (e) a transfer: one transaction updating two random rows of t (mostly in
# two shard groups), $INSERT_CLIENTS clients: transactions per second.
# Conflicts (40001) are retried, as an application would.
bench_transfer() {  # name port
    local script="$WORK/transfer.sql" out
    cat >"$script" <<EOF
\\set a random(1, $ROWS)
\\set b random(1, $ROWS)
BEGIN;
UPDATE t SET v = v - 1 WHERE k = :a;
UPDATE t SET v = v + 1 WHERE k = :b;
COMMIT;
EOF
    out=$(pgbench -n -f "$script" -c "$INSERT_CLIENTS" -j "$INSERT_CLIENTS" -T "$DURATION" --max-tries=10 \
        -h 127.0.0.1 -p "$2" -U postgres postgres 2>&1) || { echo "$out" | tail -5 >&2; echo error; return; }
    echo "$out" >"$WORK/$1-transfer.pgbench"
    grep -E '^tps = ' <<<"$out" | head -1 | sed -E 's/^tps = ([0-9.]+).*/\1/' | awk '{ printf "%.1f\n", $1 }'
}

# (f) pgbench -S's workload: one point SELECT per transaction, prepared, 8
# clients. On t, not pgbench_accounts: `pgbench -i` cannot load ShardForge
# yet (it loads with COPY ... FREEZE).
bench_select_only() {  # name port
    local script="$WORK/select-only.sql" out
    cat >"$script" <<EOF
\\set k random(1, $ROWS)
SELECT v FROM t WHERE k = :k;
EOF
    out=$(pgbench -n -f "$script" -M prepared -c 8 -j 2 -T "$DURATION" \
        -h 127.0.0.1 -p "$2" -U postgres postgres 2>&1) || { echo "$out" | tail -5 >&2; echo error; return; }
    echo "$out" >"$WORK/$1-select-only.pgbench"
    grep -E '^tps = ' <<<"$out" | head -1 | sed -E 's/^tps = ([0-9.]+).*/\1/' | awk '{ printf "%.1f\n", $1 }'
}

# (d) full-scan aggregate over t: best of 3, in ms.
bench_aggregate() {  # name port
    local sql="SELECT k % 10, count(*), sum(v), avg(v) FROM t GROUP BY 1" best="" ms
    for _ in 1 2 3; do
        ms=$(timed_ms "$2" "$sql" 2>>"$WORK/$1-aggregate.err") || { head -3 "$WORK/$1-aggregate.err" >&2; echo error; return; }
        if [[ -z "$best" ]] || awk -v a="$ms" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$ms; fi
    done
    echo "$best"
}

# The largest peak resident memory (VmHWM) of the ShardForge processes, in
# MiB ("-" for PostgreSQL, whose load ran in a backend that has exited).
peak_mib() {  # name
    [[ $1 == pg ]] && { echo -; return; }
    local pid kib max=0
    for pid in "${SF_PIDS[@]}"; do
        kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
        [[ -n "$kib" && "$kib" -gt "$max" ]] && max=$kib
    done
    echo $(( max / 1024 ))
}

declare -A INSERT_TPS P50 P99 LOAD_S AGG_MS LOAD_NOTE TRANSFER_TPS PEAK_MIB SELECT_TPS COPY_RPS COPY_PEAK_MIB

failed_all() {  # name
    INSERT_TPS[$1]=error; P50[$1]=error; P99[$1]=error; LOAD_S[$1]=error; AGG_MS[$1]=error
    PEAK_MIB[$1]=error
    TRANSFER_TPS[$1]=error; SELECT_TPS[$1]=error; COPY_RPS[$1]=error; COPY_PEAK_MIB[$1]=error
}

run_all() {  # name port
    local name=$1 port=$2
    log "$name: setup"
    if ! setup_tables "$port"; then
        failed_all "$name"
        return
    fi
    log "$name: (a) single-row INSERT, $INSERT_CLIENTS clients, ${DURATION}s"
    INSERT_TPS[$name]=$(bench_insert "$name" "$port")
    log "$name: (c) INSERT ... SELECT of $ROWS rows"
    LOAD_S[$name]=$(bench_load "$name" "$port")
    [[ -f "$WORK/$name-load.note" ]] && LOAD_NOTE[$name]=$(cat "$WORK/$name-load.note")
    PEAK_MIB[$name]=$(peak_mib "$name")
    log "$name: (b) point SELECT by primary key, 1 client, ${DURATION}s"
    read -r "P50[$name]" "P99[$name]" < <(bench_point_select "$name" "$port")
    log "$name: (d) GROUP BY aggregate over $ROWS rows, best of 3"
    AGG_MS[$name]=$(bench_aggregate "$name" "$port")
    log "$name: (e) two-row transfer, $INSERT_CLIENTS clients, ${DURATION}s"
    TRANSFER_TPS[$name]=$(bench_transfer "$name" "$port")
    log "$name: (f) pgbench -S's point SELECT, prepared, 8 clients, ${DURATION}s"
    SELECT_TPS[$name]=$(bench_select_only "$name" "$port")
    log "$name: (g) COPY FROM STDIN of $ROWS rows"
    COPY_RPS[$name]=$(bench_copy "$name" "$port")
    COPY_PEAK_MIB[$name]=$(peak_mib "$name")
}

# ---------------------------------------------------------------- main

if [[ "$ONLY" != shardforge ]]; then
    start_postgres
    run_all pg "$PG_PORT"
fi
SIDES=(pg sf)
if [[ "$ONLY" != postgres ]]; then
    if start_shardforge 1; then
        run_all sf "$SF_PORT"
    else
        failed_all sf
    fi
    stop_shardforge
    if [[ $NODES -gt 1 ]]; then
        SIDES+=(cluster)
        if start_shardforge "$NODES"; then
            run_all cluster "$SF_PORT"
        else
            failed_all cluster
        fi
        stop_shardforge
    fi
fi

ratio() {  # shardforge postgres
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
row() {  # label key-array better
    local label=$1 arr=$2 better=$3 side line
    local -n values=$arr
    printf -v line '%-54s' "$label"
    for side in "${SIDES[@]}"; do printf -v line '%s %16s' "$line" "${values[$side]:--}"; done
    for side in "${SIDES[@]:1}"; do printf -v line '%s %10s' "$line" "$(ratio "${values[$side]:-}" "${values[pg]:-}")"; done
    echo "$line   $better"
}

CLUSTER_NAME="ShardForge ${NODES}n"
header() {  # pg sf cluster ratio-sf ratio-cluster
    local line
    printf -v line '%-54s %16s %16s' "$1" "$2" "$3"
    [[ $NODES -gt 1 ]] && printf -v line '%s %16s' "$line" "$4"
    printf -v line '%s %10s' "$line" "$5"
    [[ $NODES -gt 1 ]] && printf -v line '%s %10s' "$line" "$6"
    echo "$line"
}

echo
echo "ShardForge vs PostgreSQL 15 — $ROWS rows, ${DURATION}s pgbench runs, $(nproc) CPUs"
[[ $NODES -gt 1 ]] && echo "($CLUSTER_NAME: a $NODES-node cluster on this machine, measured through node 2)"
header "workload" "PostgreSQL 15" "ShardForge" "$CLUSTER_NAME" "SF / PG" "${NODES}n / PG"
header "--------" "-------------" "----------" "----------" "-------" "-------"
row "(a) INSERT 1 row, autocommit, $INSERT_CLIENTS clients (TPS)" INSERT_TPS "higher is better"
row "(b) point SELECT by PK, p50 latency (ms)" P50 "lower is better"
row "(b) point SELECT by PK, p99 latency (ms)" P99 "lower is better"
row "(c) INSERT ... SELECT $ROWS rows (s)" LOAD_S "lower is better${LOAD_NOTE[sf]:+; ShardForge loaded with VALUES batches: no generate_series}"
row "(c) peak memory of the server by then (MiB)" PEAK_MIB "lower is better; the load is one transaction"
row "(d) GROUP BY k % 10 over $ROWS rows, best of 3 (ms)" AGG_MS "lower is better"
row "(e) transfer: UPDATE 2 rows in 1 txn, $INSERT_CLIENTS clients (TPS)" TRANSFER_TPS "higher is better"
row "(f) point SELECT, prepared, 8 clients (pgbench -S, TPS)" SELECT_TPS "higher is better"
row "(g) COPY FROM STDIN $ROWS rows (rows/s)" COPY_RPS "higher is better"
row "(g) peak memory of the server by then (MiB)" COPY_PEAK_MIB "lower is better; the load is one transaction"
