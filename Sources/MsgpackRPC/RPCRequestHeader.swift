@_spi(Benchmarking) package import MessagePack
package import NIOCore

/// The header net/rpc sends before each request's arguments: Go's
/// `rpc.Request` {ServiceMethod, Seq}, plus two optional extensions.
///
/// On the wire it is one msgpack map. Go writes the keys sorted
/// (`Seq`, `ServiceMethod`), and so do we, so a header without extensions is
/// byte-identical to Go's:
///
///     82                                  map, 2 entries
///     a3 53 65 71  01                     "Seq": 1
///     ad 53 65 72 76 69 63 65 4d 65 74 68 6f 64
///     a9 45 63 68 6f 2e 45 63 68 6f       "ServiceMethod": "Echo.Echo"
///
/// Extensions (Go's decoder skips keys it does not know, so Go servers
/// ignore them): `Deadline` (int64, Unix nanoseconds) and `Traceparent` /
/// `Tracestate` (W3C Trace Context strings). Reading accepts keys in any
/// order and skips unknown ones. An extension whose value is of another
/// type (a `Deadline` string, an out-of-range integer, a `Traceparent` that
/// is not UTF-8 text) is skipped too: the call is served as a Go server would
/// serve it, without that extension. `ServiceMethod` may come as str (as Go
/// writes it) or as bin holding UTF-8.
package struct RPCRequestHeader: Hashable, Sendable {
    /// "Service.Method".
    package var serviceMethod: String
    /// The call's sequence number, echoed in the response.
    package var seq: UInt64
    /// The caller's deadline, if it sent one.
    package var deadline: RPCDeadline?
    /// The caller's trace context, if it sent one.
    package var traceContext: RPCTraceContext?

    package init(serviceMethod: String, seq: UInt64, deadline: RPCDeadline? = nil, traceContext: RPCTraceContext? = nil) {
        self.serviceMethod = serviceMethod
        self.seq = seq
        self.deadline = deadline
        self.traceContext = traceContext
    }

    /// Appends the header to `buffer` in one reservation.
    package func write(to buffer: inout ByteBuffer) {
        var entries = 2
        // Key lengths with their fixstr header byte: Seq 4, ServiceMethod 14,
        // Deadline 9, Traceparent 12, Tracestate 11.
        var capacity = MessagePackPointerWriter.maxContainerHeaderLength + 4 + MessagePackPointerWriter.maxScalarLength
            + 14 + MessagePackPointerWriter.maxLength(ofString: serviceMethod)
        if deadline != nil {
            entries += 1
            capacity += 9 + MessagePackPointerWriter.maxScalarLength
        }
        let traceState = traceContext.map { $0.traceState.isEmpty ? nil : $0.traceState } ?? nil
        if let traceContext {
            entries += 1
            capacity += 12 + MessagePackPointerWriter.maxLength(ofString: traceContext.traceParent)
        }
        if let traceState {
            entries += 1
            capacity += 11 + MessagePackPointerWriter.maxLength(ofString: traceState)
        }
        // The capacity above is an upper bound, so this cannot throw.
        try! buffer.writeMessagePack(reservingCapacity: capacity) { writer in
            writer.writeMapHeader(count: entries)
            writer.writeStringBytes(HeaderKey.seqBytes)
            writer.writeInteger(seq)
            writer.writeStringBytes(HeaderKey.serviceMethodBytes)
            writer.writeString(serviceMethod)
            if let deadline {
                writer.writeStringBytes(HeaderKey.deadlineBytes)
                writer.writeInteger(deadline.unixNanoseconds)
            }
            if let traceContext {
                writer.writeStringBytes(HeaderKey.traceParentBytes)
                writer.writeString(traceContext.traceParent)
            }
            if let traceState {
                writer.writeStringBytes(HeaderKey.traceStateBytes)
                writer.writeString(traceState)
            }
        }
    }

    /// Reads a header from `buffer`, which holds exactly one msgpack value
    /// (as ``RPCMessageDecoder`` produces). A missing key reads as Go's zero
    /// value, as in Go; a value of the wrong type throws.
    package init(from buffer: ByteBuffer, limits: MessagePackLimits = .default) throws(MessagePackError) {
        var reader = MessagePackReader(buffer, limits: limits)
        let count = try reader.readMapHeader()
        var serviceMethod = ""
        var seq: UInt64 = 0
        var deadline: RPCDeadline?
        var traceParent: String?
        var traceState = ""
        for _ in 0..<count {
            let key = try reader.withStringBytes { HeaderKey($0) }
            if reader.nextIsNil() {
                try reader.readNil()
                continue
            }
            switch key {
            case .serviceMethod:
                // Go always writes str; a bin holding UTF-8 reads the same.
                serviceMethod = try reader.withStringBytes { String(validating: $0, as: UTF8.self) } ?? ""
            case .seq: seq = try reader.readInteger(as: UInt64.self)
            // Extensions of a type we do not expect are skipped, as a Go
            // server skips every key it has no field for: the call is still
            // answered, without the extension.
            case .deadline:
                let nanoseconds = Self.readOptional(&reader) { (reader: inout MessagePackReader) throws(MessagePackError) in
                    try reader.readInteger(as: Int64.self)
                }
                deadline = nanoseconds.map(RPCDeadline.init(unixNanoseconds:))
            case .traceParent:
                traceParent = Self.readOptional(&reader) { (reader: inout MessagePackReader) throws(MessagePackError) in
                    try reader.readString()
                }
            case .traceState:
                traceState = Self.readOptional(&reader) { (reader: inout MessagePackReader) throws(MessagePackError) in
                    try reader.readString()
                } ?? ""
            case .error, .unknown: try reader.skipValue()
            }
        }
        self.serviceMethod = serviceMethod
        self.seq = seq
        self.deadline = deadline
        self.traceContext = traceParent.map { RPCTraceContext(traceParent: $0, traceState: traceState) }
    }

    /// Reads an extension's value with `read`, or skips it (nil) when it is
    /// of another type or out of range.
    private static func readOptional<Value>(
        _ reader: inout MessagePackReader,
        _ read: (inout MessagePackReader) throws(MessagePackError) -> Value
    ) -> Value? {
        var attempt = reader
        if let value = try? read(&attempt) {
            reader = attempt
            return value
        }
        // A value that cannot even be skipped is caught by the next read.
        try? reader.skipValue()
        return nil
    }
}
