#!/usr/bin/env python3
"""64-byte Echo across processes, MuxRPC against HashiCorp's Go stack, with
an earlier build of MuxRPC alongside: how a change moved the ratio to Go.

    scripts/echo-versus-go.py [--rounds 5] [--before DIR]

Each pair is a client process calling a server process over loopback in
Consul's mode (0x04, then yamux), as scripts/cross-process.py runs them:

- Go -> Go: `go-bench rpc --addr` against `go-bench rpc-server`;
- before: the `muxrpc-bench rpc --addr` and `muxrpc-server` found in DIR
  (default .build-before/release), with their own defaults;
- after, library defaults: this tree's binaries with `--default-malloc`,
  so that every setting is the library's;
- after, the programs' settings: this tree's binaries as they start
  (they also tune glibc's malloc, which 64-byte calls do not feel);
- after, busy polling off: this tree's binaries with `--busy-polling off`.

1 call in flight (20,000 calls) and 32 (80,000), the pairs alternating
their order each round; medians. Prints a Markdown table, and each
MuxRPC pair's ratio to Go round by round. Writes no file.

To build the earlier MuxRPC without touching this tree's .build, extract it
elsewhere and build it into a scratch path of its own, e.g.
`git archive main | tar -x -C /tmp/before && cd /tmp/before && swift build -c release --scratch-path <this tree>/.build-before --product muxrpc-server` (and `--product muxrpc-bench`).
"""

import argparse
import os
import statistics
import subprocess
import sys

from bench_common import GO_BENCH, ROOT, SWIFT_BENCH, SWIFT_SERVER, build, result_fields, run_stamp, say, start_server


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default=os.path.join(ROOT, ".build-before", "release"))
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    options = parser.parse_args()
    if not options.no_build:
        build(("muxrpc-bench", "muxrpc-server"))
    before_server = os.path.join(options.before, "muxrpc-server")
    before_bench = os.path.join(options.before, "muxrpc-bench")
    local = ["--host", "127.0.0.1", "--port", "0"]
    library = ["--default-malloc"]
    off = ["--busy-polling", "off"]
    servers = {
        "go": [GO_BENCH, "rpc-server"],
        "before": [before_server] + local,
        "library": [SWIFT_SERVER] + local + library,
        "programs": [SWIFT_SERVER] + local,
        "off": [SWIFT_SERVER] + local + off,
    }
    pairs = [
        ("Go -> Go", [GO_BENCH], "go"),
        ("MuxRPC before", [before_bench], "before"),
        ("MuxRPC after, library defaults", [SWIFT_BENCH] + library, "library"),
        ("MuxRPC after, the programs' settings", [SWIFT_BENCH], "programs"),
        ("MuxRPC after, busy polling off", [SWIFT_BENCH] + off, "off"),
    ]
    shapes = [(1, 20000), (32, 80000)]
    started = {name: start_server(command, stderr=subprocess.DEVNULL) for name, command in servers.items()}
    results = {}
    try:
        for round_index in range(options.rounds):
            order = pairs if round_index % 2 == 0 else list(reversed(pairs))
            for concurrency, calls in shapes:
                for label, client, server in order:
                    command = client[:1] + ["rpc", "--addr", started[server][1], "--calls", str(calls),
                                            "--concurrency", str(concurrency), "--payload", "64"] + client[1:]
                    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
                    fields = result_fields(completed.stdout)
                    say(f"round {round_index + 1}/{options.rounds} {label}, {concurrency} in flight: "
                        f"{fields['calls_per_s']} calls/s, p50 {fields['p50_us']} µs, p99 {fields['p99_us']} µs")
                    entry = results.setdefault((concurrency, label), {"calls_per_s": [], "p50_us": [], "p99_us": []})
                    for key in entry:
                        entry[key].append(float(fields[key]))
    finally:
        for process, _ in started.values():
            process.terminate()
        for process, _ in started.values():
            process.wait(timeout=60)

    command = " ".join(["scripts/echo-versus-go.py"] + sys.argv[1:])
    print(f"Run of {run_stamp()}: {options.rounds} rounds, the pairs alternating order, medians.")
    print(f"Command: `{command}`.")
    print()
    print("| in flight | client -> server | calls/s | p50 µs | p99 µs | / Go -> Go |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for concurrency, _ in shapes:
        base = statistics.median(results[(concurrency, "Go -> Go")]["calls_per_s"])
        for label, _, _ in pairs:
            entry = results[(concurrency, label)]
            rate = statistics.median(entry["calls_per_s"])
            print(f"| {concurrency} | {label} | {rate:,.0f} | {statistics.median(entry['p50_us']):.1f} "
                  f"| {statistics.median(entry['p99_us']):.1f} | {rate / base:.2f}x |")
    print()
    for concurrency, _ in shapes:
        go = results[(concurrency, "Go -> Go")]["calls_per_s"]
        for label, _, _ in pairs[1:]:
            ratios = [m / g for m, g in zip(results[(concurrency, label)]["calls_per_s"], go)]
            print(f"{label} against Go -> Go with {concurrency} in flight, round by round: "
                  f"{', '.join(f'{r:.2f}x' for r in ratios)}.")


if __name__ == "__main__":
    main()
