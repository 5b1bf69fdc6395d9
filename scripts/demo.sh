#!/usr/bin/env bash
# Runs the MuxRPC demo on loopback: muxrpc-server serving the demo services,
# and muxrpc-client calling them in each mode (Consul, Nomad, plain), checking
# every answer. Stops the server gracefully at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-system-packages.sh
echo "==> building muxrpc-server and muxrpc-client (release)"
swift build -c release --product muxrpc-server
swift build -c release --product muxrpc-client
bin=.build/release

log=$(mktemp)
"$bin/muxrpc-server" --host 127.0.0.1 --port 0 > "$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
    grep -q "^listening on " "$log" && break
    sleep 0.1
done
address=$(sed -n 's/^listening on //p' "$log")
[ -n "$address" ] || { echo "muxrpc-server did not start" >&2; exit 1; }
echo "==> muxrpc-server listening on $address"

status=0
for mode in consul nomad plain; do
    echo "==> muxrpc-client --addr $address --mode $mode --calls 20000 --concurrency 8"
    "$bin/muxrpc-client" --addr "$address" --mode "$mode" --calls 20000 --concurrency 8 || status=1
done

echo "==> stopping muxrpc-server (SIGTERM: graceful shutdown)"
kill -TERM "$server"
wait "$server" || true
trap - EXIT
rm -f "$log"
exit $status
