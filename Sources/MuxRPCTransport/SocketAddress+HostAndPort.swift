import NIOCore

extension SocketAddress {
    /// "host:port" ("[v6]:port" for IPv6, the path for a Unix socket): short,
    /// stable and what users typed, unlike `SocketAddress.description`. Error
    /// messages, log lines, metrics and spans all name an endpoint this way.
    package var hostAndPort: String {
        switch self {
        case .v4:
            return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6:
            return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket:
            return pathname ?? "unix"
        }
    }
}
