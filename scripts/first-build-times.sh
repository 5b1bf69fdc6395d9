#!/usr/bin/env bash
# Times the first debug build of a one-file application that depends on
# MuxRPC by path, once with the TLS trait off and once with the default
# traits, each in a fresh package with an empty build folder. Prints one
# line per build. The README quotes the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for variant in "no-tls:traits: []" "tls:traits: [.defaults]"; do
    name=${variant%%:*}
    traits=${variant#*:}
    mkdir -p "$work/$name/Sources/app"
    cat > "$work/$name/Package.swift" <<PACKAGE
// swift-tools-version: 6.1
import PackageDescription
let package = Package(
    name: "app",
    dependencies: [.package(name: "MuxRPC", path: "$root", $traits)],
    targets: [.executableTarget(name: "app", dependencies: [.product(name: "MuxRPC", package: "MuxRPC")])]
)
PACKAGE
    cat > "$work/$name/Sources/app/main.swift" <<'SOURCE'
import MuxRPC
let client = try MuxRPCClient(endpoints: ["127.0.0.1:8300"])
await client.shutdown()
SOURCE
    start=$(date +%s.%N)
    (cd "$work/$name" && swift build > build.log 2>&1) || { cat "$work/$name/build.log"; exit 1; }
    end=$(date +%s.%N)
    compiled=$(grep -c "Compiling" "$work/$name/build.log" || true)
    boringssl=$(grep -ci "boringssl" "$work/$name/build.log" || true)
    printf '%s: %.0f s, %s compile steps, BoringSSL named %s times\n' "$name" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$compiled" "$boringssl"
done
