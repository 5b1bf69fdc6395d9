import TestSupport
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import Yamux

/// Interop with a real hashicorp/yamux peer (Debian's package), both directions.
@Suite(.enabled(if: GoPeer.shouldRun()), .serialized, .timeLimit(.minutes(5)))
struct GoInteropTests {
    // MARK: Swift client ↔ Go server

    private func withGoServer(
        arguments: [String] = [],
        configuration: YamuxConfiguration = testConfiguration(),
        _ body: (YamuxSession) async throws -> Void
    ) async throws {
        let peer = try await GoPeerProcess.start("yamux-peer", arguments: ["-mode", "server"] + arguments)
        defer { peer.terminate() }
        let port = try await peer.listeningPort()
        let client = try await connectYamuxClient(port: port, configuration: configuration)
        try await body(client)
        await client.close()
    }

    @Test func swiftClientManyConcurrentEchoStreams() async throws {
        try await self.withGoServer { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<64 {
                    group.addTask { try await echoCheck(client, count: 512 * 1024, seed: i) }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func swiftClientReceivesLargeTransfer() async throws {
        try await self.withGoServer { client in
            let stream = try await client.openStream()
            let count = 8 * 1024 * 1024
            let received = try await stream.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: "send \(count) 9\n"))
                outbound.finish()
                var reader = StreamReader(inbound)
                return try await reader.readPattern(seed: 9)
            }
            #expect(received == count)
        }
    }

    @Test func swiftClientSendsLargeTransfer() async throws {
        try await self.withGoServer { client in
            let count = 8 * 1024 * 1024
            let answer = try await runCommand(client, "sink", payload: pattern(count, seed: 1))
            #expect(String(buffer: answer) == "count \(count)\n")
        }
    }

    @Test func swiftClientLargerWindowsBothSides() async throws {
        let configuration = testConfiguration { $0.maxStreamWindowSize = 1024 * 1024 }
        try await self.withGoServer(arguments: ["-window", "\(1024 * 1024)"], configuration: configuration) { client in
            try await echoCheck(client, count: 8 * 1024 * 1024, seed: 5)
        }
    }

    @Test func swiftClientHalfClose() async throws {
        try await self.withGoServer { client in
            let answer = try await runCommand(client, "halfclose", payload: ByteBuffer(repeating: 7, count: 1000))
            #expect(String(buffer: answer) == "after-eof 1000\n")
        }
    }

    @Test func swiftClientSeesGoAway() async throws {
        try await self.withGoServer { client in
            let answer = try await runCommand(client, "goaway")
            #expect(String(buffer: answer) == "ok\n")
            let error = await #expect(throws: YamuxError.self) { _ = try await client.openStream() }
            #expect(error?.code == .remoteGoAway)
            #expect(await !client.isClosed)
        }
    }

    @Test func goServerClosingTheSessionFailsOpenStreams() async throws {
        try await self.withGoServer { client in
            let open = try await client.openStream()
            open.channel.writeAndFlush(ByteBuffer(string: "echo\n"), promise: nil)
            _ = try? await runCommand(client, "closesession")
            #expect(await client.waitForClose().code == .connectionClosed)
            let error = await #expect(throws: YamuxError.self) {
                try await open.executeThenClose { inbound, _ in for try await _ in inbound {} }
            }
            #expect(error?.code == .connectionClosed)
        }
    }

    @Test func pingsBothWays() async throws {
        try await self.withGoServer { client in
            let rtt = try await client.ping()
            #expect(rtt > .zero)
            let answer = try await runCommand(client, "ping")
            #expect(String(buffer: answer) == "rtt ok\n")
        }
    }

    @Test func goServerKeepaliveIsAnswered() async throws {
        // The Go server pings every 10 ms and drops the session if an answer
        // takes 5 s (long enough for a loaded CI machine; a session it drops
        // fails the test rather than leaving it waiting).
        try await self.withGoServer(arguments: ["-keepalive-ms", "10", "-write-timeout-ms", "5000"]) { client in
            while await client.statistics.pingsAnswered < 5 {
                try #require(await !client.isClosed, "the Go server dropped the session")
                try await Task.sleep(for: .milliseconds(5))
            }
            try await echoCheck(client, count: 1000, seed: 1)
        }
    }

    @Test func swiftKeepaliveAgainstGoServer() async throws {
        let configuration = testConfiguration {
            $0.enableKeepAlive = true
            $0.keepAliveInterval = .milliseconds(10)
            $0.connectionWriteTimeout = .seconds(2)
        }
        try await self.withGoServer(configuration: configuration) { client in
            while await client.statistics.pongsReceived < 5 {
                try #require(await !client.isClosed, "the session closed before five pongs")
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await !client.isClosed)
            try await echoCheck(client, count: 1000, seed: 1)
        }
    }

    // MARK: Go client ↔ Swift server

    /// Runs the Go client's `scenario` against a Swift server. `beforeClose`
    /// runs once the Go client has exited and before the server closes: the
    /// server may still be reading what the client sent last.
    private func runGoClient(
        _ scenario: String,
        _ arguments: [String] = [],
        configuration: YamuxConfiguration = testConfiguration(),
        beforeClose: () async throws -> Void = {}
    ) async throws {
        let server = try await YamuxTestServer(configuration: configuration)
        let peer = try await GoPeerProcess.start(
            "yamux-peer",
            arguments: ["-mode", "client", "-addr", "127.0.0.1:\(server.port)", "-scenario", scenario] + arguments
        )
        defer { peer.terminate() }
        let status = try await peer.waitForExit(timeout: 60)
        var output: [String] = []
        while let line = await peer.readLine(timeout: 1) { output.append(line) }
        #expect(status == 0, "Go client failed: \(output) \(peer.standardError)")
        #expect(output.last == "ok", "Go client output: \(output) \(peer.standardError)")
        try await beforeClose()
        await server.close()
    }

    @Test func goClientManyConcurrentEchoStreams() async throws {
        try await self.runGoClient("echo", ["-streams", "64", "-bytes", "\(512 * 1024)"])
    }

    @Test func goClientReceivesLargeTransfer() async throws {
        try await self.runGoClient("recv", ["-streams", "1", "-bytes", "\(8 * 1024 * 1024)"])
    }

    @Test func goClientSendsLargeTransfer() async throws {
        try await self.runGoClient("sink", ["-streams", "4", "-bytes", "\(8 * 1024 * 1024)"])
    }

    @Test func goClientWritesAfterSwiftHalfClose() async throws {
        let before = finFirstCounts.withLockedValue { $0.count }
        try await self.runGoClient("halfclose") {
            // The server records the count once it has read to the Go client's
            // FIN, which may come after the client exits: wait before closing
            // the server, which would cut the stream short (bounded, 60 s).
            for _ in 0..<12_000 where finFirstCounts.withLockedValue({ $0.count }) == before {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(finFirstCounts.withLockedValue { $0.count } > before, "the server never read to the Go client's FIN")
        #expect(finFirstCounts.withLockedValue { $0.last } == 1000)
    }

    @Test func goClientSeesGoAway() async throws {
        try await self.runGoClient("goaway")
    }

    @Test func goClientPings() async throws {
        try await self.runGoClient("ping")
    }

    @Test func goClientKeepaliveAgainstSwiftServer() async throws {
        let configuration = testConfiguration {
            $0.enableKeepAlive = true
            $0.keepAliveInterval = .milliseconds(10)
        }
        try await self.runGoClient(
            "keepalive",
            ["-keepalive-ms", "10", "-write-timeout-ms", "500", "-wait-ms", "200"],
            configuration: configuration
        )
    }
}
