import CytoCore
import CytoData
import CytoTrain
import Foundation

/// A data set ready for a sweep: labels and a stable id (path relative to the data
/// root) per image, and the pixels either in memory or in an `ImageCache`.
/// With a cache nothing is decoded twice and only the images a cell asks for are copied
/// out (`images(_:)`), so memory stays bounded whatever the data set's size.
public struct SweepData: Sendable {
    public var geometry: ImageGeometry
    public var labels: [Int]
    public var ids: [String]
    public var paths: [String]
    public var classNames: [String]
    /// Where the data came from (for the manifest and messages).
    public var path: String
    /// Near-duplicate groups found and what was done with them (nil: not looked for).
    /// With policy `group` the sweep's folds keep each group together.
    public var nearDuplicates: NearDuplicateSummary?
    /// The id groups the fold assignment must keep in one fold.
    public var foldGroups: [[String]] {
        guard let nd = nearDuplicates, nd.policy == .group else { return [] }
        return nd.groups.map(\.members)
    }
    private enum Source { case memory([UInt8]), cache(ImageCache, [Int]) }
    private let source: Source

    public var count: Int { labels.count }
    /// True when the pixels come from a cache file.
    public var isCached: Bool { if case .cache = source { return true } else { return false } }

    /// Decoded images in memory (small data sets, tests).
    public init(images: LabeledImages, ids: [String], classNames: [String], path: String) {
        precondition(ids.count == images.count)
        geometry = images.geometry; labels = images.labels; paths = images.paths
        self.ids = ids; self.classNames = classNames; self.path = path
        source = .memory(images.pixels)
    }

    /// Images in a cache: image `i` of the sweep is `cacheIndices[i]` of the cache (the
    /// cache may hold images left out, e.g. unreadable ones skipped).
    public init(
        cache: ImageCache, cacheIndices: [Int], labels: [Int], paths: [String], ids: [String],
        classNames: [String], path: String
    ) {
        precondition(cacheIndices.count == labels.count && ids.count == labels.count && paths.count == labels.count)
        geometry = ImageGeometry(height: cache.height, width: cache.width)
        self.labels = labels; self.paths = paths; self.ids = ids; self.classNames = classNames; self.path = path
        source = .cache(cache, cacheIndices)
    }

    /// The images `indices` (into this data), copied into a new set in that order.
    /// Cached images are read with `ImageCache.read`, which checks each against its
    /// checksum and throws when the cache was damaged or truncated since it was opened.
    public func images(_ indices: [Int]) throws -> LabeledImages {
        let n = geometry.pixelsPerImage
        var px = [UInt8](repeating: 0, count: indices.count * n)
        try px.withUnsafeMutableBufferPointer { dst in
            switch source {
            case .memory(let all):
                all.withUnsafeBufferPointer { src in
                    for (k, i) in indices.enumerated() { (dst.baseAddress! + k * n).update(from: src.baseAddress! + i * n, count: n) }
                }
            case .cache(let cache, let map):
                for (k, i) in indices.enumerated() { try cache.read(map[i], into: dst.baseAddress! + k * n) }
            }
        }
        return LabeledImages(geometry: geometry, pixels: px, labels: indices.map { labels[$0] }, paths: indices.map { paths[$0] })
    }

    /// One checksum per image of its decoded pixels: the cache's stored checksums (no
    /// pixel is read again), or computed from the pixels held in memory.
    public var imageChecksums: [UInt64] {
        switch source {
        case .cache(let cache, let map): return map.map { cache.contentChecksum($0) }
        case .memory(let all):
            let n = geometry.pixelsPerImage
            return all.withUnsafeBytes { raw in
                (0..<count).map { ImageCache.contentChecksum(UnsafeRawBufferPointer(rebasing: raw[($0 * n)..<(($0 + 1) * n)])) }
            }
        }
    }
}
