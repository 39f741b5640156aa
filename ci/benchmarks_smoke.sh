#!/usr/bin/env bash
# Every benchmark at its --smoke size (issue 29, item 5): a benchmark that no longer runs fails
# here instead of rotting silently (`.ci/run` after the wheel check; `make bench-smoke`). Each
# script under benchmarks/ runs with the project's .venv, in one of two lanes side by side
# (below), its wall and CPU time printed; the first failure (non-zero exit, or no exit within
# SMOKE_TIMEOUT seconds, default 600: a hang, not a busy machine) stops its lane, and the run
# fails once the other lane has finished. Benchmarks
# that need Evidently's own virtualenv say so and leave it out. Serving benchmarks share one
# trained smoke home (var/bench-smoke-home, removed at the start; the first benchmark that
# needs it trains it, about 30 s).
#
#   ci/benchmarks_smoke.sh             (from anywhere; after `make install`)
#   ci/benchmarks_smoke.sh drift_bench serving_bench      (only these)
#
# Budget: at most 60 s per script and 5 minutes in all on a quiet 2-core machine; a slower
# script is flagged (not failed: a busy machine is not a broken benchmark).
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
cd "$checkout"
python=${PYTHON:-$checkout/.venv/bin/python}
timeout_s=${SMOKE_TIMEOUT:-600}
budget_each=60
budget_all=300

if [ "$#" -gt 0 ]; then
  scripts=()
  for name in "$@"; do scripts+=("benchmarks/${name%.py}.py"); done
else
  scripts=(benchmarks/*.py)
fi

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }

# user + system CPU of every finished child, in ms (into $cpu_now): close to the wall time a
# quiet 2-core machine would take (between half of it and all of it), where a busy machine
# inflates wall time. `times` must run in this shell, not in a $(...) subshell.
times_file=$(mktemp)
read_cpu() {
  times > "$times_file"
  cpu_now=$(awk 'NR == 2 { total = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/);
    total += p[1] * 60 + p[2] } printf "%d", total * 1000 }' "$times_file")
}

# the smoke homes are trained again by the first benchmark that needs them: a home left by
# older code must not hide a break in training or registration
rm -rf var/bench-smoke-home var/bench-smoke-home-*

# Scripts that only compute (no server, no smoke home, no shared file under var/ but their
# own) run in a second lane beside the others: most smoke runs are one process on one core,
# and this machine has two. Each lane's output is printed whole, the second lane's after the
# first, so logs do not interleave.
computing=" decision_tables_ab decision_tables_detectors decision_tables_drift
  decision_tables_multivariate decision_tables_storm decisions discrete_split drift_calibration
  drift_wide gate_simulation multivariate_nannyml ordinal_rule paired_ab performance_monitoring
  segment_tails traffic_drift "
computing=" $(echo $computing) "  # one space between names, for the match below
lanes_dir=$(mktemp -d)
trap 'rm -f "$times_file"; rm -rf "$lanes_dir"' EXIT

# run_lane SUMMARY_FILE SCRIPT...: each script in turn, its summary line appended; the first
# failure stops the lane with a non-zero status
run_lane() {
  local summary_file=$1 script name started elapsed_ms seconds cpu_started cpu_ms line status
  # read_cpu's file, one per lane (bash scoping is dynamic: read_cpu sees this one)
  local times_file="${summary_file%/*}/times-${summary_file##*/}"
  shift
  for script in "$@"; do
    name=$(basename "$script" .py)
    printf '\n== smoke: %s\n' "$name"
    started=$(now_ms)
    read_cpu; cpu_started=$cpu_now
    status=0
    timeout --kill-after=15 "$timeout_s" "$python" "$script" --smoke || status=$?
    elapsed_ms=$(( $(now_ms) - started ))
    seconds=$(seconds_since "$started")
    read_cpu; cpu_ms=$(( cpu_now - cpu_started ))
    line=$(printf '%-30s %6s s wall %5d.%d s CPU' "$name" "$seconds" $((cpu_ms / 1000)) \
      $((cpu_ms % 1000 / 100)))
    if [ "$status" -ne 0 ]; then
      [ "$status" -eq 124 ] && why="no exit within ${timeout_s} s" || why="exit $status"
      printf '== smoke FAILED: %s (%s) after %s s\n' "$name" "$why" "$seconds" >&2
      return 1
    fi
    if (( elapsed_ms > budget_each * 1000 )); then line="$line  (over ${budget_each} s)"; fi
    printf '%s\n' "$line" >> "$summary_file"
    printf '== smoke: %s done in %s s\n' "$name" "$seconds"
  done
}

serving_lane=() computing_lane=()
for script in "${scripts[@]}"; do
  if [[ "$computing" == *" $(basename "$script" .py) "* ]]; then
    computing_lane+=("$script")
  else
    serving_lane+=("$script")
  fi
done

total_started=$(now_ms)
read_cpu; total_cpu_started=$cpu_now
computing_status=0
if [ "${#computing_lane[@]}" -gt 0 ]; then
  run_lane "$lanes_dir/summary-2" "${computing_lane[@]}" > "$lanes_dir/log-2" 2>&1 &
  computing_pid=$!
fi
serving_status=0
if [ "${#serving_lane[@]}" -gt 0 ]; then
  # in a subshell of its own too: the shell's CPU times of its children would otherwise take
  # in the whole second lane when it is reaped, in the middle of one of this lane's scripts
  run_lane "$lanes_dir/summary-1" "${serving_lane[@]}" &
  wait $! || serving_status=$?
fi
if [ "${#computing_lane[@]}" -gt 0 ]; then
  wait "$computing_pid" || computing_status=$?
  printf '\n== the second lane (scripts that only compute), run beside the first:\n'
  cat "$lanes_dir/log-2"
fi
if [ "$serving_status" -ne 0 ] || [ "$computing_status" -ne 0 ]; then
  exit 1
fi
total_ms=$(( $(now_ms) - total_started ))
printf '\n== benchmark smoke runs: wall and CPU seconds (load average now: %s)\n' \
  "$(cut -d' ' -f1-3 /proc/loadavg)"
sort "$lanes_dir"/summary-* 2>/dev/null
read_cpu; total_cpu_ms=$(( cpu_now - total_cpu_started ))
printf '%-30s %6s s wall %5d.%d s CPU' total "$(seconds_since "$total_started")" \
  $((total_cpu_ms / 1000)) $((total_cpu_ms % 1000 / 100))
if (( total_ms > budget_all * 1000 )); then printf '  (over %s s)' "$budget_all"; fi
printf '\n'
