#!/usr/bin/env bash
# scripts/bench-serve.sh [REPEATS]: h2load against `grpcdoc serve` and the
# grpc-go peer server (gogrpc-server), side by side in one run, with the same
# unary call (helloworld.Greeter/SayHello "hello"), at 1 connection x 100
# streams and 10 connections x 100 streams. Prints req/s per run, the median
# per setting and the ratio grpcdoc / grpc-go. Every server binds 127.0.0.1
# and is stopped at the end.
#
# Needs the peers (../shared/peers/setup.sh; PEERS_HOME) and a release build
# (built here unless GRPCDOC_BIN is set).
# Env: N1 N10 (requests per run for 1 and 10 connections), GO_PORT, DOC_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}
N1=${N1:-200000} N10=${N10:-300000}
GO_PORT=${GO_PORT:-20251} DOC_PORT=${DOC_PORT:-20252}
PEERS_HOME=${PEERS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/grpcdoc-peers}
B=$PEERS_HOME/bin
[ -x "$B/gogrpc-server" ] || { echo "bench-serve: run ../shared/peers/setup.sh first (PEERS_HOME=$PEERS_HOME)" >&2; exit 2; }
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
LOGS=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$LOGS"; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-serve: nothing listening on 127.0.0.1:$1" >&2; return 1
}
start_server() { # start_server go|grpcdoc
  case $1 in
    go) "$B/gogrpc-server" -addr "127.0.0.1:$GO_PORT" -connlog=false >"$LOGS/go.log" 2>&1 & SPID=$!; wait_port "$GO_PORT" ;;
    grpcdoc) "$GRPCDOC_BIN" serve --listen "127.0.0.1:$DOC_PORT" -o json >/dev/null 2>"$LOGS/doc.log" & SPID=$!; wait_port "$DOC_PORT" ;;
  esac
}
stop_server() { kill -TERM "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null || true; SPID=; }
port_of() { [ "$1" = go ] && echo "$GO_PORT" || echo "$DOC_PORT"; }

printf 'server\tconns\tstreams\trun\treq_per_s\tsucceeded\tfailed\n' > "$LOGS/results.tsv"
for setting in "1 100 $N1" "10 100 $N10"; do
  read -r c m n <<<"$setting"
  for r in $(seq 1 "$R"); do
    # Alternate which server goes first so neither always runs on a warm machine.
    order="go grpcdoc"; [ $((r % 2)) = 0 ] && order="grpcdoc go"
    for s in $order; do
      start_server "$s"
      "$B/verify-grpc" "127.0.0.1:$(port_of "$s")" >/dev/null 2>&1 || { echo "bench-serve: a call to $s failed" >&2; exit 1; }
      "$B/h2load-grpc" "127.0.0.1:$(port_of "$s")" "$m" "$c" "$n" >"$LOGS/run.log" 2>&1
      stop_server
      rps=$(awk '/^finished in/ {gsub(",","",$0); for(i=1;i<=NF;i++) if($i=="req/s") print $(i-1)}' "$LOGS/run.log")
      ok=$(awk '/^requests:/ {for(i=1;i<=NF;i++) if($(i+1)=="succeeded,") print $i}' "$LOGS/run.log")
      bad=$(awk '/^requests:/ {for(i=1;i<=NF;i++) if($(i+1)=="failed,") print $i}' "$LOGS/run.log")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$c" "$m" "$r" "$rps" "$ok" "$bad" | tee -a "$LOGS/results.tsv"
    done
  done
done

echo
echo "median req/s (h2load, ${R} runs each):"
python3 - "$LOGS/results.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for conns in sorted({r["conns"] for r in rows}, key=int):
    med = {s: statistics.median(float(r["req_per_s"]) for r in rows if r["conns"] == conns and r["server"] == s)
           for s in ("go", "grpcdoc")}
    print(f"  {conns:>2} conn x 100 streams: grpc-go {med['go']:>10,.0f}   grpcdoc {med['grpcdoc']:>10,.0f}   ratio {med['grpcdoc'] / med['go']:.2f}x")
PY
