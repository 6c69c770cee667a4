#!/usr/bin/env bash
# Remakes the capture fixtures of tests/pcap.rs: the same short session
# (grpcdoc watch with health probes against grpcdoc serve with a 1s
# max-connection-age, so GOAWAYs, calls and closes) captured on loopback by
# tcpdump in each link type, plus files derived from the Ethernet one
# (raw IP, BSD loopback and a VLAN tag rewritten by make.py; a capture
# joined midway cut by editcap; pcapng by editcap), and a TLS session. Needs root, tcpdump,
# editcap (Debian's tshark) and a built grpcdoc. Run from the repository.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)"
bin="${GRPCDOC:-target/debug/grpcdoc}"
session() { # PORT LISTEN-ADDR
  timeout 10 "$bin" serve --listen "$2" --max-connection-age 1s >/dev/null 2>&1 &
  local sp=$!
  sleep 0.5
  timeout 8 "$bin" watch "$3" --for 2500ms --probe-interval 300ms >/dev/null 2>&1 || true
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
}
capture() { # FILE PORT LISTEN TARGET TCPDUMP-ARGS...
  local file=$1 port=$2 listen=$3 target=$4
  shift 4
  timeout 15 tcpdump "$@" -U -w "$out/$file" "tcp port $port" 2>/dev/null &
  local tp=$!
  sleep 1
  session "$port" "$listen" "$target"
  sleep 0.5
  kill -INT "$tp" 2>/dev/null || true
  wait "$tp" 2>/dev/null || true
}
tls_session() { # a TLS server with a 1s idle timeout, watched without calls
  local tmp
  tmp=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/k.pem" -out "$tmp/c.pem" \
    -days 1 -subj /CN=localhost 2>/dev/null
  timeout 10 "$bin" serve --listen 127.0.0.1:50306 --tls-cert "$tmp/c.pem" \
    --tls-key "$tmp/k.pem" --max-connection-idle 1s >/dev/null 2>&1 &
  local sp=$!
  sleep 0.5
  timeout 15 tcpdump -i lo -s 0 -U -w "$out/tls.pcap" "tcp port 50306" 2>/dev/null &
  local tp=$!
  sleep 1
  timeout 8 "$bin" watch https://127.0.0.1:50306 --insecure --for 2500ms --probe none \
    >/dev/null 2>&1 || true
  sleep 0.3
  kill -INT "$tp" "$sp" 2>/dev/null || true
  wait "$tp" "$sp" 2>/dev/null || true
  rm -rf "$tmp"
}
tls_session
capture ethernet.pcap 50301 127.0.0.1:50301 127.0.0.1:50301 -i lo -s 0
capture sll.pcap 50302 127.0.0.1:50302 127.0.0.1:50302 -i any -y LINUX_SLL -s 0
capture sll2.pcap 50303 127.0.0.1:50303 127.0.0.1:50303 -i any -y LINUX_SLL2 -s 0
capture ipv6.pcap 50304 '[::1]:50304' '[::1]:50304' -i lo -s 0
capture snaplen.pcap 50305 127.0.0.1:50305 127.0.0.1:50305 -i lo -s 90
editcap -F pcapng "$out/ethernet.pcap" "$out/ethernet.pcapng"
# From the 12th packet on: after the preface and SETTINGS.
editcap -F pcap -r "$out/ethernet.pcap" "$out/midway.pcap" 12-100000
python3 "$out/make.py" "$out/ethernet.pcap" "$out"
# grpc-go 1.33 client and server (the peers, PEERS_HOME), whose request
# headers index HPACK's dynamic table: joined midway, they cannot be read.
if [ -x "${PEERS_HOME:-}/bin/gogrpc-server" ]; then
  timeout 10 "$PEERS_HOME/bin/gogrpc-server" -addr 127.0.0.1:50307 >/dev/null 2>&1 &
  sp=$!
  sleep 0.5
  timeout 15 tcpdump -i lo -s 0 -U -w "$out/go-full.pcap" "tcp port 50307" 2>/dev/null &
  tp=$!
  sleep 1
  timeout 5 "$PEERS_HOME/bin/gogrpc-watch" -addr 127.0.0.1:50307 -interval 200ms \
    -duration 2s >/dev/null 2>&1 || true
  sleep 0.3
  kill -INT "$tp" 2>/dev/null || true
  kill "$sp" 2>/dev/null || true
  wait "$tp" "$sp" 2>/dev/null || true
  # From the 20th packet on: after the first calls.
  editcap -F pcap -r "$out/go-full.pcap" "$out/midway-go.pcap" 20-100000
  rm -f "$out/go-full.pcap"
fi
