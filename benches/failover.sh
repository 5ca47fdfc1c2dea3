#!/usr/bin/env bash
# Failover time of replicated shard groups: how long writes stop when a
# node that leads shard groups is killed.
#
#   benches/failover.sh [--kills N] [--debug]
#
# Starts a 3-node cluster (release build), creates a table with rows in
# every shard group, then N times: SIGKILL node 2 or node 3 (in turn; the
# writes go through node 1, which stays up), and time from the kill to
# the first successful UPDATE of every row through node 1 (retried every
# 20 ms; until the dead node's groups have new leaders it fails with
# 40001). The node is started again and catches up before the next kill.
# Prints each time, the median and the worst. --debug uses the debug build
# (failover is mostly election timeouts, so the times are close).
set -euo pipefail
KILLS=10
PROFILE=release
while [[ $# -gt 0 ]]; do
    case "$1" in
        --kills) KILLS="$2"; shift 2 ;;
        --debug) PROFILE=debug; shift ;;
        *) echo "usage: $0 [--kills N] [--debug]" >&2; exit 1 ;;
    esac
done
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardforge-target}"
# SHARDFORGE_BIN overrides the binary (as in compare.sh); else it is built.
if [[ -n "${SHARDFORGE_BIN:-}" ]]; then
    BIN="$SHARDFORGE_BIN"
else
    if [[ $PROFILE == release ]]; then cargo build --release --bin shardforge >&2; else cargo build --bin shardforge >&2; fi
    BIN="$CARGO_TARGET_DIR/$PROFILE/shardforge"
fi
DIR=$(mktemp -d /tmp/shardforge-failover-XXXX)
# Ports below Linux's ephemeral range (32768-60999): a peer reconnecting
# to a killed node could otherwise connect to itself from the very port
# the node listens on, and the node could not start again.
JOIN=127.0.0.1:27531,127.0.0.1:27532,127.0.0.1:27533
declare -A pids
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

start() { # node number 1..3, in the background
    local n=$1
    "$BIN" start --data-dir "$DIR/n$n" --pg-addr "127.0.0.1:2553$n" --rpc-addr "127.0.0.1:2753$n" \
        --http-addr "127.0.0.1:2853$n" --join "$JOIN" >>"$DIR/n$n.log" 2>&1 &
    pids[$n]=$!
}
healthy() {
    for _ in $(seq 600); do curl -sf -m 1 "127.0.0.1:2853$1/health" >/dev/null && return; sleep 0.1; done
    echo "node $1 did not start" >&2; cat "$DIR/n$1.log" >&2; exit 1
}
sql() { psql -X -q -At -h 127.0.0.1 -p "2553$1" -U postgres -c "$2"; }

for n in 1 2 3; do start "$n"; done
for _ in $(seq 100); do "$BIN" init --host 127.0.0.1:27531 >/dev/null 2>&1 && break; sleep 0.2; done
for n in 1 2 3; do healthy "$n"; done
sql 1 "CREATE TABLE probe (id int PRIMARY KEY, v bigint NOT NULL)"
sql 1 "INSERT INTO probe SELECT g, 0 FROM generate_series(1, 64) g"

caught_up() { # every group has 3 replicas with no lag and a leader
    for _ in $(seq 300); do
        [[ "$(sql 1 "SELECT count(*) = 24 AND max(lag) = 0 AND count(*) FILTER (WHERE is_leader) = 8 FROM shardforge_replicas WHERE shard_id IS NOT NULL" 2>/dev/null)" == t ]] && return
        sleep 0.1
    done
    echo "the cluster did not catch up" >&2; exit 1
}

times=()
for i in $(seq "$KILLS"); do
    caught_up
    victim=$(( 2 + i % 2 ))
    led=$(sql 1 "SELECT count(*) FROM shardforge_replicas WHERE node_id = $victim AND is_leader AND shard_id IS NOT NULL")
    t0=$(date +%s%N)
    kill -9 "${pids[$victim]}"
    wait "${pids[$victim]}" 2>/dev/null || true
    until sql 1 "UPDATE probe SET v = v + 1" 2>/dev/null; do sleep 0.02; done
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    times+=("$ms")
    echo "kill $i: node $victim (leading $led of 8 groups): writes resumed after $ms ms"
    start "$victim"
    healthy "$victim"
done
sorted=($(printf "%s\n" "${times[@]}" | sort -n))
n=${#sorted[@]}
if (( n % 2 )); then median=${sorted[$((n / 2))]}; else median=$(( (sorted[n / 2 - 1] + sorted[n / 2]) / 2 )); fi
echo "failover over $n kills: median $median ms, worst ${sorted[$((n - 1))]} ms"
