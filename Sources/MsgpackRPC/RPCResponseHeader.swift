@_spi(Benchmarking) package import MessagePack
package import NIOCore

/// The header net/rpc sends before each reply: Go's `rpc.Response`
/// {ServiceMethod, Seq, Error}.
///
/// `Error` is always present, "" when the call succeeded. Keys are written
/// sorted as Go writes them, so the bytes are Go's:
///
///     83  a5 "Error" a0 ""  a3 "Seq" 01  ad "ServiceMethod" a9 "Echo.Echo"
package struct RPCResponseHeader: Hashable, Sendable {
    /// "Service.Method", echoed from the request.
    package var serviceMethod: String
    /// The request's sequence number, echoed.
    package var seq: UInt64
    /// The server's error text, "" on success.
    package var error: String

    package init(serviceMethod: String, seq: UInt64, error: String = "") {
        self.serviceMethod = serviceMethod
        self.seq = seq
        self.error = error
    }

    /// Appends the header to `buffer` in one reservation.
    package func write(to buffer: inout ByteBuffer) {
        // Key lengths with their fixstr header byte: Error 6, Seq 4, ServiceMethod 14.
        let capacity = MessagePackPointerWriter.maxContainerHeaderLength
            + 6 + MessagePackPointerWriter.maxLength(ofString: error)
            + 4 + MessagePackPointerWriter.maxScalarLength
            + 14 + MessagePackPointerWriter.maxLength(ofString: serviceMethod)
        // The capacity above is an upper bound, so this cannot throw.
        try! buffer.writeMessagePack(reservingCapacity: capacity) { writer in
            writer.writeMapHeader(count: 3)
            writer.writeStringBytes(HeaderKey.errorBytes)
            writer.writeString(error)
            writer.writeStringBytes(HeaderKey.seqBytes)
            writer.writeInteger(seq)
            writer.writeStringBytes(HeaderKey.serviceMethodBytes)
            writer.writeString(serviceMethod)
        }
    }

    /// Reads a header from `buffer`, which holds exactly one msgpack value.
    /// Keys may come in any order; unknown keys are skipped; a missing key
    /// reads as Go's zero value.
    package init(from buffer: ByteBuffer, limits: MessagePackLimits = .default) throws(MessagePackError) {
        var reader = MessagePackReader(buffer, limits: limits)
        let count = try reader.readMapHeader()
        var serviceMethod = ""
        var seq: UInt64 = 0
        var error = ""
        for _ in 0..<count {
            let key = try reader.withStringBytes { HeaderKey($0) }
            if reader.nextIsNil() {
                try reader.readNil()
                continue
            }
            switch key {
            case .serviceMethod: serviceMethod = try reader.readString()
            case .seq: seq = try reader.readInteger(as: UInt64.self)
            case .error: error = try reader.readString()
            default: try reader.skipValue()
            }
        }
        self.serviceMethod = serviceMethod
        self.seq = seq
        self.error = error
    }
}
