import Synchronization

/// A few spare objects kept for reuse, taken and put back without a lock.
///
/// The Codable encoder and decoder keep their per-call state (scratch
/// memory, the container stack, the coding path, map indexes) in a class;
/// making a fresh one per message costs several allocations, which for a
/// small RPC message was most of the encoding's cost. Encoding and decoding
/// never suspend, so at most one object per thread is in use at a time:
/// four slots cover the threads that encode at once on most machines, and
/// when they are all empty a fresh object is made, as before.
final class SpareObjects<Object: AnyObject>: @unchecked Sendable {
    private let first = Atomic<Unmanaged<Object>?>(nil)
    private let second = Atomic<Unmanaged<Object>?>(nil)
    private let third = Atomic<Unmanaged<Object>?>(nil)
    private let fourth = Atomic<Unmanaged<Object>?>(nil)

    init() {}

    /// A spare object, or nil if there is none.
    func take() -> Object? {
        if let object = first.exchange(nil, ordering: .acquiring) { return object.takeRetainedValue() }
        if let object = second.exchange(nil, ordering: .acquiring) { return object.takeRetainedValue() }
        if let object = third.exchange(nil, ordering: .acquiring) { return object.takeRetainedValue() }
        if let object = fourth.exchange(nil, ordering: .acquiring) { return object.takeRetainedValue() }
        return nil
    }

    /// Keeps `object` for reuse if a slot is free. The caller must hold the
    /// only reference to it.
    func put(_ object: Object) {
        let unmanaged = Unmanaged.passRetained(object)
        if first.compareExchange(expected: nil, desired: unmanaged, ordering: .releasing).exchanged { return }
        if second.compareExchange(expected: nil, desired: unmanaged, ordering: .releasing).exchanged { return }
        if third.compareExchange(expected: nil, desired: unmanaged, ordering: .releasing).exchanged { return }
        if fourth.compareExchange(expected: nil, desired: unmanaged, ordering: .releasing).exchanged { return }
        unmanaged.release()
    }
}
