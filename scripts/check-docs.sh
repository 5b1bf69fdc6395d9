#!/usr/bin/env bash
# Builds the DocC documentation of every library module and fails on any
# warning in it.
#
#   ./scripts/check-docs.sh [MODULE...]      (default: every library module)
#
# Each module goes through `swift package generate-documentation` (the
# swift-docc-plugin dependency) with docc's --warnings-as-errors, so a link
# that resolves to nothing, a topic that curates a missing symbol, or a
# documented parameter list that leaves one out stops the build. Any other
# `warning:` the build prints (a compiler warning in the module, say) fails
# the check too, except SwiftPM's notices about files a dependency's checkout
# leaves unhandled, which say nothing about these docs. Logs:
# .build/check-docs/<module>.log; archives: .build/plugins/Swift-DocC/outputs/.
set -uo pipefail
cd "$(dirname "$0")/.."

modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
    modules=(MessagePack Yamux MsgpackRPC MuxRPCTransport MuxRPCPool MuxRPCClientStack MuxRPCObservability MuxRPC)
fi
logs=.build/check-docs
mkdir -p "$logs"

failed=0
for module in "${modules[@]}"; do
    log="$logs/$module.log"
    swift package generate-documentation --target "$module" --warnings-as-errors >"$log" 2>&1
    status=$?
    warnings=$(grep -E '(^|: )warning:' "$log" | grep -v 'which are unhandled; explicitly declare them as resources' || true)
    if [ "$status" -ne 0 ] || [ -n "$warnings" ]; then
        failed=1
        echo "docs $module: FAILED (status $status; log: $log)"
        # docc's diagnostics, each with the source lines it points at.
        grep -E -A6 '(^|: )(warning|error):' "$log" | grep -v 'which are unhandled' | head -60
    else
        echo "docs $module: ok, no warnings"
    fi
done
exit "$failed"
