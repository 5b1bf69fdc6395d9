import CoreMetrics
import Metrics
public import NIOCore
import NIOHTTP1
import NIOPosix
public import Prometheus
import Synchronization

/// A small HTTP/1.1 server that answers `GET /metrics` with a Prometheus
/// registry's text, for the executables' `--metrics-port`.
///
/// It lives outside the MuxRPC library on purpose: the library records
/// through the swift-metrics API only, and the application (here, our
/// executables) picks the backend.
public final class MetricsServer: Sendable {
    /// What is served.
    public let registry: PrometheusCollectorRegistry
    /// Where it listens.
    public let host: String
    public let port: Int
    private let group: any EventLoopGroup
    private let channel = Mutex<(any Channel)?>(nil)

    /// - Parameters:
    ///   - registry: the registry whose metrics `GET /metrics` returns.
    ///   - port: 0 picks a free one; ``start()`` says which.
    public init(registry: PrometheusCollectorRegistry, host: String = "127.0.0.1", port: Int = 0, group: (any EventLoopGroup)? = nil) {
        self.registry = registry
        self.host = host
        self.port = port
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
    }

    /// Starts listening; returns the bound port.
    public func start() async throws -> Int {
        let registry = self.registry
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                }
            }
            .bind(host: host, port: port)
            .get()
        self.channel.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    /// Stops listening. Connections being answered finish on their own.
    public func shutdown() async {
        let channel = self.channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
    }
}

/// Makes a registry and bootstraps `MetricsSystem` with a Prometheus factory
/// over it. Process-global and one-shot (swift-metrics refuses a second
/// bootstrap), so only executables call it.
public func bootstrapPrometheusMetrics() -> PrometheusCollectorRegistry {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return registry
}

/// Answers each request on one connection: `GET`/`HEAD /metrics` with the
/// registry's text, other paths 404, other methods 405.
final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break // A scrape has no body; ignore one if sent.
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        var status = HTTPResponseStatus.ok
        var body = context.channel.allocator.buffer(capacity: 0)
        var headers = HTTPHeaders()
        if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
            body.writeString("only GET /metrics\n")
        } else if path != "/metrics" {
            status = .notFound
            body.writeString("not found: try /metrics\n")
        } else {
            body.writeBytes(registry.emitToBuffer())
        }
        // Prometheus' text exposition format, version 0.0.4.
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
