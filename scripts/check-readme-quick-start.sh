#!/usr/bin/env bash
# The README's quick start must compile as written: each ```swift block
# that follows a line `<!-- compiled as Examples/Sources/NAME/main.swift -->`
# must be that file, byte for byte. CI builds the Examples package, so a
# quick start that drifts from a compiling program fails here.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
checked=0
while IFS= read -r file; do
    expected=$(awk -v marker="<!-- compiled as $file -->" '
        $0 == marker { armed = 1; next }
        armed && /^```swift$/ { inside = 1; next }
        inside && /^```$/ { exit }
        inside { print }
    ' README.md)
    if [ "$expected" != "$(cat "$file")" ]; then
        echo "README.md's block for $file differs from the file:"
        diff <(printf '%s\n' "$expected") "$file" || true
        status=1
    fi
    checked=$((checked + 1))
done < <(sed -n 's/^<!-- compiled as \(.*\) -->$/\1/p' README.md)

if [ "$checked" -eq 0 ]; then
    echo "README.md marks no quick start as compiled"
    exit 1
fi
[ "$status" -eq 0 ] && echo "README quick start: $checked block(s) match their compiled files"
exit "$status"
