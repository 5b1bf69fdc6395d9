import NIOCore
import NIOPosix
public import MuxRPCPool
public import MuxRPCTransport

/// Where a client learns its servers from. A resolver pushes the whole
/// list each time it changes; added endpoints take traffic at once, removed
/// ones drain (their calls in flight finish, their sessions then close).
///
/// Write your own for Consul's catalog, a config file, anything.
public protocol EndpointResolver: Sendable {
    /// Calls `update` with the full list of endpoints, first as soon as it
    /// is known, then on every change. Returns when no more changes will
    /// come; the client cancels the task running it at shutdown.
    func run(updating update: @escaping @Sendable ([MuxRPCEndpoint]) -> Void) async throws
}

/// A fixed list of endpoints.
public struct StaticEndpointResolver: EndpointResolver {
    /// The endpoints, as given.
    public let endpoints: [MuxRPCEndpoint]

    /// A resolver that always reports `endpoints`.
    public init(_ endpoints: [MuxRPCEndpoint]) {
        self.endpoints = endpoints
    }

    /// Reports ``endpoints`` once and returns.
    public func run(updating update: @escaping @Sendable ([MuxRPCEndpoint]) -> Void) async throws {
        update(endpoints)
    }
}

/// Resolves the hosts of a list of endpoints with the system resolver
/// (getaddrinfo) every `refreshInterval`; every address a name yields is a
/// server to call. Endpoints whose host is an IP address are used as they
/// are.
///
/// The lookups run on NIO's blocking-I/O thread pool, never on Swift's
/// cooperative threads. A name whose lookup fails keeps the addresses it
/// had rather than losing them: a DNS outage should not take every server
/// away.
public struct DNSEndpointResolver: EndpointResolver {
    /// What to resolve.
    public let endpoints: [Endpoint]
    /// How long between lookups. Default 30 seconds.
    public let refreshInterval: Duration

    /// Resolves every endpoint's host.
    public init(endpoints: [Endpoint], refreshInterval: Duration = .seconds(30)) {
        self.endpoints = endpoints
        self.refreshInterval = refreshInterval
    }

    /// Resolves one name.
    public init(host: String, port: Int, refreshInterval: Duration = .seconds(30)) {
        self.init(endpoints: [Endpoint(host: host, port: port)], refreshInterval: refreshInterval)
    }

    /// Looks every host up now and then every ``refreshInterval``, and
    /// reports the addresses whenever they change, until cancelled.
    public func run(updating update: @escaping @Sendable ([MuxRPCEndpoint]) -> Void) async throws {
        var known = [[SocketAddress]](repeating: [], count: endpoints.count)
        var last: [SocketAddress]?
        while !Task.isCancelled {
            for (index, endpoint) in endpoints.enumerated() {
                let addresses = try await endpoint.resolvedAddresses()
                if !addresses.isEmpty { known[index] = addresses }
            }
            var all: [SocketAddress] = []
            for address in known.joined() where !all.contains(address) { all.append(address) }
            if !all.isEmpty, all != last {
                last = all
                update(all.map { MuxRPCEndpoint($0) })
            }
            try await Task.sleep(for: refreshInterval)
        }
    }
}
