import ArgumentParser
import MuxRPC
import NIOCore
import NIOPosix

/// `muxrpc-bench`: in-process loopback benchmarks of MuxRPC's layers, one
/// `key=value` line per result on stdout (or JSON with `--json`), progress
/// on stderr. Build it in release mode: `swift run -c release muxrpc-bench …`.
@main
struct MuxRPCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muxrpc-bench",
        abstract: "Loopback benchmarks of MuxRPC: raw TCP on NIO (the ceilings: bulk and round trips), yamux streams, RPC calls.",
        subcommands: [TCPBenchmark.self, PingPongBenchmark.self, StreamsBenchmark.self, StreamOpenBenchmark.self, StreamMemoryBenchmark.self, HeadOfLineBenchmark.self, RPCBenchmark.self, PacedBenchmark.self, StreamingCallBenchmark.self]
    )
}

/// Options every benchmark takes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object instead of key=value pairs.")
    var json = false
}

/// `--event-loops` of the benchmarks that run both ends in one process
/// (`rpc`, `pingpong`).
struct EventLoopOptions: ParsableArguments {
    @Option(help: "Event loop threads shared by server and client (default: NIO's shared group, one per core). With 1, both ends of the loopback connection run on one thread.")
    var eventLoops: Int?

    /// The group both ends run on, and the group made for `--event-loops`
    /// (nil for NIO's shared one), for the caller to shut down.
    func makeGroup() -> (group: any EventLoopGroup, made: MultiThreadedEventLoopGroup?) {
        let made = eventLoops.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
        return (made ?? MultiThreadedEventLoopGroup.singleton, made)
    }
}
