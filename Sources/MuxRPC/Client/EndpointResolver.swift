public import NIOCore
import NIOPosix

/// One server a ``MuxRPCClient`` may call.
public struct MuxRPCEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Where the server listens.
    public var address: SocketAddress
    /// Its share of traffic under weighted balancing (``WeightedRandomBalancer``).
    /// Default 1.
    public var weight: Double

    /// The server at `address`, with `weight` for weighted balancing.
    public init(_ address: SocketAddress, weight: Double = 1) {
        self.address = address
        self.weight = weight
    }

    /// The address, and the weight when it is not 1.
    public var description: String { weight == 1 ? "\(address)" : "\(address) (weight \(weight))" }
}

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
                let addresses = try await Self.addresses(of: endpoint)
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

    /// The endpoint's address when its host is an IP address; otherwise
    /// what the name resolves to.
    static func addresses(of endpoint: Endpoint) async throws -> [SocketAddress] {
        if let address = endpoint.ipAddress { return [address] }
        return try await resolve(host: endpoint.host, port: endpoint.port)
    }

    /// Every address `host` resolves to, once each, in the resolver's order;
    /// none when it does not resolve, which ``run(updating:)`` treats as a
    /// failed lookup and keeps that name's last addresses.
    static func resolve(host: String, port: Int) async throws -> [SocketAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let first = list else { return [] }
            defer { freeaddrinfo(first) }
            var addresses: [SocketAddress] = []
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let current = entry {
                if let address = current.pointee.ai_addr,
                   let socketAddress = try? SocketAddress(address, length: current.pointee.ai_addrlen),
                   !addresses.contains(socketAddress) {
                    addresses.append(socketAddress)
                }
                entry = current.pointee.ai_next
            }
            return addresses
        }
    }
}

extension SocketAddress {
    /// The address a `sockaddr` of `length` bytes holds (IPv4 or IPv6).
    fileprivate init(_ address: UnsafeMutablePointer<sockaddr>, length: socklen_t) throws {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            self = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        case AF_INET6:
            self = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") }
        default:
            throw SocketAddressError.unsupported
        }
    }
}
