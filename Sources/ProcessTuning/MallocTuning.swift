#if canImport(Glibc)
import CGlibcMalloc
#endif

/// glibc `malloc` settings for processes that send or receive large messages.
///
/// Why: an RPC with a large payload allocates a few buffers of its size per
/// call (the encoded message, the decoded value) and frees them when the call
/// is done. With glibc's defaults, a freed block at the top of a thread's
/// heap is handed back to the kernel, and blocks of 128 KiB or more are
/// `mmap`ed and `munmap`ed one by one. The next call then faults the same
/// memory in again, page by page, zeroed, and every `munmap` makes the other
/// cores flush their TLBs, so large calls spend their time in the kernel
/// (Docs/benchmarks.md, "Large messages"). Go's runtime keeps freed memory
/// for reuse by design; this asks glibc to do the same.
///
/// What it sets:
/// - `M_MMAP_THRESHOLD`, the smallest block given its own mapping;
/// - `M_TRIM_THRESHOLD`, how much free memory the top of a heap may hold
///   before it is handed back;
/// - `M_TOP_PAD`, what a heap keeps at its top when it is trimmed, and adds
///   when it grows.
///
/// Setting any of them turns off glibc's own adjustment of the first two,
/// which otherwise raises them only after the process has freed a large
/// mapped block, and never above 32 MiB and 64 MiB. The defaults are those
/// ceilings, set from the start. The cost is memory a process keeps after a
/// burst: up to `trimThreshold` of free memory per malloc arena (glibc makes
/// at most eight per core, and one per thread that allocates at once), held
/// for the next large message instead of going back to the kernel.
///
/// It changes the whole process, so MuxRPC never calls it on its own: a
/// program calls it once at start (`muxrpc-server`, `muxrpc-client` and
/// `muxrpc-bench` do). The same settings without code:
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864:glibc.malloc.top_pad=1048576`.
public enum MallocTuning {
    /// Default `M_MMAP_THRESHOLD`: 32 MiB, the most glibc accepts on 64-bit systems.
    public static let defaultMmapThreshold = 32 << 20
    /// Limit: the largest `M_MMAP_THRESHOLD` glibc takes on 64-bit systems (half its heap size).
    public static let maxMmapThreshold = 32 << 20
    /// Default `M_TRIM_THRESHOLD`: 64 MiB, twice the mapping threshold, as glibc's own adjustment keeps it.
    public static let defaultTrimThreshold = 64 << 20
    /// Default `M_TOP_PAD`: 1 MiB.
    public static let defaultTopPad = 1 << 20

    /// Applies the settings; returns whether they all took effect: false where
    /// the C library is not glibc or refuses a value. A value out of the
    /// ranges above is refused before any is set.
    @discardableResult
    public static func keepFreedMemoryForReuse(
        mmapThreshold: Int = defaultMmapThreshold,
        trimThreshold: Int = defaultTrimThreshold,
        topPad: Int = defaultTopPad
    ) -> Bool {
        #if canImport(Glibc)
        guard (1...maxMmapThreshold).contains(mmapThreshold), trimThreshold >= 0, topPad >= 0,
            let threshold = Int32(exactly: mmapThreshold), let trim = Int32(exactly: trimThreshold),
            let pad = Int32(exactly: topPad)
        else { return false }
        // mallopt returns 1 on success, 0 on error.
        let thresholdSet = mallopt(M_MMAP_THRESHOLD, threshold) == 1
        let trimSet = mallopt(M_TRIM_THRESHOLD, trim) == 1
        let padSet = mallopt(M_TOP_PAD, pad) == 1
        return thresholdSet && trimSet && padSet
        #else
        return false
        #endif
    }
}
