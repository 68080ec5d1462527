#!/usr/bin/env bash
# The whole test suite: unit tests, root-only tests (real namespaces, netlink,
# nftables), e2e tests on the real binaries, then the unit tests again under
# ASan/UBSan. Expects `make build` to have run (the Makefile does that).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
JOBS=${JOBS:-$(nproc)}
fail=0

# The ASan/UBSan tree compiles while the other tests run. Why: on the 2-core
# CI machine that build is a third of the run, and the root and e2e tests
# mostly wait on daemons, namespaces and packets. The compiler runs as
# SCHED_IDLE, so it only gets CPU time the tests leave unused and cannot slow
# them down (nice 19 would still take a share).
asan_log="$BUILD/asan-build.log"
mkdir -p "$BUILD"
idle=(nice -n 19)
if chrt --idle 0 true 2>/dev/null; then idle=(chrt --idle 0); fi
# Its own process group, so an interrupted run stops the whole build with it.
setsid -w "${idle[@]}" make --no-print-directory build-asan ASAN_BUILD="$ASAN_BUILD" JOBS="$JOBS" \
  >"$asan_log" 2>&1 &
asan_pid=$!
trap 'kill -- -"$asan_pid" 2>/dev/null' EXIT

echo "=== unit tests"
ctest --test-dir "$BUILD" -L unit --output-on-failure -j "$JOBS" || fail=1

if [ "$(id -u)" -eq 0 ]; then
  echo "=== root-only tests"
  ctest --test-dir "$BUILD" -L root --output-on-failure || fail=1
  echo "=== e2e tests"
  ctest --test-dir "$BUILD" -L e2e --output-on-failure || fail=1
else
  echo "=== root-only and e2e tests SKIPPED: they need root (namespaces, netlink, nftables)"
fi

echo "=== unit tests under ASan/UBSan"
if wait "$asan_pid"; then
  ctest --test-dir "$ASAN_BUILD" -L unit --output-on-failure -j "$JOBS" || fail=1
else
  echo "ASan/UBSan build FAILED; its log ($asan_log):"
  tail -n 100 "$asan_log"
  fail=1
fi
trap - EXIT

if [ $fail -ne 0 ]; then
  echo "TEST SUITE FAILED"
  exit 1
fi
echo "TEST SUITE PASSED"
