#!/usr/bin/env python3
"""What each of MuxRPC's performance settings costs and gains, both ways,
with client and server in separate processes on loopback: the tables of
Docs/tuning.md.

    scripts/measure-defaults.py [--rounds 3] [--groups polling,flushes,handlers]

Settings (each group's variants run interleaved, in every round, the order
reversed every other round; medians over the rounds):

- polling: busy polling off, with a fixed 50 µs window (the old default),
  and adaptive with a 50 µs and a 100 µs window (`--busy-polling
  off|fixed|adaptive`, `--busy-poll-microseconds 50`, on both ends);
- flushes: yamux early flushes on and off (`--no-early-flushes` on both ends);
- handlers: `RPCServer.Configuration.runsHandlersOnEventLoop` true and false,
  with Echo.Echo registered as an async method (`--async-echo`, and
  `--handlers-off-loop`), since inline methods run on the loop either way.

The flushes and handlers groups run with busy polling as `--base-polling`
says (default: adaptive, the library's default), so that each row differs
from the library's defaults in one setting only.

For each variant a fresh `muxrpc-server` is started, and:

1. idle: `muxrpc-bench paced --rate 0` holds 4 client connections open for
   `--idle-seconds` with no calls (the pool's health pings and yamux's
   keepalives still run); CPU time of both processes over that time;
2. low rate: `muxrpc-bench paced --rate 100` for `--paced-seconds`: 64-byte
   Echo calls at 100 a second over the 4 connections; CPU time per call of
   each process, and the calls' p50 and p99;
3. load: `muxrpc-bench rpc --addr` with 1 call in flight (20,000 calls) and
   with 32 (80,000): calls per second, p99, and the server's CPU per call.

CPU time is what getrusage reports, all threads, exited ones included:
the client measures its own, and the server writes its own when sent
SIGUSR1, which this script does when the client says its measured phase
starts and ends. (/proc/PID/stat's utime and stime count the same time in
10 ms ticks, too coarse for an idle server; /proc/PID/task/*/schedstat
loses the threads that exit.) With `perf` installed, the sched_yield calls
of both processes over the phase are counted too: a busy-polling loop makes
one at each turn it spins without traffic, so they count the spinning.
Prints Markdown tables, and each round's figures on stderr.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys

from bench_common import SWIFT_BENCH, SWIFT_SERVER, build, result_fields, run_stamp, say, start_server

# The variant each group's rows are compared with: its setting off.
REFERENCE = {"polling": "off", "flushes": "early flushes off", "handlers": "handlers off the event loop"}

POLLING = {"off": ["--busy-polling", "off"],
           "fixed": ["--busy-polling", "fixed"],
           "adaptive": ["--busy-polling", "adaptive"]}


def variants(groups, base_polling):
    """(group, label, server arguments, client arguments) for each variant."""
    base = POLLING[base_polling]
    result = []
    if "polling" in groups:
        adaptive50 = POLLING["adaptive"] + ["--busy-poll-microseconds", "50"]
        result += [("polling", "off", POLLING["off"], POLLING["off"]),
                   ("polling", "fixed, 50 µs window", POLLING["fixed"], POLLING["fixed"]),
                   ("polling", "adaptive, 50 µs window", adaptive50, adaptive50),
                   ("polling", "adaptive, 100 µs window", POLLING["adaptive"], POLLING["adaptive"])]
    if "flushes" in groups:
        result += [("flushes", "early flushes on", base, base),
                   ("flushes", "early flushes off", base + ["--no-early-flushes"], base + ["--no-early-flushes"])]
    if "handlers" in groups:
        result += [("handlers", "handlers on the event loop", base + ["--async-echo"], base),
                   ("handlers", "handlers off the event loop", base + ["--async-echo", "--handlers-off-loop"], base)]
    return result


class Server:
    """A muxrpc-server with the given arguments, on a free loopback port."""

    def __init__(self, binary, arguments):
        self.process, self.address = start_server([binary, "--host", "127.0.0.1", "--port", "0"] + arguments,
                                                  stderr=subprocess.DEVNULL)
        self.pid = self.process.pid

    def cpu_ns(self):
        """The server's CPU time so far, all threads, in nanoseconds: it writes it on SIGUSR1."""
        os.kill(self.pid, signal.SIGUSR1)
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("muxrpc-server did not report its CPU time")
            if line.startswith("cpu_user_us="):
                fields = result_fields(line)
                return (int(fields["cpu_user_us"]) + int(fields["cpu_system_us"])) * 1000

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=60)


class SpinCounter:
    """Counts a process's sched_yield calls with `perf stat`: each is a turn
    a busy-polling loop spun without traffic. None without perf."""

    def __init__(self, pid):
        self.process = None
        if shutil.which("perf"):
            self.process = subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_sched_yield",
                                             "-p", str(pid)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGINT)
        _, errors = self.process.communicate(timeout=30)
        for line in errors.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].endswith("sched_yield") and fields[0].isdigit():
                return int(fields[0])
        return None


def paced(bench, server, rate, seconds, arguments):
    """Runs `paced` against the server; returns its fields plus the server's
    CPU time and both processes' spinning turns over the measured phase."""
    command = [bench, "paced", "--addr", server.address, "--rate", str(rate), "--seconds", str(seconds),
               "--clients", "4"] + arguments
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    start = end = None
    counters = []
    spins = [None, None]
    lines = []
    for line in client.stdout:
        line = line.strip()
        if line == "phase-start":
            counters = [SpinCounter(server.pid), SpinCounter(client.pid)]
            start = server.cpu_ns()
        elif line == "phase-end":
            end = server.cpu_ns()
            spins = [counter.stop() for counter in counters]
        elif line:
            lines.append(line)
    if client.wait() != 0 or start is None or end is None:
        raise RuntimeError(f"{' '.join(command)} failed")
    fields = result_fields("\n".join(lines))
    fields["server_cpu_ms"] = (end - start) / 1e6
    fields["server_spins"], fields["client_spins"] = spins
    return fields


def load(bench, server, concurrency, calls, arguments):
    before = server.cpu_ns()
    completed = subprocess.run([bench, "rpc", "--addr", server.address, "--calls", str(calls),
                                "--concurrency", str(concurrency), "--payload", "64"] + arguments,
                               capture_output=True, text=True, timeout=600, check=True)
    fields = result_fields(completed.stdout)
    fields["server_cpu_us_per_call"] = (server.cpu_ns() - before) / 1e3 / calls
    return fields


def spins_sum(fields):
    """Both processes' spinning turns, or NaN when perf could not count them."""
    if fields["server_spins"] is None or fields["client_spins"] is None:
        return float("nan")
    return float(fields["server_spins"] + fields["client_spins"])


def measure(options, server_arguments, client_arguments):
    server = Server(options.server, server_arguments)
    try:
        idle = paced(options.bench, server, 0, options.idle_seconds, client_arguments)
        low = paced(options.bench, server, options.rate, options.paced_seconds, client_arguments)
        one = load(options.bench, server, 1, 20000, client_arguments)
        many = load(options.bench, server, 32, 80000, client_arguments)
    finally:
        server.stop()
    calls = float(low["calls"])
    return {
        "idle_server_ms": idle["server_cpu_ms"],
        "idle_client_ms": float(idle["cpu_ms"]),
        "idle_spins": spins_sum(idle),
        "low_server_us": low["server_cpu_ms"] * 1e3 / calls,
        "low_client_us": float(low["cpu_us_per_call"]),
        "low_spins_per_call": spins_sum(low) / calls,
        "low_p50": float(low["p50_us"]),
        "low_p99": float(low["p99_us"]),
        "one_rate": float(one["calls_per_s"]),
        "one_p99": float(one["p99_us"]),
        "one_server_us": one["server_cpu_us_per_call"],
        "many_rate": float(many["calls_per_s"]),
        "many_p99": float(many["p99_us"]),
        "many_server_us": many["server_cpu_us_per_call"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--groups", default="polling,flushes,handlers")
    parser.add_argument("--base-polling", choices=sorted(POLLING), default="adaptive",
                        help="busy polling in the flushes and handlers groups (default: adaptive, the library's)")
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--paced-seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--server", default=SWIFT_SERVER)
    parser.add_argument("--bench", default=SWIFT_BENCH)
    parser.add_argument("--no-build", action="store_true", help="use the binaries as they are")
    options = parser.parse_args()
    if not options.no_build:
        build(("muxrpc-bench", "muxrpc-server"))
    chosen = variants(options.groups.split(","), options.base_polling)
    results = {}
    for round_index in range(options.rounds):
        order = chosen if round_index % 2 == 0 else list(reversed(chosen))
        for group, label, server_arguments, client_arguments in order:
            say(f"round {round_index + 1}/{options.rounds}: {group}, {label}")
            values = measure(options, server_arguments, client_arguments)
            say("  " + " ".join(f"{key}={value:.1f}" for key, value in values.items()))
            for key, value in values.items():
                results.setdefault((group, label), {}).setdefault(key, []).append(value)

    command = " ".join(["scripts/measure-defaults.py"] + sys.argv[1:])
    print(f"Run of {run_stamp()}: {options.rounds} rounds, the variants interleaved, medians.")
    print(f"Command: `{command}`.")
    for group in dict.fromkeys(g for g, _, _, _ in chosen):
        rows = [(label, {key: statistics.median(values) for key, values in results[(group, label)].items()})
                for g, label, _, _ in chosen if g == group]
        # Each row against the variant with the setting off.
        reference_label = REFERENCE[group]
        reference = dict(rows)[reference_label]
        print()
        print(f"{group}:")
        print()
        print(f"| setting | idle {options.idle_seconds:g} s: server / client CPU ms | idle: spinning turns "
              f"| {options.rate:g} calls/s: server / client CPU µs per call | against {reference_label} "
              f"| {options.rate:g} calls/s: spinning turns per call "
              f"| {options.rate:g} calls/s: p50 / p99 µs "
              f"| 1 in flight: calls/s, p99 µs, server CPU µs per call "
              f"| 32 in flight: calls/s, p99 µs, server CPU µs per call |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for label, row in rows:
            per_call = row["low_server_us"] + row["low_client_us"]
            extra = per_call / (reference["low_server_us"] + reference["low_client_us"]) - 1
            print(f"| {label} | {row['idle_server_ms']:.2f} / {row['idle_client_ms']:.2f} | {row['idle_spins']:,.0f} "
                  f"| {row['low_server_us']:.1f} / {row['low_client_us']:.1f} | {extra:+.0%} "
                  f"| {row['low_spins_per_call']:.1f} "
                  f"| {row['low_p50']:.0f} / {row['low_p99']:.0f} "
                  f"| {row['one_rate']:,.0f}, {row['one_p99']:.0f}, {row['one_server_us']:.1f} "
                  f"| {row['many_rate']:,.0f}, {row['many_p99']:.0f}, {row['many_server_us']:.1f} |")


if __name__ == "__main__":
    main()
