#!/usr/bin/env bash
# scripts/bench-proxy.sh [REPEATS]: the chaos proxy's overhead. h2load (from
# ../shared/peers) drives unary SayHello against the grpc-go peer server,
# directly and through `grpcdoc proxy` with no fault, alternately in one run,
# at 10 connections x 100 streams; prints req/s of each and the ratio
# proxied / direct. Everything binds 127.0.0.1 (ports below the ephemeral
# range) and is stopped at the end.
# Env: N (requests per run), GO_PORT, PROXY_PORT, CONNS, STREAMS.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}
N=${N:-200000} CONNS=${CONNS:-10} STREAMS=${STREAMS:-100}
GO_PORT=${GO_PORT:-20271} PROXY_PORT=${PROXY_PORT:-20272}
PEERS_HOME=${PEERS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/grpcdoc-peers}
B=$PEERS_HOME/bin
[ -x "$B/gogrpc-server" ] || { echo "bench-proxy: run ../shared/peers/setup.sh first (PEERS_HOME=$PEERS_HOME)" >&2; exit 2; }
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-proxy: nothing listening on 127.0.0.1:$1" >&2; return 1
}
"$B/gogrpc-server" -addr "127.0.0.1:$GO_PORT" -connlog=false >/dev/null 2>&1 & PIDS+=($!)
"$GRPCDOC_BIN" proxy --listen "127.0.0.1:$PROXY_PORT" --upstream "127.0.0.1:$GO_PORT" ${PROXY_ARGS:-} -o json >/dev/null 2>&1 & PIDS+=($!)
wait_port "$GO_PORT"; wait_port "$PROXY_PORT"
"$B/verify-grpc" "127.0.0.1:$PROXY_PORT" >/dev/null || { echo "bench-proxy: a call through the proxy failed" >&2; exit 1; }
rps() { "$B/h2load-grpc" "127.0.0.1:$1" "$STREAMS" "$CONNS" "$N" 2>&1 | awk '/^finished in/ {gsub(",","",$0); for(i=1;i<=NF;i++) if($i=="req/s") print $(i-1)}'; }
: > /tmp/bench-proxy.$$
for r in $(seq 1 "$R"); do
  order="direct proxied"; [ $((r % 2)) = 0 ] && order="proxied direct"
  for how in $order; do
    port=$GO_PORT; [ "$how" = proxied ] && port=$PROXY_PORT
    v=$(rps "$port")
    printf '%s\t%s\t%s\n' "$how" "$r" "$v" | tee -a /tmp/bench-proxy.$$
  done
done
python3 - /tmp/bench-proxy.$$ "$CONNS" "$STREAMS" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
med = lambda how: statistics.median(float(r[2]) for r in rows if r[0] == how)
d, p = med("direct"), med("proxied")
print(f"median req/s, h2load {sys.argv[2]} conn x {sys.argv[3]} streams: direct {d:,.0f}  through grpcdoc proxy {p:,.0f}  ratio {p/d:.2f}x")
PY
rm -f /tmp/bench-proxy.$$
