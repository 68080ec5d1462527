#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, starting from its seed corpus
# (ctest runs this; see CMakeLists.txt). Fails, naming the reproducer, when
# the target crashes, leaks, hangs on an input or breaks one of its checks.
#   run_fuzzer.sh <fuzzer> <seed dir> <work dir> <dictionary>
# TERWAY_FUZZ_SECONDS sets the time (default 30).
set -uo pipefail
fuzzer=$1 seeds=$2 work=$3 dict=$4
seconds=${TERWAY_FUZZ_SECONDS:-30}
name=$(basename "$fuzzer")

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
export TMPDIR="$work/tmp"  # whatever a target creates stays in the run's directory
# New inputs go to the first directory (the run's own); the seed corpus in
# the repository is only read. -close_fd_mask=2 closes the target's stderr
# (the plugin logs every refused input there); libFuzzer and the sanitizers
# keep reporting through their own copy of it.
start=$SECONDS
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -close_fd_mask=2 -dict="$dict" -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$work/log" 2>&1
rc=$?
elapsed=$((SECONDS - start))

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1)
# One line for the suite's report (scripts/test.sh prints the summaries).
echo "$name: ${runs:-?} runs in ${elapsed}s (${rate:-?} exec/s), ${cov:-cov: ?}," \
  "$(find "$work/corpus" -type f | wc -l) new inputs; log: $work/log" | tee "$work/summary"

artifacts=$(find "$work/artifacts" -type f)
if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
  echo "$name FAILED (exit $rc). The end of its log:"
  tail -n 60 "$work/log"
  for a in $artifacts; do
    echo "reproducer: $a"
    echo "  run it again:         $fuzzer $a"
    echo "  keep it as a seed:    cp $a $seeds/"
  done
  [ -n "$artifacts" ] || echo "no reproducer was written; see the log above"
  exit 1
fi
