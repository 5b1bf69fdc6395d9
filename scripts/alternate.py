#!/usr/bin/env python3
"""Two (or more) muxrpc-bench binaries on one shape, alternating which goes
first, for before/after figures: medians of the rate (calls_per_s,
round_trips_per_s or MBps) and of p50_us where reported, and the ratio to
the first binary.

    scripts/alternate.py ROUNDS before=/tmp/bench-main after=.build/release/muxrpc-bench -- rpc --calls 20000 --concurrency 1

A binary may carry arguments of its own, appended after the shared ones,
and environment settings before it (quote the whole label=... word):

    scripts/alternate.py 5 go=.build/go-bench/go-bench inline=.build/release/muxrpc-bench \
        "async=.build/release/muxrpc-bench --server-methods async" -- rpc --calls 20000 --concurrency 1
    scripts/alternate.py 5 "go1=GOMAXPROCS=1 .build/go-bench/go-bench" go=.build/go-bench/go-bench -- rpc
"""
import os
import statistics
import subprocess
import sys

from bench_common import parse_variants, result_fields


def main():
    rounds, binaries, arguments = parse_variants(sys.argv)
    # The rate each benchmark reports, and (rpc only) its median latency.
    rate_keys = ("calls_per_s", "round_trips_per_s", "MBps", "values_per_s")
    rates = {label: [] for label, _, _ in binaries}
    latencies = {label: [] for label, _, _ in binaries}
    rate_key = None
    for round_index in range(rounds):
        order = binaries if round_index % 2 == 0 else list(reversed(binaries))
        for label, binary, settings in order:
            command = binary[:1] + arguments + binary[1:]
            environment = dict(os.environ, **settings)
            fields = result_fields(subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout)
            rate_key = next(key for key in rate_keys if key in fields)
            rates[label].append(float(fields[rate_key]))
            if "p50_us" in fields:
                latencies[label].append(float(fields["p50_us"]))
    base = None
    for label, _, _ in binaries:
        rate = statistics.median(rates[label])
        base = base or rate
        p50 = f" p50_us={statistics.median(latencies[label]):.1f}" if latencies[label] else ""
        runs = [round(value) for value in rates[label]]
        print(f"{' '.join(arguments)} | {label}: {rate_key}={rate:.0f}{p50} ratio={rate / base:.2f} runs={runs}")


if __name__ == "__main__":
    main()
