#!/usr/bin/env bash
# Runs MuxRPC's whole test suite on a fresh Debian machine with Swift:
# installs the system packages the tests need, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-system-packages.sh
echo "==> building the package and its tests (debug)"
swift build --build-tests
# The suite takes a minute or two; a run past this limit has hung, and the
# watchdog stops it with every thread's stack in the log.
limit=${MUXRPC_TEST_TIME_LIMIT:-1500}
echo "==> running the test suite (stopped, with its threads' stacks printed, if it runs over ${limit} s)"
./scripts/watchdog.sh "$limit" swift test --skip-build --disable-xctest
