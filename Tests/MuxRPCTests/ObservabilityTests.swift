import CoreMetrics
import DemoServices
import InMemoryTracing
import Logging
import MetricsEndpoint
import MetricsTestKit
import MsgpackRPC
import MuxRPC
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import Testing
import Tracing

/// The built-in interceptors against real servers on loopback: client ones
/// called directly around a call through a `ConnectionPool`, server ones
/// installed in a `MuxRPCServer`.
@Suite("Observability", .timeLimit(.minutes(5)))
struct ObservabilityTests {
    typealias EchoArgs = DemoServices.EchoArgs
    typealias EchoReply = DemoServices.EchoReply

    /// A demo server with `interceptors`, and `extra` methods besides the demo ones.
    static func server(
        _ interceptors: [RPCScopedInterceptor<any RPCServerInterceptor>] = [],
        extra: (inout RPCServiceRegistry) -> Void = { _ in }
    ) async throws -> (MuxRPCServer, SocketAddress) {
        var registry = DemoServices.registry
        extra(&registry)
        var configuration = MuxRPCServer.Configuration.patient()
        configuration.rpc.interceptors = interceptors
        let server = MuxRPCServer(services: registry, configuration: configuration)
        return (server, try await server.start())
    }

    /// Runs `interceptor` around one call through `pool`, as the client stack
    /// will: `next` makes the real call with the request's (possibly changed)
    /// options.
    static func call<Reply: Decodable & Sendable>(
        _ interceptor: any ClientInterceptor,
        _ serviceMethod: String,
        _ arguments: some Encodable & Sendable,
        returning: Reply.Type,
        on address: SocketAddress,
        through pool: ConnectionPool,
        options: RPCCallOptions = .defaults,
        attempt: Int = 1,
        sent: (@Sendable (ClientRequest) -> Void)? = nil
    ) async throws -> Reply {
        let request = ClientRequest(serviceMethod: serviceMethod, arguments: arguments, options: options)
        let context = ClientContext(serviceMethod: serviceMethod, endpoint: address, attempt: attempt)
        let response = try await interceptor.intercept(request, context: context) { request, context in
            sent?(request)
            return ClientResponse(reply: try await pool.call(
                request.serviceMethod, request.arguments, returning: Reply.self, on: context.endpoint, options: request.options))
        }
        return try #require(response.reply as? Reply)
    }

    static func echo(_ interceptor: any ClientInterceptor, _ text: String, on address: SocketAddress, through pool: ConnectionPool,
                     options: RPCCallOptions = .defaults) async throws {
        let reply = try await call(interceptor, "Echo.Echo", EchoArgs(msg: Array(text.utf8)), returning: EchoReply.self,
                                   on: address, through: pool, options: options)
        #expect(reply.msg == Array(text.utf8))
    }

    static func endpoint(_ address: SocketAddress) -> String { "127.0.0.1:\(address.port ?? 0)" }

    /// A loopback port nothing listens on (a server's, once it has stopped).
    static func closedPort() async throws -> SocketAddress {
        let server = MuxRPCServer(services: DemoServices.registry, configuration: .patient())
        let address = try await server.start()
        await server.shutdown()
        return address
    }

    // MARK: Metrics

    @Test("client metrics: calls, errors by code and latency per method and endpoint")
    func clientMetrics() async throws {
        let metrics = TestMetrics()
        let interceptor = MetricsInterceptor(factory: metrics)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        try await Self.echo(interceptor, "one", on: address, through: pool)
        try await Self.echo(interceptor, "two", on: address, through: pool)
        await #expect(throws: RPCError.self) {
            _ = try await Self.call(interceptor, "Test.Fail", DemoServices.FailArgs(message: "no"), returning: RPCEmpty.self,
                                    on: address, through: pool)
        }
        let closed = try await Self.closedPort()
        let refused = await #expect(throws: MuxRPCError.self) {
            try await Self.echo(interceptor, "nobody", on: closed, through: pool)
        }
        #expect(refused?.code == .connectionRefused)

        let here = Self.endpoint(address), there = Self.endpoint(closed)
        #expect(try metrics.expectCounter("muxrpc_client_calls_total", [("method", "Echo.Echo"), ("endpoint", here)]).totalValue == 2)
        #expect(try metrics.expectCounter("muxrpc_client_calls_total", [("method", "Test.Fail"), ("endpoint", here)]).totalValue == 1)
        #expect(try metrics.expectCounter("muxrpc_client_errors_total",
                                          [("method", "Test.Fail"), ("endpoint", here), ("code", "server_error")]).totalValue == 1)
        #expect(try metrics.expectCounter("muxrpc_client_errors_total",
                                          [("method", "Echo.Echo"), ("endpoint", there), ("code", "connection_refused")]).totalValue == 1)
        #expect(metrics.counters(label: "muxrpc_client_errors_total").count == 2)
        #expect(try metrics.expectTimer("muxrpc_client_call_duration_seconds", [("method", "Echo.Echo"), ("endpoint", here)]).values.count == 2)
        #expect(try metrics.expectTimer("muxrpc_client_call_duration_seconds", [("method", "Echo.Echo"), ("endpoint", there)]).values.count == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("server metrics: calls, errors by code and latency per method")
    func serverMetrics() async throws {
        let metrics = TestMetrics()
        let (server, address) = try await Self.server([.apply(MetricsInterceptor(factory: metrics))])
        let pool = try ConnectionPool()
        for text in ["a", "b", "c"] {
            _ = try await pool.call("Echo.Echo", EchoArgs(msg: Array(text.utf8)), returning: EchoReply.self, on: address)
        }
        await #expect(throws: RPCError.self) {
            _ = try await pool.call("Test.Fail", DemoServices.FailArgs(message: "no"), returning: RPCEmpty.self, on: address)
        }
        // Recorded before the reply is written, so already there.
        #expect(try metrics.expectCounter("muxrpc_server_calls_total", [("method", "Echo.Echo")]).totalValue == 3)
        #expect(try metrics.expectCounter("muxrpc_server_calls_total", [("method", "Test.Fail")]).totalValue == 1)
        #expect(try metrics.expectCounter("muxrpc_server_errors_total", [("method", "Test.Fail"), ("code", "server_error")]).totalValue == 1)
        #expect(metrics.counters(label: "muxrpc_server_errors_total").count == 1)
        #expect(try metrics.expectTimer("muxrpc_server_call_duration_seconds", [("method", "Echo.Echo")]).values.count == 3)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("pool reporter: gauges and counters from the pool's statistics, once and as a Service")
    func poolReporter() async throws {
        let metrics = TestMetrics()
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        let reporter = ConnectionPoolMetricsReporter(pool: pool, dimensions: [("pool", "test")], factory: metrics)
        for text in ["a", "b"] {
            _ = try await pool.call("Echo.Echo", EchoArgs(msg: Array(text.utf8)), returning: EchoReply.self, on: address)
        }
        reporter.report()
        let labels = [("pool", "test")]
        #expect(try metrics.expectGauge("muxrpc_pool_sessions", labels).lastValue == 1)
        #expect(try metrics.expectGauge("muxrpc_pool_idle_streams", labels).lastValue == 1)
        #expect(try metrics.expectGauge("muxrpc_pool_open_streams", labels).lastValue == 1)
        #expect(try metrics.expectGauge("muxrpc_pool_busy_streams", labels).lastValue == 0)
        #expect(try metrics.expectGauge("muxrpc_pool_waiters", labels).lastValue == 0)
        #expect(try metrics.expectGauge("muxrpc_pool_calls_in_flight", labels).lastValue == 0)
        #expect(try metrics.expectCounter("muxrpc_pool_dials_total", labels).totalValue == 1)
        #expect(try metrics.expectCounter("muxrpc_pool_streams_opened_total", labels).totalValue == 1)
        #expect(try metrics.expectCounter("muxrpc_pool_streams_reused_total", labels).totalValue == 1)

        // A second report counts only the increase.
        _ = try await pool.call("Echo.Echo", EchoArgs(msg: [1]), returning: EchoReply.self, on: address)
        reporter.report()
        #expect(try metrics.expectCounter("muxrpc_pool_streams_reused_total", labels).totalValue == 2)
        #expect(try metrics.expectCounter("muxrpc_pool_dials_total", labels).totalValue == 1)

        // As a Service: reports at once, stops when cancelled, reports on the way out.
        let sessionsGauge = try metrics.expectGauge("muxrpc_pool_sessions", labels)
        let before = sessionsGauge.values.count
        let running = Task { try await reporter.run() }
        #expect(await waitUntil { sessionsGauge.values.count > before })
        running.cancel()
        try await running.value
        await pool.shutdown()
        await server.shutdown()
    }

    // MARK: Logging

    @Test("logging: one line per call, with method, endpoint, attempt, duration and outcome, at the configured levels")
    func clientLogging() async throws {
        let logs = CapturedLogs()
        let interceptor = LoggingInterceptor(logger: logs.logger(), successLevel: .debug, failureLevel: .error)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        try await Self.echo(interceptor, "hello", on: address, through: pool)
        await #expect(throws: RPCError.self) {
            _ = try await Self.call(interceptor, "Test.Fail", DemoServices.FailArgs(message: "boom"), returning: RPCEmpty.self,
                                    on: address, through: pool, attempt: 2)
        }
        let lines = logs.lines
        try #require(lines.count == 2)
        #expect(lines[0].level == .debug)
        #expect(lines[0].message.hasPrefix("client call Echo.Echo ok in "))
        #expect(lines[0].metadata["rpc.method"] == "Echo.Echo")
        #expect(lines[0].metadata["rpc.endpoint"] == .string(Self.endpoint(address)))
        #expect(lines[0].metadata["rpc.attempt"]?.description == "1")
        #expect(lines[0].metadata["rpc.outcome"] == "ok")
        #expect(lines[0].metadata["rpc.duration_ms"] != nil)
        #expect(lines[1].level == .error)
        #expect(lines[1].message.hasPrefix("client call Test.Fail failed (server_error) in "))
        #expect(lines[1].metadata["rpc.attempt"]?.description == "2")
        #expect(lines[1].metadata["rpc.outcome"] == "error")
        #expect(lines[1].metadata["rpc.error_code"] == "server_error")
        #expect(lines[1].metadata["rpc.error"]?.description.contains("boom") == true)

        // Below the logger's level: no line.
        let quiet = LoggingInterceptor(logger: logs.logger(level: .info))
        try await Self.echo(quiet, "quiet", on: address, through: pool)
        #expect(logs.lines.count == 2)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("logging on the server: one line per call served")
    func serverLogging() async throws {
        let logs = CapturedLogs()
        let (server, address) = try await Self.server([.apply(LoggingInterceptor(logger: logs.logger()))])
        let pool = try ConnectionPool()
        _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        await #expect(throws: RPCError.self) {
            _ = try await pool.call("Test.Fail", DemoServices.FailArgs(message: "boom"), returning: RPCEmpty.self, on: address)
        }
        let lines = logs.lines
        try #require(lines.count == 2)
        #expect(lines[0].level == .debug && lines[0].message.hasPrefix("server call Status.Ping ok"))
        #expect(lines[0].metadata["rpc.side"] == "server")
        #expect(lines[1].level == .info && lines[1].metadata["rpc.error_code"] == "server_error")
        await pool.shutdown()
        await server.shutdown()
    }

    // MARK: Tracing

    struct Where: Codable, Sendable {
        var traceID: String
        var spanID: String
    }

    @Test("tracing: the server continues the client's trace (same trace id, parent = the client's span)")
    func traceContinues() async throws {
        let tracer = W3CInMemoryTracer()
        let (server, address) = try await Self.server([.apply(TracingInterceptor(tracer: tracer))]) { registry in
            // What the handler sees as the current span.
            registry.register(service: "Trace", method: "Where") { (_: RPCEmpty, _) in
                let span = ServiceContext.current?.inMemorySpanContext
                return Where(traceID: span?.traceID ?? "", spanID: span?.spanID ?? "")
            }
        }
        let pool = try ConnectionPool()
        let sentContext = NIOLockedValueBox<RPCTraceContext?>(nil)
        let seen = try await Self.call(TracingInterceptor(tracer: tracer), "Trace.Where", RPCEmpty(), returning: Where.self,
                                       on: address, through: pool, attempt: 3) { request in sentContext.withLockedValue { $0 = request.options.traceContext } }

        let spans = tracer.finishedSpans
        let client = try #require(spans.first { $0.kind == .client })
        let serverSpan = try #require(spans.first { $0.kind == .server })
        #expect(client.operationName == "Trace.Where" && serverSpan.operationName == "Trace.Where")
        #expect(client.parentSpanID == nil)
        #expect(serverSpan.traceID == client.traceID)
        #expect(serverSpan.parentSpanID == client.spanID)
        #expect(seen.traceID == client.traceID && seen.spanID == serverSpan.spanID)
        #expect(sentContext.withLockedValue { $0 } == RPCTraceContext(traceParent: "00-\(client.traceID)-\(client.spanID)-01"))
        #expect(client.attributes["rpc.system"]?.toSpanAttribute() == "muxrpc")
        #expect(client.attributes["rpc.service"]?.toSpanAttribute() == "Trace")
        #expect(client.attributes["rpc.method"]?.toSpanAttribute() == "Where")
        #expect(client.attributes["muxrpc.attempt"]?.toSpanAttribute() == .int64(3))
        #expect(client.attributes["muxrpc.endpoint"]?.toSpanAttribute() == .string(Self.endpoint(address)))
        #expect(serverSpan.attributes["rpc.method"]?.toSpanAttribute() == "Where")
        #expect(client.errors.isEmpty && serverSpan.errors.isEmpty)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("tracing: a client span under the task's current span, and failures recorded on both sides")
    func traceErrors() async throws {
        let tracer = W3CInMemoryTracer()
        let (server, address) = try await Self.server([.apply(TracingInterceptor(tracer: tracer))])
        let pool = try ConnectionPool()
        let parent = tracer.startSpan("caller", ofKind: .internal)
        await #expect(throws: RPCError.self) {
            try await ServiceContext.withValue(parent.context) {
                _ = try await Self.call(TracingInterceptor(tracer: tracer), "Test.Fail", DemoServices.FailArgs(message: "boom"),
                                        returning: RPCEmpty.self, on: address, through: pool)
            }
        }
        parent.end()
        let spans = tracer.finishedSpans
        let client = try #require(spans.first { $0.kind == .client })
        let serverSpan = try #require(spans.first { $0.kind == .server })
        #expect(client.traceID == parent.traceID && client.parentSpanID == parent.spanID)
        #expect(serverSpan.parentSpanID == client.spanID)
        for span in [client, serverSpan] {
            #expect(span.errors.count == 1)
            #expect(span.status?.code == .error)
            #expect(span.attributes["muxrpc.error_code"]?.toSpanAttribute() == "server_error")
        }
        await pool.shutdown()
        await server.shutdown()
    }

    // MARK: Rate limiting

    @Test("rate limiting, fail fast: beyond the burst a call fails at once, unsent")
    func rateLimitFailFast() async throws {
        let clock = ManualClock()
        let limiter = RateLimitingInterceptor(ratePerSecond: 1, burst: 2, whenEmpty: .failFast, clock: clock)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        let sent = NIOLockedValueBox(0)
        for text in ["a", "b"] {
            _ = try await Self.call(limiter, "Echo.Echo", EchoArgs(msg: Array(text.utf8)), returning: EchoReply.self,
                                    on: address, through: pool) { _ in sent.withLockedValue { $0 += 1 } }
        }
        let error = await #expect(throws: MuxRPCError.self) {
            _ = try await Self.call(limiter, "Echo.Echo", EchoArgs(msg: [1]), returning: EchoReply.self,
                                    on: address, through: pool) { _ in sent.withLockedValue { $0 += 1 } }
        }
        #expect(error?.code == .rateLimited)
        #expect(error?.message.contains("no token left (fail fast)") == true)
        #expect(error?.requestWasSent == false)
        #expect(error?.description.contains("the request was not sent") == true)
        #expect(sent.withLockedValue { $0 } == 2)
        #expect(server.statistics.streamsAccepted == 1)

        // A second later there is a token again.
        clock.advance(by: .seconds(1))
        try await Self.echo(limiter, "again", on: address, through: pool)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("rate limiting, wait: an empty bucket makes the call wait for its token, then go")
    func rateLimitWaits() async throws {
        let clock = ManualClock()
        let limiter = RateLimitingInterceptor(ratePerSecond: 1, burst: 1, whenEmpty: .wait(upTo: .seconds(10)), clock: clock)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        let sent = NIOLockedValueBox(0)
        try await Self.echo(limiter, "first", on: address, through: pool)
        let second = Task {
            try await Self.call(limiter, "Echo.Echo", EchoArgs(msg: [2]), returning: EchoReply.self,
                                on: address, through: pool, options: RPCCallOptions(timeout: .seconds(60))) { request in
                // The wait is taken out of the timeout: the deadline is pinned.
                #expect(request.options.timeout == nil && request.options.deadline != nil)
                sent.withLockedValue { $0 += 1 }
            }
        }
        // The second call is asleep on the clock, its request not sent.
        #expect(await waitUntil { clock.sleepers == 1 })
        #expect(sent.withLockedValue { $0 } == 0)
        #expect(limiter.availableTokens == -1)
        clock.advance(by: .seconds(1))
        #expect(try await second.value.msg == [2])
        #expect(sent.withLockedValue { $0 } == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("rate limiting, wait: a waiter cancelled hands its token back, and its request is never sent")
    func rateLimitCancelledWaiter() async throws {
        let clock = ManualClock()
        let limiter = RateLimitingInterceptor(ratePerSecond: 1, burst: 1, whenEmpty: .wait(upTo: .seconds(10)), clock: clock)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        let sent = NIOLockedValueBox(0)
        try await Self.echo(limiter, "first", on: address, through: pool)
        let waiter = Task {
            try await Self.call(limiter, "Echo.Echo", EchoArgs(msg: [2]), returning: EchoReply.self,
                                on: address, through: pool) { _ in sent.withLockedValue { $0 += 1 } }
        }
        #expect(await waitUntil { clock.sleepers == 1 })
        #expect(limiter.availableTokens == -1)
        waiter.cancel()
        let error = await #expect(throws: MuxRPCError.self) { try await waiter.value }
        #expect(error?.code == .cancelled && error?.requestWasSent == false)
        #expect(sent.withLockedValue { $0 } == 0)
        #expect(limiter.availableTokens == 0)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("rate limiting, wait: fails at once when the token would come after the wait limit or the deadline")
    func rateLimitWaitLimits() async throws {
        let clock = ManualClock()
        // One token a minute.
        let limiter = RateLimitingInterceptor(ratePerSecond: 1.0 / 60, burst: 1, whenEmpty: .wait(upTo: .seconds(10)), clock: clock)
        let (server, address) = try await Self.server()
        let pool = try ConnectionPool()
        try await Self.echo(limiter, "first", on: address, through: pool)
        let tooLong = await #expect(throws: MuxRPCError.self) {
            try await Self.echo(limiter, "second", on: address, through: pool)
        }
        #expect(tooLong?.code == .rateLimited && tooLong?.requestWasSent == false)
        #expect(tooLong?.message.contains("later than the wait allowed") == true)

        let patient = RateLimitingInterceptor(ratePerSecond: 1.0 / 60, burst: 1, whenEmpty: .wait(upTo: .seconds(600)), clock: clock)
        try await Self.echo(patient, "first", on: address, through: pool)
        let deadline = await #expect(throws: MuxRPCError.self) {
            try await Self.echo(patient, "second", on: address, through: pool, options: RPCCallOptions(timeout: .seconds(30)))
        }
        #expect(deadline?.code == .rateLimited)
        #expect(deadline?.message.contains("after the call's deadline") == true)
        #expect(clock.sleepers == 0)
        // Refused calls reserved nothing: the next token is still one minute out.
        #expect(patient.availableTokens == 0)
        await pool.shutdown()
        await server.shutdown()
    }

    @Test("rate limiting on the server: the caller gets an error reply, the handler never runs")
    func rateLimitServer() async throws {
        let limiter = RateLimitingInterceptor(ratePerSecond: 1.0 / 3600, burst: 1, whenEmpty: .failFast, clock: ManualClock())
        let metrics = TestMetrics()
        // Metrics outermost, so it counts what the limiter refuses.
        let (server, address) = try await Self.server([.apply(MetricsInterceptor(factory: metrics)), .apply(limiter)])
        let pool = try ConnectionPool()
        _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        let error = await #expect(throws: RPCError.self) {
            _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        }
        #expect(error?.code == .serverError)
        #expect(error?.message.hasPrefix("rate limited: Status.Ping: no token left") == true)
        #expect(error?.message.hasSuffix("the call was not run") == true)
        #expect(try metrics.expectCounter("muxrpc_server_errors_total", [("method", "Status.Ping"), ("code", "rate_limited")]).totalValue == 1)
        await pool.shutdown()
        await server.shutdown()
    }

    // MARK: Scopes

    @Test("scopes restrict interceptors to some services or methods")
    func scopes() async throws {
        let metrics = TestMetrics()
        let logs = CapturedLogs()
        let limiter = RateLimitingInterceptor(ratePerSecond: 1.0 / 3600, burst: 1, whenEmpty: .failFast, clock: ManualClock())
        let (server, address) = try await Self.server([
            .apply(MetricsInterceptor(factory: metrics), to: .services(["Arith"])),
            .apply(LoggingInterceptor(logger: logs.logger()), to: .methods(["Echo.Echo"])),
            .apply(limiter, to: .methods(["Test.Fail"])),
        ])
        let pool = try ConnectionPool()
        for number in 0..<3 {
            _ = try await pool.call("Arith.Add", DemoServices.AddArgs(a: 1, b: Int64(number)), returning: DemoServices.AddReply.self, on: address)
            _ = try await pool.call("Echo.Echo", EchoArgs(msg: [UInt8(number)]), returning: EchoReply.self, on: address)
            _ = try await pool.call("Status.Ping", RPCEmpty(), returning: RPCEmpty.self, on: address)
        }
        #expect(metrics.counters.map(\.label) == ["muxrpc_server_calls_total"])
        #expect(try metrics.expectCounter("muxrpc_server_calls_total", [("method", "Arith.Add")]).totalValue == 3)
        #expect(logs.lines.count == 3)
        #expect(logs.lines.allSatisfy { $0.metadata["rpc.method"] == "Echo.Echo" })
        // Only Test.Fail is limited: its second call is refused before the handler.
        for expected in ["first", "rate limited: Test.Fail"] {
            let error = await #expect(throws: RPCError.self) {
                _ = try await pool.call("Test.Fail", DemoServices.FailArgs(message: "first"), returning: RPCEmpty.self, on: address)
            }
            #expect(error?.message.hasPrefix(expected) == true)
        }
        await pool.shutdown()
        await server.shutdown()
    }

    // MARK: Prometheus

    @Test("the Prometheus endpoint serves scrapeable text with the muxrpc_ metrics")
    func prometheusEndpoint() async throws {
        // A registry of our own: MetricsSystem.bootstrap is global and one-shot.
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let (server, address) = try await Self.server([.apply(MetricsInterceptor(factory: factory))])
        let pool = try ConnectionPool()
        let reporter = ConnectionPoolMetricsReporter(pool: pool, factory: factory)
        let client = MetricsInterceptor(factory: factory)
        try await Self.echo(client, "one", on: address, through: pool)
        try await Self.echo(client, "two", on: address, through: pool)
        reporter.report()

        let endpoint = MetricsServer(registry: registry, port: 0)
        let port = try await endpoint.start()
        let response = try await httpGet(port: port, path: "/metrics")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.contains("Content-Type: text/plain; version=0.0.4"))
        let here = Self.endpoint(address)
        #expect(response.contains("# TYPE muxrpc_server_calls_total counter"))
        #expect(response.contains(#"muxrpc_server_calls_total{method="Echo.Echo"} 2"#))
        #expect(response.contains(#"muxrpc_client_calls_total{method="Echo.Echo",endpoint="\#(here)"} 2"#)
                || response.contains(#"muxrpc_client_calls_total{endpoint="\#(here)",method="Echo.Echo"} 2"#))
        #expect(response.contains("# TYPE muxrpc_client_call_duration_seconds histogram"))
        #expect(response.contains("muxrpc_server_call_duration_seconds_bucket{"))
        #expect(response.contains("muxrpc_pool_sessions 1"))
        #expect(response.contains("muxrpc_pool_idle_streams 1"))

        let missing = try await httpGet(port: port, path: "/other")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        await endpoint.shutdown()
        await pool.shutdown()
        await server.shutdown()
    }
}
