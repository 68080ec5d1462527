#!/usr/bin/env bash
# The whole test suite: unit tests, root-only tests (real namespaces, netlink,
# nftables), e2e tests on the real binaries, then the sanitizer runs: the unit
# tests under ASan/UBSan, the threaded parts' unit tests under TSan, and the
# CNI plugin's fuzzers for a bounded time. Expects `make build` to have run
# (the Makefile does that).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export ASAN_BUILD=${ASAN_BUILD:-build-asan}
export TSAN_BUILD=${TSAN_BUILD:-build-tsan}
export FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
export JOBS=${JOBS:-$(nproc)}
fail=0
failed_summary=""

# Runs one ctest suite; on failure remembers which tests failed, so the end of
# the run names them (CI shows only the end of a long log).
suite() {
  local title=$1 dir=$2
  shift 2
  ctest --test-dir "$dir" "$@" && return 0
  fail=1
  failed_summary+="$title:"$'\n'
  failed_summary+="$(sed 's/^/  /' "$dir/Testing/Temporary/LastTestsFailed.log" 2>/dev/null)"$'\n'
  return 1
}

# --- The sanitizer trees compile while the other tests run.
# Why: on the 2-core CI machine the ASan build alone is a third of the run; the
# root and e2e tests mostly wait on daemons, namespaces and packets. The
# compiler runs as SCHED_IDLE, so it only gets CPU time the tests leave
# unused and cannot slow them down (nice 19 would still take a share). The
# trees build one after the other (each with -j JOBS), not side by side:
# together they would only share the same idle time and hold more memory.
# Each tree's log and exit status go to $BUILD/<tree>-build.{log,rc}.
mkdir -p "$BUILD"
idle=(nice -n 19)
if chrt --idle 0 true 2>/dev/null; then idle=(chrt --idle 0); fi
rm -f "$BUILD"/{asan,tsan,fuzz}-build.rc
# Its own process group, so an interrupted run stops all of it.
setsid -w "${idle[@]}" bash -c '
  for tree in asan tsan fuzz; do
    make --no-print-directory "build-$tree" >"$0/$tree-build.log" 2>&1
    echo $? >"$0/$tree-build.rc"
  done' "$BUILD" &
trees_pid=$!
trap 'kill -- -"$trees_pid" 2>/dev/null' EXIT

# Runs a suite in a sanitizer tree once that tree has built, else shows why
# it did not.
run_in_tree() {
  local tree=$1 title=$2
  shift 2
  echo "=== $title"
  if [ "$(cat "$BUILD/$tree-build.rc" 2>/dev/null)" = 0 ]; then
    "$@" || fail=1
  else
    failed_summary+="$title: the $tree tree did not build"$'\n'
    echo "$tree build FAILED; the end of its log ($BUILD/$tree-build.log):"
    tail -n 100 "$BUILD/$tree-build.log"
    fail=1
  fi
}

echo "=== unit tests"
suite "unit tests" "$BUILD" -L unit --output-on-failure -j "$JOBS"

if [ "$(id -u)" -eq 0 ]; then
  echo "=== root-only tests"
  suite "root-only tests" "$BUILD" -L root --output-on-failure
  echo "=== e2e tests"
  suite "e2e tests" "$BUILD" -L e2e --output-on-failure
else
  echo "=== root-only and e2e tests SKIPPED: they need root (namespaces, netlink, nftables)"
fi

echo "=== waiting for the sanitizer builds (logs: $BUILD/{asan,tsan,fuzz}-build.log)"
wait "$trees_pid"
trap - EXIT

run_in_tree asan "unit tests under ASan/UBSan" \
  suite "unit tests under ASan/UBSan" "$ASAN_BUILD" -L unit --output-on-failure -j "$JOBS"
run_in_tree tsan "threaded unit tests under TSan" \
  suite "threaded unit tests under TSan" "$TSAN_BUILD" -L unit --output-on-failure -j "$JOBS"
fuzz_report() {
  rm -rf "$FUZZ_BUILD"/tests/fuzz/runs  # only this run's summaries below
  suite "fuzzers" "$FUZZ_BUILD" -L fuzz --output-on-failure -j "$JOBS"
  local rc=$?
  cat "$FUZZ_BUILD"/tests/fuzz/runs/*/summary 2>/dev/null
  return $rc
}
run_in_tree fuzz "fuzzers of the CNI plugin's parsers, ${TERWAY_FUZZ_SECONDS:-30} s each" fuzz_report

if [ $fail -ne 0 ]; then
  echo "TEST SUITE FAILED; what failed, by stage:"
  printf '%s' "$failed_summary"
  exit 1
fi
echo "TEST SUITE PASSED"
