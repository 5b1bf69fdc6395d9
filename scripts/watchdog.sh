#!/usr/bin/env bash
# Usage: scripts/watchdog.sh SECONDS COMMAND [ARGS...]
#
# Runs COMMAND, and stops it if it runs longer than SECONDS: a hung test run
# then fails with a stack of every thread of the test process in the log,
# instead of sitting until the CI job's own limit ends it with nothing said.
# Exits with COMMAND's status, or 124 when the time ran out.
set -uo pipefail

limit=$1
shift

setsid "$@" &
pid=$!
# setsid put COMMAND in its own process group: pass on an interrupt.
trap 'kill -TERM -- "-$pid" 2>/dev/null' INT TERM

deadline=$(( $(date +%s) + limit ))
while kill -0 "$pid" 2>/dev/null; do
    if (( $(date +%s) >= deadline )); then
        echo "==> watchdog: still running after ${limit} s; stopping it" >&2
        test_processes=$(pgrep -s "$pid" -f 'PackageTests' || true)
        for test_process in $test_processes; do
            if command -v gdb >/dev/null 2>&1; then
                echo "==> watchdog: the threads of test process ${test_process}:" >&2
                gdb -p "$test_process" -batch -ex 'thread apply all bt 40' 2>&1 | grep -E '^(Thread|#)' >&2
            fi
        done
        # The test process first, so that `swift test` still writes out
        # what it holds of the test's output before it ends.
        for test_process in $test_processes; do kill -KILL "$test_process" 2>/dev/null; done
        for _ in $(seq 1 10); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 1
        done
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        exit 124
    fi
    sleep 2
done
wait "$pid"
