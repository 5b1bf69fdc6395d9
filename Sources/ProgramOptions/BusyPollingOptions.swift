public import ArgumentParser
public import MuxRPC

/// `--busy-polling` and `--busy-poll-microseconds`, as `muxrpc-server`,
/// `muxrpc-client` and `muxrpc-bench` take them: how a program's event
/// loops poll after their connections' traffic. The default is the
/// library's, adaptive.
public struct BusyPollingOptions: ParsableArguments, Sendable {
    /// The poller the flags choose.
    public enum Mode: String, ExpressibleByArgument, CaseIterable, Sendable {
        case adaptive, fixed, off
    }

    @Option(help: "How the event loops poll after their connections' traffic: adaptive (spin only while traffic is dense enough to pay back), fixed (spin after every traffic for the window) or off (sleep at once). Default: adaptive, as in MuxRPC's library (Docs/tuning.md).")
    public var busyPolling: Mode = .adaptive

    @Option(help: "The busy polling window in microseconds (default: 100 adaptive, 50 fixed); 0 turns busy polling off.")
    public var busyPollMicroseconds: Int?

    public init() {}

    /// The setting the flags ask for.
    public var setting: BusyPolling {
        let window = busyPollMicroseconds.map { Duration.microseconds($0) }
        switch busyPolling {
        case .adaptive: return BusyPolling(window: window ?? BusyPolling.adaptive.window, isAdaptive: true)
        case .fixed: return BusyPolling(window: window ?? .microseconds(50), isAdaptive: false)
        case .off: return .disabled
        }
    }

    /// One `BusyPollers` for everything the program runs on NIO's shared
    /// group (both ends, in the benchmarks), or nil when polling is off.
    /// Throws when the window is out of range.
    public func makePollers() throws -> BusyPollers? {
        let setting = self.setting
        try setting.validate()
        return setting.isEnabled ? BusyPollers(setting) : nil
    }
}
