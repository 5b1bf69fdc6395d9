"""What the benchmark scripts share: where the binaries are, and how they
are built (go-bench from Debian's hashicorp sources, MuxRPC's in release)."""

import os
import platform
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_BENCH = os.path.join(ROOT, ".build", "go-bench", "go-bench")
SWIFT_BENCH = os.path.join(ROOT, ".build", "release", "muxrpc-bench")
SWIFT_SERVER = os.path.join(ROOT, ".build", "release", "muxrpc-server")
DOC = os.path.join(ROOT, "Docs", "benchmarks.md")
# The flags of muxrpc-bench and muxrpc-server that turn MuxRPC's busy polling
# and early flushes off: the rows that show what those two defaults add.
WITHOUT_POLLING_OR_EARLY_FLUSHES = ["--busy-poll-microseconds", "0", "--no-early-flushes"]


def run_stamp():
    """Where a run happened, for the line that opens its table: the machine, not the
    time (the page is a page of results, not a log of runs)."""
    return f"{platform.node()}, {os.cpu_count()} cores, {platform.platform()}"


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


def parse_variants(argv):
    """The command line of the scripts that alternate variants of one shape:
    `ROUNDS label=[NAME=VALUE ...] binary [own arguments] ... -- shared
    arguments`. Returns the rounds, the variants as (label, binary and its
    own arguments, environment settings), and the shared arguments, which
    go between a variant's binary and its own arguments."""
    rounds = int(argv[1])
    split = argv.index("--")
    variants = []
    for label, command in (argument.split("=", 1) for argument in argv[2:split]):
        words = shlex.split(command)
        settings = {}
        while "=" in words[0] and not words[0].startswith("-"):
            name, value = words.pop(0).split("=", 1)
            settings[name] = value
        variants.append((label, words, settings))
    return rounds, variants, argv[split + 1:]


def result_fields(output):
    """The key=value fields of the result line a benchmark prints last on stdout."""
    return dict(pair.split("=", 1) for pair in output.strip().splitlines()[-1].split())


def start_server(command, stderr=None):
    """Starts a server that prints `listening on HOST:PORT`; returns the
    process and the address. Its stdout stays open for the caller to read
    further lines from; `stderr` is passed to Popen (None: inherited)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    for line in process.stdout:
        if line.startswith("listening on "):
            return process, line[len("listening on "):].strip()
    raise RuntimeError(f"{command[0]} did not print its address")
