#!/usr/bin/env bash
# Runs MuxRPC's whole test suite on a fresh Debian machine with Swift:
# installs the system packages the tests need, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-system-packages.sh
echo "==> building the package and its tests (debug)"
swift build --build-tests
echo "==> running the test suite"
swift test --skip-build --disable-xctest
