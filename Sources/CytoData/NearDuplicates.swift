import CytoCore
import Foundation

/// Finds the same cell photographed twice: near-duplicate images.
///
/// ALL-IDB2's single-cell images were cut from overlapping photographs, so one cell
/// appears in several files shifted by a few pixels, with slightly different brightness
/// and colour and sometimes a different crop size; only one pair is byte-identical.
/// A content hash misses them, and a pair split between training and test inflates
/// the test score.
///
/// Method (chosen on generated sets and checked on real images; see the README's
/// "Near-duplicate images"):
/// 1. Every image becomes a `detailSide` x `detailSide` grey grid (area average of
///    luminance); from it a `side` x `side` coarse thumbnail and a detail thumbnail (the
///    grid minus its box blur), each normalised to zero mean and unit variance, which
///    removes brightness and contrast and most of a mild colour change.
/// 2. Prefilter: the low-frequency DCT coefficients of the coarse thumbnail (u, v <
///    `dctSize`, without the constant term), standardised over the data set, as a unit
///    vector; pairs with a cosine of at least `prefilterCosine` go on. Comparing these
///    short signatures (not images) makes the all-pairs pass over 18,000 images short.
/// 3. The coarse similarity: normalised cross-correlation of the coarse thumbnails over
///    their overlap, maximised over shifts of up to `maxShift` pixels; below `coarseGate`
///    the pair stops.
/// 4. The detail similarity, likewise on the detail thumbnails. The pair's similarity
///    is the mean of the two: the silhouette must agree and so must the texture, which
///    two different cells of the same type do not share.
/// Pairs at or above `threshold` are near-duplicates; groups are their connected components.
public struct NearDuplicateParameters: Sendable, Codable, Equatable, Hashable {
    /// Side of the grey thumbnail.
    public var side = 32
    /// Largest shift tried, in thumbnail pixels (3 of 32: about 9% of the image).
    public var maxShift = 3
    /// DCT coefficients per axis in the prefilter signature.
    public var dctSize = 6
    /// Cosine of the standardised signatures below which a pair is not compared.
    public var prefilterCosine = 0.5
    /// From this many images on, the prefilter is used; below, every pair is compared
    /// (cheap, and too few images to standardise the signatures on).
    public var prefilterFrom = 100
    /// Side of the detail thumbnail (twice `side`: the coarse one is its 2 x 2 average).
    public var detailSide = 64
    /// Radius of the box blur subtracted from the detail thumbnail (a high-pass: texture
    /// of nucleus and cytoplasm, not the cell's silhouette).
    public var detailBlur = 3
    /// Largest shift tried on the detail thumbnail (6 of 64, as 3 of 32).
    public var detailShift = 6
    /// Coarse similarity from which a candidate's detail is compared (below it, the pair
    /// is not a near-duplicate: the silhouettes already differ).
    public var coarseGate = 0.8
    /// Detail similarity (normalised cross-correlation of the high-passed thumbnails)
    /// from which a pair is a near-duplicate.
    public var threshold = 0.72

    public init() {}

    /// Floats per image: the coarse thumbnail, then the detail one.
    public var featureLength: Int { side * side + detailSide * detailSide }

    /// The version of the method, part of the result cache's key.
    public static let methodVersion = 3  // 2: two-stage similarity; 3: thumbnails of images smaller than the thumbnail have no empty bins
}

/// Two images found to be near-duplicates, by index, with their similarity (the
/// maximum normalised cross-correlation over the shifts tried).
public struct NearDuplicatePair: Sendable, Codable, Equatable, Hashable {
    public var a: Int
    public var b: Int
    public var similarity: Double
    public init(a: Int, b: Int, similarity: Double) { self.a = a; self.b = b; self.similarity = similarity }
}

/// One group of near-duplicate images, as found in a data set.
public struct NearDuplicateGroup: Sendable, Codable, Equatable {
    /// Paths (or ids), sorted; the first is the one kept when groups are reduced to one image.
    public var members: [String]
    /// Class names of `members`.
    public var classes: [String]
    /// The lowest similarity among the pairs that join the group (its weakest link).
    public var similarity: Double
    public var crossesClasses: Bool { Set(classes).count > 1 }

    public init(members: [String], classes: [String], similarity: Double) {
        self.members = members; self.classes = classes; self.similarity = similarity
    }
}

/// What to do with near-duplicate groups when training and evaluating.
public enum NearDuplicatePolicy: String, Sendable, Codable, CaseIterable {
    /// Keep the first image (by path) of every group, as the paper removed its ten duplicates.
    case drop
    /// Keep every image; cross-validation puts each group in a single fold (and a
    /// validation split keeps it on one side).
    case group
    /// Do not look for near-duplicates (a set known to be clean; faster).
    case off
}

/// What near-duplicate handling did to a data set: the groups and the images dropped.
/// Stored in sweep manifests and shown by reports and run summaries.
public struct NearDuplicateSummary: Sendable, Codable, Equatable {
    public var policy: NearDuplicatePolicy
    public var parameters: NearDuplicateParameters
    /// Groups, with ids (paths relative to the data root) as members.
    public var groups: [NearDuplicateGroup]
    /// Ids left out (with `drop`: every member of a group but the first).
    public var dropped: [String]

    public init(policy: NearDuplicatePolicy, parameters: NearDuplicateParameters, groups: [NearDuplicateGroup], dropped: [String]) {
        self.policy = policy; self.parameters = parameters; self.groups = groups; self.dropped = dropped
    }

    /// One paragraph for logs and reports.
    public var text: String {
        let t = String(format: "%.2f", parameters.threshold)
        if groups.isEmpty { return "near-duplicates (similarity >= \(t)): none found" }
        let images = groups.reduce(0) { $0 + $1.members.count }
        var s = "near-duplicates (similarity >= \(t)): \(groups.count) group(s), \(images) images; "
        switch policy {
        case .drop: s += "\(dropped.count) dropped (one of each group kept)"
        case .group: s += "all kept, each group in a single fold"
        case .off: s += "not handled"
        }
        let largest = groups.map(\.members.count).max() ?? 0
        if largest > 5 {
            s += "; the largest group has \(largest) images: check it (dataset inspect), a low threshold chains different cells"
        }
        return s
    }

    /// `text` and one line per group.
    public var listing: String {
        var s = text
        for g in groups {
            s += "\n  " + String(format: "%.3f  ", g.similarity) + g.members.map(FileSystemPath.visible).joined(separator: " ~ ")
            if g.crossesClasses { s += "  [classes differ: \(g.classes.map(FileSystemPath.visible).joined(separator: "/"))]" }
        }
        return s
    }
}

public enum NearDuplicates {
    // MARK: - Thumbnails

    /// The normalised grey thumbnail (`side` x `side`, zero mean, unit variance; all
    /// zeros for a flat image) of an RGB image of `height` x `width`, row-major HWC.
    public static func thumbnail(_ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int, side: Int) -> [Float] {
        precondition(rgb.count >= height * width * 3 && side > 0)
        var sums = [Double](repeating: 0, count: side * side)
        var counts = [Int](repeating: 0, count: side * side)
        let colBin = (0..<width).map { min(side - 1, $0 * side / width) }
        for y in 0..<height {
            let by = min(side - 1, y * side / height)
            let row = y * width * 3
            for x in 0..<width {
                let p = row + x * 3
                let grey = 0.299 * Double(rgb[p]) + 0.587 * Double(rgb[p + 1]) + 0.114 * Double(rgb[p + 2])
                sums[by * side + colBin[x]] += grey
                counts[by * side + colBin[x]] += 1
            }
        }
        // An image narrower or lower than `side` leaves some bins without a pixel. Left
        // at 0 they formed the same grid of dark lines in every thumbnail, which then
        // dominated the correlation: at --input 30x30 every image of a set joined one
        // near-duplicate group and all but one were dropped. Such a bin takes the
        // nearest source pixel instead (nearest-neighbour upsampling).
        var t = [Double](repeating: 0, count: side * side)
        for by in 0..<side {
            for bx in 0..<side {
                let i = by * side + bx
                if counts[i] > 0 { t[i] = sums[i] / Double(counts[i]); continue }
                let y = min(height - 1, (2 * by + 1) * height / (2 * side)), x = min(width - 1, (2 * bx + 1) * width / (2 * side))
                let p = (y * width + x) * 3
                t[i] = 0.299 * Double(rgb[p]) + 0.587 * Double(rgb[p + 1]) + 0.114 * Double(rgb[p + 2])
            }
        }
        let mean = t.reduce(0, +) / Double(t.count)
        let variance = t.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(t.count)
        let sd = variance.squareRoot()
        for i in t.indices { t[i] = sd > 1e-9 ? (t[i] - mean) / sd : 0 }
        return t.map(Float.init)
    }

    /// Area-average grey levels (luminance) of an RGB image on a `side` x `side` grid.
    static func areaGrey(_ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int, side: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: side * side)
        var counts = [Int](repeating: 0, count: side * side)
        let colBin = (0..<width).map { min(side - 1, $0 * side / width) }
        for y in 0..<height {
            let by = min(side - 1, y * side / height)
            let row = y * width * 3
            for x in 0..<width {
                let p = row + x * 3
                sums[by * side + colBin[x]] += 0.299 * Double(rgb[p]) + 0.587 * Double(rgb[p + 1]) + 0.114 * Double(rgb[p + 2])
                counts[by * side + colBin[x]] += 1
            }
        }
        // A grid finer than the image (a small cache) leaves bins without pixels: they take
        // the pixel at their centre, so the grid is the image upsampled, not zeros.
        return (0..<(side * side)).map { k in
            if counts[k] > 0 { return sums[k] / Double(counts[k]) }
            let y = min(height - 1, (2 * (k / side) + 1) * height / (2 * side))
            let x = min(width - 1, (2 * (k % side) + 1) * width / (2 * side))
            let p = (y * width + x) * 3
            return 0.299 * Double(rgb[p]) + 0.587 * Double(rgb[p + 1]) + 0.114 * Double(rgb[p + 2])
        }
    }

    /// Zero mean, unit variance (all zeros when flat).
    static func standardised(_ t: [Double]) -> [Float] {
        let mean = t.reduce(0, +) / Double(max(1, t.count))
        let sd = (t.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, t.count))).squareRoot()
        return t.map { sd > 1e-9 ? Float(($0 - mean) / sd) : 0 }
    }

    /// The features of one image (`parameters.featureLength` floats): the normalised
    /// coarse thumbnail, then the normalised high-pass of the detail thumbnail (the detail
    /// grid minus its box blur).
    public static func features(
        _ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int,
        parameters p: NearDuplicateParameters
    ) -> [Float] {
        let d = p.detailSide
        let g = areaGrey(rgb, height: height, width: width, side: d)
        let coarse: [Double]
        if d == 2 * p.side {
            coarse = (0..<(p.side * p.side)).map { k in
                let y = 2 * (k / p.side), x = 2 * (k % p.side)
                return (g[y * d + x] + g[y * d + x + 1] + g[(y + 1) * d + x] + g[(y + 1) * d + x + 1]) / 4
            }
        } else {
            coarse = areaGrey(rgb, height: height, width: width, side: p.side)
        }
        // Box blur with edge replication, as two 1-D passes.
        let r = p.detailBlur
        func clamp(_ v: Int) -> Int { min(d - 1, max(0, v)) }
        var h = [Double](repeating: 0, count: d * d)
        for y in 0..<d { for x in 0..<d { var s = 0.0; for k in -r...r { s += g[y * d + clamp(x + k)] }; h[y * d + x] = s } }
        var detail = [Double](repeating: 0, count: d * d)
        let n = Double((2 * r + 1) * (2 * r + 1))
        for y in 0..<d {
            for x in 0..<d { var s = 0.0; for k in -r...r { s += h[clamp(y + k) * d + x] }; detail[y * d + x] = g[y * d + x] - s / n }
        }
        return standardised(coarse) + standardised(detail)
    }

    /// Features (`features`) of `count` images, computed on all cores and flattened;
    /// `image(i, make)` calls `make` with image i's pixels and returns its result, or nil
    /// for an image to leave out (its features are all zeros).
    public static func features(
        count: Int, height: Int, width: Int, parameters p: NearDuplicateParameters,
        image: @Sendable (Int, (UnsafeBufferPointer<UInt8>) -> [Float]) -> [Float]?
    ) -> [Float] {
        let zero = [Float](repeating: 0, count: p.featureLength)
        let each = Parallel.map(count) { i in
            image(i) { features($0, height: height, width: width, parameters: p) } ?? zero
        }
        return each.flatMap { $0 }
    }

    /// Thumbnails of `count` images, computed on all cores and flattened; `image(i, make)`
    /// calls `make` with image i's pixels and returns its result, or nil for an image to
    /// leave out (its thumbnail is all zeros).
    public static func thumbnails(
        count: Int, height: Int, width: Int, side: Int,
        image: @Sendable (Int, (UnsafeBufferPointer<UInt8>) -> [Float]) -> [Float]?
    ) -> [Float] {
        let zero = [Float](repeating: 0, count: side * side)
        let each = Parallel.map(count) { i in
            image(i) { thumbnail($0, height: height, width: width, side: side) } ?? zero
        }
        return each.flatMap { $0 }
    }

    // MARK: - Prefilter signature

    /// The unit vector of low-frequency DCT-II coefficients (u, v < `size`, without
    /// (0, 0)) of a thumbnail; zeros for a flat thumbnail.
    public static func signature(_ thumb: ArraySlice<Float>, side: Int, size: Int) -> [Float] {
        let t = Array(thumb)
        var cosines = [Double](repeating: 0, count: size * side)
        for u in 0..<size {
            for x in 0..<side { cosines[u * side + x] = cos(Double.pi * Double((2 * x + 1) * u) / Double(2 * side)) }
        }
        // Rows first: r[y][u] = sum_x t[y][x] cos_u(x).
        var rows = [Double](repeating: 0, count: side * size)
        for y in 0..<side {
            for u in 0..<size {
                var s = 0.0
                for x in 0..<side { s += Double(t[y * side + x]) * cosines[u * side + x] }
                rows[y * size + u] = s
            }
        }
        var v: [Double] = []
        for vv in 0..<size {
            for u in 0..<size where u + vv > 0 {
                var s = 0.0
                for y in 0..<side { s += rows[y * size + u] * cosines[vv * side + y] }
                v.append(s)
            }
        }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return v.map { norm > 1e-12 ? Float($0 / norm) : 0 }
    }

    /// The prefilter's signatures (flattened unit vectors), or nil below `prefilterFrom`
    /// images. Each DCT coefficient is standardised over the data set before the vectors are
    /// normalised: raw low-frequency signatures of cell images are dominated by what they all
    /// share (a round cell in the middle of a pale background), so their cosines are high for
    /// most pairs; the deviations from the typical image are what tell one cell from another.
    public static func prefilterSignatures(features: [Float], count: Int, parameters p: NearDuplicateParameters) -> [Float]? {
        guard count >= max(2, p.prefilterFrom) else { return nil }
        let stride = p.featureLength
        let d = p.dctSize * p.dctSize - 1
        let raw = Parallel.map(count) { i in
            signature(features[(i * stride)..<(i * stride + p.side * p.side)], side: p.side, size: p.dctSize)
        }
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for v in raw { for k in 0..<d { mean[k] += Double(v[k]); sq[k] += Double(v[k]) * Double(v[k]) } }
        for k in 0..<d { mean[k] /= Double(count) }
        let sd = (0..<d).map { k in max(1e-6, (sq[k] / Double(count) - mean[k] * mean[k]).squareRoot()) }
        var out = [Float](repeating: 0, count: count * d)
        for (i, v) in raw.enumerated() {
            let z = (0..<d).map { (Double(v[$0]) - mean[$0]) / sd[$0] }
            let norm = z.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in 0..<d { out[i * d + k] = norm > 1e-12 ? Float(z[k] / norm) : 0 }
        }
        return out
    }

    /// Candidate pairs (i < j): signatures with a cosine of at least `minCosine`.
    /// Compares every pair of short signatures (not images), rows split over all cores.
    public static func candidates(signatures: [Float], dimension d: Int, minCosine: Double) -> [(Int, Int)] {
        candidates(signatures: signatures, dimension: d, minCosine: minCosine, perImage: .max).pairs
    }

    /// Candidate pairs as above, with at most `perImage` per row i (the partners j > i of
    /// highest cosine): when many images look alike, every pair passes the prefilter and
    /// verifying them all is quadratic. `cappedImages` counts the rows that were cut.
    public static func candidates(
        signatures: [Float], dimension d: Int, minCosine: Double, perImage: Int
    ) -> (pairs: [(Int, Int)], cappedImages: Int) {
        let n = signatures.count / max(1, d)
        guard n > 1 else { return ([], 0) }
        let threshold = Float(minCosine)
        let blocks = max(1, min(n, 256))
        let perBlock = Parallel.map(blocks) { b -> (pairs: [(Int, Int)], capped: Int) in
            signatures.withUnsafeBufferPointer { sig in
                let s = sig.baseAddress!
                var local: [(Int, Int)] = []
                var capped = 0
                var row: [(j: Int, dot: Float)] = []
                // Interleaved rows balance the triangular work.
                var i = b
                while i < n {
                    let a = s + i * d
                    row.removeAll(keepingCapacity: true)
                    for j in (i + 1)..<n {
                        let c = s + j * d
                        var dot: Float = 0
                        for k in 0..<d { dot += a[k] * c[k] }
                        if dot >= threshold { row.append((j, dot)) }
                    }
                    if row.count > perImage {
                        capped += 1
                        row.sort { $0.dot != $1.dot ? $0.dot > $1.dot : $0.j < $1.j }
                        row.removeLast(row.count - perImage)
                    }
                    for r in row { local.append((i, r.j)) }
                    i += blocks
                }
                return (local, capped)
            }
        }
        let found = perBlock.flatMap { $0.pairs }
        return (found.sorted { $0 < $1 }, perBlock.reduce(0) { $0 + $1.capped })
    }

    /// At most this many prefilter candidates per image are verified (see `pairs`).
    public static let maxCandidatesPerImage = 24

    // MARK: - Verification

    /// The maximum, over shifts of up to `maxShift` pixels in x and y, of the normalised
    /// cross-correlation of two thumbnails over their overlap.
    public static func similarity(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, side: Int, maxShift: Int) -> Double {
        var best = -1.0
        for dy in -maxShift...maxShift {
            for dx in -maxShift...maxShift {
                let y0 = max(0, -dy), y1 = min(side, side - dy)
                let x0 = max(0, -dx), x1 = min(side, side - dx)
                var sa: Float = 0, sb: Float = 0, saa: Float = 0, sbb: Float = 0, sab: Float = 0
                for y in y0..<y1 {
                    let ra = a + y * side, rb = b + (y + dy) * side + dx
                    for x in x0..<x1 {
                        let u = ra[x], v = rb[x]
                        sa += u; sb += v; saa += u * u; sbb += v * v; sab += u * v
                    }
                }
                let n = Double((y1 - y0) * (x1 - x0))
                let cov = Double(sab) - Double(sa) * Double(sb) / n
                let va = Double(saa) - Double(sa) * Double(sa) / n
                let vb = Double(sbb) - Double(sb) * Double(sb) / n
                guard va > 1e-9 * n, vb > 1e-9 * n else { continue }
                best = max(best, cov / (va * vb).squareRoot())
            }
        }
        return best
    }

    /// Verified pairs among `count` images' features (flattened, `featureLength` each)
    /// with a detail similarity of at least `floor`: prefilter, then the coarse similarity
    /// (at least `coarseGate`), then the detail similarity, which is the pair's.
    /// `compared` is told how many candidate pairs passed the prefilter.
    ///
    /// The work is bounded (`bounded`, the default) so that a set of many look-alike
    /// images is not quadratic: at most `maxCandidatesPerImage` candidates per image go
    /// on (those of highest prefilter cosine: an image's true duplicates are among them),
    /// and a candidate pair whose images are already joined by verified pairs at or above
    /// `parameters.threshold` is not verified again. Groups at that threshold or lower
    /// are the same as with every pair verified; a group's `similarity` is its weakest
    /// verified link. When the cap cuts candidates, `warning` gets one line saying so.
    /// `bounded: false` verifies every candidate (pair-level evaluation).
    public static func pairs(
        features: [Float], count: Int, parameters p: NearDuplicateParameters,
        floor: Double, bounded: Bool = true, compared: ((Int) -> Void)? = nil, warning: ((String) -> Void)? = nil
    ) -> [NearDuplicatePair] {
        let stride = p.featureLength
        precondition(features.count == count * stride)
        var cand: [(Int, Int)]
        if let sigs = prefilterSignatures(features: features, count: count, parameters: p) {
            let c = candidates(
                signatures: sigs, dimension: p.dctSize * p.dctSize - 1, minCosine: p.prefilterCosine,
                perImage: bounded ? maxCandidatesPerImage : .max)
            cand = c.pairs
            if c.cappedImages > 0 {
                warning?(
                    "near-duplicates: \(c.cappedImages) of \(count) images look like more than \(maxCandidatesPerImage) others "
                        + "at a glance; each was compared with its \(maxCandidatesPerImage) most alike only (true duplicates are "
                        + "among them; groups of look-alikes may be found in parts)")
            }
        } else {
            cand = (0..<count).flatMap { i in ((i + 1)..<count).map { (i, $0) } }
        }
        compared?(cand.count)
        let coarseOffset = 0, detailOffset = p.side * p.side
        func verify(_ list: ArraySlice<(Int, Int)>) -> [Double] {
            let chunk = 16
            let base = list.startIndex
            return Parallel.map((list.count + chunk - 1) / chunk) { c -> [Double] in
                features.withUnsafeBufferPointer { fb in
                    let f = fb.baseAddress!
                    return ((base + c * chunk)..<min(list.endIndex, base + (c + 1) * chunk)).map { k in
                        let a = f + list[k].0 * stride, b = f + list[k].1 * stride
                        let coarse = similarity(a + coarseOffset, b + coarseOffset, side: p.side, maxShift: p.maxShift)
                        guard coarse >= p.coarseGate else { return -1 }
                        let detail = similarity(a + detailOffset, b + detailOffset, side: p.detailSide, maxShift: p.detailShift)
                        return (coarse + detail) / 2
                    }
                }
            }.flatMap { $0 }
        }
        guard bounded else {
            return zip(cand, verify(cand[...])).filter { $0.1 >= floor }.map { NearDuplicatePair(a: $0.0.0, b: $0.0.1, similarity: $0.1) }
        }
        // Batches in candidate order; before each, drop the pairs already joined.
        var sets = DisjointSets(count)
        var out: [NearDuplicatePair] = []
        let batch = max(64, 16 * ProcessInfo.processInfo.activeProcessorCount)
        var next = 0
        while next < cand.count {
            var todo: [(Int, Int)] = []
            while next < cand.count && todo.count < batch {
                let (a, b) = cand[next]
                if sets.find(a) != sets.find(b) { todo.append((a, b)) }
                next += 1
            }
            for (pair, sim) in zip(todo, verify(todo[...])) where sim >= floor {
                out.append(NearDuplicatePair(a: pair.0, b: pair.1, similarity: sim))
                if sim >= p.threshold { sets.join(pair.0, pair.1) }
            }
        }
        return out
    }

    /// Connected components of the pairs at or above `threshold`, each sorted, with the
    /// weakest link's similarity; singletons are left out. Groups are ordered by their first member.
    public static func components(_ pairs: [NearDuplicatePair], count: Int, threshold: Double) -> [(members: [Int], similarity: Double)] {
        var sets = DisjointSets(count)
        let strong = pairs.filter { $0.similarity >= threshold }
        for p in strong {
            sets.join(p.a, p.b)
        }
        var members: [Int: [Int]] = [:]
        for p in strong { members[sets.find(p.a), default: []] += [p.a, p.b] }
        var weakest: [Int: Double] = [:]
        for p in strong { let root = sets.find(p.a); weakest[root] = min(weakest[root] ?? 1, p.similarity) }
        return members.map { (root, m) in (Array(Set(m)).sorted(), weakest[root] ?? 1) }.sorted { $0.members[0] < $1.members[0] }
    }
}

// MARK: - Detection on a data set, cached with the image cache

/// Near-duplicate pairs of a data set, from its image cache, stored beside the cache
/// (`<cache>.neardup.json`) and reused while the cache file is unchanged.
public struct NearDuplicateScan: Sendable, Codable {
    public var methodVersion: Int
    public var parameters: NearDuplicateParameters
    /// Pairs with a similarity of at least `floor`, by cache index.
    public var floor: Double
    public var pairs: [NearDuplicatePair]
    /// Size and modification time of the cache file the pairs were computed from.
    public var cacheSize: Int64
    public var cacheModified: Int64
    public var count: Int
    /// Seconds the scan took when it was computed.
    public var seconds: Double
    /// Candidate pairs the prefilter let through to verification.
    public var compared: Int? = nil
    /// The threshold the scan joined groups at: pairs already joined by stronger ones
    /// were not verified, so the groups are complete at this threshold and below only
    /// (nil: every candidate verified, scans made before the bound).
    public var joinedAt: Double? = nil

    /// Similarity below which pairs are not stored: a later, lower `--near-duplicate-threshold`
    /// down to this value reuses the stored scan.
    public static let storedFloor = 0.3

    public static func resultURL(cache: ImageCache) -> URL {
        URL(fileURLWithPath: cache.url.path + ".neardup.json")
    }

    /// The pairs of `cache` (every image; unavailable ones never pair), read from the
    /// stored result when it matches the cache file and parameters, else computed and stored.
    /// Returns the scan and whether it was computed now.
    public static func scan(
        cache: ImageCache, parameters: NearDuplicateParameters,
        progress: ((String) -> Void)? = nil
    ) throws -> (NearDuplicateScan, computed: Bool) {
        let url = resultURL(cache: cache)
        guard let stamp = FileBytes.stamp(cache.url.path) else { throw DataError.missing(path: cache.url.path) }
        var wanted = parameters
        wanted.threshold = 0  // the threshold is applied after loading
        if let data = try? Data(contentsOf: url), let s = try? JSONDecoder().decode(NearDuplicateScan.self, from: data),
            s.methodVersion == NearDuplicateParameters.methodVersion, s.parameters == wanted, s.count == cache.count,
            s.cacheSize == stamp.size, s.cacheModified == stamp.mtimeNanos, s.floor <= parameters.threshold,
            parameters.threshold <= (s.joinedAt ?? 1)
        {
            return (s, false)
        }
        let start = Date()
        progress?("near-duplicates: features of \(cache.count) images")
        let available = cache.available
        let feats = NearDuplicates.features(
            count: cache.count, height: cache.height, width: cache.width,
            parameters: parameters
        ) { i, make in
            // A damaged image (checksum mismatch) gets no features; reading it for a
            // cell fails loudly anyway.
            guard available[i], let px = try? cache.pixels(i) else { return nil }
            return px.withUnsafeBufferPointer { make($0) }
        }
        progress?("near-duplicates: comparing")
        let floor = min(storedFloor, parameters.threshold)
        var compared = 0
        let found = NearDuplicates.pairs(
            features: feats, count: cache.count, parameters: parameters, floor: floor, compared: { compared = $0 },
            warning: { progress?("warning: " + $0) }
        ).filter { available[$0.a] && available[$0.b] }
        let s = NearDuplicateScan(
            methodVersion: NearDuplicateParameters.methodVersion, parameters: wanted, floor: floor,
            pairs: found, cacheSize: stamp.size, cacheModified: stamp.mtimeNanos, count: cache.count,
            seconds: Date().timeIntervalSince(start), compared: compared, joinedAt: parameters.threshold)
        // A result that cannot be stored (read-only data folder) is recomputed next time.
        if let data = try? JSONEncoder().encode(s) { try? writeAtomically(data, to: url) }
        return (s, true)
    }
}

extension NearDuplicates {
    /// Groups among `items` (indices into them) from `pairs`, with paths and classes, and
    /// what `policy` keeps: the indices to keep (in order) and the summary. `ids` names
    /// the images in the summary (paths relative to the data root).
    public static func apply(
        policy: NearDuplicatePolicy, parameters: NearDuplicateParameters, pairs: [NearDuplicatePair],
        items: [DatasetItem], ids: [String]
    ) -> (keep: [Int], summary: NearDuplicateSummary) {
        precondition(items.count == ids.count)
        let comps = components(pairs, count: items.count, threshold: parameters.threshold)
        var groups: [NearDuplicateGroup] = []
        var drop = Set<Int>()
        for c in comps {
            let sorted = c.members.sorted { ids[$0] < ids[$1] }
            groups.append(
                NearDuplicateGroup(
                    members: sorted.map { ids[$0] }, classes: sorted.map { items[$0].className },
                    similarity: c.similarity))
            if policy == .drop { drop.formUnion(sorted.dropFirst()) }
        }
        groups.sort { $0.members[0] < $1.members[0] }
        let keep = items.indices.filter { !drop.contains($0) }
        let dropped = drop.sorted().map { ids[$0] }.sorted()
        return (keep, NearDuplicateSummary(policy: policy, parameters: parameters, groups: groups, dropped: dropped))
    }
}

extension NearDuplicates {
    /// Pairs among `count` decoded images held in memory (`height` x `width` x 3 each,
    /// back to back): for data sets loaded without an image cache (train, evaluate).
    public static func pairs(
        pixels: [UInt8], count: Int, height: Int, width: Int,
        parameters p: NearDuplicateParameters, warning: ((String) -> Void)? = nil
    ) -> [NearDuplicatePair] {
        let n = height * width * 3
        precondition(pixels.count >= count * n)
        let feats = features(count: count, height: height, width: width, parameters: p) { i, make in
            pixels.withUnsafeBufferPointer { make(UnsafeBufferPointer(rebasing: $0[(i * n)..<((i + 1) * n)])) }
        }
        return pairs(features: feats, count: count, parameters: p, floor: p.threshold, warning: warning)
    }
}

/// Union-find over 0..<count with path compression; `join` keeps the smaller root,
/// so a set's root is its smallest member.
struct DisjointSets {
    private var parent: [Int]

    init(_ count: Int) { parent = Array(0..<count) }

    mutating func find(_ x: Int) -> Int {
        var r = x
        while parent[r] != r { r = parent[r] }
        var y = x
        while parent[y] != r { let next = parent[y]; parent[y] = r; y = next }
        return r
    }

    mutating func join(_ a: Int, _ b: Int) {
        let (ra, rb) = (find(a), find(b))
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }
}
