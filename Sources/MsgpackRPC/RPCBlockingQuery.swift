/// The arguments of a blocking query, as Consul's and Nomad's read
/// endpoints take them: their `QueryOptions`, embedded in the arguments
/// struct, carry `MinQueryIndex` and `MaxQueryTime` as top-level keys of
/// the arguments' map.
///
/// With a `MinQueryIndex` above 0 the server holds the call until its data
/// moves past that index or `MaxQueryTime` passes, so the call may take
/// minutes by design. A type that adopts this protocol tells
/// `MuxRPCClient` so before the call starts, and the client gives the call
/// a deadline long enough for it (see ``RPCBlockingQueryPolicy``) instead
/// of its short default timeout:
///
///     struct KVGetArgs: Codable, RPCBlockingQueryArguments {
///         var Key: String
///         var MinQueryIndex: UInt64
///         var MaxQueryTime: Int64   // Go time.Duration: nanoseconds
///
///         var minQueryIndex: UInt64 { MinQueryIndex }
///         var maxQueryTimeNanoseconds: Int64 { MaxQueryTime }
///     }
///
/// The arguments are asked, not their encoding scanned: the call's deadline
/// is fixed as it starts (it bounds the wait for a stream, and travels in
/// the request header, which goes out before the arguments), so it must be
/// known before the arguments are encoded. Consul's own client decides the
/// same way, from an interface its arguments implement. A call whose
/// arguments do not adopt this protocol can say it blocks with
/// ``RPCCallOptions/blockingQueryTime``.
public protocol RPCBlockingQueryArguments {
    /// `MinQueryIndex`: the index the caller has seen. 0 means the call is
    /// not a blocking query (the server answers at once).
    var minQueryIndex: UInt64 { get }
    /// `MaxQueryTime` as the arguments carry it: a Go `time.Duration`, in
    /// nanoseconds. 0 or less asks for the server's default.
    var maxQueryTimeNanoseconds: Int64 { get }
}

/// How long a blocking query may take, and the deadline a client gives it,
/// following Consul's rules on both sides of the call.
///
/// The server holds a blocking query for its `MaxQueryTime`, capped at
/// ``maxQueryTime``, or ``defaultQueryTime`` when the caller gave none (0 or
/// less), plus a random jitter of up to 1/``jitterFraction`` of that time.
/// The client waits for that longest hold plus ``holdMargin`` (Consul's
/// `RPCHoldTimeout`) for the reply to travel.
///
/// Values the arguments carry are capped, never trusted: a negative
/// `MaxQueryTime` gets the default, a huge one the cap.
public struct RPCBlockingQueryPolicy: Sendable, Hashable {
    /// The longest a call may block. Default 10 minutes (Consul's
    /// `max_query_time`).
    public var maxQueryTime: Duration
    /// The blocking time of a query that names none. Default 5 minutes
    /// (Consul's `default_query_time`).
    public var defaultQueryTime: Duration
    /// What the client waits for beyond the longest hold, for the reply to
    /// reach it. Default 7 seconds (Consul's `RPCHoldTimeout`).
    public var holdMargin: Duration

    /// A server adds up to this fraction (1/16) of the blocking time as
    /// jitter, so that many watchers do not wake at once; the client's
    /// deadline allows for all of it.
    public static let jitterFraction = 16

    /// Consul's defaults, unless given.
    public init(
        maxQueryTime: Duration = .seconds(600),
        defaultQueryTime: Duration = .seconds(300),
        holdMargin: Duration = .seconds(7)
    ) {
        self.maxQueryTime = maxQueryTime
        self.defaultQueryTime = defaultQueryTime
        self.holdMargin = holdMargin
    }

    /// What is wrong with the settings, if anything.
    package var problem: String? {
        if maxQueryTime <= .zero { return "blockingQueries.maxQueryTime must be positive" }
        if defaultQueryTime <= .zero || defaultQueryTime > maxQueryTime {
            return "blockingQueries.defaultQueryTime must be positive and at most maxQueryTime"
        }
        if holdMargin < .zero { return "blockingQueries.holdMargin must not be negative" }
        return nil
    }

    /// The time a server holds a call that asks to block for `requested`:
    /// ``defaultQueryTime`` for 0 or less, at most ``maxQueryTime``.
    public func blockingTime(requested: Duration) -> Duration {
        if requested <= .zero { return defaultQueryTime }
        return min(requested, maxQueryTime)
    }

    /// The time a server holds a call whose arguments carry these values,
    /// or nil when the call does not block (`minQueryIndex` 0).
    public func blockingTime(minQueryIndex: UInt64, maxQueryTimeNanoseconds: Int64) -> Duration? {
        guard minQueryIndex > 0 else { return nil }
        return blockingTime(requested: .nanoseconds(maxQueryTimeNanoseconds))
    }

    /// The time a server holds a call with these `arguments` and `options`:
    /// the options' ``RPCCallOptions/blockingQueryTime`` if set, else what
    /// arguments adopting ``RPCBlockingQueryArguments`` carry; nil for a
    /// call that does not block.
    public func blockingTime(of arguments: some Any, options: RPCCallOptions) -> Duration? {
        if let requested = options.blockingQueryTime { return blockingTime(requested: requested) }
        guard let query = arguments as? any RPCBlockingQueryArguments else { return nil }
        return blockingTime(minQueryIndex: query.minQueryIndex, maxQueryTimeNanoseconds: query.maxQueryTimeNanoseconds)
    }

    /// The timeout a client gives a call that blocks for `blockingTime`
    /// (capped first): the time, its largest jitter, and ``holdMargin``.
    public func callTimeout(blocking blockingTime: Duration) -> Duration {
        let time = self.blockingTime(requested: blockingTime)
        return time + time / Self.jitterFraction + holdMargin
    }
}
