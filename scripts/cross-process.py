#!/usr/bin/env python3
"""64-byte Echo with client and server in separate processes, the shape a
deployment has: HashiCorp's Go stack against MuxRPC, and each stack's client
against the other's server, alternating, several rounds, medians.

    scripts/cross-process.py [--rounds 5]

Servers: `go-bench rpc-server` (net/rpc + msgpackrpc over hashicorp/yamux)
and `muxrpc-server` (the demo program, release). Clients: `go-bench rpc
--addr` and `muxrpc-bench rpc --addr` (through MuxRPCClient). All speak
Consul's mode (0x04, then yamux) over loopback. A fifth pair runs MuxRPC
with busy polling and early flushes turned off at both ends. Writes a
Markdown table between the cross-process markers in Docs/benchmarks.md and
prints it.
"""

import argparse
import statistics
import subprocess
import sys

from bench_common import GO_BENCH, SWIFT_BENCH, SWIFT_SERVER, WITHOUT_POLLING_OR_EARLY_FLUSHES, build, result_fields, run_stamp, say, start_server, write_doc_block


def run_client(command):
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return result_fields(completed.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    options = parser.parse_args()
    if not options.no_build:
        build(("muxrpc-bench", "muxrpc-server"))
    go_server, go_address = start_server([GO_BENCH, "rpc-server"])
    swift_server, swift_address = start_server([SWIFT_SERVER, "--host", "127.0.0.1", "--port", "0"])
    # MuxRPC with busy polling and early flushes off at both ends: what those two defaults add.
    without = WITHOUT_POLLING_OR_EARLY_FLUSHES
    plain_server, plain_address = start_server([SWIFT_SERVER, "--host", "127.0.0.1", "--port", "0"] + without)
    pairs = [
        ("Go -> Go", [GO_BENCH], go_address),
        ("MuxRPC -> MuxRPC", [SWIFT_BENCH], swift_address),
        ("Go client -> MuxRPC server", [GO_BENCH], swift_address),
        ("MuxRPC client -> Go server", [SWIFT_BENCH], go_address),
        ("MuxRPC -> MuxRPC, no busy polling or early flushes", [SWIFT_BENCH] + without, plain_address),
    ]
    shapes = [(1, 20000), (8, 40000), (32, 80000)]
    results = {}
    try:
        for round_index in range(options.rounds):
            order = pairs if round_index % 2 == 0 else list(reversed(pairs))
            for concurrency, calls in shapes:
                for label, client, address in order:
                    fields = run_client(client[:1] + ["rpc", "--addr", address, "--calls", str(calls),
                                         "--concurrency", str(concurrency), "--payload", "64"] + client[1:])
                    say(f"round {round_index + 1}/{options.rounds} {label}, {concurrency} in flight: {fields['calls_per_s']} calls/s")
                    entry = results.setdefault((concurrency, label), {"calls_per_s": [], "p50_us": []})
                    entry["calls_per_s"].append(float(fields["calls_per_s"]))
                    entry["p50_us"].append(float(fields["p50_us"]))
    finally:
        go_server.kill()
        for server in (swift_server, plain_server):
            server.terminate()
            server.wait(timeout=30)
    command = " ".join(["scripts/cross-process.py"] + sys.argv[1:])
    lines = [f"Measured on {run_stamp()}: {options.rounds} rounds, the pairs alternating order, medians.",
             f"Command: `{command}`.", "",
             "| in flight | client -> server | calls/s | p50 µs | / Go -> Go |",
             "| ---: | --- | ---: | ---: | ---: |"]
    for concurrency, _ in shapes:
        base = statistics.median(results[(concurrency, "Go -> Go")]["calls_per_s"])
        for label, _, _ in pairs:
            entry = results[(concurrency, label)]
            rate = statistics.median(entry["calls_per_s"])
            p50 = statistics.median(entry["p50_us"])
            lines.append(f"| {concurrency} | {label} | {rate:,.0f} | {p50:.1f} | {rate / base:.2f}x |")
    lines.append("")
    # Each round ran every pair once: the ratio within each round, its worst.
    for concurrency, _ in shapes:
        go = results[(concurrency, "Go -> Go")]["calls_per_s"]
        mux = results[(concurrency, "MuxRPC -> MuxRPC")]["calls_per_s"]
        ratios = [m / g for m, g in zip(mux, go)]
        lines.append(f"MuxRPC -> MuxRPC against Go -> Go with {concurrency} in flight, round by round: "
                     f"{', '.join(f'{r:.2f}x' for r in ratios)} (lowest {min(ratios):.2f}x).")
    text = "\n".join(lines)
    write_doc_block("cross-process", text, "Across processes: the shape a deployment has")
    print(text)

if __name__ == "__main__":
    main()
