#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ and runs each for a while.
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# The build is a debug build with Swift's -sanitize=fuzzer,address, in
# .build-fuzz/. Each target starts from a copy of its seed corpus
# (Fuzz/Corpus/<target>/, never written to) in .build-fuzz/corpus/<target>/,
# which keeps what earlier runs found. A crash, leak, timeout or memory blow-up
# is saved under .build-fuzz/artifacts/<target>/; the script then prints its
# path and exits non-zero. Full libFuzzer logs: .build-fuzz/logs/<target>.log.
#
# Environment: FUZZ_TARGETS (space-separated names; default all),
# FUZZ_ARGS (extra libFuzzer flags for every target), FUZZ_JOBS (build jobs,
# default 2), FUZZ_CONFIGURATION=release (optimized, with testability for
# @testable import: about five times as many runs a second, but without the
# library's and SwiftNIO's debug-only assertions). See Docs/fuzzing.md.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi
targets=(${FUZZ_TARGETS:-FuzzMessagePackDecoder FuzzMessagePackScanner FuzzYamuxFrameDecoder FuzzYamuxSession FuzzRPCFramer})
scratch="$PWD/.build-fuzz"
mkdir -p "$scratch/logs"

configuration=${FUZZ_CONFIGURATION:-debug}
case "$configuration" in
    debug) extra=() ;;
    release) extra=(-Xswiftc -enable-testing) ;;
    *) echo "FUZZ_CONFIGURATION must be debug or release" >&2; exit 2 ;;
esac
echo "==> building the fuzz targets ($configuration, -sanitize=fuzzer,address)"
# --sanitize=fuzzer makes SwiftPM link libFuzzer's main; -sanitize=fuzzer,address
# then instruments every Swift module for both (swiftc keeps only its last
# -sanitize= flag, so the two cannot be given as two --sanitize options).
build_start=$SECONDS
if ! swift build --package-path Fuzz --scratch-path "$scratch" -c "$configuration" -j "${FUZZ_JOBS:-2}" \
    --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address ${extra[@]+"${extra[@]}"} >"$scratch/logs/build.log" 2>&1; then
    grep -E 'error:' "$scratch/logs/build.log" | head -20
    tail -5 "$scratch/logs/build.log"
    echo "fuzz: build failed (log: $scratch/logs/build.log)"
    exit 1
fi
echo "built in $((SECONDS - build_start)) s"
bin="$scratch/$configuration"

failed=0
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    log="$scratch/logs/$target.log"
    mkdir -p "$corpus" "$artifacts"
    # Seeds join what earlier runs found; the checked-in corpus is only read.
    cp -n Fuzz/Corpus/"$target"/* "$corpus"/ 2>/dev/null
    rm -f "$artifacts"/*
    start=$SECONDS
    # Swift's own crash backtracer would run inside ASan's signal handling;
    # libFuzzer and ASan print the stack instead.
    SWIFT_BACKTRACE=enable=no "$bin/$target" "$corpus" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 -print_pcs=0 ${FUZZ_ARGS:-} \
        >"$log" 2>&1
    status=$?
    elapsed=$((SECONDS - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | sed 's/: /=/g')
    findings=$(find "$artifacts" -type f 2>/dev/null | wc -l)
    if [ "$status" -ne 0 ] && [ "$findings" -eq 0 ]; then findings=1; fi
    echo "fuzz $target: runs=${runs:-0} seconds=$elapsed findings=$findings ${coverage:-cov=0 ft=0} corpus=$(ls "$corpus" | wc -l)"
    if [ "$findings" -ne 0 ]; then
        failed=1
        grep -m1 -E 'Fatal error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY' "$log" | cut -c1-300
        for artifact in "$artifacts"/*; do
            [ -e "$artifact" ] && echo "  reproducer: $artifact (run: $bin/$target $artifact)"
        done
        echo "  log: $log"
    fi
done
exit $failed
