#!/usr/bin/env bash
# Runs every benchmark of the project on the emulated cloud and writes their
# machine-readable results to bench/results/*.json (the tables in
# docs/benchmarks.md quote them). Needs root: the worlds are namespaces.
# Expects `make build` to have run (the Makefile does that).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench/results}
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (vpcsim worlds and pods are network namespaces)" >&2
  exit 1
fi
mkdir -p "$OUT"
echo "=== terwayd pool: allocation latency, API calls per pod, RSS"
"$BUILD/bench/terwayd_pool_bench" --out "$OUT/terwayd_pool.json" >/dev/null
echo "=== CNI ADD/DEL vs ptp+host-local, pod-to-pod TCP throughput vs a bare veth pair"
"$BUILD/bench/cni_datapath_bench" --out "$OUT/cni_datapath.json" --pods 100 --iperf-seconds 5 --rounds 3 >/dev/null
echo "=== NetworkPolicy: compile/apply at 1k and 10k policies, traffic with vs without, label change to enforcement"
"$BUILD/bench/policy_bench" --out "$OUT/policy.json" >/dev/null
echo "bench: results in $OUT (see docs/benchmarks.md for how to read them)"
