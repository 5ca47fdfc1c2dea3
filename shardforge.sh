#!/usr/bin/env bash
# The two commands of the README, usable on a fresh machine:
#   ./shardforge.sh start [flags]   build (release) and start a one-node ShardForge
#   ./shardforge.sh test            run the test suite
# Anything else is passed to the shardforge binary (release build).
#
# RocksDB's Rust bindings are generated with bindgen, which needs libclang;
# this script installs Debian's libclang-dev when it is missing. All builds
# share one target directory outside the checkout (CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardforge-target}"

have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null ||
    compgen -G '/usr/lib/*/libclang*.so*' >/dev/null
}

ensure_build_deps() {
  have_libclang && return 0
  echo "shardforge.sh: installing libclang-dev (needed to build RocksDB's bindings)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev >/dev/null
}

cmd="${1:-}"
case "$cmd" in
  test)
    shift
    ensure_build_deps
    exec cargo test "$@"
    ;;
  "")
    echo "usage: ./shardforge.sh start [flags] | ./shardforge.sh test" >&2
    exit 2
    ;;
  *)
    ensure_build_deps
    exec cargo run --release --bin shardforge -- "$@"
    ;;
esac
