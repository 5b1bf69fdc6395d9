public import NIOCore

/// One server a client may call, as a resolver reports it: an address and
/// its weight.
public struct MuxRPCEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// Where the server listens.
    public var address: SocketAddress
    /// Its share of traffic under weighted balancing (``WeightedRandomBalancer``).
    /// Default 1.
    public var weight: Double

    /// The server at `address`, with `weight` for weighted balancing.
    public init(_ address: SocketAddress, weight: Double = 1) {
        self.address = address
        self.weight = weight
    }

    /// The address, and the weight when it is not 1.
    public var description: String { weight == 1 ? "\(address)" : "\(address) (weight \(weight))" }
}
