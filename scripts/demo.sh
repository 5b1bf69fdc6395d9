#!/usr/bin/env bash
# Runs the MuxRPC demo on loopback. Until the RPC layer lands, the demo is
# the codec at work on a Go-shaped RPC request.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-system-packages.sh
echo "==> building and running muxrpc-codec-demo"
swift run muxrpc-codec-demo
