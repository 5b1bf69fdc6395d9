public import NIOCore

/// A server to call, named by host and port, as an operator writes it:
/// `"10.0.0.5:8300"`, `"[::1]:8300"`, `"consul.service.consul:8300"`.
///
///     let client = try MuxRPCClient(endpoints: ["10.0.0.5:8300", "10.0.0.6:8300"])
///     let other = try MuxRPCClient(endpoints: [Endpoint(host: "rpc.internal", port: 8300)])
///
/// A host that is an IP address is used as it is. Any other host is a DNS
/// name, which the client resolves itself (every address it yields becomes
/// a server to call) and resolves again from time to time, so that servers
/// that come and go behind a name are followed.
///
/// A string that is not `host:port` is kept as it is and refused, with a
/// typed error, by the client it is given to.
public struct Endpoint: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    /// An IP address or a DNS name.
    public var host: String
    /// The TCP port, 1 to 65535.
    public var port: Int

    /// The server at `host` (an IP address or a DNS name) and `port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// The server at an address already resolved.
    public init(_ address: SocketAddress) {
        self.init(host: address.ipAddress ?? "\(address)", port: address.port ?? 0)
    }

    /// Parses `"host:port"`, with an IPv6 address in brackets
    /// (`"[::1]:8300"`); nil when `text` is not of that form or the port is
    /// not 1 to 65535.
    public init?(_ text: String) {
        guard let parsed = Self.parse(text) else { return nil }
        self = parsed
    }

    /// Parses `"host:port"` as the failable initialiser does. A literal that does
    /// not parse is kept whole as the host, with port 0, so that the client
    /// it reaches can refuse it with a clear error instead of the program
    /// stopping here.
    public init(stringLiteral text: String) {
        self = Self.parse(text) ?? Endpoint(host: text, port: 0)
    }

    /// `host:port`, with an IPv6 address in brackets.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Why this endpoint cannot be called, or nil when it can.
    package var problem: String? {
        if host.isEmpty { return "endpoint \"\(self)\" has no host" }
        if !(1...65535).contains(port) { return "endpoint \"\(host)\" is not host:port with a port from 1 to 65535" }
        return nil
    }

    /// The address, when ``host`` is an IP address (no lookup needed).
    package var ipAddress: SocketAddress? {
        try? SocketAddress(ipAddress: host, port: port)
    }

    private static func parse(_ text: String) -> Endpoint? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            // [IPv6]:port
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else { return nil }
        return Endpoint(host: String(host), port: port)
    }
}
