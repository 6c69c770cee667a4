#!/usr/bin/env bash
# scripts/bench-load.sh [REPEATS]: `grpcdoc load` beside h2load, side by
# side in one run, the same unary call (helloworld.Greeter/SayHello "hello")
# against the same grpc-go peer server (a fresh one per run), at
#   1 connection x 100 in flight, 10 x 100, and 100 x 100 (10,000 in flight).
# Prints per run: calls/s, failures, each tool's CPU time per call and peak
# RSS; then the median calls/s of each and the ratio grpcdoc / h2load.
# Every process binds or dials 127.0.0.1 only and ends by itself. Fixed ports
# sit below the ephemeral range (32768+), where client sockets cannot hold them.
#
# Needs the peers (../shared/peers/setup.sh; PEERS_HOME) and a release build
# (built here unless GRPCDOC_BIN is set).
# Env: N1 N10 N100 (calls per run), PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}
N1=${N1:-200000} N10=${N10:-300000} N100=${N100:-300000}
PORT=${PORT:-20261}
PEERS_HOME=${PEERS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/grpcdoc-peers}
B=$PEERS_HOME/bin
[ -x "$B/gogrpc-server" ] || { echo "bench-load: run ../shared/peers/setup.sh first (PEERS_HOME=$PEERS_HOME)" >&2; exit 2; }
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
LOGS=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$LOGS"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-load: nothing listening on 127.0.0.1:$1" >&2; return 1
}

# run_tool TOOL CONNS STREAMS N -> "calls_per_s failed cpu_us_per_call rss_kb"
run_tool() {
  local tool=$1 c=$2 m=$3 n=$4 out=$LOGS/out timef=$LOGS/time
  case $tool in
    h2load)
      /usr/bin/time -f "%U %S %M" -o "$timef" "$B/h2load-grpc" "127.0.0.1:$PORT" "$m" "$c" "$n" >"$out" 2>&1
      local rps failed
      rps=$(awk '/^finished in/ {gsub(",","",$0); for(i=1;i<=NF;i++) if($i=="req/s") print $(i-1)}' "$out")
      failed=$(awk '/^requests:/ {for(i=1;i<=NF;i++) if($(i+1)=="failed,") print $i}' "$out")
      ;;
    grpcdoc)
      /usr/bin/time -f "%U %S %M" -o "$timef" "$GRPCDOC_BIN" load "127.0.0.1:$PORT" \
        --call helloworld.Greeter/SayHello -d '{"name":"hello"}' \
        -c $((c * m)) --connections "$c" -n "$n" -o json >"$out" 2>"$LOGS/err" || true
      rps=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["rps"],2))' "$out")
      failed=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["errors"])' "$out")
      ;;
  esac
  read -r user sys rss < "$timef"
  python3 -c "import sys; u,s,n=map(float,sys.argv[1:4]); print(f'{(u+s)*1e6/n:.1f}')" "$user" "$sys" "$n" > "$LOGS/cpu"
  echo "$rps $failed $(cat "$LOGS/cpu") $rss"
}

printf 'tool\tconns\tin_flight\trun\tcalls_per_s\tfailed\tcpu_us_per_call\tpeak_rss_kb\n' > "$LOGS/results.tsv"
for setting in "1 100 $N1" "10 100 $N10" "100 100 $N100"; do
  read -r c m n <<<"$setting"
  for r in $(seq 1 "$R"); do
    order="h2load grpcdoc"; [ $((r % 2)) = 0 ] && order="grpcdoc h2load"
    for tool in $order; do
      "$B/gogrpc-server" -addr "127.0.0.1:$PORT" -connlog=false >"$LOGS/server.log" 2>&1 & SPID=$!
      wait_port "$PORT"
      read -r rps failed cpu rss <<<"$(run_tool "$tool" "$c" "$m" "$n")"
      kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; SPID=
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$c" "$((c * m))" "$r" "$rps" "$failed" "$cpu" "$rss" | tee -a "$LOGS/results.tsv"
    done
  done
done

echo
echo "medians over ${R} runs (calls/s; CPU us per call; peak RSS):"
python3 - "$LOGS/results.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for c in sorted({r["conns"] for r in rows}, key=int):
    med = lambda tool, k: statistics.median(float(r[k]) for r in rows if r["conns"] == c and r["tool"] == tool)
    h, g = med("h2load", "calls_per_s"), med("grpcdoc", "calls_per_s")
    print(f"  {c:>3} conn x 100: h2load {h:>9,.0f}/s  grpcdoc {g:>9,.0f}/s  ratio {g / h:.2f}x"
          f"   cpu/call h2load {med('h2load','cpu_us_per_call'):.1f}us grpcdoc {med('grpcdoc','cpu_us_per_call'):.1f}us"
          f"   rss h2load {med('h2load','peak_rss_kb')/1024:.0f}MB grpcdoc {med('grpcdoc','peak_rss_kb')/1024:.0f}MB"
          f"   failed grpcdoc {max(int(r['failed']) for r in rows if r['conns']==c and r['tool']=='grpcdoc')}")
PY
