#!/usr/bin/env bash
# scripts/scenarios-under-load.sh [RUNS] [SCENARIO...]: runs every shipped
# scenario (or the ones given) RUNS times (default 20) in a row while BUSY
# (default 2) `yes >/dev/null` processes keep the cores busy, and prints per
# scenario how many runs passed and how many distinct verdicts there were
# (a verdict is the pass/fail of every check of every variant, in order). A scenario that
# does not give the same verdict every time is flaky: the script exits 1.
#
# Uses a release build (built here unless GRPCDOC_BIN is set). Scenarios
# bind loopback only and end by themselves; the busy loops are killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
shift || true
BUSY=${BUSY:-2}
if [ $# -gt 0 ]; then files=("$@"); else files=(scenarios/*.yaml); fi
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
command -v jq >/dev/null || { echo "scenarios-under-load: needs jq" >&2; exit 2; }
out=$(mktemp -d)
busy=()
cleanup() { [ ${#busy[@]} -gt 0 ] && kill "${busy[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
for _ in $(seq "$BUSY"); do yes >/dev/null & busy+=($!); done

echo "$RUNS runs of each scenario, $BUSY busy loops beside, on $(nproc) cores"
printf '%-28s %8s %9s %10s\n' scenario passed verdicts "wall s"
flaky=0
for f in "${files[@]}"; do
  name=$(basename "$f" .yaml)
  pass=0 total_ms=0
  : >"$out/verdicts"
  for i in $(seq "$RUNS"); do
    set +e
    "$GRPCDOC_BIN" scenario "$f" -o json >"$out/run.json" 2>"$out/run.err"
    code=$?
    set -e
    [ "$code" -eq 0 ] && pass=$((pass + 1))
    # The verdict: the exit code and every check's pass/fail, in order.
    v=$(jq -c '[.scenarios[] | [.passed, [.expectations[]?.passed]]]' "$out/run.json" 2>/dev/null || echo "no-report")
    echo "$code $v" >>"$out/verdicts"
    ms=$(jq "[.scenarios[].duration_ms] | max | floor" "$out/run.json" 2>/dev/null || echo 0)
    total_ms=$((total_ms + ms))
    if [ "$code" -ne 0 ]; then
      echo "  $name run $i: exit $code" >&2
      jq -r '.scenarios[] | (.variant // "") as $v | .expectations[]? | select(.passed == false) | "    \($v) \(.check): \(.value) \(.diagnosis // "")"' \
        "$out/run.json" >&2 2>/dev/null || tail -n 5 "$out/run.err" >&2
    fi
  done
  verdicts=$(sort -u "$out/verdicts" | wc -l)
  [ "$verdicts" -eq 1 ] || flaky=1
  printf '%-28s %5d/%-3d %9d %10s\n' "$name" "$pass" "$RUNS" "$verdicts" \
    "$(awk -v t="$total_ms" -v n="$RUNS" 'BEGIN { printf "%.1f", t / n / 1000 }')"
done
exit "$flaky"
