#!/usr/bin/env bash
# A long libFuzzer campaign for one target, with figures for the record: wall and CPU seconds,
# executions, executions per CPU second, edges and features reached, corpus size, findings.
#
#   bench/fuzz_campaign.sh NAME SECONDS [WORKDIR] [BUILD_FUZZ_DIR]
#
# The working corpus lives in WORKDIR/NAME/corpus (default WORKDIR: /tmp/anya-fuzz) and starts
# from fuzz/corpus/NAME, so repeated campaigns keep building on what earlier ones found; CPU
# seconds add up across runs in WORKDIR/NAME/cpu_seconds. Runs at nice 19 so builds keep
# priority. A finding is left in WORKDIR/NAME/ and the exit status is non-zero.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NAME SECONDS [WORKDIR] [BUILD_FUZZ_DIR]" >&2
  exit 2
fi
name=$1
seconds=$2
root=$(cd "$(dirname "$0")/.." && pwd)
workdir=${3:-/tmp/anya-fuzz}/$name
build=${4:-$root/build-fuzz}
target=$build/fuzz/${name}_fuzz
if [ ! -x "$target" ]; then
  echo "$0: no fuzz binary $target (build with -Dfuzzing=true)" >&2
  exit 2
fi
mkdir -p "$workdir/corpus"
cp -rn "$root/fuzz/corpus/$name/." "$workdir/corpus/"
dict=()
[ -f "$root/fuzz/$name.dict" ] && dict=(-dict="$root/fuzz/$name.dict")
log=$workdir/log-$(date +%Y%m%dT%H%M%S).txt

/usr/bin/time -f '%e %U %S' -o "$workdir/time.txt" \
  nice -n 19 "$target" "${dict[@]}" -max_total_time="$seconds" -print_final_stats=1 \
  -artifact_prefix="$workdir/" "$workdir/corpus" 2>"$log"
status=$?

# The last line: time(1) puts "Command exited with non-zero status N" before it on a finding.
read -r wall user sys < <(tail -1 "$workdir/time.txt")
cpu=$(python3 -c "print(round($user + $sys, 1))")
total=$(python3 -c "
import pathlib; p = pathlib.Path('$workdir/cpu_seconds')
t = (float(p.read_text()) if p.exists() else 0.0) + $cpu
p.write_text(str(t)); print(round(t))")
execs=$(awk '/stat::number_of_executed_units/{print $NF}' "$log")
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
files=$(find "$workdir/corpus" -type f | wc -l)
per_cpu=$(python3 -c "print(round(${execs:-0} / max($cpu, 0.001)))")
echo "$name: wall ${wall}s cpu ${cpu}s (campaign total ${total} cpu s) execs ${execs:-?}" \
     "(${per_cpu}/cpu s) ${cov:-cov: ?} corpus ${files} files exit ${status}"
if [ "$status" -ne 0 ]; then
  tail -30 "$log"
  ls "$workdir"/crash-* "$workdir"/leak-* "$workdir"/timeout-* "$workdir"/oom-* 2>/dev/null
fi
exit "$status"
