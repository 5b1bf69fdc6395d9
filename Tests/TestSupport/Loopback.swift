// What the test targets share below any protocol: TCP on 127.0.0.1 with the
// socket options every in-process test server and client uses. Depends on
// SwiftNIO only, so any test target may use it without importing a layer it
// does not test (YamuxTests must not see MsgpackRPC, and so on).
//
// A bare value shared between a test and its handlers lives in a
// `NIOLockedValueBox` (NIOConcurrencyHelpers) in every test target; there is
// deliberately no home-made lock box here or anywhere else. (Types with a
// job of their own, such as a log or a test clock, keep their own lock.)

public import NIOCore
public import NIOPosix

/// The event loop group every in-process test server and client runs on.
public var loopbackGroup: MultiThreadedEventLoopGroup { .singleton }

/// Binds a TCP listener on 127.0.0.1 at an ephemeral port (SO_REUSEADDR on
/// the listener, TCP_NODELAY on each accepted connection), running
/// `childChannelInitializer` for every connection it accepts.
public func bindLoopback(
    childChannelInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
) async throws -> any Channel {
    try await ServerBootstrap(group: loopbackGroup)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer(childChannelInitializer)
        .bind(host: "127.0.0.1", port: 0)
        .get()
}

/// Connects a raw TCP channel (TCP_NODELAY) to 127.0.0.1:`port`.
public func connectLoopback(port: Int) async throws -> any Channel {
    try await ClientBootstrap(group: loopbackGroup)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: port)
        .get()
}

/// Connects a TCP channel (TCP_NODELAY) to 127.0.0.1:`port` and returns what
/// `channelInitializer` made of it, once the connection is up.
public func connectLoopback<Output: Sendable>(
    port: Int,
    channelInitializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Output>
) async throws -> Output {
    try await ClientBootstrap(group: loopbackGroup)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: "127.0.0.1", port: port, channelInitializer: channelInitializer)
}
