public import NIOCore

/// A type that writes its own MessagePack form, skipping `Encodable`'s
/// containers: the counterpart of go-msgpack's `Selfer` (the
/// `CodecEncodeSelf` methods codecgen writes for Consul's and Nomad's hot
/// structs).
///
/// ``MessagePackEncoder`` calls ``writeMessagePack(into:options:)`` instead
/// of `encode(to:)` wherever it meets such a type: at the top, and nested
/// inside values it encodes through `Encodable`. The type stays `Encodable`,
/// so every API that takes `Encodable` values takes it, and encoders other
/// than MessagePack's still work. Both forms must write the same value;
/// test that they do.
///
/// Write exactly one MessagePack value. Going through `Encodable` costs a
/// few microseconds per message in boxed containers and generic lookups,
/// which is worth skipping for the types of calls made thousands of times a
/// second.
public protocol MessagePackSelfEncodable: Encodable {
    /// Appends this value, as one MessagePack value, to `buffer`. `options`
    /// are the encoder's: write bytes, strings and dates as they say.
    func writeMessagePack(into buffer: inout ByteBuffer, options: MessagePackWriteOptions) throws
}

/// A type that reads its own MessagePack form, skipping `Decodable`'s
/// containers: the counterpart of go-msgpack's `CodecDecodeSelf`.
///
/// ``MessagePackDecoder`` calls ``init(readingMessagePack:)`` instead of
/// `init(from:)` wherever it meets such a type. The reader is positioned at
/// the value's first byte, and the value has been checked against the
/// decoder's limits. The initializer must read exactly that one value:
/// reading less or more throws `DecodingError.dataCorrupted`. Read maps by
/// key and skip unknown keys (``MessagePackReader/skipValue()``), as Go and
/// the `Decodable` path do. The reader's errors become `DecodingError`s
/// that carry them, as on the `Decodable` path; other errors pass through.
public protocol MessagePackSelfDecodable: Decodable {
    init(readingMessagePack reader: inout MessagePackReader) throws
}

/// A type that writes and reads its own MessagePack form.
public typealias MessagePackSelfCodable = MessagePackSelfEncodable & MessagePackSelfDecodable

// The coders find self-coding types by their metatype and reach them through
// these static entry points, so that a value is never boxed in an
// existential on the way (a heap allocation for values over three words).
extension MessagePackSelfEncodable {
    /// Writes `value`, which is of this type, as the encoder does: a
    /// writer's error becomes an `EncodingError` that carries it (other
    /// errors pass through), writing anything but exactly one value is an
    /// error, and on error `buffer` is left as it was.
    static func writeChecked<Value>(_ value: Value, into buffer: inout ByteBuffer, options: MessagePackWriteOptions, codingPath: [any CodingKey]) throws {
        let value = value as! Self
        let writerIndex = buffer.writerIndex
        do {
            try value.writeMessagePack(into: &buffer, options: options)
        } catch let error as MessagePackError {
            buffer.moveWriterIndex(to: writerIndex)
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: codingPath, debugDescription: error.description, underlyingError: error))
        } catch {
            buffer.moveWriterIndex(to: writerIndex)
            throw error
        }
        // One whole value, or the peer's stream is broken: checked by
        // walking the headers written, which costs far less than writing.
        var written = MessagePackReader(buffer.getSlice(at: writerIndex, length: buffer.writerIndex - writerIndex)!, limits: .unlimited)
        if written.isAtEnd || (try? written.skipValue()) == nil || !written.isAtEnd {
            buffer.moveWriterIndex(to: writerIndex)
            throw EncodingError.invalidValue(
                value,
                EncodingError.Context(codingPath: codingPath, debugDescription: "\(Self.self).writeMessagePack(into:options:) did not write exactly one value")
            )
        }
    }
}

extension MessagePackSelfDecodable {
    /// Reads a value of this type at `reader`'s offset, returned as `Value`
    /// (the same type, as the caller knows it), and checks that exactly one
    /// value was read: one that ends at `knownEnd`, when the caller has
    /// scanned it already, or else where its headers say. The reader's
    /// errors become `DecodingError`s that carry them, as on the `Decodable`
    /// path; other errors pass through.
    static func readChecked<Value>(
        as: Value.Type,
        with reader: inout MessagePackReader,
        knownEnd: Int? = nil,
        path: @autoclosure () -> [any CodingKey]
    ) throws -> Value {
        let start = reader.offset
        do {
            let end = try knownEnd ?? reader.endOfValue()
            let value = try Self(readingMessagePack: &reader)
            guard reader.offset == end else {
                throw MessagePackError(
                    .invalidValue("\(Self.self).init(readingMessagePack:) read \(reader.offset - start) bytes of a \(end - start)-byte value"),
                    offset: start
                )
            }
            return value as! Value
        } catch let error as MessagePackError {
            throw MessagePackDecoding.decodingError(error, type: Self.self, path: path())
        }
    }
}

extension ByteBuffer {
    /// Writes bytes as `options` says: str (as go-msgpack writes `[]byte`)
    /// or bin. For ``MessagePackSelfEncodable`` types.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackBytes(_ bytes: UnsafeRawBufferPointer, options: MessagePackWriteOptions) throws(MessagePackError) -> Int {
        switch options.bytes {
        case .string: try writeMessagePackStringBytes(bytes, headers: options.stringHeaders)
        case .binary: try writeMessagePackBinary(bytes)
        }
    }

    /// Writes a str value with `options`' headers. For ``MessagePackSelfEncodable`` types.
    @inlinable
    @discardableResult
    public mutating func writeMessagePackString(_ value: String, options: MessagePackWriteOptions) throws(MessagePackError) -> Int {
        try writeMessagePackString(value, headers: options.stringHeaders)
    }
}

extension MessagePackLimits {
    /// For checking the shape of what this process wrote itself.
    fileprivate static let unlimited = MessagePackLimits(maxDepth: .max, maxByteLength: .max, maxContainerCount: .max, maxMessageSize: .max)
}
