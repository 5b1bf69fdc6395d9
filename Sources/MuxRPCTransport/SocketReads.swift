import NIOCore

/// How much a MuxRPC connection reads from its socket at a time, at most.
///
/// NIO sizes each read to what the last ones brought, between 64 bytes and a
/// maximum; its default maximum is 64 KiB. A net/rpc message of 64 KiB or
/// more then arrives in two reads or more, which costs a system call and a
/// turn of the event loop each, and the RPC layer has to copy the pieces
/// together before it can decode them. With reads of up to 256 KiB such a
/// message comes in one read; small calls are read as before.
///
/// The cost is memory while large messages flow: a connection's read buffer
/// grows to at most ``maximumBytes``, and shrinks again when reads come back
/// small. A slice of a received message that the application keeps (a
/// `ByteBuffer` decoded without a copy) keeps its whole read buffer alive.
public struct SocketReads: Sendable, Hashable {
    /// The most bytes one read takes from the socket (NIO rounds it up to a
    /// power of two).
    public var maximumBytes: Int

    /// Reads of at most `maximumBytes`; ``validate()`` checks the value.
    public init(maximumBytes: Int) {
        self.maximumBytes = maximumBytes
    }

    /// 256 KiB: a 64 KiB or 128 KiB message in one read, with room for the
    /// frames around it.
    public static let `default` = SocketReads(maximumBytes: 256 * 1024)

    /// The values allowed: 1 KiB to 16 MiB.
    public static let allowedMaximums: ClosedRange<Int> = 1024...(16 << 20)

    /// Throws a ``MuxRPCError`` with code
    /// ``MuxRPCError/Code/invalidConfiguration`` for a maximum outside
    /// ``allowedMaximums``.
    public func validate() throws(MuxRPCError) {
        let check = ConfigurationCheck { MuxRPCError.invalidConfiguration("socket reads", $0) }
        try check.require(
            Self.allowedMaximums.contains(maximumBytes),
            "socket reads of at most \(maximumBytes) bytes are outside \(Self.allowedMaximums)"
        )
    }

    /// NIO's adaptive allocator with this maximum and NIO's own minimum and
    /// first size (the first size no larger than the maximum).
    var allocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: min(2048, maximumBytes), maximum: maximumBytes)
    }
}
