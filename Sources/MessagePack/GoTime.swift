public import FoundationEssentials

/// A Go `time.Time` as it crosses the wire: the 15-byte form of Go's
/// `Time.MarshalBinary` (16 bytes when the zone offset has seconds), which
/// go-msgpack writes as bytes for every `time.Time` field.
///
/// Layout: version (1 or 2), seconds since January 1 of year 1 UTC
/// (int64), nanoseconds (int32), zone offset in minutes (int16, -1 = UTC),
/// and for version 2 the offset's seconds (1 byte). Go's zero `time.Time`
/// is ``zero``: year 1, UTC.
public struct GoTime: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Seconds from January 1, year 1, 00:00:00 UTC to the Unix epoch.
    static let unixToInternal: Int64 = 62_135_596_800

    /// Seconds since January 1, year 1, 00:00:00 UTC (Go's internal clock).
    public var secondsSinceYearOne: Int64
    /// Nanoseconds within the second, 0...999,999,999.
    public var nanoseconds: Int32
    /// The zone offset east of UTC in seconds, or `nil` for Go's UTC
    /// location (`time.UTC`).
    public var utcOffsetSeconds: Int?

    /// Go's zero `time.Time` (`time.Time{}`): January 1, year 1, UTC.
    public static let zero = GoTime(secondsSinceYearOne: 0, nanoseconds: 0, utcOffsetSeconds: nil)

    /// A time from Go's own fields: seconds since January 1 of year 1 UTC, the
    /// nanoseconds within that second (0...999,999,999), and the zone offset in
    /// seconds (`nil`: UTC).
    public init(secondsSinceYearOne: Int64, nanoseconds: Int32, utcOffsetSeconds: Int? = nil) {
        precondition((0..<1_000_000_000).contains(nanoseconds), "nanoseconds must be within one second")
        self.secondsSinceYearOne = secondsSinceYearOne
        self.nanoseconds = nanoseconds
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// A time from Unix seconds and nanoseconds, in UTC unless an offset is given.
    public init(unixSeconds: Int64, nanoseconds: Int32 = 0, utcOffsetSeconds: Int? = nil) {
        self.init(secondsSinceYearOne: unixSeconds + Self.unixToInternal, nanoseconds: nanoseconds, utcOffsetSeconds: utcOffsetSeconds)
    }

    /// The same instant as `date`, in UTC, to the nanosecond `Date` can hold.
    public init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        var seconds = interval.rounded(.down)
        var nanoseconds = ((interval - seconds) * 1e9).rounded()
        if nanoseconds >= 1e9 {
            seconds += 1
            nanoseconds -= 1e9
        }
        self.init(unixSeconds: Int64(seconds), nanoseconds: Int32(nanoseconds))
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    public var unixSeconds: Int64 { secondsSinceYearOne - Self.unixToInternal }

    /// The instant as a `Date` (which keeps about microsecond precision).
    public var date: Date {
        Date(timeIntervalSince1970: Double(unixSeconds) + Double(nanoseconds) / 1e9)
    }

    /// True for Go's zero time, which Go code tests with `t.IsZero()`.
    public var isZero: Bool { secondsSinceYearOne == 0 && nanoseconds == 0 }

    /// Go's `MarshalBinary` bytes.
    public func marshalBinary() -> [UInt8] {
        var offsetMinutes: Int16 = -1
        var offsetSeconds: UInt8?
        if let offset = utcOffsetSeconds {
            offsetMinutes = Int16(clamping: offset / 60)
            if offset % 60 != 0 {
                offsetSeconds = UInt8(truncatingIfNeeded: offset % 60)
            }
        }
        var bytes: [UInt8] = [offsetSeconds == nil ? 1 : 2]
        bytes.reserveCapacity(16)
        withUnsafeBytes(of: secondsSinceYearOne.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: nanoseconds.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: offsetMinutes.bigEndian) { bytes.append(contentsOf: $0) }
        if let offsetSeconds { bytes.append(offsetSeconds) }
        return bytes
    }

    /// Parses Go's `MarshalBinary` bytes (version 1 or 2).
    public init(marshaledBinary bytes: some Collection<UInt8>) throws(MessagePackError) {
        let bytes = Array(bytes)
        guard let version = bytes.first, version == 1 || version == 2 else {
            throw MessagePackError(.invalidValue("Go time.Time: unsupported version \(bytes.first.map(String.init) ?? "none")"), offset: nil)
        }
        let expected = version == 1 ? 15 : 16
        guard bytes.count == expected else {
            throw MessagePackError(.invalidValue("Go time.Time: \(bytes.count) bytes, expected \(expected)"), offset: nil)
        }
        func load<T: FixedWidthInteger>(_: T.Type, at index: Int) -> T {
            bytes[index..<(index + MemoryLayout<T>.size)].reduce(T.zero) { $0 << 8 | T(truncatingIfNeeded: $1) }
        }
        let seconds = load(Int64.self, at: 1)
        let nanoseconds = load(Int32.self, at: 9)
        guard (0..<1_000_000_000).contains(nanoseconds) else {
            throw MessagePackError(.invalidValue("Go time.Time: nanoseconds \(nanoseconds) out of range"), offset: nil)
        }
        var offset = Int(load(Int16.self, at: 13)) * 60
        if version == 2 { offset += Int(bytes[15]) }
        self.init(secondsSinceYearOne: seconds, nanoseconds: nanoseconds, utcOffsetSeconds: offset == -60 ? nil : offset)
    }

    /// Reads the bytes of Go's `MarshalBinary` form.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let bytes = try container.decode([UInt8].self)
        do {
            try self.init(marshaledBinary: bytes)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    /// Writes the value as Go writes it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(marshalBinary())
    }

    /// A readable form, for logs and test failures.
    public var description: String {
        "GoTime(unixSeconds: \(unixSeconds), nanoseconds: \(nanoseconds)\(utcOffsetSeconds.map { ", utcOffsetSeconds: \($0)" } ?? ""))"
    }
}

/// A Go `time.Duration`: a signed count of nanoseconds, on the wire as an
/// int64.
public struct GoDuration: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The duration in nanoseconds, as Go's `time.Duration` holds it.
    public var nanoseconds: Int64

    /// A duration of `nanoseconds` nanoseconds.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// `duration` in nanoseconds, saturating at Go's limits (about ±292 years).
    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow || overflow2 {
            self.nanoseconds = seconds < 0 ? .min : .max
        } else {
            self.nanoseconds = total
        }
    }

    /// The same span as a Swift `Duration`.
    public var duration: Duration { .nanoseconds(nanoseconds) }

    /// Orders durations by length.
    public static func < (lhs: GoDuration, rhs: GoDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Reads the bytes of Go's `MarshalBinary` form.
    public init(from decoder: any Decoder) throws {
        self.nanoseconds = try decoder.singleValueContainer().decode(Int64.self)
    }

    /// Writes the value as Go writes it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(nanoseconds)
    }

    /// A readable form, for logs and test failures.
    public var description: String { "\(duration)" }
}

extension MessagePackTimestamp {
    /// The same instant as `date`, to the nanosecond `Date` can hold.
    public init(_ date: Date) {
        let time = GoTime(date)
        self.init(seconds: time.unixSeconds, nanoseconds: UInt32(time.nanoseconds))
    }

    /// The instant as a `Date`.
    public var date: Date {
        Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9)
    }
}
