/// How the targets that feed bytes in pieces read a fuzz input.
///
///     byte 0        mode: each target gives its bits a meaning
///     byte 1        n: the number of control pairs, 1 + byte % 8
///     2n bytes      control pairs (size, action), used in turn, over and over
///     the rest      payload: the bytes fed to the code under test
///
/// Piece `i` of the payload is `1 + size` bytes long (1 to 255); a size of
/// 255 takes all that is left, and so does piece 64, so that an input costs
/// at most 64 rounds of the code under test. A short input reads its missing
/// bytes as 0.
/// After each piece a target may do something chosen by that pair's action.
public struct FuzzInput {
    public let mode: UInt8
    /// The most pieces an input is cut into.
    public static let maxPieces = 64
    public let payload: UnsafeRawBufferPointer
    private let control: UnsafeRawBufferPointer

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        let all = UnsafeRawBufferPointer(start: start, count: count)
        mode = count > 0 ? all[0] : 0
        let pairs = 1 + Int(count > 1 ? all[1] : 0) % 8
        let controlEnd = min(count, 2 + 2 * pairs)
        control = count > 2 ? UnsafeRawBufferPointer(rebasing: all[2..<controlEnd]) : UnsafeRawBufferPointer(start: nil, count: 0)
        payload = UnsafeRawBufferPointer(rebasing: all[controlEnd...])
    }

    /// The size and action bytes of control pair `index` (cycling).
    private func pair(_ index: Int) -> (size: UInt8, action: UInt8) {
        let pairs = max(1, control.count / 2)
        let at = (index % pairs) * 2
        let size = at < control.count ? control[at] : 0
        let action = at + 1 < control.count ? control[at + 1] : 0
        return (size, action)
    }

    /// Calls `body` with each piece of the payload in order, with the action
    /// byte of the pair that sized it. At least one call, even for an empty
    /// payload (with an empty piece).
    public func forEachPiece(_ body: (_ piece: UnsafeRawBufferPointer, _ action: UInt8) throws -> Void) rethrows {
        var offset = 0
        var index = 0
        repeat {
            let (size, action) = pair(index)
            let rest = payload.count - offset
            let length = size == 255 || index == Self.maxPieces - 1 ? rest : min(Int(size) + 1, rest)
            try body(UnsafeRawBufferPointer(rebasing: payload[offset..<(offset + length)]), action)
            offset += length
            index += 1
        } while offset < payload.count
    }
}

/// Stops the fuzzer with a message: a broken invariant is a finding.
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        fatalError("fuzz invariant broken: \(message())", file: file, line: line)
    }
}
