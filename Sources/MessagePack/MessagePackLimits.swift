/// Bounds that keep hostile input cheap.
///
/// Every length a header claims is checked against these limits *before*
/// anything is allocated or waited for, so a 6-byte input that claims a
/// 4 GiB string fails at once instead of reserving memory or stalling a
/// stream parser until 4 GiB arrive.
public struct MessagePackLimits: Hashable, Sendable {
    /// Deepest nesting of arrays and maps. Default 64: RPC payloads are
    /// shallow, and decoding recurses once per level.
    public var maxDepth: Int
    /// Longest str, bin or ext payload in bytes. Default 16 MiB.
    public var maxByteLength: Int
    /// Most elements in one array, or entries in one map. Default 1,048,576.
    public var maxContainerCount: Int
    /// Largest encoded size of one complete top-level value. Default 64 MiB.
    public var maxMessageSize: Int

    /// Limits with the given values; each defaults to ``default``'s.
    public init(
        maxDepth: Int = 64,
        maxByteLength: Int = 16 << 20,
        maxContainerCount: Int = 1 << 20,
        maxMessageSize: Int = 64 << 20
    ) {
        precondition(maxDepth >= 1, "maxDepth must be at least 1")
        precondition(maxByteLength >= 0 && maxContainerCount >= 0, "limits must not be negative")
        precondition(maxMessageSize >= 1, "maxMessageSize must be at least 1")
        self.maxDepth = maxDepth
        self.maxByteLength = maxByteLength
        self.maxContainerCount = maxContainerCount
        self.maxMessageSize = maxMessageSize
    }

    /// The defaults described on each property.
    public static let `default` = MessagePackLimits()
}
