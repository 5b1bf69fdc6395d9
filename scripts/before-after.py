#!/usr/bin/env python3
"""Two builds of MuxRPC side by side, for a change that must not cost speed:
one stream and 64 streams of bulk transfer, and 64-byte Echo with 1 and 32
in flight, in one process and across processes. The builds alternate which
goes first in every round; the table has medians, the median of each round's own
after/before ratio ("paired", which leaves out what the machine did between
rounds), and every round's figure.

    scripts/before-after.py BEFORE_BIN AFTER_BIN [--rounds 5] [--doc-block NAME]

Each BIN is a folder holding release builds of `muxrpc-bench` and
`muxrpc-server` (for example `.build/release` of two checkouts):

    git worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c release)
    swift build -c release
    scripts/before-after.py /tmp/before/.build/release .build/release --rounds 5

Across processes, each build's client calls its own build's server. With
--doc-block, the table also replaces the block between
`<!-- NAME:begin -->` and `<!-- NAME:end -->` in Docs/benchmarks.md.
"""

import argparse
import os
import statistics
import subprocess

from bench_common import result_fields, run_stamp, say, start_server, write_doc_block

# (label, muxrpc-bench arguments, the rate field, whether it runs across processes)
SHAPES = [
    ("1 stream, 64 KiB writes, MB/s", ["streams", "--streams", "1", "--bytes", str(1 << 30), "--chunk", "65536", "--api", "handlers"], "MBps", False),
    ("64 streams, 64 KiB writes, MB/s", ["streams", "--streams", "64", "--bytes", str(1 << 30), "--chunk", "65536", "--api", "handlers"], "MBps", False),
    ("Echo 64 B, 1 in flight, one process, calls/s", ["rpc", "--calls", "20000", "--concurrency", "1", "--payload", "64"], "calls_per_s", False),
    ("Echo 64 B, 32 in flight, one process, calls/s", ["rpc", "--calls", "80000", "--concurrency", "32", "--payload", "64"], "calls_per_s", False),
    ("Echo 64 B, 1 in flight, across processes, calls/s", ["rpc", "--calls", "20000", "--concurrency", "1", "--payload", "64"], "calls_per_s", True),
    ("Echo 64 B, 32 in flight, across processes, calls/s", ["rpc", "--calls", "80000", "--concurrency", "32", "--payload", "64"], "calls_per_s", True),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--doc-block", help="the Docs/benchmarks.md block to write the table into")
    options = parser.parse_args()
    builds = [("before", options.before), ("after", options.after)]
    servers = {}
    try:
        for label, folder in builds:
            servers[label] = start_server([os.path.join(folder, "muxrpc-server"), "--host", "127.0.0.1", "--port", "0"])
        rates = {(shape[0], label): [] for shape in SHAPES for label, _ in builds}
        for round_index in range(options.rounds):
            order = builds if round_index % 2 == 0 else list(reversed(builds))
            for name, arguments, field, across in SHAPES:
                for label, folder in order:
                    command = [os.path.join(folder, "muxrpc-bench")] + arguments
                    if across:
                        command += ["--addr", servers[label][1]]
                    output = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True).stdout
                    rate = float(result_fields(output)[field])
                    rates[(name, label)].append(rate)
                    say(f"round {round_index + 1}/{options.rounds} {label}: {name}: {rate:,.0f}")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    lines = [f"Measured on {run_stamp()}: {options.rounds} rounds, the builds alternating which goes first, medians.",
             "Command: `scripts/before-after.py BEFORE AFTER --rounds "
             f"{options.rounds}`.", "",
             "| shape | before | after | after / before | paired | before, each round | after, each round |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, _, _, _ in SHAPES:
        before, after = rates[(name, "before")], rates[(name, "after")]
        ratio = statistics.median(after) / statistics.median(before)
        # Each round ran both builds back to back: the median of the rounds'
        # own ratios leaves out what the machine did between rounds.
        paired = statistics.median(a / b for a, b in zip(after, before))
        lines.append(f"| {name} | {statistics.median(before):,.0f} | {statistics.median(after):,.0f} | {ratio:.3f} | {paired:.3f} | "
                     f"{', '.join(f'{r:,.0f}' for r in before)} | {', '.join(f'{r:,.0f}' for r in after)} |")
    text = "\n".join(lines)
    if options.doc_block:
        write_doc_block(options.doc_block, text, "Before and after")
    print(text)


if __name__ == "__main__":
    main()
