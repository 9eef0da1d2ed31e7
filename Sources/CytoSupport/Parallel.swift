import Dispatch
import Synchronization

/// Called with (finished, total) as work items finish, possibly from several threads
/// at once; implementations must be thread-safe (the progress bars are).
public typealias ProgressHandler = @Sendable (_ done: Int, _ total: Int) -> Void

/// Data-parallel loops over independent work items (decoding images, drawing
/// synthetic cells, hashing files, t-SNE rows).
///
/// Results come back in index order whatever the scheduling, so every caller stays
/// deterministic. The finished-item counter is a `Mutex`, and progress is reported
/// from whichever worker finished the item, so a `ProgressHandler` must be safe to
/// call concurrently.
public enum Parallel {
    /// `body(i)` for every i in 0..<count on all cores, results in index order.
    /// `chunk` items run per task (a few keep dispatch overhead small for cheap items);
    /// progress is reported every `step` items and at the end.
    public static func map<T: Sendable>(
        _ count: Int, chunk: Int = 1, progress: ProgressHandler? = nil,
        step: Int? = nil, _ body: @Sendable (Int) -> T
    ) -> [T] {
        guard count > 0 else { return [] }
        let chunk = max(1, chunk)
        let tasks = (count + chunk - 1) / chunk
        let every = max(1, step ?? max(1, count / 200))
        let results = Mutex([T?](repeating: nil, count: count))
        let done = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: tasks) { t in
            for i in (t * chunk)..<min(count, (t + 1) * chunk) {
                let value = body(i)
                results.withLock { $0[i] = value }
                if let progress {
                    let d = done.withLock { n -> Int in
                        n += 1; return n
                    }
                    if d % every == 0 || d == count { progress(d, count) }
                }
            }
        }
        return results.withLock { $0.map { $0! } }
    }

    /// Runs `body` over `chunks` contiguous, disjoint ranges that split 0..<count,
    /// on all cores, and returns when every range is done.
    ///
    /// This is the inner loop of the CPU backend and of t-SNE: the closures write
    /// through raw pointers into the rows of their own range, which the type system
    /// cannot prove disjoint (so `body` is not `@Sendable`); the split here is what
    /// makes them so. Each index is handled exactly once, so results do not depend
    /// on timing. `concurrentPerform` joins before returning, so `body` never
    /// outlives the call.
    @inline(__always)
    public static func chunked(_ count: Int, chunks: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = max(1, min(chunks, count))
        if chunks == 1 { body(0..<count); return }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: chunks) { k in
                let lo = count * k / chunks, hi = count * (k + 1) / chunks
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// `body(i)` for every i in 0..<count on all cores; see `map`.
    public static func forEach(
        _ count: Int, chunk: Int = 1, progress: ProgressHandler? = nil,
        step: Int? = nil, _ body: @Sendable (Int) -> Void
    ) {
        _ = map(count, chunk: chunk, progress: progress, step: step) { i -> Bool in
            body(i); return true
        }
    }
}

/// A pointer into a buffer that several tasks write at the same time, each into a
/// region no other task touches (image `i` of a batch or cache, row `r` of a
/// matrix).
///
/// It is `Sendable` because disjointness is guaranteed by how the callers index
/// it, which the compiler cannot see; a lock would serialise the writes it exists
/// to parallelise. Every use states its region next to the write. The buffer must
/// outlive the parallel loop (all loops here join before returning).
public struct DisjointWrites<Element>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Element>
    public init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
}

extension String {
    /// The text of a NUL-terminated C character buffer (OpenCL info strings,
    /// library error messages), read up to its first NUL as UTF-8.
    public init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
