#!/usr/bin/env bash
# The two commands of the README, usable on a fresh machine:
#   ./shardforge.sh start [flags]   build (release) and start a one-node ShardForge
#   ./shardforge.sh test            run the test suite
# Anything else is passed to the shardforge binary (release build).
#
# RocksDB's Rust bindings are generated with bindgen, which loads libclang's C
# API at build time (through the clang-sys crate). This script installs
# Debian's libclang-dev when no such library is found. All builds share one
# target directory outside the checkout (CARGO_TARGET_DIR).
#
# Sourced (`. shardforge.sh`), it only defines its functions: the detection
# check in tests/libclang_detection.sh does that.
set -euo pipefail

# Where clang-sys looks for libclang on Linux when LIBCLANG_PATH is unset and
# no llvm-config is on the PATH (its build/common.rs search list, less the
# directories Debian never uses). Overridable so that a test can point the
# detection at fake library directories.
LIBCLANG_SEARCH_DIRS=${LIBCLANG_SEARCH_DIRS:-"/usr/lib/llvm-*/lib /usr/local/llvm*/lib /usr/lib/*-linux-gnu /usr/lib /usr/lib64 /usr/local/lib /usr/local/lib64"}

# True when clang-sys will find a libclang to load: LIBCLANG_PATH (trusted as
# the user's own choice), or a file named as clang-sys matches (libclang.so,
# libclang-N.so, libclang.so.N, libclang-N.so.N) in one of the directories
# above. libclang-cpp.so.N (Debian's libclang-cpp14, which ships with LLVM's
# runtime) matches the same globs but is the C++ library, which clang-sys
# skips: it must not count, or the build fails 30 minutes in.
have_libclang() {
  [ -n "${LIBCLANG_PATH:-}" ] && return 0
  local dir lib
  for dir in $LIBCLANG_SEARCH_DIRS; do
    for lib in "$dir"/libclang.so "$dir"/libclang-*.so "$dir"/libclang.so.* "$dir"/libclang-*.so.*; do
      [ -e "$lib" ] || continue
      case "${lib##*/}" in
        libclang-cpp*) continue ;;
      esac
      return 0
    done
  done
  return 1
}

ensure_build_deps() {
  have_libclang && return 0
  echo "shardforge.sh: installing libclang-dev through apt-get (RocksDB's bindings are generated with bindgen, which needs libclang)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev >/dev/null
  if ! have_libclang; then
    echo "shardforge.sh: libclang-dev is installed but no libclang.so was found; set LIBCLANG_PATH to the directory that holds it" >&2
    exit 1
  fi
}

# A cold build compiles RocksDB's C++ and DataFusion: say so before cargo
# starts, so that a newcomer does not take the silence for a hang.
warn_if_cold() {
  local profile=$1 what=$2 binary="$CARGO_TARGET_DIR/$1/shardforge"
  [ -e "$binary" ] && return 0
  echo "shardforge.sh: first $profile build: compiling RocksDB (C++) and DataFusion takes $what on 2 cores; later builds take seconds" >&2
}

[[ "${BASH_SOURCE[0]}" != "$0" ]] && return 0

cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shardforge-target}"

cmd="${1:-}"
case "$cmd" in
  test)
    shift
    ensure_build_deps
    warn_if_cold debug "about 40 minutes"
    exec cargo test "$@"
    ;;
  "")
    echo "usage: ./shardforge.sh start [flags] | ./shardforge.sh test" >&2
    exit 2
    ;;
  *)
    ensure_build_deps
    warn_if_cold release "about an hour"
    exec cargo run --release --bin shardforge -- "$@"
    ;;
esac
