import ArgumentParser
import MuxRPC

/// `muxrpc-bench`: in-process loopback benchmarks of MuxRPC's layers, one
/// `key=value` line per result on stdout (or JSON with `--json`), progress
/// on stderr. Build it in release mode: `swift run -c release muxrpc-bench …`.
@main
struct MuxRPCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muxrpc-bench",
        abstract: "Loopback benchmarks of MuxRPC: raw TCP on NIO (the ceilings: bulk and round trips), yamux streams, RPC calls.",
        subcommands: [TCPBenchmark.self, PingPongBenchmark.self, StreamsBenchmark.self, StreamOpenBenchmark.self, StreamMemoryBenchmark.self, RPCBenchmark.self]
    )
}

/// Options every benchmark takes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object instead of key=value pairs.")
    var json = false
}

/// `--busy-poll-microseconds` of the benchmarks whose connections poll as
/// MuxRPC's do unless told otherwise (`rpc`, `streams`, `pingpong`).
struct BusyPollingOptions: ParsableArguments {
    @Option(help: "Busy polling window in microseconds on both ends' connections (0 turns it off; default: BusyPolling.default, 50).")
    var busyPollMicroseconds: Int?

    var busyPolling: BusyPolling {
        busyPollMicroseconds.map { BusyPolling(window: .microseconds($0)) } ?? .default
    }
}
