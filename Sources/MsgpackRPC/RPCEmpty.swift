/// An empty struct: Go's `struct{}`, for methods that take or return nothing
/// (Status.Ping). It encodes as an empty map (0x80), as Go writes it, and
/// decodes from anything (a Go client may send nil, 0xc0, for empty args).
public struct RPCEmpty: Codable, Hashable, Sendable {
    /// The empty value.
    public init() {}

    /// Reads an empty value from whatever the peer sent in its place.
    public init(from decoder: any Decoder) throws {}

    /// Writes an empty map, as Go writes `struct{}`.
    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: NoKeys.self)
    }

    private enum NoKeys: CodingKey {}
}
