import ArgumentParser

/// `muxrpc-bench`: in-process loopback benchmarks of MuxRPC's layers, one
/// `key=value` line per result on stdout (or JSON with `--json`), progress
/// on stderr. Build it in release mode: `swift run -c release muxrpc-bench …`.
@main
struct MuxRPCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muxrpc-bench",
        abstract: "Loopback benchmarks of MuxRPC: raw TCP on NIO (the ceiling), yamux streams, RPC calls.",
        subcommands: [TCPBenchmark.self, StreamsBenchmark.self, StreamOpenBenchmark.self, StreamMemoryBenchmark.self, RPCBenchmark.self]
    )
}

/// Options every benchmark takes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object instead of key=value pairs.")
    var json = false
}
