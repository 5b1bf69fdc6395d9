/// Choices a writer makes where MessagePack allows more than one encoding.
///
/// Two presets cover the peers that matter:
/// - ``goCompatible`` writes what hashicorp/go-msgpack writes as Consul and
///   Nomad configure it (`WriteExt = false`): no str8 header, `[]byte` as
///   str, `time.Time` in Go's binary form. Go decoders accept it, and
///   decoders of the current spec do too. This is the default, because
///   talking to Go is what MuxRPC is for.
/// - ``standard`` writes the current MessagePack spec as msgpack-c does:
///   str8 for 32...255-byte strings, bin for bytes, the timestamp
///   extension for dates.
public struct MessagePackWriteOptions: Hashable, Sendable {
    /// How str headers are chosen.
    public enum StringHeaders: Hashable, Sendable {
        /// fixstr, str8, str16, str32: the smallest that fits.
        case current
        /// fixstr, str16, str32, skipping str8: the pre-2013 "raw" family,
        /// which go-msgpack writes and which old decoders require.
        case legacy
    }

    /// How byte strings (`[UInt8]`, `Data`, ``MessagePackValue/binary(_:)``
    /// through the encoder) are written.
    public enum Bytes: Hashable, Sendable {
        /// The bin family (0xc4...0xc6).
        case binary
        /// The str family, as go-msgpack writes `[]byte`. A Go `string`
        /// field rejects bin, so this is the safe choice towards Go.
        case string
    }

    /// How the encoder writes `Date`.
    public enum Dates: Hashable, Sendable {
        /// The MessagePack timestamp extension (type -1).
        case timestampExtension
        /// Go's `time.Time.MarshalBinary` form (see ``GoTime``), written
        /// as bytes: what a Go `time.Time` field expects.
        case goTime
    }

    /// How str headers are chosen.
    public var stringHeaders: StringHeaders
    /// How byte strings are written.
    public var bytes: Bytes
    /// How the encoder writes `Date`.
    public var dates: Dates

    /// Options with each choice given; see ``goCompatible`` and ``standard`` for the presets.
    public init(stringHeaders: StringHeaders, bytes: Bytes, dates: Dates) {
        self.stringHeaders = stringHeaders
        self.bytes = bytes
        self.dates = dates
    }

    /// What hashicorp/go-msgpack writes for Consul and Nomad.
    public static let goCompatible = MessagePackWriteOptions(stringHeaders: .legacy, bytes: .string, dates: .goTime)

    /// The current MessagePack specification, as msgpack-c writes it.
    public static let standard = MessagePackWriteOptions(stringHeaders: .current, bytes: .binary, dates: .timestampExtension)
}
