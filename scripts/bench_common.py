"""What the benchmark scripts share: where the binaries are, and how they
are built (go-bench from Debian's hashicorp sources, MuxRPC's in release)."""

import datetime
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_BENCH = os.path.join(ROOT, ".build", "go-bench", "go-bench")
SWIFT_BENCH = os.path.join(ROOT, ".build", "release", "muxrpc-bench")
SWIFT_SERVER = os.path.join(ROOT, ".build", "release", "muxrpc-server")
DOC = os.path.join(ROOT, "Docs", "benchmarks.md")
# The flags of muxrpc-bench and muxrpc-server that turn MuxRPC's busy polling
# and early flushes off: the rows that show what those two defaults add.
WITHOUT_POLLING_OR_EARLY_FLUSHES = ["--busy-poll-microseconds", "0", "--max-frames-per-flush", "1000000"]


def run_stamp():
    """When and where a run happened, for the line that opens its table."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"{stamp} on {platform.node()}, {os.cpu_count()} cores, {platform.platform()}"


def say(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def build(swift_products=("muxrpc-bench",)):
    """Builds go-bench (GOPATH mode) and the given MuxRPC products (release)."""
    say("building go-bench (GOPATH mode, Debian's hashicorp sources)")
    os.makedirs(os.path.dirname(GO_BENCH), exist_ok=True)
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off")
    subprocess.run(["go", "build", "-o", GO_BENCH, "."], cwd=os.path.join(ROOT, "Benchmarks", "go-bench"), env=env, check=True)
    say(f"building {' and '.join(swift_products)} (release)")
    for product in swift_products:
        subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)


def write_doc_block(name, text, heading):
    """Replaces the block between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
    in Docs/benchmarks.md with `text`, or appends it under `heading`."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    with open(DOC) as handle:
        doc = handle.read()
    block = f"{begin}\n{text}\n{end}"
    if begin in doc:
        doc = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc += f"\n## {heading}\n\n{block}\n"
    with open(DOC, "w") as handle:
        handle.write(doc)
