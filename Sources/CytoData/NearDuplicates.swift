import CytoSupport
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
/// 5. The surroundings (`NearDuplicates.surroundings`, weighed in `NearDuplicates.verify`):
///    a different cell of the same outline on other red cells is not the same photograph.
/// 6. Orientations: mirrored and turned copies are compared in all eight orientations
///    (`parityOrder` in the prefilter, the best-ranked ones in verification).
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

    /// Floats per image: the coarse thumbnail, the detail one, then the surroundings mask
    /// (on the coarse grid).
    public var featureLength: Int { 2 * side * side + detailSide * detailSide }

    /// The version of the method, part of the result cache's key.
    public static let methodVersion = 4  // 2: two-stage similarity; 3: thumbnails of images smaller than the thumbnail have no empty bins; 4: eight orientations, surroundings weighed, pairs record their transform
}

/// Two images found to be near-duplicates, by index, with their similarity and how b
/// matched a: its orientation (`NearDuplicates.orient` code: 0 as is, else mirrored
/// and/or turned) and whether a shift was needed.
public struct NearDuplicatePair: Sendable, Codable, Equatable, Hashable {
    public var a: Int
    public var b: Int
    public var similarity: Double
    public var orientation: Int
    public var shifted: Bool
    public init(a: Int, b: Int, similarity: Double, orientation: Int = 0, shifted: Bool = false) {
        self.a = a; self.b = b; self.similarity = similarity; self.orientation = orientation; self.shifted = shifted
    }

    /// How b was made from a ("rot90+shift", "mirror", "shift", "as is"); `fromB`: how a was made from b.
    public func transform(fromB: Bool = false) -> String {
        let name = NearDuplicates.orientationName(fromB ? NearDuplicates.inverseOrientation(orientation) : orientation)
        if name.isEmpty { return shifted ? "shift" : "as is" }
        return shifted ? name + "+shift" : name
    }
}

/// One group of near-duplicate images, as found in a data set.
public struct NearDuplicateGroup: Sendable, Codable, Equatable {
    /// Paths (or ids), sorted; the first is the one kept when groups are reduced to one image.
    public var members: [String]
    /// Class names of `members`.
    public var classes: [String]
    /// The lowest similarity among the pairs that join the group (its weakest link).
    public var similarity: Double
    /// The verified pairs that join the group and how the later member was made from the
    /// earlier ("Im001_1.tif ~ Im262_1.tif: rot90+shift"); nil in summaries written
    /// before transforms were recorded.
    public var links: [String]? = nil
    public var crossesClasses: Bool { Set(classes).count > 1 }

    public init(members: [String], classes: [String], similarity: Double, links: [String]? = nil) {
        self.members = members; self.classes = classes; self.similarity = similarity; self.links = links
    }

    /// The transforms for a listing: "(rot90+shift)" for a pair, "(a ~ b: shift; b ~ c: mirror)"
    /// for a larger group; empty without links.
    public var linkText: String {
        guard let links, !links.isEmpty else { return "" }
        if members.count == 2, links.count == 1, let colon = links[0].range(of: ": ", options: .backwards) {
            return "(" + links[0][colon.upperBound...] + ")"
        }
        return "(" + links.joined(separator: "; ") + ")"
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
            if !g.linkText.isEmpty { s += "  " + g.linkText }
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
        return standardised(areaGrey(rgb, height: height, width: width, side: side))
    }

    /// Area-average grey levels (luminance) of an RGB image on a `side` x `side` grid.
    static func areaGrey(_ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int, side: Int) -> [Double] {
        areaMeans(rgb, height: height, width: width, side: side) { r, g, b in
            0.299 * Double(r) + 0.587 * Double(g) + 0.114 * Double(b)
        }
    }

    /// Area averages of `value(r, g, b)` over an RGB image on a `side` x `side` grid: the
    /// one binning behind the grey thumbnails and the stain measure of the surroundings.
    @inline(__always)
    static func areaMeans(
        _ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int, side: Int,
        _ value: (UInt8, UInt8, UInt8) -> Double
    ) -> [Double] {
        var sums = [Double](repeating: 0, count: side * side)
        var counts = [Int](repeating: 0, count: side * side)
        let colBin = (0..<width).map { min(side - 1, $0 * side / width) }
        for y in 0..<height {
            let by = min(side - 1, y * side / height)
            let row = y * width * 3
            for x in 0..<width {
                let p = row + x * 3
                sums[by * side + colBin[x]] += value(rgb[p], rgb[p + 1], rgb[p + 2])
                counts[by * side + colBin[x]] += 1
            }
        }
        // An image narrower or lower than `side` (a small cache) leaves bins without a
        // pixel. Left at 0 they formed the same grid of dark lines in every thumbnail,
        // which then dominated the correlation (at --input 30x30 every image of a set
        // joined one group): such a bin takes the pixel at its centre, so the grid is the
        // image upsampled, not zeros.
        return (0..<(side * side)).map { k in
            if counts[k] > 0 { return sums[k] / Double(counts[k]) }
            let y = min(height - 1, (2 * (k / side) + 1) * height / (2 * side))
            let x = min(width - 1, (2 * (k % side) + 1) * width / (2 * side))
            let p = (y * width + x) * 3
            return value(rgb[p], rgb[p + 1], rgb[p + 2])
        }
    }

    /// Zero mean, unit variance (all zeros when flat).
    static func standardised(_ t: [Double]) -> [Float] {
        let mean = t.reduce(0, +) / Double(max(1, t.count))
        let sd = (t.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, t.count))).squareRoot()
        return t.map { sd > 1e-9 ? Float(($0 - mean) / sd) : 0 }
    }

    /// The features of one image (`parameters.featureLength` floats): the normalised
    /// coarse thumbnail, the normalised high-pass of the detail thumbnail (the detail
    /// grid minus its box blur), then the surroundings mask on the coarse grid
    /// (`surroundings`: 1 outside the leukocyte, 0 on it).
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
        return standardised(coarse) + standardised(detail) + surroundings(rgb, height: height, width: width, side: p.side)
    }

    // MARK: - Surroundings

    /// Where the leukocyte is not, on a `side` x `side` grid: 1 for the surroundings
    /// (background, red cells, platelets), 0 for the leukocyte. The surroundings are the
    /// strongest evidence of one photograph: two different cells of one type share an
    /// outline and a texture far more often than the red cells around them.
    ///
    /// The leukocyte is found by its stain: nucleus and cytoplasm are bluer than red
    /// cells and background (blue minus green per bin). Bins at or above Otsu's
    /// threshold of that measure are stained; the stained bin nearest the centre seeds a
    /// region grown (4-connected) over bins above a lower level (a third of the way from
    /// the unstained level, the lower quartile, to the Otsu threshold: pale cytoplasm),
    /// dilated by one bin. An image
    /// without stain contrast or without a stained bin near the centre is all surroundings
    /// (the whole image is then compared, as before this mask existed).
    public static func surroundings(_ rgb: UnsafeBufferPointer<UInt8>, height: Int, width: Int, side: Int) -> [Float] {
        let q = areaMeans(rgb, height: height, width: width, side: side) { _, g, b in Double(b) - Double(g) }
        let all = [Float](repeating: 1, count: side * side)
        let sorted = q.sorted()
        let n = sorted.count
        // The unstained level: a low quantile, as a leukocyte may cover most of the frame.
        let median = sorted[n / 4]
        // Otsu: the split of the sorted values with the largest between-class variance.
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + sorted[i] }
        var best = -1.0, otsu = sorted[n - 1]
        for i in 1..<n where sorted[i] > sorted[i - 1] {
            let w0 = Double(i), w1 = Double(n - i)
            let m0 = prefix[i] / w0, m1 = (prefix[n] - prefix[i]) / w1
            let v = w0 * w1 * (m1 - m0) * (m1 - m0)
            if v > best { best = v; otsu = sorted[i] }
        }
        guard otsu - median >= minimumStainContrast else { return all }
        let c = Double(side - 1) / 2
        var seed = -1, seedDistance = Double.infinity
        for k in 0..<(side * side) where q[k] >= otsu {
            let dy = Double(k / side) - c, dx = Double(k % side) - c
            let dist = dx * dx + dy * dy
            if dist < seedDistance { seedDistance = dist; seed = k }
        }
        guard seed >= 0, seedDistance.squareRoot() <= 0.35 * Double(side) else { return all }
        let low = median + (otsu - median) / 3
        var cell = [Bool](repeating: false, count: side * side)
        var stack = [seed]
        cell[seed] = true
        while let k = stack.popLast() {
            let y = k / side, x = k % side
            for (ny, nx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where ny >= 0 && ny < side && nx >= 0 && nx < side {
                let m = ny * side + nx
                if !cell[m] && q[m] >= low { cell[m] = true; stack.append(m) }
            }
        }
        var out = all
        for k in 0..<(side * side) where cell[k] {
            let y = k / side, x = k % side
            for ny in max(0, y - 1)...min(side - 1, y + 1) { for nx in max(0, x - 1)...min(side - 1, x + 1) { out[ny * side + nx] = 0 } }
        }
        return out
    }

    /// Blue minus green (0...255 units) by which the stained bins must exceed the lower-quartile
    /// bin for the image to have a leukocyte to mask (below: a grey or unstained image).
    static let minimumStainContrast = 6.0

    // MARK: - Orientation

    /// The eight orientations of a square grid (mirror images and quarter turns), coded
    /// k = 4t + 2fx + fy: the grid is transposed when t is set, then flipped left-right
    /// (fx) and upside down (fy). `orient(b, k)` is compared with a; the name says how b
    /// was made from a (`orientationName`).
    static func orient(_ src: UnsafePointer<Float>, side n: Int, _ k: Int, into dst: UnsafeMutablePointer<Float>) {
        let t = k & 4 != 0, fx = k & 2 != 0, fy = k & 1 != 0
        for y in 0..<n {
            let Y = fy ? n - 1 - y : y
            for x in 0..<n {
                let X = fx ? n - 1 - x : x
                dst[y * n + x] = t ? src[X * n + Y] : src[Y * n + X]
            }
        }
    }

    /// How image b was made from image a when `orient(b, k)` matches a: "" (as is),
    /// "mirror" (left-right), "rot90"/"rot180"/"rot270" (clockwise) or a mirror followed by a turn.
    public static func orientationName(_ k: Int) -> String {
        ["", "mirror+rot180", "mirror", "rot180", "mirror+rot270", "rot90", "rot270", "mirror+rot90"][k & 7]
    }

    /// The code of the inverse orientation (b from a becomes a from b): quarter turns swap, mirrors are their own inverse.
    public static func inverseOrientation(_ k: Int) -> Int { k == 5 ? 6 : k == 6 ? 5 : k }

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

    /// The signature's coefficients (u horizontal, v vertical frequency; (0, 0) left out)
    /// grouped by parity class c = (u odd) + 2 (v odd), with each class's start (and the
    /// end): a left-right flip of the thumbnail negates the coefficients of odd u, an
    /// upside-down flip those of odd v, and a transpose swaps (u, v) and (v, u), so a dot
    /// product split into the four classes gives every orientation's cosine at once.
    static func parityOrder(size: Int) -> (order: [(u: Int, v: Int)], starts: [Int]) {
        var order: [(u: Int, v: Int)] = []
        var starts: [Int] = []
        for c in 0..<4 {
            starts.append(order.count)
            for v in 0..<size { for u in 0..<size where u + v > 0 && (u % 2) + 2 * (v % 2) == c { order.append((u, v)) } }
        }
        starts.append(order.count)
        return (order, starts)
    }

    /// The prefilter's signatures, or nil below `prefilterFrom` images: per image two unit
    /// vectors of `dctSize`² - 1 floats in `parityOrder`, the signature and its transpose
    /// (the signature of the transposed thumbnail). Each DCT coefficient is standardised
    /// over the data set before the vectors are normalised: raw low-frequency signatures
    /// of cell images are dominated by what they all share (a round cell in the middle of
    /// a pale background), so their cosines are high for most pairs; the deviations from
    /// the typical image are what tell one cell from another. The mean and spread are
    /// taken over the set in all eight orientations (odd coefficients have mean 0, a
    /// coefficient and its transpose share them), so a mirrored or turned copy's
    /// standardised signature is exactly the turned signature.
    public static func prefilterSignatures(features: [Float], count: Int, parameters p: NearDuplicateParameters) -> [Float]? {
        guard count >= max(2, p.prefilterFrom) else { return nil }
        let stride = p.featureLength
        let size = p.dctSize
        let d = size * size - 1
        let (order, _) = parityOrder(size: size)
        // Index in `signature`'s order (v outer, u inner, (0, 0) skipped) of each entry and of its transpose.
        let own = order.map { $0.v * size + $0.u - 1 }
        let swapped = order.map { $0.u * size + $0.v - 1 }
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($0.element.v * size + $0.element.u, $0.offset) })
        let transposePosition = order.map { position[$0.u * size + $0.v]! }
        let raw = Parallel.map(count) { i in
            signature(features[(i * stride)..<(i * stride + p.side * p.side)], side: p.side, size: size)
        }
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for v in raw {
            for k in 0..<d where order[k].u % 2 == 0 && order[k].v % 2 == 0 { mean[k] += (Double(v[own[k]]) + Double(v[swapped[k]])) / 2 }
        }
        for k in 0..<d { mean[k] /= Double(count) }
        for v in raw {
            for k in 0..<d {
                let x = Double(v[own[k]]) - mean[k], y = Double(v[swapped[k]]) - mean[k]
                sq[k] += (x * x + y * y) / 2
            }
        }
        let sd = (0..<d).map { k in max(1e-6, (sq[k] / Double(count)).squareRoot()) }
        var out = [Float](repeating: 0, count: count * 2 * d)
        for (i, v) in raw.enumerated() {
            let z = (0..<d).map { (Double(v[own[$0]]) - mean[$0]) / sd[$0] }
            let norm = z.reduce(0) { $0 + $1 * $1 }.squareRoot()
            for k in 0..<d {
                out[i * 2 * d + k] = norm > 1e-12 ? Float(z[k] / norm) : 0
                out[i * 2 * d + d + k] = norm > 1e-12 ? Float(z[transposePosition[k]] / norm) : 0
            }
        }
        return out
    }

    /// The prefilter cosine of images i and j in each orientation k of j (as `orient`
    /// codes), from `prefilterSignatures` (`d` = dctSize² - 1, `starts` = the parity classes).
    static func orientedCosines(_ s: UnsafePointer<Float>, _ i: Int, _ j: Int, d: Int, starts: [Int]) -> [Float] {
        let a = s + i * 2 * d, b = s + j * 2 * d, bt = b + d
        var plain = [Float](repeating: 0, count: 4), turned = [Float](repeating: 0, count: 4)
        for c in 0..<4 {
            var x: Float = 0, y: Float = 0
            for k in starts[c]..<starts[c + 1] { x += a[k] * b[k]; y += a[k] * bt[k] }
            plain[c] = x; turned[c] = y
        }
        return (0..<8).map { k in
            let v = k & 4 != 0 ? turned : plain
            let sx: Float = k & 2 != 0 ? -1 : 1, sy: Float = k & 1 != 0 ? -1 : 1
            return v[0] + sx * v[1] + sy * v[2] + sx * sy * v[3]
        }
    }

    /// One prefilter candidate: images i < j, and the orientations of j worth verifying
    /// (bit k: `orient` code k).
    public struct Candidate: Sendable, Equatable {
        public var i: Int, j: Int
        public var orientations: UInt8
    }

    /// Candidate pairs (i < j): signatures with a cosine of at least `minCosine` in some orientation.
    /// Compares every pair of short signatures (not images), rows split over all cores.
    public static func candidates(signatures: [Float], dimension d: Int, minCosine: Double) -> [(Int, Int)] {
        candidates(signatures: signatures, dimension: d, minCosine: minCosine, perImage: .max).pairs.map { ($0.i, $0.j) }
    }

    /// Orientations whose prefilter cosine is this close to the best one's are verified too
    /// (a roundish cell on an even background looks alike turned; at most `maxOrientations`).
    static let orientationMargin: Float = 0.1
    static let maxOrientations = 3

    /// Candidate pairs as above, with at most `perImage` per row i (the partners j > i of
    /// highest cosine): when many images look alike, every pair passes the prefilter and
    /// verifying them all is quadratic. `cappedImages` counts the rows that were cut.
    /// `signatures` holds two vectors of `d` per image (`prefilterSignatures`); a pair's
    /// cosine is its best over the eight orientations.
    public static func candidates(
        signatures: [Float], dimension d: Int, minCosine: Double, perImage: Int
    ) -> (pairs: [Candidate], cappedImages: Int) {
        let n = signatures.count / max(1, 2 * d)
        guard n > 1 else { return ([], 0) }
        let size = Int(Double(d + 1).squareRoot().rounded())
        let starts = parityOrder(size: size).starts
        let threshold = Float(minCosine)
        let blocks = max(1, min(n, 256))
        let perBlock = Parallel.map(blocks) { b -> (pairs: [Candidate], capped: Int) in
            signatures.withUnsafeBufferPointer { sig in
                let s = sig.baseAddress!
                var local: [Candidate] = []
                var capped = 0
                var row: [(j: Int, dot: Float, mask: UInt8)] = []
                let (s0, s1, s2, s3, s4) = (starts[0], starts[1], starts[2], starts[3], starts[4])
                // Interleaved rows balance the triangular work.
                var i = b
                while i < n {
                    let a = s + i * 2 * d
                    row.removeAll(keepingCapacity: true)
                    for j in (i + 1)..<n {
                        let c = s + j * 2 * d, ct = c + d
                        var p0: Float = 0, p1: Float = 0, p2: Float = 0, p3: Float = 0
                        var t0: Float = 0, t1: Float = 0, t2: Float = 0, t3: Float = 0
                        for k in s0..<s1 { p0 += a[k] * c[k]; t0 += a[k] * ct[k] }
                        for k in s1..<s2 { p1 += a[k] * c[k]; t1 += a[k] * ct[k] }
                        for k in s2..<s3 { p2 += a[k] * c[k]; t2 += a[k] * ct[k] }
                        for k in s3..<s4 { p3 += a[k] * c[k]; t3 += a[k] * ct[k] }
                        // Orientation k = 4t + 2fx + fy: class 1 (odd u) flips sign with fx, class 2 (odd v) with fy.
                        let cosines = SIMD8<Float>(
                            p0 + p1 + p2 + p3, p0 + p1 - p2 - p3, p0 - p1 + p2 - p3, p0 - p1 - p2 + p3,
                            t0 + t1 + t2 + t3, t0 + t1 - t2 - t3, t0 - t1 + t2 - t3, t0 - t1 - t2 + t3)
                        let best = cosines.max()
                        guard best >= threshold else { continue }
                        let floor = max(threshold, best - orientationMargin)
                        let ranked = (0..<8).filter { cosines[$0] >= floor }.sorted { cosines[$0] > cosines[$1] }.prefix(maxOrientations)
                        var mask: UInt8 = 0
                        for k in ranked { mask |= 1 << UInt8(k) }
                        row.append((j, best, mask))
                    }
                    if row.count > perImage {
                        capped += 1
                        row.sort { $0.dot != $1.dot ? $0.dot > $1.dot : $0.j < $1.j }
                        row.removeLast(row.count - perImage)
                    }
                    for r in row { local.append(Candidate(i: i, j: r.j, orientations: r.mask)) }
                    i += blocks
                }
                return (local, capped)
            }
        }
        let found = perBlock.flatMap { $0.pairs }
        return (found.sorted { ($0.i, $0.j) < ($1.i, $1.j) }, perBlock.reduce(0) { $0 + $1.capped })
    }

    /// At most this many prefilter candidates per image are verified (see `pairs`).
    public static let maxCandidatesPerImage = 24

    // MARK: - Verification

    /// The maximum, over shifts of up to `maxShift` pixels in x and y, of the normalised
    /// cross-correlation of two thumbnails over their overlap.
    public static func similarity(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, side: Int, maxShift: Int) -> Double {
        bestShift(a, b, side: side, maxShift: maxShift).similarity
    }

    /// `similarity` with the shift that reaches it (a(x, y) is compared with b(x + dx, y + dy)).
    static func bestShift(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, side: Int, maxShift: Int
    ) -> (similarity: Double, dx: Int, dy: Int) {
        var best = (-1.0, 0, 0)
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
                let c = cov / (va * vb).squareRoot()
                if c > best.0 { best = (c, dx, dy) }
            }
        }
        return best
    }

    /// The normalised cross-correlation of a(x, y) and b(x + dx, y + dy) over the overlap's
    /// pixels that are surroundings in both (masks on a `maskSide` grid, scaled to `side`),
    /// and the share of the overlap they make up; nil correlation when they have no
    /// variance (an empty or flat background says nothing).
    static func surroundingsCorrelation(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, side: Int, dx: Int, dy: Int,
        maskA: UnsafePointer<Float>, maskB: UnsafePointer<Float>, maskSide: Int
    ) -> (correlation: Double?, share: Double) {
        let y0 = max(0, -dy), y1 = min(side, side - dy)
        let x0 = max(0, -dx), x1 = min(side, side - dx)
        var sa: Double = 0, sb: Double = 0, saa: Double = 0, sbb: Double = 0, sab: Double = 0, n = 0
        for y in y0..<y1 {
            let ma = maskA + (y * maskSide / side) * maskSide, mb = maskB + ((y + dy) * maskSide / side) * maskSide
            let ra = a + y * side, rb = b + (y + dy) * side + dx
            for x in x0..<x1 where ma[x * maskSide / side] > 0 && mb[(x + dx) * maskSide / side] > 0 {
                let u = Double(ra[x]), v = Double(rb[x])
                sa += u; sb += v; saa += u * u; sbb += v * v; sab += u * v; n += 1
            }
        }
        let share = Double(n) / Double(max(1, (y1 - y0) * (x1 - x0)))
        guard n >= 16 else { return (nil, share) }
        let m = Double(n)
        let cov = sab - sa * sb / m, va = saa - sa * sa / m, vb = sbb - sb * sb / m
        // Surroundings with under 3% of the image's (unit) variance per pixel are flat: no
        // red cells to match. Both flat says nothing; red cells on one side only where the
        // other is flat are a difference (correlation 0) when they are clear (a tenth of
        // the image's variance); fainter structure on one side says nothing.
        guard max(va, vb) > 0.03 * m else { return (nil, share) }
        guard min(va, vb) > 0.03 * m else { return (max(va, vb) > 0.1 * m ? 0 : nil, share) }
        return (cov / (va * vb).squareRoot(), share)
    }

    /// From this share of the overlap on, the surroundings weigh fully (below, in proportion:
    /// a cell that fills the frame is judged by itself).
    static let surroundingsFull = 0.35
    /// See `verify`: how far the surroundings may fall below the whole image's similarity for free.
    static let surroundingsTolerance = 0.1
    /// Coarse similarity from which a pair short of the threshold is tried rescaled, and the factors.
    static let rescaleFrom = 0.9
    /// Only pairs this close below the threshold are tried rescaled (the rest are not near).
    static let rescaleWithin = 0.2
    static let rescaleFactors: [Float] = [0.92, 0.96, 1.04, 1.08]

    /// `src` (a `side` x `side` grid) magnified by `factor` about its centre, bilinear,
    /// edges replicated.
    static func rescale(_ src: UnsafePointer<Float>, side n: Int, factor: Float, into dst: UnsafeMutablePointer<Float>) {
        let c = Float(n - 1) / 2
        for y in 0..<n {
            let sy = min(Float(n - 1), max(0, c + (Float(y) - c) / factor))
            let y0 = min(n - 2, Int(sy)), fy = sy - Float(y0)
            for x in 0..<n {
                let sx = min(Float(n - 1), max(0, c + (Float(x) - c) / factor))
                let x0 = min(n - 2, Int(sx)), fx = sx - Float(x0)
                let top = src[y0 * n + x0] * (1 - fx) + src[y0 * n + x0 + 1] * fx
                let bottom = src[(y0 + 1) * n + x0] * (1 - fx) + src[(y0 + 1) * n + x0 + 1] * fx
                dst[y * n + x] = top * (1 - fy) + bottom * fy
            }
        }
    }

    /// How one verified pair matched: its similarity, the orientation of b (`orient`
    /// code) and whether the best match needed a shift.
    public struct Match: Sendable, Equatable {
        public var similarity: Double
        public var orientation: Int
        public var shifted: Bool
    }

    /// Verifies one pair of feature vectors in the orientations of `orientations` (bits):
    /// the coarse similarity picks the orientation (nil when it is below the coarse gate
    /// in all), then the pair's similarity is the mean of the coarse and detail values,
    /// weighed down by the surroundings: where the leukocyte leaves a share f of the
    /// overlap to its surroundings in both images, the similarity moves towards the
    /// surroundings' own (mean of their coarse and detail correlations, if lower) by
    /// min(1, f / `surroundingsFull`). A different cell of the same shape on a different
    /// background is refused by its background; a cell that fills the frame is judged by
    /// itself. `scratch` holds at least `featureLength` + `detailSide`² floats.
    static func verify(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, orientations: UInt8, parameters p: NearDuplicateParameters,
        scratch: UnsafeMutablePointer<Float>
    ) -> Match? {
        let cs = p.side * p.side, ds = p.detailSide * p.detailSide
        var best: (similarity: Double, dx: Int, dy: Int, k: Int) = (-2, 0, 0, 0)
        for k in 0..<8 where orientations & (1 << UInt8(k)) != 0 {
            let bc: UnsafePointer<Float>
            if k == 0 {
                bc = b
            } else {
                orient(b, side: p.side, k, into: scratch)
                bc = UnsafePointer(scratch)
            }
            let c = bestShift(a, bc, side: p.side, maxShift: p.maxShift)
            if c.similarity > best.similarity { best = (c.similarity, c.dx, c.dy, k) }
        }
        guard best.similarity >= p.coarseGate else { return nil }
        let k = best.k
        // b in orientation k: coarse, detail and mask in the scratch buffer, same layout.
        let bb: UnsafePointer<Float>
        if k == 0 {
            bb = b
        } else {
            orient(b, side: p.side, k, into: scratch)
            orient(b + cs, side: p.detailSide, k, into: scratch + cs)
            orient(b + cs + ds, side: p.side, k, into: scratch + cs + ds)
            bb = UnsafePointer(scratch)
        }
        func score(_ bd: UnsafePointer<Float>) -> (similarity: Double, dx: Int, dy: Int) {
            let detail = bestShift(a + cs, bd, side: p.detailSide, maxShift: p.detailShift)
            var similarity = (best.similarity + detail.similarity) / 2
            let coarseAround = surroundingsCorrelation(
                a, bb, side: p.side, dx: best.dx, dy: best.dy, maskA: a + cs + ds, maskB: bb + cs + ds, maskSide: p.side)
            let detailAround = surroundingsCorrelation(
                a + cs, bd, side: p.detailSide, dx: detail.dx, dy: detail.dy, maskA: a + cs + ds, maskB: bb + cs + ds,
                maskSide: p.side)
            let arounds = [coarseAround.correlation, detailAround.correlation].compactMap { $0 }
            if !arounds.isEmpty {
                // The surroundings' correlations run a little below the whole image's for the
                // same photograph (their texture is fainter than the cell's, so noise weighs
                // more); only a shortfall beyond `surroundingsTolerance` counts against the pair.
                // A flat part (coarse or detail) says nothing and is left out.
                let around = arounds.reduce(0, +) / Double(arounds.count) + surroundingsTolerance
                let w = min(1, detailAround.share / surroundingsFull)
                if around < similarity { similarity -= w * (similarity - around) }
            }
            return (similarity, detail.dx, detail.dy)
        }
        var found = score(bb + cs)
        var rescaled = false
        // A crop of another size, fitted back, is the same cell at a slightly other scale:
        // when the coarse match is clear but the similarity falls a little short, b's
        // detail is tried rescaled about its centre.
        if found.similarity < p.threshold && found.similarity >= p.threshold - rescaleWithin && best.similarity >= rescaleFrom {
            let tmp = scratch + p.featureLength
            for f in rescaleFactors {
                rescale(bb + cs, side: p.detailSide, factor: f, into: tmp)
                let r = score(UnsafePointer(tmp))
                if r.similarity > found.similarity { found = r; rescaled = true }
            }
        }
        let similarity = found.similarity
        let shifted = best.dx != 0 || best.dy != 0 || abs(found.dx) > 1 || abs(found.dy) > 1 || rescaled
        return Match(similarity: similarity, orientation: k, shifted: shifted)
    }

    /// Verified pairs among `count` images' features (flattened, `featureLength` each)
    /// with a similarity of at least `floor`: prefilter, then `verify` (coarse similarity
    /// of at least `coarseGate` in the best of the candidate orientations, detail
    /// similarity, surroundings). `compared` is told how many candidate pairs passed the prefilter.
    ///
    /// Mirrored and turned copies are found: the prefilter compares each pair's
    /// signatures in all eight orientations (the cost of two dot products, not eight:
    /// `parityOrder`), and verification tries only the orientations the prefilter
    /// ranks near the best (at most `maxOrientations`); below `prefilterFrom` images
    /// every pair is verified in all eight.
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
        var cand: [Candidate]
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
            cand = (0..<count).flatMap { i in ((i + 1)..<count).map { Candidate(i: i, j: $0, orientations: 0xFF) } }
        }
        compared?(cand.count)
        func verifyAll(_ list: ArraySlice<Candidate>) -> [Match?] {
            let chunk = 16
            let base = list.startIndex
            return Parallel.map((list.count + chunk - 1) / chunk) { c -> [Match?] in
                var scratch = [Float](repeating: 0, count: stride + p.detailSide * p.detailSide)
                return features.withUnsafeBufferPointer { fb in
                    scratch.withUnsafeMutableBufferPointer { sp in
                        let f = fb.baseAddress!
                        return ((base + c * chunk)..<min(list.endIndex, base + (c + 1) * chunk)).map { k in
                            verify(
                                f + list[k].i * stride, f + list[k].j * stride, orientations: list[k].orientations, parameters: p,
                                scratch: sp.baseAddress!)
                        }
                    }
                }
            }.flatMap { $0 }
        }
        func pair(_ c: Candidate, _ m: Match) -> NearDuplicatePair {
            NearDuplicatePair(a: c.i, b: c.j, similarity: m.similarity, orientation: m.orientation, shifted: m.shifted)
        }
        guard bounded else {
            return zip(cand, verifyAll(cand[...])).compactMap { c, m in m.flatMap { $0.similarity >= floor ? pair(c, $0) : nil } }
        }
        // Batches in candidate order; before each, drop the pairs already joined.
        var sets = DisjointSets(count)
        var out: [NearDuplicatePair] = []
        let batch = max(64, 16 * ProcessInfo.processInfo.activeProcessorCount)
        var next = 0
        while next < cand.count {
            var todo: [Candidate] = []
            while next < cand.count && todo.count < batch {
                let c = cand[next]
                if sets.find(c.i) != sets.find(c.j) { todo.append(c) }
                next += 1
            }
            for (c, m) in zip(todo, verifyAll(todo[...])) {
                guard let m, m.similarity >= floor else { continue }
                out.append(pair(c, m))
                if m.similarity >= p.threshold { sets.join(c.i, c.j) }
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
        let strong = pairs.filter { $0.similarity >= parameters.threshold }
        for c in comps {
            let sorted = c.members.sorted { ids[$0] < ids[$1] }
            let inGroup = Set(c.members)
            let links = strong.filter { inGroup.contains($0.a) }.map { p -> (String, String, String) in
                let v = FileSystemPath.visible
                return ids[p.a] <= ids[p.b]
                    ? (ids[p.a], ids[p.b], "\(v(ids[p.a])) ~ \(v(ids[p.b])): \(p.transform())")
                    : (ids[p.b], ids[p.a], "\(v(ids[p.b])) ~ \(v(ids[p.a])): \(p.transform(fromB: true))")
            }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
            groups.append(
                NearDuplicateGroup(
                    members: sorted.map { ids[$0] }, classes: sorted.map { items[$0].className },
                    similarity: c.similarity, links: links))
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
