/// The MessagePack timestamp extension (type -1): seconds since the Unix
/// epoch and nanoseconds within the second.
///
/// Note that Go's go-msgpack does not understand this extension; towards
/// Go, use ``GoTime`` (what a Go `time.Time` field expects).
public struct MessagePackTimestamp: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The extension type number the specification reserves for timestamps.
    public static let extensionType: Int8 = -1

    /// Seconds since 1970-01-01T00:00:00Z; negative before it.
    public var seconds: Int64
    /// Nanoseconds within the second, 0...999,999,999.
    public var nanoseconds: UInt32

    /// Creates a timestamp. `nanoseconds` must be below one second.
    public init(seconds: Int64, nanoseconds: UInt32 = 0) {
        precondition(nanoseconds < 1_000_000_000, "nanoseconds must be below 1,000,000,000")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// Reads a timestamp from its extension payload (4, 8 or 12 bytes).
    /// Returns `nil` for any other length or out-of-range nanoseconds.
    init?(payload: UnsafeRawBufferPointer) {
        switch payload.count {
        case 4:
            self.seconds = Int64(UInt32(bigEndian: payload.loadUnaligned(as: UInt32.self)))
            self.nanoseconds = 0
        case 8:
            let packed = UInt64(bigEndian: payload.loadUnaligned(as: UInt64.self))
            self.seconds = Int64(packed & 0x3_ffff_ffff)
            self.nanoseconds = UInt32(packed >> 34)
        case 12:
            self.nanoseconds = UInt32(bigEndian: payload.loadUnaligned(as: UInt32.self))
            self.seconds = Int64(bigEndian: payload.loadUnaligned(fromByteOffset: 4, as: Int64.self))
        default:
            return nil
        }
        guard nanoseconds < 1_000_000_000 else { return nil }
    }

    /// A readable form, for logs and test failures.
    public var description: String {
        "MessagePackTimestamp(seconds: \(seconds), nanoseconds: \(nanoseconds))"
    }
}
