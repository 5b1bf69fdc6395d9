/// An empty struct: Go's `struct{}`, for methods that take or return nothing
/// (Status.Ping). It encodes as an empty map (0x80), as Go writes it, and
/// decodes from anything (a Go client may send nil, 0xc0, for empty args).
public struct RPCEmpty: Codable, Hashable, Sendable {
    public init() {}

    public init(from decoder: any Decoder) throws {}

    public func encode(to encoder: any Encoder) throws {
        _ = encoder.container(keyedBy: NoKeys.self)
    }

    private enum NoKeys: CodingKey {}
}
