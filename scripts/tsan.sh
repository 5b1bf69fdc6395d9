#!/usr/bin/env bash
# Builds MuxRPC and its tests with ThreadSanitizer and runs them: the yamux
# sessions, the pool, the client and the server, driven from many threads at
# once, against each other, against Go's yamux and net/rpc, and as programs.
#
#   ./scripts/tsan.sh [FILTER]
#
# FILTER is a `swift test --filter` regular expression, matched against test
# ids such as `MuxRPCTests.ConnectionPoolTests/coalescedDial(mode:)`; without
# it, the whole suite runs but for MallocTuningTests (see below). See
# Docs/sanitizers.md for what a run covers and costs.
#
# The build is a debug build with --sanitize=thread in .build-tsan/ (log:
# .build-tsan/tsan-build.log). The tests run with
# TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1, plus the suppressions
# in scripts/tsan-suppressions.txt when that file exists, and any
# TSAN_OPTIONS of your own after those, and with scripts/tsan-shim.c
# preloaded (LD_PRELOAD), which shows TSan two synchronisations of the Swift
# runtime that it cannot see by itself. Every ThreadSanitizer report, from the
# test process or from a program it starts (muxrpc-server and muxrpc-client
# are built with TSan too), is written to .build-tsan/tsan-reports/ and
# printed at the end. The run's full output: .build-tsan/tsan-test.log.
#
# Exits non-zero when the build fails, a test fails, or TSan reports anything.
# CI=true is passed through: the Go interop tests then fail instead of skipping.
#
# Environment: TSAN_JOBS (build jobs, default 2), TSAN_TIME_LIMIT (seconds
# before the watchdog stops a hung run with every thread's stack, default
# 3600), TSAN_PARALLEL=1 (run the tests in parallel; default one at a time).
set -uo pipefail
cd "$(dirname "$0")/.."

# By default every test but MallocTuningTests: TSan brings its own malloc, so
# glibc's settings, which that suite measures, mean nothing there. The whole
# suite under TSan takes a few minutes more than its concurrent suites alone.
filter_args=()
if [ -n "${1:-}" ]; then filter_args=(--filter "$1"); fi
skip='^MuxRPCTests\.MallocTuningTests[/.]'
scratch=.build-tsan
reports="$PWD/$scratch/tsan-reports"
build_log="$scratch/tsan-build.log"
test_log="$scratch/tsan-test.log"

./scripts/install-system-packages.sh || { echo "tsan: FAILED: the system packages could not be installed"; exit 1; }

mkdir -p "$scratch"
echo "==> building the package and its tests with ThreadSanitizer (debug, in $scratch/)"
build_start=$SECONDS
if ! nice -n 10 swift build --build-tests --sanitize=thread --scratch-path "$scratch" -j "${TSAN_JOBS:-2}" >"$build_log" 2>&1; then
    grep -E 'error:' "$build_log" | head -20
    tail -5 "$build_log"
    echo "tsan: FAILED: the build failed after $((SECONDS - build_start)) s (log: $build_log)"
    exit 1
fi
build_seconds=$((SECONDS - build_start))
echo "built in ${build_seconds} s"

# TSan cannot see two synchronisations of the Swift runtime on Linux: the
# waits inside Synchronization.Mutex, and a continuation resumed before its
# task awaits it. Without this shim both show up as races in correct code
# (see scripts/tsan-shim.c).
shim="$PWD/$scratch/tsan-shim.so"
swift_bin=$(dirname "$(readlink -f "$(command -v swift)")")
clang="$swift_bin/clang"
[ -x "$clang" ] || clang=clang
if ! "$clang" -O1 -shared -fPIC -Wall -Werror -o "$shim" scripts/tsan-shim.c -ldl; then
    echo "tsan: FAILED: could not build scripts/tsan-shim.c"
    exit 1
fi
# The shim wraps runtime functions by name: each must still exist.
runtime="$swift_bin/../lib/swift/linux"
exported=$(nm -D --defined-only "$runtime/libswiftSynchronization.so" "$runtime/libswift_Concurrency.so" 2>/dev/null | awk 'NF == 3 { print $3 }')
for symbol in $(nm -D --defined-only "$shim" | awk '$2 == "T" && $3 != "_init" && $3 != "_fini" { print $3 }'); do
    if ! grep -qxF "$symbol" <<<"$exported"; then
        echo "tsan: FAILED: the Swift runtime in $runtime no longer has $symbol: update scripts/tsan-shim.c for this toolchain"
        exit 1
    fi
done

options="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/report"
if [ -f scripts/tsan-suppressions.txt ]; then
    options="$options:suppressions=$PWD/scripts/tsan-suppressions.txt:print_suppressions=1"
fi
if [ -n "${TSAN_OPTIONS:-}" ]; then options="$options:$TSAN_OPTIONS"; fi
rm -rf "$reports"
mkdir -p "$reports"

# One test at a time (each test is concurrent in itself): with every suite at
# once, TSan's slowdown on a small machine delays pool health-check pings past
# their 5 s timeout, and the pool then closes sessions under calls in flight.
parallel=--no-parallel
if [ "${TSAN_PARALLEL:-0}" = 1 ]; then parallel=--parallel; fi

limit=${TSAN_TIME_LIMIT:-3600}
echo "==> running the tests under ThreadSanitizer ($parallel; filter: ${1:-none}; skipped: $skip; CI=${CI:-unset}; stopped after ${limit} s)"
run_start=$SECONDS
TSAN_OPTIONS="$options" LD_PRELOAD="$shim${LD_PRELOAD:+:$LD_PRELOAD}" ./scripts/watchdog.sh "$limit" \
    nice -n 10 swift test --skip-build --sanitize=thread --scratch-path "$scratch" --disable-xctest "$parallel" "${filter_args[@]}" --skip "$skip" \
    2>&1 | tee "$test_log"
status=${PIPESTATUS[0]}
run_seconds=$((SECONDS - run_start))

# Reports of the test process and of every program it started. A file that
# only counts the suppressions it matched is not a report.
problem='WARNING: ThreadSanitizer|ThreadSanitizer: CHECK failed|(ERROR|FATAL): ThreadSanitizer'
report_count=0
report_files=()
suppressed=0
while IFS= read -r file; do
    [ -n "$file" ] || continue
    matched=$(sed -nE 's/^ThreadSanitizer: Matched ([0-9]+) suppressions.*/\1/p' "$file" | head -1)
    suppressed=$((suppressed + ${matched:-0}))
    if grep -qE "$problem" "$file"; then
        report_files+=("$file")
        report_count=$((report_count + $(grep -cE "$problem" "$file")))
        echo "==> ThreadSanitizer report ($file):"
        cat "$file"
    fi
done < <(find "$reports" -type f | sort)
# Anything TSan wrote where log_path did not reach (it should not happen).
stray=$(grep -cE "$problem" "$test_log")
report_count=$((report_count + stray))
if [ "$report_count" -gt 0 ]; then
    grep -hE 'SUMMARY: ThreadSanitizer|ThreadSanitizer: CHECK failed' "${report_files[@]}" "$test_log" 2>/dev/null | sort | uniq -c
fi

# A test process stopped by TSan leaves the servers and peers it started.
leftovers=$(pgrep -f "^($PWD/$scratch/|$PWD/.build/go-peers/)" | tr '\n' ' ')
if [ -n "$leftovers" ]; then echo "tsan: processes the stopped tests left running (kill them): $leftovers"; fi

# Swift Testing's closing line, e.g. "✔ Test run with 120 tests in 15 suites passed after 300.1 seconds."
closing=$(grep -E 'Test run with [0-9]+ tests?' "$test_log" | tail -1 | sed -E 's/^[^A-Za-z]*//')
tests=$(echo "$closing" | sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p')
result="clean"
if [ "$report_count" -gt 0 ]; then result="FAILED (ThreadSanitizer reports)";
elif [ "$status" -eq 124 ]; then result="FAILED (stopped by the watchdog after ${limit} s)";
elif [ "$status" -ne 0 ]; then result="FAILED (test failures, exit status $status)";
elif [ -z "$tests" ] || [ "$tests" -eq 0 ]; then result="FAILED (no test ran: check the filter)"; status=1;
fi
echo "tsan: $result: ${tests:-0} tests run, ${report_count} ThreadSanitizer reports (${suppressed} suppressed); build ${build_seconds} s, run ${run_seconds} s${closing:+ [$closing]}"
if [ "$result" != "clean" ]; then
    [ "$status" -ne 0 ] && exit "$status"
    exit 1
fi
exit 0
