#!/usr/bin/env bash
# scripts/toxiproxy-clients.sh [DIR]: installs the toxiproxy client libraries
# the API tier tests with - toxiproxy-python (PyPI) in a venv and
# toxiproxy-node-client (npm) - pinned, into DIR (default
# target/toxiproxy-clients), and prints TOXIPROXY_CLIENTS=DIR as its last
# line. Needs python3 and npm, and the package registries. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/toxiproxy-clients}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -x "$dir/venv/bin/python" ] || ! "$dir/venv/bin/python" -c 'import toxiproxy' 2>/dev/null; then
  ${PYTHON:-python3} -m venv "$dir/venv" >&2
  "$dir/venv/bin/pip" install -q --disable-pip-version-check \
    'toxiproxy-python==0.1.1' 'requests==2.32.3' 'future==1.0.0' >&2
fi
if [ ! -d "$dir/node/node_modules/toxiproxy-node-client" ]; then
  mkdir -p "$dir/node"
  (cd "$dir/node" && npm install --silent --no-audit --no-fund --prefix . 'toxiproxy-node-client@4.1.0' >&2)
fi
echo "TOXIPROXY_CLIENTS=$dir"
