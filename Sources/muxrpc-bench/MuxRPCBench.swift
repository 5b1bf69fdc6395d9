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
        subcommands: [TCPBenchmark.self, PingPongBenchmark.self, StreamsBenchmark.self, StreamOpenBenchmark.self, StreamMemoryBenchmark.self, HeadOfLineBenchmark.self, RPCBenchmark.self, PacedBenchmark.self]
    )
}

/// Options every benchmark takes.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the result as one JSON object instead of key=value pairs.")
    var json = false
}

/// `--busy-polling` and `--busy-poll-microseconds` of the benchmarks whose
/// connections poll as MuxRPC's do unless told otherwise (`rpc`, `paced`,
/// `streams`, `pingpong`, and the yamux pairs of the others): adaptively,
/// with one `BusyPollers` for both ends, which share NIO's group.
struct BusyPollingOptions: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case adaptive, fixed, off
    }

    @Option(help: "How both ends' event loops poll after their traffic: adaptive (spin only while traffic is dense enough to pay back), fixed (spin after every traffic for the window) or off (sleep at once). Default: adaptive, as in MuxRPC's library (Docs/tuning.md).")
    var busyPolling: Mode = .adaptive

    @Option(help: "The busy polling window in microseconds (default: 100 adaptive, 50 fixed); 0 turns busy polling off.")
    var busyPollMicroseconds: Int?

    /// The setting the flags ask for.
    var setting: BusyPolling {
        let window = busyPollMicroseconds.map { Duration.microseconds($0) }
        switch busyPolling {
        case .adaptive: return BusyPolling(window: window ?? BusyPolling.adaptive.window, isAdaptive: true)
        case .fixed: return BusyPolling(window: window ?? .microseconds(50), isAdaptive: false)
        case .off: return .disabled
        }
    }

    /// The pollers both ends share (one group), or nil when polling is off.
    func makePollers() throws -> BusyPollers? {
        let setting = self.setting
        try setting.validate()
        return setting.isEnabled ? BusyPollers(setting) : nil
    }
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
