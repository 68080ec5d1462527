#!/usr/bin/env bash
# The whole test suite: unit tests, root-only tests (real namespaces, netlink,
# nftables), e2e tests on the real binaries, then the unit tests again under
# ASan/UBSan. Expects `make build` to have run (the Makefile does that).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc)}
fail=0

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
make --no-print-directory test-asan || fail=1

if [ $fail -ne 0 ]; then
  echo "TEST SUITE FAILED"
  exit 1
fi
echo "TEST SUITE PASSED"
