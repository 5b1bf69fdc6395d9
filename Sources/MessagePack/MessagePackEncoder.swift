public import NIOCore

/// Encodes `Encodable` values as MessagePack, straight into a `ByteBuffer`.
///
/// Structs become maps keyed by their coding keys (so `CodingKeys` can
/// spell a Go struct's field names), arrays become arrays, dictionaries
/// maps. `Data` and `[UInt8]` are bytes, written as ``MessagePackWriteOptions/bytes``
/// says; `Date` as ``MessagePackWriteOptions/dates`` says;
/// ``MessagePackValue`` and ``MessagePackTimestamp`` as themselves.
///
/// The encoder writes as it goes and fixes each container's header when
/// the container is done, so it allocates almost nothing. In exchange, a
/// type must finish one nested container before writing to its parent
/// again (as every synthesized and almost every hand-written `encode(to:)`
/// does); going back to a finished container throws.
public struct MessagePackEncoder: Sendable {
    /// How strings, bytes and dates are written. Default: ``MessagePackWriteOptions/goCompatible``.
    public var options: MessagePackWriteOptions
    /// Handed to `encode(to:)` implementations as `encoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// An encoder that writes with `options` (Go's choices by default).
    public init(options: MessagePackWriteOptions = .goCompatible, userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.options = options
        self.userInfo = userInfo
    }

    /// Encodes `value` into a new buffer.
    public func encode<Value: Encodable>(_ value: Value, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        try encode(value, into: &buffer)
        return buffer
    }

    /// Appends the encoding of `value` to `buffer`. On error, `buffer` is
    /// left as it was.
    public func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws {
        if let selfEncoding = Value.self as? any MessagePackSelfEncodable.Type {
            return try selfEncoding.writeChecked(value, into: &buffer, options: options, codingPath: [])
        }
        // A spare encoding keeps its scratch memory and stacks: no allocation
        // here but the containers `Codable` boxes.
        var encoding = MessagePackEncoding.spares.take() ?? MessagePackEncoding()
        encoding.begin(options: options, userInfo: userInfo)
        defer {
            // Not reused if user code kept a reference to it (an escaped
            // container or encoder).
            if isKnownUniquelyReferenced(&encoding), encoding.end() {
                MessagePackEncoding.spares.put(encoding)
            }
        }
        try encoding.encodeTopLevel(value)
        encoding.write(to: &buffer)
    }
}
