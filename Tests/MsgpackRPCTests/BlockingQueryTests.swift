import MsgpackRPC
import Testing

/// Which calls are blocking queries, how long they may block and the
/// deadline a client gives them: Consul's rules, without sockets.
@Suite("Blocking queries: detection and deadlines")
struct BlockingQueryTests {
    struct WatchArgs: Codable, RPCBlockingQueryArguments {
        var Key = "k"
        var MinQueryIndex: UInt64
        var MaxQueryTime: Int64

        var minQueryIndex: UInt64 { MinQueryIndex }
        var maxQueryTimeNanoseconds: Int64 { MaxQueryTime }
    }

    struct PlainArgs: Codable {
        var MinQueryIndex: UInt64 = 7
    }

    static let policy = RPCBlockingQueryPolicy()

    @Test func defaultsAreConsuls() {
        #expect(Self.policy.maxQueryTime == .seconds(600))
        #expect(Self.policy.defaultQueryTime == .seconds(300))
        #expect(Self.policy.holdMargin == .seconds(7))
        #expect(RPCBlockingQueryPolicy.jitterFraction == 16)
        #expect(Self.policy.problem == nil)
    }

    @Test func argumentsThatAdoptTheProtocolAreDetected() {
        let args = WatchArgs(MinQueryIndex: 42, MaxQueryTime: 60_000_000_000)
        #expect(Self.policy.blockingTime(of: args, options: .defaults) == .seconds(60))
    }

    @Test func anIndexOfZeroIsNotABlockingQuery() {
        // Consul's server answers at once when MinQueryIndex is 0, whatever
        // MaxQueryTime says; so does its client's deadline.
        let args = WatchArgs(MinQueryIndex: 0, MaxQueryTime: 60_000_000_000)
        #expect(Self.policy.blockingTime(of: args, options: .defaults) == nil)
    }

    @Test func argumentsThatDoNotAdoptTheProtocolAreNotBlocking() {
        #expect(Self.policy.blockingTime(of: PlainArgs(), options: .defaults) == nil)
        #expect(Self.policy.blockingTime(of: RPCEmpty(), options: .defaults) == nil)
    }

    @Test func theOptionWinsOverTheArguments() {
        let args = WatchArgs(MinQueryIndex: 42, MaxQueryTime: 60_000_000_000)
        let options = RPCCallOptions(blockingQueryTime: .seconds(20))
        #expect(Self.policy.blockingTime(of: args, options: options) == .seconds(20))
        #expect(Self.policy.blockingTime(of: PlainArgs(), options: options) == .seconds(20))
    }

    @Test func noMaxQueryTimeMeansTheDefault() {
        #expect(Self.policy.blockingTime(minQueryIndex: 1, maxQueryTimeNanoseconds: 0) == .seconds(300))
        #expect(Self.policy.blockingTime(requested: .zero) == .seconds(300))
    }

    @Test("absurd MaxQueryTime values are capped, not trusted", arguments: [
        (Int64.max, Duration.seconds(600)),
        (Int64(700) * 1_000_000_000, .seconds(600)),
        (Int64(600) * 1_000_000_000 + 1, .seconds(600)),
        (-1, .seconds(300)),
        (Int64.min, .seconds(300)),
        (1, .nanoseconds(1)),
    ])
    func hostileValuesAreCapped(nanoseconds: Int64, expected: Duration) {
        let time = Self.policy.blockingTime(minQueryIndex: UInt64.max, maxQueryTimeNanoseconds: nanoseconds)
        #expect(time == expected)
        let timeout = Self.policy.callTimeout(blocking: time!)
        #expect(timeout <= .seconds(600) + .seconds(600) / 16 + .seconds(7))
        #expect(timeout > .zero)
    }

    @Test func anAbsurdOptionIsCappedToo() {
        #expect(Self.policy.blockingTime(requested: .seconds(Int64.max)) == .seconds(600))
        #expect(Self.policy.blockingTime(requested: .seconds(-5)) == .seconds(300))
        #expect(Self.policy.callTimeout(blocking: .seconds(Int64.max)) == .seconds(600 + 37.5 + 7))
        #expect(Self.policy.callTimeout(blocking: .seconds(-5)) == .seconds(300 + 18.75 + 7))
    }

    @Test func theDeadlineIsTheTimeItsJitterAndTheHoldMargin() {
        // 60 s + 60/16 s + 7 s
        #expect(Self.policy.callTimeout(blocking: .seconds(60)) == .milliseconds(70_750))
        let custom = RPCBlockingQueryPolicy(maxQueryTime: .seconds(32), defaultQueryTime: .seconds(16), holdMargin: .seconds(1))
        #expect(custom.callTimeout(blocking: .seconds(16)) == .seconds(18))
        #expect(custom.callTimeout(blocking: .seconds(64)) == .seconds(35))
        #expect(custom.callTimeout(blocking: .zero) == .seconds(18))
    }

    @Test func settingsThatCannotWorkAreNamed() {
        #expect(RPCBlockingQueryPolicy(maxQueryTime: .zero).problem != nil)
        #expect(RPCBlockingQueryPolicy(maxQueryTime: .seconds(10), defaultQueryTime: .seconds(20)).problem != nil)
        #expect(RPCBlockingQueryPolicy(defaultQueryTime: .zero).problem != nil)
        #expect(RPCBlockingQueryPolicy(holdMargin: .seconds(-1)).problem != nil)
        #expect(RPCBlockingQueryPolicy(holdMargin: .zero).problem == nil)
    }
}
