#!/usr/bin/env bash
# scripts/bench-proxy.sh [REPEATS]: the chaos proxy's overhead, side by side
# in one run. h2load (../shared/peers' h2load-grpc) drives unary SayHello
# against the grpc-go peer server directly and through four proxies, in
# turn, at 1 connection x 100 streams and 10 x 100:
#   tap     grpcdoc proxy (default: the call tap on, --calls failed)
#   none    --calls none (bytes and frame boundaries only)
#   stages  --calls none with a byte stage and a frame stage that never
#           change anything (latency 0 ms, drop-goaway): the stage model's cost
# and prints the median req/s of each with its ratio to direct. Then the
# faults' accuracy under load: latency 50 ms each way at 10 x 100 (about
# 10k calls/s), the delay h2load measures against the one asked; and
# bandwidth 100 KB/s per connection downstream, the rate achieved.
# Everything binds 127.0.0.1 (ports below the ephemeral range) and is
# stopped at the end.
# Env: N (requests per run), GO_PORT (and the 5 ports after it), GRPCDOC_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-3}
N=${N:-100000}
GO_PORT=${GO_PORT:-20271}
PEERS_HOME=${PEERS_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/grpcdoc-peers}
B=$PEERS_HOME/bin
[ -x "$B/gogrpc-server" ] || { echo "bench-proxy: run ../shared/peers/setup.sh first (PEERS_HOME=$PEERS_HOME)" >&2; exit 2; }
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
PIDS=()
OUT=$(mktemp -d)
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-proxy: nothing listening on 127.0.0.1:$1" >&2; return 1
}
up="127.0.0.1:$GO_PORT"
"$B/gogrpc-server" -addr "$up" -connlog=false >/dev/null 2>&1 & PIDS+=($!)
wait_port "$GO_PORT"
declare -A PORT=([direct]=$GO_PORT)
proxy() { # NAME PORT ARGS...
  local name=$1 port=$2; shift 2
  "$GRPCDOC_BIN" proxy --listen "127.0.0.1:$port" --upstream "$up" --for 1h -o json "$@" >/dev/null 2>&1 & PIDS+=($!)
  wait_port "$port"
  "$B/verify-grpc" "127.0.0.1:$port" >/dev/null || { echo "bench-proxy: a call through $name failed" >&2; exit 1; }
  PORT[$name]=$port
}
proxy tap $((GO_PORT + 1))
proxy none $((GO_PORT + 2)) --calls none
proxy stages $((GO_PORT + 3)) --calls none --fault latency:latency=0ms --fault drop-goaway
proxy latency $((GO_PORT + 4)) --calls none --fault latency:latency=50ms
proxy bandwidth $((GO_PORT + 5)) --calls none --fault bandwidth:rate=100KB,direction=downstream
run() { # NAME STREAMS CONNS N -> h2load's output
  "$B/h2load-grpc" "127.0.0.1:${PORT[$1]}" "$2" "$3" "$4" 2>&1
}
rps() { awk '/^finished in/ {gsub(",","",$0); for(i=1;i<=NF;i++) if($i=="req/s") print $(i-1)}'; }
: > "$OUT/rows"
for shape in "100 1" "100 10"; do
  set -- $shape
  for r in $(seq 1 "$R"); do
    order="direct tap none stages"
    [ $((r % 2)) = 0 ] && order="stages none tap direct"
    for how in $order; do
      v=$(run "$how" "$1" "$2" "$N" | rps)
      printf '%s\t%sx%s\t%s\t%s\n' "$how" "$2" "$1" "$r" "$v" | tee -a "$OUT/rows" >&2
    done
  done
done
# Accuracy under load: the delay and the rate h2load sees.
run direct 100 10 "$N" > "$OUT/lat-direct"
run latency 100 10 "$N" > "$OUT/lat-proxy"
run bandwidth 100 10 20000 > "$OUT/bw-proxy"
python3 - "$OUT" <<'PY'
import re, statistics, sys
out = sys.argv[1]
rows = [l.split("\t") for l in open(f"{out}/rows").read().split("\n") if l]
print("median req/s (h2load, grpc-go server), ratio to direct in the same run:")
print(f"  {'shape':<8} {'direct':>9} {'tap':>16} {'none':>16} {'stages':>16}")
for shape in dict.fromkeys(r[1] for r in rows):
    med = {h: statistics.median(float(r[3]) for r in rows if r[0] == h and r[1] == shape)
           for h in ("direct", "tap", "none", "stages")}
    d = med["direct"]
    cells = "".join(f" {med[h]:>8,.0f} ({med[h]/d:.2f}x)" for h in ("tap", "none", "stages"))
    print(f"  {shape:<8} {d:>9,.0f}{cells}")
def h2load(path):
    t = open(path).read()
    rps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s", t).group(1))
    row = re.search(r"time for request:\s+(\S+)\s+\S+\s+(\S+)", t)
    secs = re.search(r"finished in ([\d.]+)(ms|s)", t)
    dur = float(secs.group(1)) / (1000 if secs.group(2) == "ms" else 1)
    total = int(re.search(r"traffic: .*?\((\d+)\) total", t).group(1))
    def ms(v):
        u = re.match(r"([\d.]+)(us|ms|s)", v)
        return float(u.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[u.group(2)]
    return rps, ms(row.group(1)), ms(row.group(2)), dur, total
d_rps, d_min, d_mean, _, _ = h2load(f"{out}/lat-direct")
l_rps, l_min, l_mean, _, _ = h2load(f"{out}/lat-proxy")
print(f"latency 50 ms each way (100 ms a call) at 10x100: {l_rps:,.0f} calls/s, "
      f"fastest call {l_min:.1f} ms, mean {l_mean:.1f} ms (direct: fastest {d_min:.1f}, mean {d_mean:.1f})")
# h2load's traffic is what it received: the downstream bytes.
_, _, _, dur, total = h2load(f"{out}/bw-proxy")
print(f"bandwidth 100 KB/s per connection downstream, 10 connections: "
      f"{total / dur / 10 / 1000:.1f} KB/s per connection ({total:,} bytes in {dur:.2f} s)")
PY
