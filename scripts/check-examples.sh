#!/usr/bin/env bash
# Builds Examples/ the way an application depends on MuxRPC (by path, the
# TLS trait off, a wider swift-nio range than MuxRPC's own), checks that
# the build compiled no BoringSSL, then runs each example and checks what
# it prints.
set -euo pipefail
cd "$(dirname "$0")/.."

log=Examples/.build/examples-build.log
mkdir -p Examples/.build
echo "==> building Examples/ (MuxRPC by path, TLS trait off, swift-nio from 2.81.0)"
if ! swift build --package-path Examples > "$log" 2>&1; then
    cat "$log"
    echo "examples: the build failed"
    exit 1
fi
if grep -qi "boringssl\|swift-nio-ssl" "$log"; then
    grep -i "boringssl\|swift-nio-ssl" "$log" | head
    echo "examples: with the TLS trait off the build must not fetch swift-nio-ssl or compile BoringSSL"
    exit 1
fi
echo "    built; the log names no BoringSSL file"

bin=$(swift build --package-path Examples --show-bin-path)

expect() { # expect NAME PATTERN FILE
    if ! grep -q "$2" "$3"; then
        cat "$3"
        echo "examples: $1 did not print \"$2\""
        exit 1
    fi
}

out=$(mktemp -d)
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$out"' EXIT

# Waits up to 30 s for PATTERN in FILE. The servers run under `stdbuf -oL`:
# their output goes to a file, which stdio would otherwise buffer.
wait_for() {
    for _ in $(seq 1 300); do
        grep -q "$1" "$2" && return 0
        sleep 0.1
    done
    cat "$2"
    echo "examples: timed out waiting for \"$1\""
    exit 1
}

echo "==> quick-start"
timeout 60 "$bin/quick-start" > "$out/quick-start" 2>&1
expect quick-start "2 + 3 = 5" "$out/quick-start"

echo "==> kv-server and kv-client"
stdbuf -oL "$bin/kv-server" > "$out/kv-server" 2>&1 &
pids+=($!)
wait_for "KV server listening" "$out/kv-server"
timeout 60 "$bin/kv-client" > "$out/kv-client" 2>&1
expect kv-client "alpha = first" "$out/kv-client"
expect kv-client "gamma is not set" "$out/kv-client"
expect kv-client "the server refused an empty key: empty key" "$out/kv-client"
kill "${pids[0]}"

echo "==> call-go-server against the Go KV server"
timeout 300 Examples/run-go-example.sh > "$out/go" 2>&1 || { cat "$out/go"; exit 1; }
expect call-go-server "greeting = hello from Swift" "$out/go"
expect call-go-server "the Go server refused an empty key: empty key" "$out/go"

echo "==> service-group-app, stopped by SIGTERM"
stdbuf -oL "$bin/service-group-app" > "$out/app" 2>&1 &
app=$!
pids+=($app)
wait_for "counter is 2" "$out/app"
kill -TERM "$app"
if ! timeout 30 tail --pid="$app" -f /dev/null; then
    cat "$out/app"
    echo "examples: service-group-app did not stop within 30 s of SIGTERM"
    exit 1
fi
wait "$app" || { cat "$out/app"; echo "examples: service-group-app exited with an error after SIGTERM"; exit 1; }

echo "==> nio-neighbour"
timeout 60 "$bin/nio-neighbour" > "$out/nio" 2>&1
expect nio-neighbour "pinged" "$out/nio"
echo "examples: all ran as expected"
