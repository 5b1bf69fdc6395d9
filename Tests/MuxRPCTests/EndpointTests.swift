import MuxRPC
import NIOCore
import Testing

/// `Endpoint`: how operators' `host:port` text is read.
@Suite struct EndpointTests {
    @Test("host:port, with IPv6 addresses in brackets", arguments: [
        ("10.0.0.5:8300", "10.0.0.5", 8300),
        ("consul.service.consul:8300", "consul.service.consul", 8300),
        ("[::1]:8300", "::1", 8300),
        ("[fe80::1%eth0]:1", "fe80::1%eth0", 1),
        ("localhost:65535", "localhost", 65535),
    ])
    func parses(text: String, host: String, port: Int) throws {
        let endpoint = try #require(Endpoint(text))
        #expect(endpoint == Endpoint(host: host, port: port))
        #expect(endpoint.description == text)
    }

    @Test("text that is not host:port is refused", arguments: [
        "", "localhost", ":8300", "host:", "host:port", "host:0", "host:65536", "host:-1", "::1:8300", "[::1]8300", "[::1]",
    ])
    func refuses(text: String) {
        #expect(Endpoint(text) == nil)
    }

    @Test("a literal that does not parse is kept whole, for the client to refuse")
    func malformedLiteral() {
        let endpoint: Endpoint = "no-port"
        #expect(endpoint == Endpoint(host: "no-port", port: 0))
    }

    @Test("an interpolated literal parses as text does")
    func interpolated() {
        let port = 8300
        let endpoint: Endpoint = "127.0.0.1:\(port)"
        #expect(endpoint == Endpoint(host: "127.0.0.1", port: 8300))
    }

    @Test("from a resolved address")
    func fromAddress() throws {
        let address = try SocketAddress(ipAddress: "192.0.2.7", port: 8300)
        #expect(Endpoint(address) == Endpoint(host: "192.0.2.7", port: 8300))
    }
}
