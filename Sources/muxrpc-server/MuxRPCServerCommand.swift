import ArgumentParser
import DemoServices
import Dispatch
import Foundation
import Logging
import MetricsEndpoint
import MsgpackRPC
import MuxRPC
import NIOCore
import ProgramOptions
import ProcessTuning
#if TLS
import NIOSSL
#endif
import Yamux

/// `muxrpc-server`: serves the demo services (Status.Ping, Echo.Echo,
/// Arith.Add, Test.Fail, Test.Sleep) in every mode on one port, and the
/// demo streaming methods (Stream.Count, Stream.Echo) in Nomad's, and shuts
/// down gracefully on Ctrl-C or SIGTERM.
///
/// Unlike MuxRPC's library, the program keeps glibc's freed memory for
/// reuse (`MallocTuning`), which changes the whole process; Docs/tuning.md
/// and Docs/server.md have why.
@main
struct MuxRPCServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "muxrpc-server",
        abstract: "Serve MuxRPC's demo services (plain, Consul and Nomad modes on one port).",
        discussion: """
            Settings that differ from MuxRPC's library defaults: glibc's malloc keeps freed \
            memory for reuse (--default-malloc turns that off; the library never changes the \
            process's allocator). Busy polling, early flushes and handlers on the event loop \
            are the library's defaults; Docs/tuning.md has the measurements behind them.
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port = 0

    @Option(help: "PEM certificate chain: offer TLS (clients send 0x03 first).")
    var tlsCertificate: String?

    @Option(help: "PEM private key for --tls-certificate.")
    var tlsKey: String?

    @Flag(help: "Refuse clients that do not use TLS.")
    var requireTLS = false

    @Option(help: "Seconds a graceful shutdown lets calls in flight finish.")
    var gracePeriod = 10

    @OptionGroup var polling: BusyPollingOptions

    @Option(help: "The most yamux frames gathered before an early flush (default: 16, YamuxConfiguration's).")
    var maxFramesPerFlush: Int?

    @Flag(help: "Flush yamux frames once at the end of each event loop turn, never early.")
    var noEarlyFlushes = false

    @Flag(help: "Register Echo.Echo as an async method, run in a task per call, instead of inline on the event loop (to measure where handlers run).")
    var asyncEcho = false

    @Flag(help: "Run handlers in tasks off the event loop (RPCServer.Configuration.runsHandlersOnEventLoop false); matters for async methods only (--async-echo, Test.Sleep).")
    var handlersOffLoop = false

    @Flag(help: "Keep glibc's malloc defaults instead of MallocTuning's (which keep freed memory for the next large message).")
    var defaultMalloc = false

    @Option(help: "Serve Prometheus metrics at GET /metrics on this port (0 picks a free one), and log and measure every call.")
    var metricsPort: Int?

    @Option(help: "Address the metrics endpoint listens on.")
    var metricsHost = "127.0.0.1"

    @Option(help: "Log level for the per-call log lines (with --metrics-port): trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a level") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-certificate and --tls-key go together")
        }
        guard !requireTLS || tlsCertificate != nil else {
            throw ValidationError("--require-tls needs --tls-certificate and --tls-key")
        }
        #if !TLS
        guard tlsCertificate == nil else { throw ValidationError("this muxrpc-server was built without the TLS trait") }
        #endif
    }

    func run() async throws {
        if !defaultMalloc { MallocTuning.keepFreedMemoryForReuse() }
        var configuration = MuxRPCServer.Configuration(host: host, port: port, shutdownGracePeriod: .seconds(gracePeriod))
        // One object for NIO's shared group, where the server runs.
        configuration.busyPolling = try polling.makePollers()
        if handlersOffLoop { configuration.rpc.runsHandlersOnEventLoop = false }
        if let maxFramesPerFlush { configuration.yamux.maxFramesPerFlush = maxFramesPerFlush }
        if noEarlyFlushes { configuration.yamux.flushesEarly = false }
        #if TLS
        if let tlsCertificate, let tlsKey {
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem))
            )
            configuration.preamble.tls = try NIOSSLContext(configuration: tls)
            configuration.preamble.requireTLS = requireTLS
        }
        #endif
        // With --metrics-port: Prometheus as the metrics backend, and the
        // metrics and logging interceptors around every call served.
        var metricsServer: MetricsServer?
        if let metricsPort {
            var logger = Logger(label: "muxrpc-server") { StreamLogHandler.standardError(label: $0) }
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
            let registry = bootstrapPrometheusMetrics()
            configuration.rpc.interceptors = [.apply(MetricsInterceptor()), .apply(LoggingInterceptor(logger: logger))]
            metricsServer = MetricsServer(registry: registry, host: metricsHost, port: metricsPort)
        }
        // Caught from before we say we listen: a script may send SIGTERM as
        // soon as it reads that line, and it must find the handlers in place.
        let (signals, sources) = catchTerminationSignals()
        let cpuReport = reportCPUTimeOnSIGUSR1()
        defer { withExtendedLifetime((sources, cpuReport)) {} }
        var services = DemoServices.registry
        if asyncEcho {
            services.register(service: "Echo", method: "Echo") { (arguments: DemoServices.EchoArgs, _) in
                DemoServices.EchoReply(msg: arguments.msg)
            }
        }
        // Stream.Count and Stream.Echo, for Nomad-mode clients (0x06 and a
        // stream that starts with 0x05, or a connection that starts with 0x05).
        let server = MuxRPCServer(services: services, streaming: DemoStreamingServices.registry, configuration: configuration)
        let address = try await server.start()
        // Written straight to the file descriptor so a script reading our
        // output sees it at once, whatever stdout's buffering.
        FileHandle.standardOutput.write(Data("listening on \(host):\(address.port ?? port)\n".utf8))
        if let metricsServer {
            let metricsPort = try await metricsServer.start()
            FileHandle.standardOutput.write(Data("metrics on \(metricsHost):\(metricsPort)\n".utf8))
        }
        var caught = signals.makeAsyncIterator()
        let name = await caught.next() ?? "end of signals"
        FileHandle.standardError.write(Data("muxrpc-server: \(name), shutting down gracefully\n".utf8))
        await server.shutdown()
        await metricsServer?.shutdown()
    }
}

/// Catches SIGINT and SIGTERM from now on: each one caught yields its name.
/// The sources stop listening once released; keep them while waiting.
func catchTerminationSignals() -> (AsyncStream<String>, [any DispatchSourceSignal]) {
    let (names, continuation) = AsyncStream.makeStream(of: String.self)
    var sources: [any DispatchSourceSignal] = []
    for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(name) }
        source.resume()
        sources.append(source)
    }
    return (names, sources)
}

/// On each SIGUSR1, writes `cpu_user_us=U cpu_system_us=S` on its own line
/// to stdout: the process's CPU time so far, all threads, those that have
/// exited included (`getrusage`). Scripts that measure what the server costs
/// read it (scripts/measure-defaults.py); /proc's per-thread counters lose
/// the threads that exit, and its per-process ones count 10 ms ticks.
func reportCPUTimeOnSIGUSR1() -> any DispatchSourceSignal {
    signal(SIGUSR1, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
    source.setEventHandler {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func micros(_ time: timeval) -> Int { Int(time.tv_sec) * 1_000_000 + Int(time.tv_usec) }
        FileHandle.standardOutput.write(Data("cpu_user_us=\(micros(usage.ru_utime)) cpu_system_us=\(micros(usage.ru_stime))\n".utf8))
    }
    source.resume()
    return source
}
