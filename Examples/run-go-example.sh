#!/usr/bin/env bash
# Builds the Go KV server (Examples/GoKVServer, against Debian's packaged
# hashicorp sources), starts it on a free port, and runs the Swift example
# call-go-server against it. Needs golang-go and the hashicorp -dev
# packages (scripts/install-system-packages.sh installs them).
set -euo pipefail
cd "$(dirname "$0")"

out=.build/go-kv-server
mkdir -p "$out"
echo "==> building the Go KV server"
(cd GoKVServer && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$PWD/../$out/cache" CGO_ENABLED=0 \
    go build -o "../$out/go-kv-server" .)

echo "==> building the Swift example"
swift build --product call-go-server

"$out/go-kv-server" -listen 127.0.0.1:0 > "$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    address=$(sed -n 's/^listening on //p' "$out/server.log")
    [ -n "$address" ] && break
    sleep 0.1
done
[ -n "${address:-}" ] || { cat "$out/server.log"; echo "the Go server did not start"; exit 1; }

echo "==> calling the Go server at $address"
swift run --skip-build call-go-server "$address"
