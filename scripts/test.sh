#!/usr/bin/env bash
# Runs MuxRPC's whole test suite on a fresh Debian machine with Swift:
# installs the system packages the tests need, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-system-packages.sh
echo "==> building the package and its tests (debug)"
swift build --build-tests
# The short forms of the heavy checks (their long runs are recorded in
# Docs/fuzzing.md and Docs/server.md): every fuzz target for a few seconds,
# and the network attack script against the demo server with healthy
# clients beside it. They run before the suite so that its summary is the
# run's last word.
echo "==> fuzzing each target briefly (scripts/fuzz.sh 12)"
./scripts/fuzz.sh 12
echo "==> attacking the demo server (scripts/attack.py --short)"
if ! python3 scripts/attack.py --short --server .build/debug/muxrpc-server --client .build/debug/muxrpc-client > .build/attack-short.md 2>&1; then
    cat .build/attack-short.md
    echo "attack: FAILED (the table above says which class)"
    exit 1
fi
tail -1 .build/attack-short.md
echo "==> the README quick start is the program Examples/ compiles"
./scripts/check-readme-quick-start.sh
echo "==> Examples/: built as an application builds MuxRPC (TLS trait off), then run"
./scripts/check-examples.sh
echo "==> documentation: every library module's DocC catalog, with no warnings"
./scripts/check-docs.sh
# The suite takes a minute or two; a run past this limit has hung, and the
# watchdog stops it with every thread's stack in the log.
limit=${MUXRPC_TEST_TIME_LIMIT:-1500}
echo "==> running the test suite (stopped, with its threads' stacks printed, if it runs over ${limit} s)"
./scripts/watchdog.sh "$limit" swift test --skip-build --disable-xctest
