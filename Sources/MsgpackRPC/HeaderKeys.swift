/// The map keys of net/rpc's headers, and of our extensions, as raw UTF-8.
///
/// Header keys are matched as bytes, never turned into `String`s: a header
/// is read on every call, and this keeps reading it free of allocations.
enum HeaderKey {
    case serviceMethod, seq, error, deadline, traceParent, traceState, unknown

    static var serviceMethodBytes: UnsafeRawBufferPointer { bytes("ServiceMethod") }
    static var seqBytes: UnsafeRawBufferPointer { bytes("Seq") }
    static var errorBytes: UnsafeRawBufferPointer { bytes("Error") }
    // Extensions beyond Go's net/rpc. Go decodes headers into rpc.Request,
    // whose decoder skips keys it has no field for, so Go servers ignore these.
    static var deadlineBytes: UnsafeRawBufferPointer { bytes("Deadline") }
    static var traceParentBytes: UnsafeRawBufferPointer { bytes("Traceparent") }
    static var traceStateBytes: UnsafeRawBufferPointer { bytes("Tracestate") }

    /// Static strings live for the whole program, so their bytes may be kept.
    /// (Computed rather than stored: a stored global pointer is not Sendable,
    /// and these fold to constants anyway.)
    private static func bytes(_ string: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount)
    }

    /// Which key `bytes` spells.
    init(_ bytes: UnsafeRawBufferPointer) {
        // Dispatch on length first: the known keys all differ in length
        // except Traceparent/Tracestate (11 vs 10) and Seq/Error (3 vs 5).
        switch bytes.count {
        case 3: self = bytes.elementsEqual(HeaderKey.seqBytes) ? .seq : .unknown
        case 5: self = bytes.elementsEqual(HeaderKey.errorBytes) ? .error : .unknown
        case 8: self = bytes.elementsEqual(HeaderKey.deadlineBytes) ? .deadline : .unknown
        case 10: self = bytes.elementsEqual(HeaderKey.traceStateBytes) ? .traceState : .unknown
        case 11: self = bytes.elementsEqual(HeaderKey.traceParentBytes) ? .traceParent : .unknown
        case 13: self = bytes.elementsEqual(HeaderKey.serviceMethodBytes) ? .serviceMethod : .unknown
        default: self = .unknown
        }
    }
}
