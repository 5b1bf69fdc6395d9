#!/usr/bin/env python3
"""MuxRPC against HashiCorp's Go stack and raw TCP, side by side.

Builds Benchmarks/go-bench (Go, Debian's hashicorp packages) and
muxrpc-bench (Swift, release), then runs the same shapes with both,
alternating which goes first, for several rounds. Writes the medians and
ratios as a table between the side-by-side markers in Docs/benchmarks.md,
and PNG plots into Docs/images/.

    scripts/side-by-side.py [--rounds 5] [--quick]

Only loopback traffic; every run is bounded in bytes or calls.
"""

import argparse
import os
import statistics
import subprocess
import sys

from bench_common import GO_BENCH, ROOT, SWIFT_BENCH, WITHOUT_POLLING_OR_EARLY_FLUSHES, build, result_fields, run_stamp, say, write_doc_block

IMAGES = os.path.join(ROOT, "Docs", "images")


# MuxRPC drives yamux streams with handlers on the event loop (YamuxStream.configurePipeline,
# as MuxRPC's own RPC streams do); the async API (executeThenClose over NIOAsyncChannel) is
# measured too, against the same Go runs. Go has one API: goroutines with blocking Read/Write.
STREAM_APIS = [("", ["--api", "handlers"]), (", async API", ["--api", "async"]),
               (", no busy polling", ["--api", "handlers", "--busy-poll-microseconds", "0"])]
# RPC: through MuxRPCClient (its default configuration, no interceptors) with both ends on NIO's
# shared event loops (one per core), the same on one event loop thread, through the pool alone
# (`--path pool`), without the client stack (RPCClient streams from a free list, `--path
# bare`) on the shared loops, and through the client stack with net/rpc straight on TCP
# connections instead of yamux streams (`--mode plain`), which shows what yamux costs.
RPC_LOOPS = [("", []), (", 1 event loop", ["--event-loops", "1"]), (", pool only", ["--path", "pool"]),
             (", bare RPCClient", ["--path", "bare"]), (", no yamux (plain mode)", ["--mode", "plain"]),
             (", no busy polling or early flushes", WITHOUT_POLLING_OR_EARLY_FLUSHES)]
# Large messages: as muxrpc-bench runs them (MallocTuning applied, as in muxrpc-server), and
# with glibc's malloc defaults, under which a 64 KiB or 1 MiB call faults its buffers in afresh.
LARGE_RPC_VARIANTS = [("", []), (", glibc malloc defaults", ["--default-malloc"])]
# Raw TCP on NIO as it comes, and with the busy polling MuxRPC's connections have.
TCP_VARIANTS = [("", []), (", busy polling", ["--busy-poll-microseconds", "100"])]
# Raw TCP round trips, one message in flight: the ceiling of an RPC with one call in flight.
# MuxRPC's side is NIO with the busy polling its connections have, and without.
ROUND_TRIP_VARIANTS = [("", []), (", no busy polling", ["--busy-poll-microseconds", "0"])]


def shapes(quick):
    """(name, metric, arguments, MuxRPC variants) for each shape; Go runs the arguments once,
    MuxRPC once per variant (a name suffix and extra arguments)."""
    total = str(256 << 20) if quick else str(1 << 30)
    result = [("tcp 64 KiB", "MBps", ["tcp", "--bytes", total, "--chunk", str(64 << 10)], TCP_VARIANTS)]
    for streams in ([1, 64] if quick else [1, 8, 64]):
        for chunk in ([64 << 10] if quick else [4 << 10, 16 << 10, 64 << 10]):
            result.append((f"streams {streams} x {chunk >> 10} KiB", "MBps",
                           ["streams", "--streams", str(streams), "--bytes", total, "--chunk", str(chunk)], STREAM_APIS))
    result.append(("tcp round trips 64 B", "round_trips_per_s",
                   ["pingpong", "--round-trips", "50000", "--payload", "64"], ROUND_TRIP_VARIANTS))
    for concurrency in [1, 8, 32]:
        calls = str(20000 * max(1, concurrency // 8))
        result.append((f"rpc echo 64 B, {concurrency} in flight", "calls_per_s",
                       ["rpc", "--calls", calls, "--concurrency", str(concurrency), "--payload", "64"], RPC_LOOPS))
    for concurrency in [1, 32]:
        calls = str(5000 if concurrency == 1 else 20000)
        result.append((f"rpc echo 64 KiB, {concurrency} in flight", "calls_per_s",
                       ["rpc", "--calls", calls, "--concurrency", str(concurrency), "--payload", "65536"], LARGE_RPC_VARIANTS))
    result.append(("rpc echo 1 MiB, 1 in flight", "calls_per_s",
                   ["rpc", "--calls", "1000", "--concurrency", "1", "--payload", str(1 << 20)], LARGE_RPC_VARIANTS))
    return result


def run(binary, arguments):
    """Runs one benchmark; returns its key=value fields, or None if it cannot run that shape."""
    completed = subprocess.run([binary] + arguments, capture_output=True, text=True, timeout=600)
    if completed.returncode != 0:
        say(f"{os.path.basename(binary)} {' '.join(arguments)}: failed ({completed.stderr.strip().splitlines()[-1:]})")
        return None
    return result_fields(completed.stdout)


def measure(rounds, quick):
    results = {}
    for round_index in range(rounds):
        for name, metric, arguments, variants in shapes(quick):
            runs = [("Go", GO_BENCH, arguments, None)] + [("MuxRPC", SWIFT_BENCH, arguments + extra, suffix) for suffix, extra in variants]
            if round_index % 2:
                runs.reverse()
            for stack, binary, args, suffix in runs:
                fields = run(binary, args)
                label = name + (suffix or "")
                say(f"round {round_index + 1}/{rounds} {stack:6} {label}: {fields.get(metric) if fields else 'n/a'}")
                if not fields:
                    continue
                value = float(fields[metric])
                if stack == "Go":
                    # One Go run stands against every MuxRPC variant of the shape.
                    for variant_suffix, _ in variants:
                        results.setdefault((name + variant_suffix, metric), {}).setdefault("Go", []).append(value)
                else:
                    results.setdefault((label, metric), {}).setdefault("MuxRPC", []).append(value)
    return results


UNITS = {"MBps": "MB/s", "calls_per_s": "calls/s", "round_trips_per_s": "round trips/s"}


def table(results, rounds, command, quick=False):
    """One table per group of shapes that share their MuxRPC variants: Go, MuxRPC's default and
    the ratio, then each variant with its ratio to Go."""
    def median(name, metric, stack):
        values = results.get((name, metric), {}).get(stack)
        return statistics.median(values) if values else None

    def number(value):
        return f"{value:,.0f}" if value is not None else "n/a"

    def ratio(value, go):
        return f"{value / go:.2f}x" if value and go else "n/a"

    groups = []
    for name, metric, _, variants in shapes(quick):
        if groups and groups[-1][0] is variants and groups[-1][1] == metric:
            groups[-1][2].append(name)
        else:
            groups.append((variants, metric, [name]))
    rows = []
    for variants, metric, names in groups:
        heads = [f"shape, {UNITS.get(metric, metric)}", "Go", "MuxRPC", "MuxRPC / Go"]
        heads += [suffix.lstrip(", ") for suffix, _ in variants if suffix]
        rows += ["| " + " | ".join(heads) + " |", "| --- |" + " ---: |" * (len(heads) - 1)]
        for name in names:
            go, swift = median(name, metric, "Go"), median(name, metric, "MuxRPC")
            cells = [name, number(go), number(swift), ratio(swift, go)]
            for suffix, _ in variants:
                if suffix:
                    value = median(name + suffix, metric, "MuxRPC")
                    cells.append(f"{number(value)} ({ratio(value, go)})")
            rows.append("| " + " | ".join(cells) + " |")
        rows.append("")
    # The ceiling: one yamux stream against raw TCP, each stack on its own.
    ceiling = []
    for stack in ["Go", "MuxRPC"]:
        tcp, stream = median("tcp 64 KiB", "MBps", stack), median("streams 1 x 64 KiB", "MBps", stack)
        if tcp and stream:
            ceiling.append(f"{stack}: one stream at {stream / tcp:.0%} of raw loopback TCP")
    async_stream, tcp = median("streams 1 x 64 KiB, async API", "MBps", "MuxRPC"), median("tcp 64 KiB", "MBps", "MuxRPC")
    if async_stream and tcp:
        ceiling.append(f"MuxRPC's async API: one stream at {async_stream / tcp:.0%}")
    stream, polled_tcp = median("streams 1 x 64 KiB", "MBps", "MuxRPC"), median("tcp 64 KiB, busy polling", "MBps", "MuxRPC")
    if stream and polled_tcp:
        ceiling.append(f"MuxRPC's one stream against raw TCP with the same busy polling: {stream / polled_tcp:.0%}")
    # What one call in flight makes of the round trip its transport allows.
    for stack, transport in [("Go", "Go's"), ("MuxRPC", "NIO's, with busy polling")]:
        calls, trips = median("rpc echo 64 B, 1 in flight", "calls_per_s", stack), median("tcp round trips 64 B", "round_trips_per_s", stack)
        if calls and trips:
            ceiling.append(f"{stack}'s Echo with 1 in flight at {calls / trips:.0%} of raw TCP round trips ({transport})")
    return "\n".join([
        f"Measured on {run_stamp()}: {rounds} round{'s' if rounds != 1 else ''}, "
        "the stacks alternating which goes first, medians; a variant's figure is followed by its ratio to Go.",
        f"Command: `{command}`.",
        "",
        *rows,
        "; ".join(ceiling) + "." if ceiling else "",
        "",
        "![throughput](images/side-by-side-throughput.png)",
        "![calls](images/side-by-side-rpc.png)",
    ])


def plots(results):
    try:
        import matplotlib
    except ImportError:
        say("installing matplotlib from PyPI for the plots")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=True)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(IMAGES, exist_ok=True)
    for metric, filename, title, unit in [("MBps", "side-by-side-throughput.png", "Throughput over loopback", "MB/s"),
                                          ("calls_per_s", "side-by-side-rpc.png", "64-byte Echo calls", "calls/s")]:
        names = [name for (name, m) in results if m == metric]
        if not names:
            continue
        figure, axes = plt.subplots(figsize=(10, 4.5))
        width = 0.4
        for offset, stack in [(-width / 2, "Go"), (width / 2, "MuxRPC")]:
            values = [statistics.median(results[(name, metric)].get(stack, [0])) for name in names]
            axes.bar([i + offset for i in range(len(names))], values, width, label=stack)
        axes.set_xticks(range(len(names)))
        axes.set_xticklabels(names, rotation=20, ha="right")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.legend()
        figure.tight_layout()
        figure.savefig(os.path.join(IMAGES, filename), dpi=110)
        plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer shapes and bytes")
    parser.add_argument("--no-build", action="store_true")
    options = parser.parse_args()
    if not options.no_build:
        build()
    results = measure(options.rounds, options.quick)
    plots(results)
    command = " ".join(["scripts/side-by-side.py"] + sys.argv[1:])
    text = table(results, options.rounds, command, options.quick)
    write_doc_block("side-by-side", text, "MuxRPC and Go side by side")
    print(text)


if __name__ == "__main__":
    main()
