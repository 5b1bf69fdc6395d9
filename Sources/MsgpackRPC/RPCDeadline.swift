#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import NIOCore

/// An absolute point in wall-clock time, in nanoseconds since the Unix epoch.
///
/// This is what travels in the request header's `Deadline` key: an absolute
/// time survives queueing and retries, where a relative timeout would have to
/// be recomputed at every hop. The price is that the two machines' clocks must
/// roughly agree, as they must for TLS anyway.
public struct RPCDeadline: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var unixNanoseconds: Int64

    /// The moment `unixNanoseconds` nanoseconds after the Unix epoch.
    public init(unixNanoseconds: Int64) {
        self.unixNanoseconds = unixNanoseconds
    }

    /// The current wall-clock time.
    public static var now: RPCDeadline {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return RPCDeadline(unixNanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// The deadline `duration` from now.
    public static func after(_ duration: Duration) -> RPCDeadline {
        now.advanced(by: duration)
    }

    /// This deadline moved by `duration` (saturating rather than overflowing).
    public func advanced(by duration: Duration) -> RPCDeadline {
        let (result, overflow) = unixNanoseconds.addingReportingOverflow(duration.nanosecondsClamped)
        if overflow { return RPCDeadline(unixNanoseconds: duration > .zero ? .max : .min) }
        return RPCDeadline(unixNanoseconds: result)
    }

    /// Time left until the deadline (negative once it has passed).
    public var timeRemaining: Duration {
        let (difference, overflow) = unixNanoseconds.subtractingReportingOverflow(RPCDeadline.now.unixNanoseconds)
        return .nanoseconds(overflow ? (unixNanoseconds > 0 ? Int64.max : Int64.min) : difference)
    }

    /// Whether the deadline has passed.
    public var hasPassed: Bool { RPCDeadline.now >= self }

    /// The same moment on NIO's monotonic clock, for scheduling timers.
    public var nioDeadline: NIODeadline {
        let remaining = timeRemaining.nanosecondsClamped
        return remaining <= 0 ? .now() : .now() + .nanoseconds(remaining)
    }

    /// Whether `lhs` comes before `rhs`.
    public static func < (lhs: RPCDeadline, rhs: RPCDeadline) -> Bool {
        lhs.unixNanoseconds < rhs.unixNanoseconds
    }

    /// The deadline in Unix nanoseconds, for logs.
    public var description: String { "RPCDeadline(unix ns \(unixNanoseconds))" }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64`.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (secondsNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds > 0 ? .max : .min }
        let (total, overflow2) = secondsNanos.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds > 0 ? .max : .min }
        return total
    }
}
