public import NIOCore

/// Which end of the connection a session is. Clients open odd stream ids from 1, servers even
/// ids from 2, so both sides can open streams without colliding.
public enum YamuxRole: Sendable, Hashable {
    /// The dialling end: opens odd stream ids.
    case client
    /// The accepting end: opens even stream ids.
    case server

    var firstStreamID: UInt32 { self == .client ? 1 : 2 }
}

/// Every tunable of a yamux session in one place. Defaults match hashicorp/yamux where it has
/// the setting; the limits it lacks are named here with conservative defaults.
public struct YamuxConfiguration: Sendable {
    /// The window every stream starts with, in each direction. Fixed by the protocol.
    public static let initialStreamWindow: UInt32 = 256 * 1024

    /// Inbound streams that may wait for the application to accept them. Beyond it, new
    /// streams are refused with RST. Also caps our own un-ACKed outbound opens, as hashicorp's
    /// does (further opens wait). Default 256.
    public var acceptBacklog: Int = 256

    /// Send a ping every `keepAliveInterval` and close the session if it is not answered
    /// within `connectionWriteTimeout`. Default on, 30 s.
    public var enableKeepAlive: Bool = true
    /// How often a keepalive ping is sent while ``enableKeepAlive`` is on. Default 30 s.
    public var keepAliveInterval: Duration = .seconds(30)

    /// How long the connection may stay unwritable while we have frames queued, and how long
    /// a ping may go unanswered, before we give up. Default 10 s.
    public var connectionWriteTimeout: Duration = .seconds(10)

    /// The receive window we advertise per stream (on SYN/ACK, as a delta above 256 KiB).
    /// Must be at least 256 KiB. Default 256 KiB (hashicorp's default).
    public var maxStreamWindowSize: UInt32 = YamuxConfiguration.initialStreamWindow

    /// How long an outbound stream may wait for the peer's ACK before the session is closed
    /// (hashicorp's StreamOpenTimeout). Default 75 s.
    public var streamOpenTimeout: Duration = .seconds(75)

    /// After we close a stream, how long the peer has to close its side before we reset the
    /// stream and forget it (hashicorp's StreamCloseTimeout). Default 5 min.
    public var streamCloseTimeout: Duration = .seconds(300)

    /// Limit: streams open at once on a session, both directions. Inbound streams beyond it are
    /// refused with RST; local opens fail with `YamuxError.Code.tooManyStreams`. Default 4096.
    public var maxConcurrentStreams: Int = 4096

    /// Limit: control frames (ping replies, refusal RSTs) provoked by the peer that we hold
    /// while the connection is not writable. A peer that floods pings but never reads would
    /// otherwise make us buffer replies forever; beyond this the session is closed.
    /// Default 10,000 (about 120 KB).
    public var maxBufferedControlFrames: Int = 10_000

    /// Grow a stream's receive window beyond `maxStreamWindowSize` when it is consumed within
    /// a few round trips, i.e. when the window, not the reader, limits throughput (the
    /// bandwidth-delay product needs more). Default on.
    public var enableWindowAutoTuning: Bool = true
    /// Limit: the largest receive window auto-tuning may give one stream. Default 16 MiB.
    public var maxAutoTunedStreamWindow: UInt32 = 16 * 1024 * 1024
    /// Limit: the total window auto-tuning may add across all streams of a session, so many
    /// fast streams cannot commit unbounded memory. Default 64 MiB.
    public var maxAutoTunedSessionWindow: Int = 64 * 1024 * 1024

    /// Writability watermarks of each stream channel: above `high` buffered outbound bytes the
    /// stream reports unwritable until it drains below `low`. Default 32 KiB / 64 KiB.
    public var streamWriteBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark = .init(
        low: 32 * 1024,
        high: 64 * 1024
    )

    /// The most frames gathered for one early flush (see ``flushesEarly``); 1 flushes every
    /// frame alone. Default 16. Not a user setting: MuxRPC's own programs, tests and fuzz
    /// targets vary it to measure and exercise the flush rule.
    package var maxFramesPerFlush: Int = 16

    /// Whether the session flushes before the end of a turn of the event loop. Default on.
    ///
    /// With many streams writing in one turn of the event loop (N RPC calls answered, or sent,
    /// in one batch), one flush at the end would make the peer wait for the whole batch;
    /// flushing after half of it lets the peer start on the first ones while this side still
    /// works on the rest, so both ends work at once instead of in turn. So the session flushes
    /// after half as many gathered frames as it has busy streams (streams that carried data in
    /// the last few dozen turns of the loop), and after 16 at most (Docs/benchmarks.md, "Busy
    /// polling and early flushes"). Off, every turn ends in one flush: the fewest `writev`
    /// calls, which suits two ends that share one thread, where nothing can run at once anyway.
    public var flushesEarly = true

    /// Limit: bytes received on a session's streams and not yet read by the application,
    /// over all its streams. Each stream's share is bounded by its receive window; this
    /// bounds the sum, which would otherwise grow with the number of streams a peer fills
    /// while the application reads few of them. Past it the session sends GoAway(internal
    /// error) and closes, its streams failing with `YamuxError.Code.unreadLimitExceeded`.
    /// It sits above what auto-tuned windows can commit (``maxAutoTunedSessionWindow``).
    /// (Bytes written and not yet sent are bounded per stream by its writability, for
    /// writers that respect it, and by the peer's window and the connection's writability
    /// beyond that; ``YamuxSessionStatistics/bufferedBytes`` shows both.) Default 128 MiB.
    public var maxSessionUnreadBytes: Int = 128 * 1024 * 1024

    /// Limit: once part of a frame has arrived (some of its header, or a data frame's header
    /// with not all of its payload), the rest must arrive within this time, or the session
    /// sends GoAway(protocol error) and closes with `YamuxError.Code.frameReadTimeout`. A
    /// peer that sends half a frame and then nothing would otherwise hold the connection
    /// until keepalive notices (its answers to our pings would be taken for the frame's
    /// bytes), and forever with keepalive off. At 30 s, a 256 KiB frame (the default
    /// window) needs about 9 KB/s. hashicorp/yamux has no such limit. Default 30 s.
    public var frameReadTimeout: Duration = .seconds(30)

    /// A configuration with every default (hashicorp/yamux's where it has the setting).
    public init() {}

    /// The defaults of hashicorp/yamux's `DefaultConfig()` plus our limits.
    public static var `default`: YamuxConfiguration { YamuxConfiguration() }

    /// Throws a ``YamuxError`` with code ``YamuxError/Code/invalidConfiguration``
    /// if a value makes no sense (as hashicorp's VerifyConfig does).
    public func validate() throws(YamuxError) {
        func bad(_ why: String) -> YamuxError { .invalidConfiguration(why) }
        if self.acceptBacklog <= 0 { throw bad("acceptBacklog must be positive") }
        if self.enableKeepAlive && self.keepAliveInterval <= .zero { throw bad("keepAliveInterval must be positive") }
        if self.maxStreamWindowSize < Self.initialStreamWindow {
            throw bad("maxStreamWindowSize must be at least \(Self.initialStreamWindow)")
        }
        if self.maxConcurrentStreams <= 0 { throw bad("maxConcurrentStreams must be positive") }
        if self.maxBufferedControlFrames <= 0 { throw bad("maxBufferedControlFrames must be positive") }
        if self.connectionWriteTimeout <= .zero { throw bad("connectionWriteTimeout must be positive") }
        if self.maxFramesPerFlush <= 0 { throw bad("maxFramesPerFlush must be positive") }
        if self.maxSessionUnreadBytes <= 0 { throw bad("maxSessionUnreadBytes must be positive") }
        if self.frameReadTimeout <= .zero { throw bad("frameReadTimeout must be positive") }
    }
}
