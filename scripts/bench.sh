#!/usr/bin/env bash
# `make bench`: every benchmark of the project, on the emulated cloud, one
# after another (they would disturb each other's figures side by side).
# Writes machine-readable results to bench/results/*.json and rewrites the
# tables of docs/benchmarks.md from them (bench_report). Needs root: the
# worlds and pods are network namespaces.
#
# Cleans up after itself: each benchmark runs in its own process group; if
# the run is interrupted or fails, the benchmark is killed (the daemons it
# started die with it: they are started with a parent-death signal) and the
# namespaces it created are deleted: only those named after its pid (world
# namespaces "e<pid in hex>...", the policy benchmark's "twb[ncs]<pid>x..."),
# so nobody else's namespaces are touched; and the private bpf filesystems of
# the datapath benchmark's terwayds (/tmp/twbench-bpffs-<pid>.*) are unmounted.
#
#   scripts/bench.sh                 every benchmark (make bench)
#   scripts/bench.sh cni_datapath    only the named ones (terwayd_pool,
#                                    cni_datapath, policy, dual_stack); the other tables
#                                    keep the figures of their last run, and
#                                    the page says which ones were re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench/results}
DOC=${DOC:-docs/benchmarks.md}
if [ "$(id -u)" -ne 0 ]; then
  echo "bench: needs root (vpcsim worlds and pods are network namespaces)" >&2
  exit 1
fi
mkdir -p "$OUT"
only=("$@")
for b in "${only[@]}"; do
  case "$b" in terwayd_pool | cni_datapath | policy | dual_stack) ;; *)
    echo "bench: no benchmark named $b (terwayd_pool, cni_datapath, policy, dual_stack)" >&2
    exit 2
    ;;
  esac
done
wanted() {  # name: run it? (all when none is named)
  [ ${#only[@]} -eq 0 ] && return 0
  local b
  for b in "${only[@]}"; do [ "$b" = "$1" ] && return 0; done
  return 1
}

current=""
pids=()
cleanup() {
  local rc=$?
  if [ -n "$current" ]; then
    kill -TERM -- "-$current" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$current" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$current" 2>/dev/null || true
  fi
  local p n
  for p in "${pids[@]}"; do
    for n in $(ip netns list | awk '{print $1}' | grep -E "^(e$(printf %x $((p & 0xffff)))|twb[ncs]$((p % 100000))x)" || true); do
      ip netns del "$n" 2>/dev/null || true
    done
    for n in $(awk -v p="/tmp/twbench-bpffs-$p." 'index($2, p) == 1 {print $2}' /proc/mounts); do
      umount -l "$n" 2>/dev/null || true
      rmdir "$n" 2>/dev/null || true
    done
  done
  if [ $rc -ne 0 ]; then echo "bench: failed (exit $rc); cleaned up what the run left" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
timings="{}"
run() {  # name, then the command
  local name=$1
  shift
  wanted "$name" || return 0
  local t0
  t0=$(date +%s)
  setsid "$@" >/dev/null &
  current=$!
  pids+=("$current")
  wait "$current"
  current=""
  timings=$(jq -c --arg n "$name" --argjson s "$(($(date +%s) - t0))" '. + {($n): $s}' <<<"$timings")
}

wanted terwayd_pool && echo "=== terwayd pool: allocation latency, API calls per pod, RSS"
run terwayd_pool "$BUILD/bench/terwayd_pool_bench" --out "$OUT/terwayd_pool.json"
wanted cni_datapath && echo "=== CNI ADD/DEL warm and cold vs ptp+host-local, churn, pod-to-pod paths vs a bare veth, bandwidth accuracy"
run cni_datapath "$BUILD/bench/cni_datapath_bench" --out "$OUT/cni_datapath.json" --pods 100 --iperf-seconds 3 --rounds 8
wanted dual_stack && echo "=== dual stack: CNI ADD/DEL on an ip_stack dual node next to an ipv4 one, interleaved"
run dual_stack "$BUILD/bench/dual_stack_bench" --out "$OUT/dual_stack.json" --pods 100
wanted policy && echo "=== NetworkPolicy: compile/apply at 1k and 10k policies, traffic with vs without, label change to enforcement"
run policy "$BUILD/bench/policy_bench" --out "$OUT/policy.json"

total=$(($(date +%s) - start))
if [ ${#only[@]} -eq 0 ]; then
  jq -n --argjson t "$total" --argjson s "$timings" \
    '{command: "make bench", total_seconds: $t, seconds_by_benchmark: $s}' >"$OUT/run.json"
else
  # A partial run: the last full run's record stays, with what was re-run
  # since (each benchmark's latest re-run: its command and seconds).
  prev=$(cat "$OUT/run.json" 2>/dev/null || echo '{}')
  jq -n --argjson p "$prev" --argjson s "$timings" --arg c "scripts/bench.sh ${only[*]}" '
    ($p.rerun // {}) as $r
    | ($r.commands // (if $r.command then ($r.benchmarks // []) | map({(.): $r.command}) | add // {} else {} end)) as $old
    | $p + {rerun: {benchmarks: ((($r.benchmarks // []) + ($s | keys)) | unique),
                    seconds_by_benchmark: (($r.seconds_by_benchmark // {}) + $s),
                    commands: ($old + ($s | with_entries(.value = $c)))}}' >"$OUT/run.json"
fi
"$BUILD/bench/bench_report" --results "$OUT" --doc "$DOC"
echo "bench: done in ${total} s; results in $OUT, tables in $DOC"
