import Foundation

/// What a backend can still allocate: in all, and (OpenCL) in one buffer.
public struct MemoryLimit: Sendable, Equatable, CustomStringConvertible {
    /// Bytes that may still be allocated in all.
    public var availableBytes: Int
    /// The largest single allocation, when the device has one (OpenCL's max alloc).
    public var maxBufferBytes: Int?
    /// Where the figure comes from, for messages ("MemAvailable in /proc/meminfo").
    public var source: String

    public init(availableBytes: Int, maxBufferBytes: Int? = nil, source: String) {
        self.availableBytes = availableBytes; self.maxBufferBytes = maxBufferBytes; self.source = source
    }

    public var description: String {
        "\(formatByteSize(availableBytes)) available (\(source))"
            + (maxBufferBytes.map { ", at most \(formatByteSize($0)) per buffer" } ?? "")
    }

    /// Host memory that can be allocated without swapping: `MemAvailable` of
    /// /proc/meminfo (else free physical pages from sysconf), or less when the process
    /// runs in a memory-limited cgroup (a Slurm job, a container), whose limit is the
    /// one that kills it; nil when nothing is known.
    public static func host() -> MemoryLimit? {
        var best: MemoryLimit?
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            for line in TextFile.lines(text).map(\.text) where line.hasPrefix("MemAvailable:") {
                let f = line.split(separator: " ")
                if f.count >= 2, let kib = Int(f[1]) {
                    best = MemoryLimit(availableBytes: kib * 1024, source: "host memory, MemAvailable in /proc/meminfo")
                }
            }
        }
        if best == nil {
            let pages = sysconf(Int32(_SC_AVPHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
            if pages > 0, size > 0 {
                let (b, o) = pages.multipliedReportingOverflow(by: size)
                best = MemoryLimit(availableBytes: o ? Int.max : b, source: "host memory, free physical pages")
            }
        }
        if let c = cgroupLimit(), c.availableBytes < best?.availableBytes ?? .max { best = c }
        return best
    }

    /// Room left under the process's cgroup memory limit (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`), nil when there is no limit or it cannot be read.
    static func cgroupLimit() -> MemoryLimit? {
        func number(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var candidates: [(limit: String, usage: String)] = []
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = TextFile.lines(text).map(\.text).first(where: { $0.hasPrefix("0::") })
        {
            let path = String(line.dropFirst(3))
            candidates.append(("/sys/fs/cgroup\(path)/memory.max", "/sys/fs/cgroup\(path)/memory.current"))
        }
        candidates.append(("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"))
        candidates.append(("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        for c in candidates {
            // "max" (v2) or a value near Int.max (v1) means no limit.
            guard let limit = number(c.limit), limit < 1 << 60 else { continue }
            let used = number(c.usage) ?? 0
            return MemoryLimit(availableBytes: max(0, limit - used), source: "cgroup memory limit \(formatByteSize(limit)) in \(c.limit)")
        }
        return nil
    }
}

/// The memory a piece of work needs, computed before anything is allocated, so that a
/// run that cannot fit is refused with the figure and the limit instead of being
/// killed (or swapping for hours) half-way. Sizes are summed with overflow checks: a
/// size too large for an `Int` is refused the same way.
public struct MemoryNeed: Sendable, Equatable {
    /// What needs it, for the message ("the network at batch 32, input 257x257").
    public var what: String
    /// Total bytes; nil when the total overflows.
    public var bytes: Int?
    /// The largest single buffer, for devices with a per-buffer limit.
    public var largest: (label: String, bytes: Int)?

    public static func == (a: MemoryNeed, b: MemoryNeed) -> Bool {
        a.what == b.what && a.bytes == b.bytes && a.largest?.label == b.largest?.label && a.largest?.bytes == b.largest?.bytes
    }

    public init(what: String) { self.what = what; bytes = 0 }

    /// Adds a buffer of `count` elements of `elementBytes` each (nil count: overflowed).
    public mutating func add(_ label: String, count: Int?, elementBytes: Int = 4) {
        guard let total = bytes, let count, count >= 0 else { bytes = nil; return }
        let (b, o1) = count.multipliedReportingOverflow(by: elementBytes)
        let (t, o2) = total.addingReportingOverflow(b)
        guard !o1, !o2 else { bytes = nil; return }
        bytes = t
        if b > (largest?.bytes ?? -1) { largest = (label, b) }
    }

    /// Throws when the need exceeds `limit` (or overflowed); does nothing when no limit is known.
    public func check(against limit: MemoryLimit?) throws {
        guard let bytes else {
            throw CytoError.outOfMemory("\(what) needs more memory than can be counted (the sizes overflow)")
        }
        guard let limit else { return }
        if bytes > limit.availableBytes {
            throw CytoError.outOfMemory("\(what) needs \(formatByteSize(bytes)), but only \(limit); use a smaller batch or input size")
        }
        if let maxBuffer = limit.maxBufferBytes, let l = largest, l.bytes > maxBuffer {
            throw CytoError.outOfMemory(
                "\(what) needs a buffer of \(formatByteSize(l.bytes)) (\(l.label)), larger than the device's limit of \(formatByteSize(maxBuffer)) per buffer (\(limit.source)); use a smaller batch or input size"
            )
        }
    }
}

/// The product of `factors`, or nil when it overflows `Int` (or a factor is negative).
public func checkedProduct(_ factors: Int...) -> Int? { checkedProduct(factors) }

/// `1.5 GiB (1610612736 B)`: binary units, and the exact count to compare with other tools.
public func formatByteSize(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u]) + " (\(n) B)"
}

public func checkedProduct(_ factors: [Int]) -> Int? {
    var p = 1
    for f in factors {
        guard f >= 0 else { return nil }
        let (m, o) = p.multipliedReportingOverflow(by: f)
        if o { return nil }
        p = m
    }
    return p
}
