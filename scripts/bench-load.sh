#!/usr/bin/env bash
# scripts/bench-load.sh [REPEATS]: `grpcdoc load` beside h2load, side by
# side in one run, the same unary call (helloworld.Greeter/SayHello "hello")
# against the same server (a fresh one per run): the grpc-go peer server and
# `grpcdoc serve`, at
#   2 connections x 100 in flight, 10 x 100, and 100 x 100 (10,000 in flight).
# Tools, in an order that rotates every run (A/B alternating, so a noisy
# neighbour hurts each tool alike):
#   h2load-t2   h2load -t 2
#   grpcdoc-t2  grpcdoc load --threads 2
#   grpcdoc-t1  grpcdoc load --threads 1
#   base        GRPCDOC_BASE (a grpcdoc built from an earlier commit, which
#               runs on one thread), when that variable names one
# Prints per run: calls/s, failures, CPU time per call and peak RSS; then
# per server and shape the medians and the ratios: grpcdoc-t2 / h2load-t2
# (calls/s, and CPU per call), the scaling grpcdoc-t2 / grpcdoc-t1, and
# grpcdoc-t1 / base.
# Every process binds or dials 127.0.0.1 only and ends by itself. Fixed ports
# sit below the ephemeral range (32768+), where client sockets cannot hold them.
#
# Needs the peers (../shared/peers/setup.sh; PEERS_HOME) and a release build
# (built here unless GRPCDOC_BIN is set).
# Env: N2 N10 N100 (calls per run), PORT, SERVERS ("gogrpc grpcdoc"),
# SHAPES ("2 10 100": connections, 100 in flight each), TOOLS (a subset),
# GRPCDOC_BASE.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}
N2=${N2:-300000} N10=${N10:-300000} N100=${N100:-300000}
PORT=${PORT:-20261}
SERVERS=${SERVERS:-gogrpc grpcdoc}
PEERS_HOME=${PEERS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/grpcdoc-peers}
B=$PEERS_HOME/bin
[ -x "$B/gogrpc-server" ] || { echo "bench-load: run ../shared/peers/setup.sh first (PEERS_HOME=$PEERS_HOME)" >&2; exit 2; }
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
SHAPES=${SHAPES:-2 10 100}
if [ -z "${TOOLS:-}" ]; then
  TOOLS="h2load-t2 grpcdoc-t2 grpcdoc-t1"
  [ -n "${GRPCDOC_BASE:-}" ] && TOOLS="$TOOLS base"
fi
case " $TOOLS " in *" base "*)
  [ -x "${GRPCDOC_BASE:-}" ] || { echo "bench-load: the base tool needs GRPCDOC_BASE=BIN (an executable)" >&2; exit 2; } ;;
esac
LOGS=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$LOGS"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-load: nothing listening on 127.0.0.1:$1" >&2; return 1
}

start_server() {
  case $1 in
    gogrpc) "$B/gogrpc-server" -addr "127.0.0.1:$PORT" -connlog=false >"$LOGS/server.log" 2>&1 & SPID=$! ;;
    grpcdoc) "$GRPCDOC_BIN" serve --listen "127.0.0.1:$PORT" >"$LOGS/server.log" 2>&1 & SPID=$! ;;
  esac
  wait_port "$PORT"
}

# grpcdoc_load BIN CONNS STREAMS N [ARGS...]: a load run's JSON report in $LOGS/out
grpcdoc_load() {
  local bin=$1 c=$2 m=$3 n=$4; shift 4
  /usr/bin/time -f "%U %S %M" -o "$LOGS/time" "$bin" load "127.0.0.1:$PORT" \
    --call helloworld.Greeter/SayHello -d '{"name":"hello"}' \
    -c $((c * m)) --connections "$c" -n "$n" -o json "$@" >"$LOGS/out" 2>"$LOGS/err" || true
}

# run_tool TOOL CONNS STREAMS N -> "calls_per_s failed cpu_us_per_call rss_kb"
run_tool() {
  local tool=$1 c=$2 m=$3 n=$4 out=$LOGS/out rps failed
  case $tool in
    h2load-t2)
      /usr/bin/time -f "%U %S %M" -o "$LOGS/time" "$B/h2load-grpc" --threads 2 "127.0.0.1:$PORT" "$m" "$c" "$n" >"$out" 2>&1
      rps=$(awk '/^finished in/ {gsub(",","",$0); for(i=1;i<=NF;i++) if($i=="req/s") print $(i-1)}' "$out")
      failed=$(awk '/^requests:/ {for(i=1;i<=NF;i++) if($(i+1)=="failed,") print $i}' "$out")
      ;;
    grpcdoc-t2 | grpcdoc-t1 | base)
      case $tool in
        grpcdoc-t2) grpcdoc_load "$GRPCDOC_BIN" "$c" "$m" "$n" --threads 2 ;;
        grpcdoc-t1) grpcdoc_load "$GRPCDOC_BIN" "$c" "$m" "$n" --threads 1 ;;
        base) grpcdoc_load "$GRPCDOC_BASE" "$c" "$m" "$n" ;;
      esac
      read -r rps failed < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(round(r["rps"],2), r["errors"])' "$out" 2>/dev/null || echo "0 ?")
      [ "$rps" = 0 ] && { echo "bench-load: $tool failed:" >&2; cat "$LOGS/err" >&2; }
      ;;
  esac
  read -r user sys rss < "$LOGS/time"
  echo "$rps $failed $(python3 -c "import sys; u,s,n=map(float,sys.argv[1:4]); print(f'{(u+s)*1e6/n:.2f}')" "$user" "$sys" "$n") $rss"
}

printf 'server\ttool\tconns\tin_flight\trun\tcalls_per_s\tfailed\tcpu_us_per_call\tpeak_rss_kb\n' > "$LOGS/results.tsv"
for server in $SERVERS; do
  for c in $SHAPES; do
    m=100
    case $c in 2) n=$N2 ;; 10) n=$N10 ;; *) n=$N100 ;; esac
    for r in $(seq 1 "$R"); do
      # Rotate the order: each tool goes first in turn.
      order=$(python3 -c "import sys; t=sys.argv[2].split(); k=int(sys.argv[1])%len(t); print(' '.join(t[k:]+t[:k]))" "$r" "$TOOLS")
      for tool in $order; do
        start_server "$server"
        read -r rps failed cpu rss <<<"$(run_tool "$tool" "$c" "$m" "$n")"
        kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; SPID=
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$tool" "$c" "$((c * m))" "$r" "$rps" "$failed" "$cpu" "$rss" | tee -a "$LOGS/results.tsv"
      done
    done
  done
done

echo
echo "medians over ${R} runs:"
python3 - "$LOGS/results.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
tools = sorted({r["tool"] for r in rows})
def med(server, c, tool, k):
    v = [float(r[k]) for r in rows if r["server"] == server and r["conns"] == c and r["tool"] == tool]
    return statistics.median(v) if v else float("nan")
for server in dict.fromkeys(r["server"] for r in rows):
    print(f"server {server}:")
    print(f"  {'shape':>9}  {'h2load-t2':>10} {'grpcdoc-t2':>10} {'ratio':>6}   cpu us/call h2load grpcdoc"
          f"   {'t2/t1':>6} {'t1/base':>7}   rss MB t2    failed")
    for c in sorted({r["conns"] for r in rows if r["server"] == server}, key=int):
        h, g2, g1 = (med(server, c, t, "calls_per_s") for t in ("h2load-t2", "grpcdoc-t2", "grpcdoc-t1"))
        base = med(server, c, "base", "calls_per_s") if "base" in tools else float("nan")
        hc, gc = med(server, c, "h2load-t2", "cpu_us_per_call"), med(server, c, "grpcdoc-t2", "cpu_us_per_call")
        rss = med(server, c, "grpcdoc-t2", "peak_rss_kb") / 1024
        failed = max((r["failed"] for r in rows if r["server"] == server and r["conns"] == c and r["tool"] != "h2load-t2"), key=lambda f: (f != "0", f), default="-")
        print(f"  {c:>3}x100    {h:>10,.0f} {g2:>10,.0f} {g2 / h:>5.2f}x   {hc:>18.2f} {gc:>7.2f}"
              f"   {g2 / g1:>5.2f}x {g1 / base:>6.3f}x   {rss:>9.1f}    {failed}")
PY
