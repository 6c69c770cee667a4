#!/usr/bin/env bash
# scripts/bench-pcap.sh [SIZE_MB]: `grpcdoc pcap` beside `tshark -Y http2`
# on the same capture, side by side in one run. Makes the capture first:
# tcpdump -i lo records `grpcdoc load` (unary calls with a 1 KiB message
# over 10 connections) against `grpcdoc serve` until the file reaches
# SIZE_MB (default 1024). Then reads it with each tool (output to
# /dev/null) and prints wall time, MB/s and peak RSS of each, and the ratio.
# grpcdoc is timed twice: the default human output and -o json with every
# call. Everything binds 127.0.0.1 and stops by itself; the capture is
# deleted at the end (KEEP=1 keeps it in /tmp).
#
# Needs root (tcpdump), tcpdump and tshark (Debian), /usr/bin/time, and a
# release build (built here unless GRPCDOC_BIN is set). Env: PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-1024}
PORT=${PORT:-20271}
for t in tcpdump tshark /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "bench-pcap: $t is needed (apt-get install tcpdump tshark time)" >&2; exit 2; }
done
if [ -z "${GRPCDOC_BIN:-}" ]; then
  cargo build --release --quiet
  GRPCDOC_BIN=target/release/grpcdoc
fi
WORK=$(mktemp -d)
CAP=$WORK/load.pcap
SPID= LPID= TPID=
cleanup() {
  for p in $LPID $SPID; do kill -KILL "$p" 2>/dev/null || true; done
  [ -n "$TPID" ] && kill -INT "$TPID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then mv "$CAP" "/tmp/bench-pcap.pcap" 2>/dev/null && echo "kept /tmp/bench-pcap.pcap"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench-pcap: nothing listening on 127.0.0.1:$1" >&2; return 1
}

"$GRPCDOC_BIN" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
SPID=$!
wait_port "$PORT"
tcpdump -i lo -s 0 -B 65536 -w "$CAP" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TPID=$!
sleep 1
name=$(head -c 1024 /dev/zero | tr '\0' x)
# Bounded in time too: 10 minutes at most.
"$GRPCDOC_BIN" load "127.0.0.1:$PORT" --call helloworld.Greeter/SayHello \
  -d "{\"name\":\"$name\"}" -c 100 --connections 10 -z 10m -o json >/dev/null 2>&1 &
LPID=$!
limit=$((SIZE_MB * 1024 * 1024))
while kill -0 "$LPID" 2>/dev/null; do
  [ "$(stat -c %s "$CAP" 2>/dev/null || echo 0)" -ge "$limit" ] && break
  sleep 0.2
done
kill -INT "$LPID" 2>/dev/null || true
wait "$LPID" 2>/dev/null || true
LPID=
sleep 0.5
kill -INT "$TPID"
wait "$TPID" 2>/dev/null || true
TPID=
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=
size=$(stat -c %s "$CAP")
packets=$(grep -Eo '^[0-9]+ packets captured' "$WORK/tcpdump.err" | grep -Eo '^[0-9]+' || echo "?")
dropped=$(grep -Eo '^[0-9]+ packets dropped by kernel' "$WORK/tcpdump.err" | grep -Eo '^[0-9]+' || echo "?")
printf 'capture: %.1f MB, %s packets (%s dropped by the kernel while capturing)\n' \
  "$(echo "$size / 1048576" | bc -l)" "$packets" "$dropped"

# timed NAME CMD... -> prints "NAME seconds MB/s rss_MB"; the time in $WORK/NAME.t
timed() {
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$WORK/$name.t" "$@" >/dev/null 2>"$WORK/$name.err" || {
    echo "bench-pcap: $name failed:" >&2; tail -5 "$WORK/$name.err" >&2; exit 1; }
  read -r secs rss <"$WORK/$name.t"
  printf '%-28s %8.2f s %9.1f MB/s %8.1f MB RSS\n' "$name" "$secs" \
    "$(echo "$size / 1048576 / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
sync
timed "grpcdoc pcap" "$GRPCDOC_BIN" pcap "$CAP"
timed "grpcdoc pcap -o json --calls all" "$GRPCDOC_BIN" pcap "$CAP" -o json --calls all
timed "tshark -Y http2" tshark -r "$CAP" -d "tcp.port==$PORT,http2" -Y http2
g=$(cut -d' ' -f1 "$WORK/grpcdoc pcap.t")
t=$(cut -d' ' -f1 "$WORK/tshark -Y http2.t")
printf 'tshark / grpcdoc: %.1fx\n' "$(echo "$t / $g" | bc -l)"
