import CytoCore
import CytoData
import CytoExplain
import Foundation

/// Label-free descriptions of images, for choosing which ones to label. Each kind is
/// computed without any label, so the first picks of a study (the cold start) see no
/// labels at all; distances between rows are Euclidean after `Embedding.standardised`.
public enum EmbeddingKind: String, Sendable, Codable, CaseIterable {
    /// Colour and texture statistics of the stained cell (`StainFeatures`).
    case stain
    /// Hidden dense activations of the paper's network, randomly initialised with a fixed
    /// seed (`RandomNetworkFeatures`).
    case randomNetwork = "random-network"
    /// Both of the above, each block weighted to the same total variance.
    case combined
    /// A 6x6 RGB thumbnail: the naive baseline the others are measured against.
    case thumbnail
    /// The paper's network pre-trained without labels on the images themselves, two
    /// augmented views of each pulled together (SimCLR; `ContrastiveFeatures`).
    case contrastive
}

public enum Embedding {
    /// Rows of `kind` for `count` images (HWC uint8, back to back in `pixels`).
    /// `backend` runs the random and the pre-trained network (`.stain` and `.thumbnail`
    /// do not use it).
    /// `contrastive` sets the pre-training of `.contrastive` (the defaults unless a test
    /// needs a smaller one).
    public static func compute(
        _ kind: EmbeddingKind, pixels: [UInt8], count: Int, height: Int, width: Int, backend: any Backend,
        contrastive: ContrastiveOptions = ContrastiveOptions()
    ) throws -> [[Float]] {
        switch kind {
        case .stain: return standardised(StainFeatures.rows(pixels: pixels, count: count, height: height, width: width))
        case .thumbnail: return standardised(thumbnails(pixels: pixels, count: count, height: height, width: width))
        case .randomNetwork:
            return standardised(
                try RandomNetworkFeatures.rows(pixels: pixels, count: count, height: height, width: width, backend: backend))
        case .contrastive:
            return standardised(
                try ContrastiveFeatures.rows(
                    pixels: pixels, count: count, height: height, width: width, backend: backend, options: contrastive))
        case .combined:
            let a = standardised(StainFeatures.rows(pixels: pixels, count: count, height: height, width: width))
            let b = standardised(
                try RandomNetworkFeatures.rows(pixels: pixels, count: count, height: height, width: width, backend: backend))
            return concatenated([a, b])
        }
    }

    /// Columns scaled to mean 0 and standard deviation 1 over the rows; constant columns
    /// (no information, and a division by zero) are dropped. Without this the stain
    /// statistics' pixel-valued columns would outweigh the fractions.
    public static func standardised(_ rows: [[Float]]) -> [[Float]] {
        guard let d = rows.first?.count, rows.count > 1 else { return rows }
        var mean = [Double](repeating: 0, count: d), sq = [Double](repeating: 0, count: d)
        for r in rows { for j in 0..<d { mean[j] += Double(r[j]) } }
        for j in 0..<d { mean[j] /= Double(rows.count) }
        for r in rows { for j in 0..<d { let v = Double(r[j]) - mean[j]; sq[j] += v * v } }
        let sd = sq.map { ($0 / Double(rows.count)).squareRoot() }
        let keep = (0..<d).filter { sd[$0] > 1e-9 }
        return rows.map { r in keep.map { Float((Double(r[$0]) - mean[$0]) / sd[$0]) } }
    }

    /// Blocks of standardised rows side by side, each divided by the square root of its
    /// width so that every block adds the same expected squared distance.
    public static func concatenated(_ blocks: [[[Float]]]) -> [[Float]] {
        guard let n = blocks.first?.count else { return [] }
        return (0..<n).map { i in
            blocks.flatMap { b -> [Float] in
                let w = Float(1 / Double(max(1, b[i].count)).squareRoot())
                return b[i].map { $0 * w }
            }
        }
    }

    /// Area-averaged `side` x `side` RGB thumbnails.
    public static func thumbnails(pixels: [UInt8], count: Int, height: Int, width: Int, side: Int = 6) -> [[Float]] {
        let n = height * width * 3
        return Parallel.map(count, chunk: 16) { i in
            var out = [Float](repeating: 0, count: side * side * 3)
            var cnt = [Float](repeating: 0, count: side * side)
            for y in 0..<height {
                for x in 0..<width {
                    let b = (y * side / height) * side + x * side / width
                    let p = i * n + (y * width + x) * 3
                    for c in 0..<3 { out[b * 3 + c] += Float(pixels[p + c]) }
                    cnt[b] += 1
                }
            }
            for b in 0..<(side * side) { for c in 0..<3 { out[b * 3 + c] /= max(1, cnt[b]) } }
            return out
        }
    }
}

/// Colour and texture statistics of the stained cell, region by region. The cell is
/// found by its stain with the near-duplicate finder's mask (`NearDuplicates.surroundings`:
/// nucleus and cytoplasm are bluer than red cells and background); inside it, the
/// nucleus is the darker part in green (Otsu's threshold), as Romanowsky stains colour
/// chromatin deep purple. What tells leukocyte types apart to a hematologist is measured
/// directly: nuclear size and lobulation, cytoplasm colour and granularity.
public enum StainFeatures {
    /// Bins per side of the cell mask.
    static let maskSide = 16

    /// Column names, in order (for documentation and tests).
    public static let names: [String] = {
        var n: [String] = []
        for region in ["nucleus", "cytoplasm", "surroundings"] {
            for s in ["mean", "sd"] { for c in ["r", "g", "b"] { n.append("\(region)_\(s)_\(c)") } }
        }
        n += ["cell_fraction", "nucleus_to_cell", "nucleus_boundary_ratio", "nucleus_components"]
        n += ["nucleus_gradient", "cytoplasm_gradient", "cytoplasm_granularity"]
        n += (0..<8).map { "cell_green_bin\($0)" }
        return n
    }()

    public static func rows(pixels: [UInt8], count: Int, height: Int, width: Int) -> [[Float]] {
        let n = height * width * 3
        precondition(pixels.count >= count * n)
        return Parallel.map(count, chunk: 8) { i in
            pixels.withUnsafeBufferPointer { all in
                row(UnsafeBufferPointer(rebasing: all[(i * n)..<((i + 1) * n)]), height: height, width: width)
            }
        }
    }

    /// The statistics of one HWC image.
    public static func row(_ rgb: UnsafeBufferPointer<UInt8>, height h: Int, width w: Int) -> [Float] {
        let side = maskSide
        let bins = NearDuplicates.surroundings(rgb, height: h, width: w, side: side)
        let m = h * w
        var cell = [Bool](repeating: false, count: m)
        for y in 0..<h { for x in 0..<w where bins[(y * side / h) * side + x * side / w] == 0 { cell[y * w + x] = true } }
        var cellCount = cell.lazy.filter { $0 }.count
        if cellCount == 0 {  // no stain contrast: the whole frame is the "cell"
            cell = [Bool](repeating: true, count: m); cellCount = m
        }
        let green = (0..<m).map { Int(rgb[$0 * 3 + 1]) }
        // Otsu on green inside the cell: the darker class is the nucleus.
        var hist = [Int](repeating: 0, count: 256)
        for k in 0..<m where cell[k] { hist[green[k]] += 1 }
        let threshold = otsu(hist)
        var nucleus = [Bool](repeating: false, count: m)
        for k in 0..<m where cell[k] && green[k] <= threshold { nucleus[k] = true }
        var out: [Float] = []
        // Per region: mean and sd of r, g, b.
        for region in 0..<3 {
            var s = [Double](repeating: 0, count: 3), s2 = [Double](repeating: 0, count: 3), cnt = 0.0
            for k in 0..<m {
                let inRegion = region == 0 ? nucleus[k] : region == 1 ? (cell[k] && !nucleus[k]) : !cell[k]
                guard inRegion else { continue }
                cnt += 1
                for c in 0..<3 { let v = Double(rgb[k * 3 + c]); s[c] += v; s2[c] += v * v }
            }
            for c in 0..<3 { out.append(cnt > 0 ? Float(s[c] / cnt) : 0) }
            for c in 0..<3 { out.append(cnt > 0 ? Float(max(0, s2[c] / cnt - (s[c] / cnt) * (s[c] / cnt)).squareRoot()) : 0) }
        }
        let nucleusCount = nucleus.lazy.filter { $0 }.count
        out.append(Float(cellCount) / Float(m))
        out.append(Float(nucleusCount) / Float(max(1, cellCount)))
        // Lobulation: boundary pixels against the boundary of a disc of the same area.
        var boundary = 0
        for y in 0..<h {
            for x in 0..<w where nucleus[y * w + x] {
                let edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !nucleus[y * w + x - 1] || !nucleus[y * w + x + 1]
                    || !nucleus[(y - 1) * w + x] || !nucleus[(y + 1) * w + x]
                if edge { boundary += 1 }
            }
        }
        out.append(nucleusCount > 0 ? Float(Double(boundary) / (2 * (Double.pi * Double(nucleusCount)).squareRoot())) : 0)
        out.append(Float(min(components(nucleus, height: h, width: w, minimumSize: max(4, m / 400)), 6)))
        // Texture: mean absolute green gradient inside nucleus and cytoplasm, and the
        // granularity (mean |Laplacian|) of the cytoplasm.
        var gn = 0.0, gc = 0.0, lap = 0.0, nn = 0.0, nc = 0.0
        for y in 1..<max(1, h - 1) {
            for x in 1..<max(1, w - 1) {
                let k = y * w + x
                guard cell[k] else { continue }
                let gx = Double(green[k + 1] - green[k - 1]), gy = Double(green[k + w] - green[k - w])
                let g = (gx * gx + gy * gy).squareRoot()
                if nucleus[k] {
                    gn += g; nn += 1
                } else {
                    gc += g; nc += 1
                    lap += abs(Double(4 * green[k] - green[k - 1] - green[k + 1] - green[k - w] - green[k + w]))
                }
            }
        }
        out.append(Float(nn > 0 ? gn / nn : 0))
        out.append(Float(nc > 0 ? gc / nc : 0))
        out.append(Float(nc > 0 ? lap / nc : 0))
        // Green histogram of the cell, 8 bins, as fractions.
        var h8 = [Float](repeating: 0, count: 8)
        for v in 0..<256 { h8[v / 32] += Float(hist[v]) }
        out += h8.map { $0 / Float(max(1, cellCount)) }
        return out
    }

    /// Otsu's threshold of a 256-bin histogram (the last value of the darker class).
    static func otsu(_ hist: [Int]) -> Int {
        let total = Double(hist.reduce(0, +))
        guard total > 0 else { return 127 }
        let sumAll = hist.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.element) }
        var w0 = 0.0, sum0 = 0.0, best = -1.0, t = 127
        for v in 0..<255 {
            w0 += Double(hist[v]); sum0 += Double(v * hist[v])
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let m0 = sum0 / w0, m1 = (sumAll - sum0) / w1
            let between = w0 * w1 * (m0 - m1) * (m0 - m1)
            if between > best { best = between; t = v }
        }
        return t
    }

    /// 4-connected components of at least `minimumSize` pixels (nuclear lobes).
    static func components(_ mask: [Bool], height h: Int, width w: Int, minimumSize: Int) -> Int {
        var seen = [Bool](repeating: false, count: mask.count)
        var found = 0
        for start in 0..<mask.count where mask[start] && !seen[start] {
            var stack = [start], size = 0
            seen[start] = true
            while let k = stack.popLast() {
                size += 1
                let y = k / w, x = k % w
                for (ny, nx) in [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)] where ny >= 0 && ny < h && nx >= 0 && nx < w {
                    let j = ny * w + nx
                    if mask[j] && !seen[j] { seen[j] = true; stack.append(j) }
                }
            }
            if size >= minimumSize { found += 1 }
        }
        return found
    }
}

/// Activations of a randomly initialised network: random convolutions followed by
/// ReLU and max-pooling already separate colour and shape well enough to group
/// similar cells (a classic baseline for label-free features), and they run on any
/// backend the engine has.
public enum RandomNetworkFeatures {
    /// Seed of the random weights: fixed, so embeddings (and picks) are reproducible.
    public static let seed: UInt64 = 20_220_707
    /// Hidden units read out.
    public static let units = 64

    /// The paper's conv blocks (as many as the input size carries, at least one), one
    /// hidden dense layer of `units`.
    public static func spec(height: Int, width: Int) throws -> ModelSpec {
        try paperPrefixSpec(height: height, width: width, units: units, classes: 2, embedding: "random-network")
    }

    public static func rows(pixels: [UInt8], count: Int, height: Int, width: Int, backend: any Backend) throws -> [[Float]] {
        let spec = try spec(height: height, width: width)
        let net = try Network(spec: spec, backend: backend, maxBatch: 32)
        net.initialize(seed: seed)
        return try hiddenRows(of: net, pixels: pixels, count: count, height: height, width: width)
    }

    /// The paper's network cut to as many conv blocks as `height` x `width` carries (at
    /// least one), with one hidden dense layer of `units`: the encoder of the network
    /// embeddings (random and contrastive).
    static func paperPrefixSpec(height: Int, width: Int, units: Int, classes: Int, embedding: String) throws -> ModelSpec {
        let filters = ModelSpec.paper().convFilters
        for n in stride(from: filters.count, through: 1, by: -1) {
            let s = ModelSpec(
                inputHeight: height, inputWidth: width, convFilters: Array(filters.prefix(n)), denseUnits: [units],
                classes: classes)
            if (try? s.validate()) != nil { return s }
        }
        throw CytoError.invalidArgument("images of \(width)x\(height) are too small for a \(embedding) embedding (at least 4x4)")
    }

    /// The hidden dense layer of `net` for each of `count` HWC images in `pixels`.
    static func hiddenRows(of net: Network, pixels: [UInt8], count: Int, height: Int, width: Int) throws -> [[Float]] {
        let per = height * width * 3
        return try HiddenActivations.compute(network: net, count: count) { i in
            ExplainInput.chw(hwc: pixels[i * per..<(i + 1) * per], height: height, width: width, channels: 3)
        }
    }
}
