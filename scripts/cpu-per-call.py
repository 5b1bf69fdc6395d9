#!/usr/bin/env python3
"""CPU time per call of muxrpc-bench (or go-bench) variants, alternating
which goes first: medians of user and kernel microseconds per call, from
the kernel's accounting of each run (getrusage of the finished child).

With both ends on one thread (`--event-loops 1 --busy-poll-microseconds 0`
for muxrpc-bench, `GOMAXPROCS=1` for go-bench) the CPU a call costs is
what decides how fast calls can go, and unlike calls per second it does
not move with what else the machine runs.

    scripts/cpu-per-call.py 5 client=.build/release/muxrpc-bench \\
        "bare=.build/release/muxrpc-bench --path bare" \\
        -- rpc --calls 200000 --concurrency 1 --payload 64 --event-loops 1 --busy-poll-microseconds 0

As in alternate.py, a variant may carry arguments of its own (appended
after the shared ones) and environment settings before the binary.
"""
import os
import statistics
import subprocess
import sys

from bench_common import parse_variants, result_fields


def run(command, environment):
    """Runs one benchmark; returns (user, system) seconds and its calls."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(command)} failed with status {status}")
    fields = result_fields(output)
    calls = int(fields.get("calls") or fields["round_trips"])
    return usage.ru_utime, usage.ru_stime, calls


def main():
    rounds, variants, arguments = parse_variants(sys.argv)
    user = {label: [] for label, _, _ in variants}
    system = {label: [] for label, _, _ in variants}
    for round_index in range(rounds):
        order = variants if round_index % 2 == 0 else list(reversed(variants))
        for label, words, settings in order:
            seconds_user, seconds_system, calls = run(words[:1] + arguments + words[1:], dict(os.environ, **settings))
            user[label].append(seconds_user / calls * 1e6)
            system[label].append(seconds_system / calls * 1e6)
    for label, _, _ in variants:
        u, s = statistics.median(user[label]), statistics.median(system[label])
        runs = [round(value, 1) for value in user[label]]
        print(f"{' '.join(arguments)} | {label}: user_us={u:.1f} kernel_us={s:.1f} total_us={u + s:.1f} user_runs={runs}")


if __name__ == "__main__":
    main()
