#!/usr/bin/env bash
# Checks shardforge.sh's libclang detection against fake library directories:
# a wrong answer either fails a cold build 30 minutes in (libclang-cpp taken
# for libclang, issue #15) or installs a package for nothing. Run by .ci/run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../shardforge.sh
. "$repo/shardforge.sh"
set +e  # the cases below expect have_libclang to fail

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
passed=0 failed=0

# check NAME EXPECTED FILE...: a directory holding FILEs (empty files suffice:
# the detection, like clang-sys's search, goes by name).
check() {
  local name=$1 expected=$2 dir="$root/$1"
  shift 2
  mkdir -p "$dir"
  local f
  for f in "$@"; do touch "$dir/$f"; done
  local got=no
  LIBCLANG_SEARCH_DIRS="$dir" have_libclang && got=yes
  if [ "$got" = "$expected" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: have_libclang said $got, expected $expected (files: ${*:-none})"
  fi
}

unset LIBCLANG_PATH
check only-cpp no libclang-cpp.so.14
check only-cpp-unversioned no libclang-cpp.so
check only-so-1 yes libclang.so.1
check both yes libclang-cpp.so.14 libclang.so.1
check none no
check dev-symlink yes libclang.so
check versioned-name yes libclang-14.so.14.0.6
check unrelated no libclang-common.txt libLLVM-14.so.1

# LIBCLANG_PATH is the user's choice and is trusted as given.
LIBCLANG_PATH=/nonexistent check libclang-path-set yes

# A glob in the list expands as in the real search list (/usr/lib/llvm-*/lib).
mkdir -p "$root/llvm-14/lib" "$root/llvm-15/lib"
touch "$root/llvm-14/lib/libclang-cpp.so.14" "$root/llvm-15/lib/libclang.so.1"
got=no; LIBCLANG_SEARCH_DIRS="$root/llvm-*/lib" have_libclang && got=yes
if [ "$got" = yes ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL glob-dirs: said $got"; fi

echo "libclang detection: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
