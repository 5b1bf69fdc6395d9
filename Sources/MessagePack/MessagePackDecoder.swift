public import NIOCore

/// Decodes `Decodable` values from MessagePack.
///
/// Reads what ``MessagePackEncoder`` and Go's go-msgpack write: maps into
/// structs by coding key (unknown keys are skipped, as Go does), any
/// integer encoding into any integer type that holds the value, str or bin
/// into `Data` and `[UInt8]`, and a `Date` from either the timestamp
/// extension or Go's `time.Time` bytes.
///
/// Before decoding, the whole value is checked against ``limits`` without
/// allocating, so hostile input fails fast and cheaply. Errors are
/// `DecodingError`s whose context names the coding path and, through the
/// underlying ``MessagePackError``, the byte offset.
public struct MessagePackDecoder: Sendable {
    /// Bounds on depth, lengths, counts and total size.
    public var limits: MessagePackLimits
    /// Go's zero values: when true (the default), nil decodes as an empty
    /// array, map, string or byte string, since Go writes a nil slice, map
    /// or pointer-free empty value as nil.
    public var decodesNilAsEmpty: Bool
    /// Handed to `init(from:)` implementations as `decoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// A decoder with the given limits, nil-as-empty rule and user info.
    public init(
        limits: MessagePackLimits = .default,
        decodesNilAsEmpty: Bool = true,
        userInfo: [CodingUserInfoKey: any Sendable] = [:]
    ) {
        self.limits = limits
        self.decodesNilAsEmpty = decodesNilAsEmpty
        self.userInfo = userInfo
    }

    /// Decodes the one value that fills `buffer`'s readable bytes. Bytes
    /// after the value are an error.
    public func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        guard let length = try scan(buffer) else {
            throw Self.corrupted(MessagePackError(.truncated(needed: buffer.readableBytes + 1, available: buffer.readableBytes), offset: buffer.readableBytes))
        }
        guard length == buffer.readableBytes else {
            throw Self.corrupted(MessagePackError(.trailingBytes(count: buffer.readableBytes - length), offset: length))
        }
        return try decodeChecked(type, from: buffer)
    }

    /// Decodes the value at the start of `buffer`'s readable bytes and
    /// consumes it, or returns `nil` (consuming nothing) when the value has
    /// not fully arrived. Bytes after the value are left for the next call.
    public func decode<Value: Decodable>(_ type: Value.Type, from buffer: inout ByteBuffer) throws -> Value? {
        guard let length = try scan(buffer) else { return nil }
        let value = try decodeChecked(type, from: buffer.getSlice(at: buffer.readerIndex, length: length)!)
        buffer.moveReaderIndex(forwardBy: length)
        return value
    }

    /// The length of the complete value at the start of `buffer`, checked
    /// against the limits; `nil` when it has not fully arrived.
    private func scan(_ buffer: ByteBuffer) throws -> Int? {
        var scanner = MessagePackValueScanner(limits: limits)
        do {
            return try scanner.scan(buffer)
        } catch {
            throw Self.corrupted(error)
        }
    }

    private static func corrupted(_ error: MessagePackError) -> DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: error.description, underlyingError: error))
    }

    /// Decodes from a buffer holding exactly one value that the scanner has
    /// already checked against the limits. For stream parsers that keep
    /// their own ``MessagePackValueScanner``.
    public func decode<Value: Decodable>(_ type: Value.Type, fromScanned buffer: ByteBuffer) throws -> Value {
        try decodeChecked(type, from: buffer)
    }

    private func decodeChecked<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        if let selfDecoding = type as? any MessagePackSelfDecodable.Type {
            // The buffer holds exactly the one value the scanner checked.
            var reader = MessagePackReader(buffer, limits: limits)
            return try selfDecoding.readChecked(as: Value.self, with: &reader, knownEnd: buffer.readableBytes, path: [])
        }
        let reader = MessagePackReader(buffer, limits: limits)
        // A spare decoding keeps its stacks' memory: no allocation here but
        // the containers `Codable` boxes and the values made.
        var decoding: MessagePackDecoding
        if let spare = MessagePackDecoding.spares.take() {
            decoding = spare
            decoding.begin(reader: reader, decodesNilAsEmpty: decodesNilAsEmpty, userInfo: userInfo)
        } else {
            decoding = MessagePackDecoding(reader: reader, decodesNilAsEmpty: decodesNilAsEmpty, userInfo: userInfo)
        }
        defer {
            // Not reused if user code kept a reference to it (an escaped
            // container or decoder).
            if isKnownUniquelyReferenced(&decoding), decoding.end() {
                MessagePackDecoding.spares.put(decoding)
            }
        }
        return try decoding.decode(type, at: 0)
    }
}
