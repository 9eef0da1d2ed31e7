import CytoSupport
import Foundation

extension DatasetIndex {
    /// Ids relative to `root` (the part after `root/`), or the path itself outside it:
    /// the stable name of an image in a sweep's folds, near-duplicate groups and records,
    /// whichever folder the data set is read from.
    public static func relativeIDs(_ paths: [String], root: String) -> [String] {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return paths.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
    }
}

/// The one way a data set is read for training, a training run and a sweep alike:
/// index (with its byte-identical dedupe), decode at the model's input size, then find
/// and handle near-duplicate images. Written twice (once per command) the two copies
/// had started to differ in what they reported and in which order.
///
/// Decoded images are held either in memory (`train`, `evaluate`: one pass over a set
/// that fits) or in the checksummed `ImageCache` (`sweep`: every cell reads only its
/// images, whatever the data set's size).
public struct DatasetLoading {
    public enum Storage {
        case memory
        /// `directory` nil: beside the data, or the user cache when the data is read-only.
        case cache(directory: URL?, rebuild: Bool)
    }

    public var path: String
    public var options: DatasetOptions
    public var height: Int
    public var width: Int
    public var fit: FitPolicy = .pad
    public var skipBadImages = false
    public var nearDuplicates: NearDuplicatePolicy = .drop
    public var nearDuplicateParameters = NearDuplicateParameters()
    public var storage: Storage = .memory
    /// Checks the index before anything is decoded (e.g. that a two-class metric has two
    /// classes): a refusal that depends only on the class names comes in a second, not
    /// after minutes of decoding 18,000 TIFFs.
    public var checkIndex: (@Sendable (DatasetIndex) throws -> Void)?

    public init(path: String, options: DatasetOptions, height: Int, width: Int) {
        self.path = path; self.options = options; self.height = height; self.width = width
    }

    /// A data set read by `load`: the images kept, in index order, with where their
    /// pixels are.
    public struct Loaded: Sendable {
        public var index: DatasetIndex
        /// The images kept: readable, and not dropped as near-duplicates.
        public var items: [DatasetItem]
        /// `items`' ids relative to the data folder (`DatasetIndex.relativeIDs`).
        public var ids: [String]
        /// `.memory`: the kept images' pixels, [count, height, width, 3].
        public var pixels: [UInt8]
        /// `.cache`: the cache and, per kept image, its position in the cache.
        public var cache: ImageCache?
        public var cacheIndices: [Int]
        /// What near-duplicate handling did (nil with policy `off`).
        public var nearDuplicates: NearDuplicateSummary?
        public var labels: [Int] { items.map(\.label) }
        public var paths: [String] { items.map(\.path) }
    }

    /// Reads the data set. `note` receives each line to show the user (what was left
    /// out and why, the classes found, the cache used); `progress` the decoding's.
    public func load(note: @escaping (String) -> Void, progress: ProgressHandler? = nil) throws -> Loaded {
        let index = try DatasetIndex.load(path: path, options: options)
        if let d = index.dedup, !d.dropped.isEmpty { note(d.summary) }
        if index.unlabelled > 0, let l = options.labelsFile {
            note("\(l): \(index.unlabelled) images of \(path) are not listed and were left out")
        }
        if let w = index.unnamedNote { note(w) }
        if let w = index.layoutNote { note(w) }
        try checkIndex?(index)
        let start = Date()
        var available: [DatasetItem]
        var pixels: [UInt8] = []
        var decodeReport: LoadReport?
        var cache: ImageCache?
        var cacheIndices: [Int] = []
        switch storage {
        case .memory:
            try Self.requireImageMemory(count: index.items.count, height: height, width: width, what: "decoding \(path)")
            let loaded = try ImageLoader.load(
                index.items, height: height, width: width, fit: fit, skipBad: skipBadImages, progress: progress)
            available = loaded.items
            pixels = loaded.pixels
            decodeReport = loaded.report
        case .cache(let directory, let rebuild):
            let opened = try ImageCache.open(
                index: index, height: height, width: width, fit: fit, directory: directory, skipBad: skipBadImages,
                rebuild: rebuild, progress: progress)
            cache = opened
            cacheIndices = opened.available.indices.filter { opened.available[$0] }
            available = cacheIndices.map { index.items[$0] }
        }
        var summary: NearDuplicateSummary?
        if nearDuplicates != .off {
            let pairs: [NearDuplicatePair]
            if let cache {
                pairs = try cachedPairs(cache, available: cacheIndices, note: note)
            } else {
                pairs = NearDuplicates.pairs(
                    pixels: pixels, count: available.count, height: height, width: width,
                    parameters: nearDuplicateParameters, warning: { note("warning: " + $0) })
            }
            let ids = DatasetIndex.relativeIDs(available.map(\.path), root: index.root)
            let (keep, s) = NearDuplicates.apply(
                policy: nearDuplicates, parameters: nearDuplicateParameters, pairs: pairs, items: available, ids: ids)
            if keep.count < available.count {
                available = keep.map { available[$0] }
                if cache != nil {
                    cacheIndices = keep.map { cacheIndices[$0] }
                } else {
                    let per = height * width * 3
                    var kept: [UInt8] = []
                    kept.reserveCapacity(keep.count * per)
                    for i in keep { kept += pixels[(i * per)..<((i + 1) * per)] }
                    pixels = kept
                }
            }
            note(s.groups.isEmpty ? s.text : s.listing)
            summary = s
        }
        let counts = index.classNames.indices.map { k in available.lazy.filter { $0.label == k }.count }
        note(
            "\(FileSystemPath.visible(path)): \(index.layout.rawValue) layout, \(available.count) images, classes "
                + zip(index.classNames, counts).map { "\(FileSystemPath.visible($0)) \($1)" }.joined(separator: ", "))
        let report: LoadReport?
        if let cache {
            if let n = cache.locationNote { note(n) }
            if let r = cache.rebuildReason { note("rebuilt the cache: \(r)") }
            let unreadable = index.items.count - cache.available.lazy.filter { $0 }.count
            note(
                (cache.wasBuilt
                    ? "decoded into the cache in \(formatDuration(Date().timeIntervalSince(start)))"
                    : "cache is current (every image checked)")
                    + ": \(cache.url.path)" + (unreadable > 0 ? "; \(unreadable) unreadable images skipped" : ""))
            report = cache.report
        } else {
            report = decodeReport
        }
        if let report {
            note(report.summary)
            for w in report.warnings { note("warning: \(FileSystemPath.visible(w))") }
        }
        return Loaded(
            index: index, items: available, ids: DatasetIndex.relativeIDs(available.map(\.path), root: index.root),
            pixels: pixels, cache: cache, cacheIndices: cacheIndices, nearDuplicates: summary)
    }

    /// Refuses, before decoding, a set of images whose decoded pixels cannot fit in host memory.
    public static func requireImageMemory(count: Int, height: Int, width: Int, what: String) throws {
        var need = MemoryNeed(what: "\(what): \(formatThousands(count)) images at \(width)x\(height)")
        need.add("decoded images", count: checkedProduct(count, height, width, 3), elementBytes: 1)
        try need.check(against: MemoryLimit.host())
    }

    /// The near-duplicate pairs among the cache's `available` images (positions in the
    /// cache), re-indexed to positions in `available`. The scan covers the whole cache
    /// and is stored beside it, so a second sweep on the same data does not redo it.
    func cachedPairs(_ cache: ImageCache, available: [Int], note: @escaping (String) -> Void) throws -> [NearDuplicatePair] {
        let (scan, computed) = try NearDuplicateScan.scan(cache: cache, parameters: nearDuplicateParameters) { note($0) }
        if computed {
            note(
                String(
                    format: "near-duplicate scan of %d images: %.1f s, %d candidate pairs compared (stored beside the cache)",
                    cache.count, scan.seconds, scan.compared ?? 0))
        }
        var position: [Int: Int] = [:]
        for (k, i) in available.enumerated() { position[i] = k }
        return scan.pairs.compactMap { p in
            guard let a = position[p.a], let b = position[p.b] else { return nil }
            // Keep how b matched a: the listing and sweep.json name the transform.
            return NearDuplicatePair(a: a, b: b, similarity: p.similarity, orientation: p.orientation, shifted: p.shifted)
        }
    }
}
