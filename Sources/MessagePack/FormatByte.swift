/// The first byte of every MessagePack value, as named by the specification.
/// Internal: callers see values, not format bytes.
@usableFromInline
enum FormatByte {
    @usableFromInline static let positiveFixintMax: UInt8 = 0x7f
    @usableFromInline static let fixmap: UInt8 = 0x80  // 0x80...0x8f
    @usableFromInline static let fixarray: UInt8 = 0x90  // 0x90...0x9f
    @usableFromInline static let fixstr: UInt8 = 0xa0  // 0xa0...0xbf
    @usableFromInline static let `nil`: UInt8 = 0xc0
    @usableFromInline static let neverUsed: UInt8 = 0xc1
    @usableFromInline static let `false`: UInt8 = 0xc2
    @usableFromInline static let `true`: UInt8 = 0xc3
    @usableFromInline static let bin8: UInt8 = 0xc4
    @usableFromInline static let bin16: UInt8 = 0xc5
    @usableFromInline static let bin32: UInt8 = 0xc6
    @usableFromInline static let ext8: UInt8 = 0xc7
    @usableFromInline static let ext16: UInt8 = 0xc8
    @usableFromInline static let ext32: UInt8 = 0xc9
    @usableFromInline static let float32: UInt8 = 0xca
    @usableFromInline static let float64: UInt8 = 0xcb
    @usableFromInline static let uint8: UInt8 = 0xcc
    @usableFromInline static let uint16: UInt8 = 0xcd
    @usableFromInline static let uint32: UInt8 = 0xce
    @usableFromInline static let uint64: UInt8 = 0xcf
    @usableFromInline static let int8: UInt8 = 0xd0
    @usableFromInline static let int16: UInt8 = 0xd1
    @usableFromInline static let int32: UInt8 = 0xd2
    @usableFromInline static let int64: UInt8 = 0xd3
    @usableFromInline static let fixext1: UInt8 = 0xd4
    @usableFromInline static let fixext2: UInt8 = 0xd5
    @usableFromInline static let fixext4: UInt8 = 0xd6
    @usableFromInline static let fixext8: UInt8 = 0xd7
    @usableFromInline static let fixext16: UInt8 = 0xd8
    @usableFromInline static let str8: UInt8 = 0xd9
    @usableFromInline static let str16: UInt8 = 0xda
    @usableFromInline static let str32: UInt8 = 0xdb
    @usableFromInline static let array16: UInt8 = 0xdc
    @usableFromInline static let array32: UInt8 = 0xdd
    @usableFromInline static let map16: UInt8 = 0xde
    @usableFromInline static let map32: UInt8 = 0xdf
    @usableFromInline static let negativeFixintMin: UInt8 = 0xe0  // 0xe0...0xff = -32...-1
}

/// The kind of value a format byte starts; used for error messages and by
/// callers that branch on what comes next (``MessagePackReader/peekType()``).
public enum MessagePackType: String, Hashable, Sendable, CustomStringConvertible {
    /// nil (0xc0).
    case `nil`
    /// true or false.
    case bool
    /// A negative fixint or a signed int 8 to 64.
    case int
    /// A positive fixint or an unsigned int 8 to 64.
    case uint
    /// A 32-bit float.
    case float
    /// A 64-bit float.
    case double
    /// A str: fixstr, str 8, 16 or 32.
    case string
    /// A bin 8, 16 or 32.
    case binary
    /// A fixarray, array 16 or 32.
    case array
    /// A fixmap, map 16 or 32.
    case map
    /// A fixext or ext 8, 16 or 32 (timestamps included).
    case `extension`

    /// The type a format byte starts, or `nil` for 0xc1 (never used). A wire
    /// detail: callers ask ``MessagePackReader/peekType()``.
    @inlinable
    package init?(formatByte byte: UInt8) {
        switch byte {
        case 0x00...0x7f, 0xcc...0xcf: self = .uint
        case 0xe0...0xff, 0xd0...0xd3: self = .int
        case 0x80...0x8f, 0xde, 0xdf: self = .map
        case 0x90...0x9f, 0xdc, 0xdd: self = .array
        case 0xa0...0xbf, 0xd9...0xdb: self = .string
        case 0xc0: self = .nil
        case 0xc2, 0xc3: self = .bool
        case 0xc4...0xc6: self = .binary
        case 0xc7...0xc9, 0xd4...0xd8: self = .extension
        case 0xca: self = .float
        case 0xcb: self = .double
        default: return nil
        }
    }

    /// The type's name, as error messages give it.
    public var description: String { rawValue }
}
