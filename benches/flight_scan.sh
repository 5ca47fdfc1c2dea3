#!/usr/bin/env bash
# Scan throughput of Arrow Flight between two nodes, against the same scan
# on the node that holds the rows.
#
#   benches/flight_scan.sh [--rows N]
#
# Node 1 (a one-node cluster) loads N rows; node 2 then joins with no shard
# group of its own, so every scan it runs reads all rows from node 1 over
# Arrow Flight. Prints the best of 3 timings of the same aggregates on both
# nodes, with rows/s and MB/s of the columns read. Uses the release build.
set -euo pipefail
ROWS=1000000
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        *) echo "usage: $0 [--rows N]" >&2; exit 1 ;;
    esac
done
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardforge-target}"
cargo build --release --bin shardforge >&2
BIN="$CARGO_TARGET_DIR/release/shardforge"
DIR=$(mktemp -d /tmp/shardforge-flight-XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

start() { # name pg rpc http [join]
    local name=$1; shift
    "$BIN" start --data-dir "$DIR/$name" --pg-addr "127.0.0.1:$1" --rpc-addr "127.0.0.1:$2" \
        --http-addr "127.0.0.1:$3" ${4:+--join "$4"} >"$DIR/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 600); do curl -sf "127.0.0.1:$3/health" >/dev/null && return; sleep 0.1; done
    echo "node $name did not start" >&2; cat "$DIR/$name.log" >&2; exit 1
}
sql() { psql -X -q -At -h 127.0.0.1 -p "$1" -U postgres -c "$2"; }
best_ms() { # port query
    local best=""
    for _ in 1 2 3; do
        local t0 t1
        t0=$(date +%s%N); sql "$1" "$2" >/dev/null; t1=$(date +%s%N)
        local ms=$(( (t1 - t0) / 1000000 ))
        [[ -z "$best" || $ms -lt $best ]] && best=$ms
    done
    echo "$best"
}

start n1 45433 47433 48433
sql 45433 "CREATE TABLE big (k bigint PRIMARY KEY, v bigint NOT NULL, s text NOT NULL)"
sql 45433 "INSERT INTO big SELECT g, g % 1000, 'row ' || g FROM generate_series(1, $ROWS) g"
start n2 45434 47434 48434 127.0.0.1:47433
# Bytes of the columns a scan reads (Arrow: 8 per bigint, text bytes + 4 offset).
mb=$(sql 45433 "SELECT round((8 * count(*) + sum(octet_length(s) + 4)) / 1e6, 1) FROM big")
printf "%-44s %12s %12s %10s %10s\n" "query ($ROWS rows, columns v and s: $mb MB)" "node 1 (ms)" "node 2 (ms)" "rows/s" "MB/s"
# The third query's filter (1% of the rows pass) runs on node 1, so only the
# matching rows cross the network.
for q in "SELECT count(*) FROM big" "SELECT sum(v), max(s) FROM big" "SELECT sum(v), max(s) FROM big WHERE v < 10"; do
    local_ms=$(best_ms 45433 "$q")
    remote_ms=$(best_ms 45434 "$q")
    rate=$(( ROWS * 1000 / (remote_ms > 0 ? remote_ms : 1) ))
    mbs=$(awk -v mb="$mb" -v ms="$remote_ms" 'BEGIN { printf "%.0f", mb * 1000 / (ms > 0 ? ms : 1) }')
    [[ "$q" == *count* ]] && mbs="-"
    printf "%-44s %12s %12s %10s %10s\n" "$q" "$local_ms" "$remote_ms" "$rate" "$mbs"
done
