package import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Name lookup for an endpoint, in the transport so that a single connection
// (`MuxRPCConnection.connect(to:)`) and the client's resolvers look names up
// the same way.
extension Endpoint {
    /// The endpoint's address when its host is an IP address; otherwise
    /// what the name resolves to.
    package func resolvedAddresses() async throws -> [SocketAddress] {
        if let address = self.ipAddress { return [address] }
        return try await Self.lookUp(host: self.host, port: self.port)
    }

    /// Every address `host` resolves to, once each, in the resolver's order;
    /// none when it does not resolve, which `DNSEndpointResolver` treats as a
    /// failed lookup and keeps that name's last addresses.
    package static func lookUp(host: String, port: Int) async throws -> [SocketAddress] {
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
