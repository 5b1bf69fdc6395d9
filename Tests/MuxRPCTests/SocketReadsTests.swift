import DemoServices
import MsgpackRPC
import MuxRPC
import NIOCore
import NIOPosix
import Testing
import Yamux

/// `SocketReads`: how much a connection reads at a time, at most.
@Suite("Socket reads", .timeLimit(.minutes(5)))
struct SocketReadsTests {
    /// Echoes `payloadSize` bytes with `reads` on both ends; returns the
    /// client connection's read allocator and what came back.
    private func echo(payloadSize: Int, reads: SocketReads) async throws -> (AdaptiveRecvByteBufferAllocator, [UInt8]) {
        var serverConfiguration = MuxRPCServer.Configuration.patient()
        serverConfiguration.socketReads = reads
        let server = MuxRPCServer(services: DemoServices.registry, configuration: serverConfiguration)
        let address = try await server.start()
        let connection = try await MuxRPCConnection.connect(to: address, configuration: .init(socketReads: reads))
        let payload = (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let stream = try await connection.openStream()
        let reply = try await stream.call("Echo.Echo", DemoServices.EchoArgs(msg: payload), returning: DemoServices.EchoReply.self)
        let channel = try #require(connection.session?.channel)
        let allocator = try #require(try await channel.getOption(.recvAllocator).get() as? AdaptiveRecvByteBufferAllocator)
        await connection.close()
        await server.shutdown()
        return (allocator, reply.msg)
    }

    @Test func theConnectionReadsUpToTheConfiguredMaximum() async throws {
        let (allocator, _) = try await echo(payloadSize: 16, reads: .default)
        #expect(allocator.maximum == 256 * 1024)
        #expect(allocator.maximum == SocketReads.default.maximumBytes)
        let (custom, _) = try await echo(payloadSize: 16, reads: SocketReads(maximumBytes: 1 << 20))
        #expect(custom.maximum == 1 << 20)
    }

    @Test(arguments: [SocketReads.allowedMaximums.lowerBound, SocketReads.default.maximumBytes])
    func largeMessagesArriveWholeWhateverTheReadSize(maximumBytes: Int) async throws {
        // 300 KiB each way: more than one read at either size.
        let payloadSize = 300 * 1024
        let (_, reply) = try await echo(payloadSize: payloadSize, reads: SocketReads(maximumBytes: maximumBytes))
        #expect(reply.count == payloadSize)
        #expect(reply == (0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 31) })
    }

    @Test(arguments: [SocketReads.allowedMaximums.lowerBound - 1, SocketReads.allowedMaximums.upperBound + 1])
    func maximumsOutOfRangeAreRefused(maximumBytes: Int) async throws {
        let reads = SocketReads(maximumBytes: maximumBytes)
        let error = #expect(throws: MuxRPCError.self) { try reads.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix("invalid socket reads configuration: socket reads of at most \(maximumBytes) bytes") == true)
        try await expectRefusedEverywhere(reads, with: MuxRPCError.self, server: \.socketReads, connection: \.socketReads) {
            $0.code == .invalidConfiguration
        }
    }

    @Test func maximumsInRangeAreAccepted() throws {
        for maximum in [SocketReads.allowedMaximums.lowerBound, 64 * 1024, SocketReads.allowedMaximums.upperBound] {
            try SocketReads(maximumBytes: maximum).validate()
        }
    }
}
