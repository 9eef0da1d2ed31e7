import CytoSupport
import Foundation

/// Generated sets with known near-duplicates, to measure the detector's precision and
/// recall: each "photograph" is one synthetic smear, and its "crops" are windows of it
/// at shifted positions (and sometimes another crop size), with brightness, contrast and
/// colour jitter — the way ALL-IDB2's duplicates arose. Different photographs of the
/// same cell type are the look-alikes the detector must not join.
public struct NearDuplicateEvaluationSet: Sendable {
    public var images: [RGBImage]
    /// The photograph each image was cut from; same source = true near-duplicates.
    public var source: [Int]
    public var kinds: [CellKind]
    public let size: Int

    /// How far crops differ from the centred window.
    public struct Jitter: Sendable {
        /// Largest shift of the window, as a fraction of the image size.
        public var shift = 0.03
        /// Largest change of the crop size (then fitted back with `pad`), as a fraction.
        public var cropChange = 0.06
        /// Largest brightness offset (0...255 units) and contrast factor change.
        public var brightness = 15.0
        public var contrast = 0.15
        /// Largest per-channel gain change (colour).
        public var colour = 0.06
        public init() {}
    }

    /// `photographs` smears of `kinds` (round robin), `cropsPerPhotograph` crops each, `size` x `size`.
    public static func make(
        photographs: Int, cropsPerPhotograph: Int, size: Int = 128,
        kinds: [CellKind] = [.lymphoblast, .lymphocyte, .myeloblast, .segmentedNeutrophil],
        jitter: Jitter = Jitter(), seed: UInt64 = 1
    ) -> NearDuplicateEvaluationSet {
        let margin = Int((Double(size) * (jitter.shift + jitter.cropChange)).rounded(.up)) + 2
        let canvas = size + 2 * margin
        var images: [RGBImage] = [], source: [Int] = [], kindOf: [CellKind] = []
        var rng = SeededGenerator.stream(seed: seed, "near-duplicate-set")
        func u(_ r: Double) -> Double { (Double(rng.nextUnitFloat()) * 2 - 1) * r }
        for ph in 0..<photographs {
            let kind = kinds[ph % kinds.count]
            let smear = SyntheticCells.render(kind: kind, size: canvas, seed: seed &+ UInt64(ph) &* 7919)
            for k in 0..<cropsPerPhotograph {
                // The first crop is the centred window; the others move and change.
                let side = k == 0 ? size : max(8, size + Int(u(jitter.cropChange) * Double(size)))
                let maxOff = (canvas - side) / 2
                let shiftPx = Int(jitter.shift * Double(size))
                let ox = maxOff + (k == 0 ? 0 : Int(u(Double(shiftPx)).rounded()))
                let oy = maxOff + (k == 0 ? 0 : Int(u(Double(shiftPx)).rounded()))
                let b = k == 0 ? 0 : u(jitter.brightness), c = k == 0 ? 1 : 1 + u(jitter.contrast)
                let gains = k == 0 ? [1.0, 1.0, 1.0] : (0..<3).map { _ in 1 + u(jitter.colour) }
                var px = [UInt8](repeating: 0, count: side * side * 3)
                for y in 0..<side {
                    for x in 0..<side {
                        for ch in 0..<3 {
                            let v = Double(smear.pixels[((oy + y) * canvas + ox + x) * 3 + ch])
                            let w = ((v - 128) * c + 128 + b) * gains[ch]
                            px[(y * side + x) * 3 + ch] = UInt8(max(0, min(255, w.rounded())))
                        }
                    }
                }
                let (fitted, _) = fitImage(RGBImage(width: side, height: side, pixels: px), height: size, width: size, policy: .pad)
                images.append(fitted); source.append(ph); kindOf.append(kind)
            }
        }
        return NearDuplicateEvaluationSet(images: images, source: source, kinds: kindOf, size: size)
    }

    /// Precision and recall of near-duplicate pairs at one threshold.
    public struct Point: Sendable, Equatable {
        public var threshold: Double
        public var truePositives: Int
        public var falsePositives: Int
        public var falseNegatives: Int
        public var precision: Double {
            truePositives + falsePositives == 0 ? 1 : Double(truePositives) / Double(truePositives + falsePositives)
        }
        public var recall: Double {
            truePositives + falseNegatives == 0 ? 1 : Double(truePositives) / Double(truePositives + falseNegatives)
        }
    }

    /// The detector's pairs (prefilter and verification as in a data set scan) scored
    /// against the truth at each threshold.
    public func evaluate(parameters: NearDuplicateParameters, thresholds: [Double]) -> [Point] {
        let feats = featureArray(parameters)
        let floor = thresholds.min() ?? parameters.threshold
        let found = NearDuplicates.pairs(features: feats, count: images.count, parameters: parameters, floor: floor, bounded: false)
        var truePairs = 0
        for i in images.indices { for j in (i + 1)..<images.count where source[i] == source[j] { truePairs += 1 } }
        return thresholds.map { t in
            let hits = found.filter { $0.similarity >= t }
            let tp = hits.filter { source[$0.a] == source[$0.b] }.count
            return Point(threshold: t, truePositives: tp, falsePositives: hits.count - tp, falseNegatives: truePairs - tp)
        }
    }

    /// Every pair without the prefilter: (same photograph?, same kind?, coarse similarity
    /// (best orientation), the pair's similarity (`NearDuplicates.verify` in all eight
    /// orientations; nil below the coarse gate), prefilter cosine (best orientation;
    /// signatures standardised over this set whatever its size)).
    public func allPairs(
        parameters p: NearDuplicateParameters
    )
        -> [(same: Bool, sameKind: Bool, coarse: Double, detail: Double?, cosine: Double)]
    {
        let feats = featureArray(p)
        let stride = p.featureLength
        let d = p.dctSize * p.dctSize - 1
        var q = p
        q.prefilterFrom = 2
        let flat = NearDuplicates.prefilterSignatures(features: feats, count: images.count, parameters: q)!
        let starts = NearDuplicates.parityOrder(size: p.dctSize).starts
        var out: [(Bool, Bool, Double, Double?, Double)] = []
        var scratch = [Float](repeating: 0, count: stride + p.detailSide * p.detailSide)
        feats.withUnsafeBufferPointer { fb in
            flat.withUnsafeBufferPointer { sb in
                scratch.withUnsafeMutableBufferPointer { sp in
                    let f = fb.baseAddress!
                    for i in images.indices {
                        for j in (i + 1)..<images.count {
                            let a = f + i * stride, b = f + j * stride
                            var coarse = -1.0
                            for k in 0..<8 {
                                NearDuplicates.orient(b, side: p.side, k, into: sp.baseAddress!)
                                coarse = max(coarse, NearDuplicates.similarity(a, sp.baseAddress!, side: p.side, maxShift: p.maxShift))
                            }
                            let m = NearDuplicates.verify(a, b, orientations: 0xFF, parameters: p, scratch: sp.baseAddress!)
                            let c = NearDuplicates.orientedCosines(sb.baseAddress!, i, j, d: d, starts: starts).max() ?? -1
                            out.append((source[i] == source[j], kinds[i] == kinds[j], coarse, m?.similarity, Double(c)))
                        }
                    }
                }
            }
        }
        return out
    }

    func featureArray(_ p: NearDuplicateParameters) -> [Float] {
        images.flatMap { img in
            img.pixels.withUnsafeBufferPointer { NearDuplicates.features($0, height: img.height, width: img.width, parameters: p) }
        }
    }
}

/// The kinds of near-duplicate a careful person recognises, and the look-alike they
/// do not mistake for one; generated sets plant each (`NearDuplicateEvaluationSet.makeCases`,
/// `cytocl synth --near-duplicate-cases`).
public enum NearDuplicateCase: String, Sendable, CaseIterable {
    /// Another crop of the photograph: shifted, re-cropped, brightness/contrast/colour jitter.
    case shift
    /// Such a crop mirrored left-right, or turned clockwise by 90, 180 or 270 degrees.
    case mirror, rot90, rot180, rot270
    /// A strongly magnified cell that fills the frame (hardly any background), cropped twice.
    case frameFilling = "frame-filling"
    /// A byte-identical copy.
    case identical
    /// Not a duplicate: a cell drawn with the same outline, nucleus and chromatin on
    /// different surroundings (other red cells, stain, illumination and noise): only the
    /// surroundings tell it from a copy, as only they told the real pair of small round
    /// lymphocytes apart. Must not be grouped.
    case lookalike = "look-alike"

    public var isDuplicate: Bool { self != .lookalike }

    /// The `NearDuplicates.orient` code whose name this case's turn has (0: none).
    var orientation: Int { ["mirror": 2, "rot90": 5, "rot180": 3, "rot270": 6][rawValue] ?? 0 }
}

extension RGBImage {
    /// This image mirrored left-right or turned clockwise (the turn of `NearDuplicateCase`;
    /// other cases return it unchanged).
    public func oriented(_ c: NearDuplicateCase) -> RGBImage {
        let w = width, h = height
        let turned = c == .rot90 || c == .rot270
        let (nw, nh) = turned ? (h, w) : (w, h)
        guard [.mirror, .rot90, .rot180, .rot270].contains(c) else { return self }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<nh {
            for x in 0..<nw {
                let (sx, sy): (Int, Int)
                switch c {
                case .mirror: (sx, sy) = (w - 1 - x, y)
                case .rot90: (sx, sy) = (y, h - 1 - x)
                case .rot180: (sx, sy) = (w - 1 - x, h - 1 - y)
                default: (sx, sy) = (w - 1 - y, x)  // rot270
                }
                for ch in 0..<3 { out[(y * nw + x) * 3 + ch] = pixels[(sy * w + sx) * 3 + ch] }
            }
        }
        return RGBImage(width: nw, height: nh, pixels: out)
    }
}

extension NearDuplicateEvaluationSet {
    /// A crop of `side` at (ox, oy) of a `canvas`-sized smear with brightness b, contrast c
    /// and per-channel gains, fitted (padded) to `size`.
    static func cut(
        _ smear: RGBImage, canvas: Int, side: Int, ox: Int, oy: Int, b: Double, c: Double, gains: [Double], size: Int
    ) -> RGBImage {
        var px = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                for ch in 0..<3 {
                    let v = Double(smear.pixels[((oy + y) * canvas + ox + x) * 3 + ch])
                    px[(y * side + x) * 3 + ch] = UInt8(max(0, min(255, (((v - 128) * c + 128 + b) * gains[ch]).rounded())))
                }
            }
        }
        return fitImage(RGBImage(width: side, height: side, pixels: px), height: size, width: size, policy: .pad).0
    }

    /// A set with `groupsPerCase` groups of each case in `cases`, two images per group,
    /// `size` x `size`: the first image is the centred crop of a smear, the second made
    /// from it as the case says (look-alikes: a second smear with the same cell on other
    /// surroundings, and its own source). `caseOf` names each
    /// image's case. Different groups are different cells (the look-alikes of each other).
    /// Look-alikes are drawn magnified (the cell about half the frame, as in ALL-IDB2's
    /// tight crops), so that the cell weighs as much as its surroundings.
    static let lookalikeZoom: Float = 3.2

    public static func makeCases(
        groupsPerCase: Int, size: Int = 96, cases: [NearDuplicateCase] = NearDuplicateCase.allCases,
        kinds: [CellKind] = [.lymphocyte, .lymphoblast, .myeloblast, .segmentedNeutrophil],
        jitter: Jitter = Jitter(), seed: UInt64 = 1
    ) -> (set: NearDuplicateEvaluationSet, caseOf: [NearDuplicateCase]) {
        let margin = Int((Double(size) * (jitter.shift + jitter.cropChange)).rounded(.up)) + 2
        let canvas = size + 2 * margin
        var images: [RGBImage] = [], source: [Int] = [], kindOf: [CellKind] = [], caseOf: [NearDuplicateCase] = []
        var rng = SeededGenerator.stream(seed: seed, "near-duplicate-cases")
        func u(_ r: Double) -> Double { (Double(rng.nextUnitFloat()) * 2 - 1) * r }
        func jittered(_ smear: RGBImage) -> RGBImage {
            let side = max(8, size + Int(u(jitter.cropChange) * Double(size)))
            let maxOff = (canvas - side) / 2
            let shiftPx = Double(Int(jitter.shift * Double(size)))
            let ox = maxOff + Int(u(shiftPx).rounded()), oy = maxOff + Int(u(shiftPx).rounded())
            return cut(
                smear, canvas: canvas, side: side, ox: ox, oy: oy, b: u(jitter.brightness), c: 1 + u(jitter.contrast),
                gains: (0..<3).map { _ in 1 + u(jitter.colour) }, size: size)
        }
        func centred(_ smear: RGBImage) -> RGBImage {
            cut(smear, canvas: canvas, side: size, ox: margin, oy: margin, b: 0, c: 1, gains: [1, 1, 1], size: size)
        }
        var photo = 0
        for (ci, c) in cases.enumerated() {
            for g in 0..<groupsPerCase {
                let kind = kinds[g % kinds.count]
                let s = seed &+ UInt64(ci * 100_003 + g) &* 7919
                if c == .lookalike {
                    let z = lookalikeZoom * Float(size) / Float(canvas)
                    let first = SyntheticCells.render(kind: kind, size: canvas, zoom: z, surroundingsSeed: s, cellSeed: s, textureSeed: s)
                    let second = SyntheticCells.render(
                        kind: kind, size: canvas, zoom: z, surroundingsSeed: s &+ 1, cellSeed: s, textureSeed: s)
                    images += [centred(first), jittered(second)]
                    source += [photo, photo + 1]
                    photo += 2
                } else {
                    let smear =
                        c == .frameFilling
                        ? SyntheticCells.renderMagnified(kind: kind, size: canvas, seed: s, canvasScale: Float(size) / Float(canvas))
                        : SyntheticCells.render(kind: kind, size: canvas, seed: s)
                    let a = centred(smear)
                    images += [a, c == .identical ? a : jittered(smear).oriented(c)]
                    source += [photo, photo]
                    photo += 1
                }
                kindOf += [kind, kind]
                caseOf += [c, c]
            }
        }
        return (NearDuplicateEvaluationSet(images: images, source: source, kinds: kindOf, size: size), caseOf)
    }

    /// Per case: the case's pairs (true pairs, or look-alike pairs) and how many of them
    /// the detector joined at `parameters.threshold` (prefilter and verification as in a
    /// scan, with every candidate verified), and the pairs' similarities (nil: not a candidate or below the coarse gate).
    public func evaluateCases(
        _ caseOf: [NearDuplicateCase], parameters: NearDuplicateParameters
    ) -> [(case: NearDuplicateCase, pairs: Int, joined: Int, similarities: [Double?], falseJoins: Int)] {
        let feats = featureArray(parameters)
        let found = NearDuplicates.pairs(features: feats, count: images.count, parameters: parameters, floor: -1, bounded: false)
        var sim: [[Int]: Double] = [:]
        for p in found { sim[[p.a, p.b]] = p.similarity }
        var out: [(NearDuplicateCase, Int, Int, [Double?], Int)] = []
        for c in NearDuplicateCase.allCases where caseOf.contains(c) {
            var pairs = 0, joined = 0, sims: [Double?] = [], falseJoins = 0
            for i in images.indices where caseOf[i] == c {
                // The group's partner: the next image of the same case and group (images come in twos).
                guard i % 2 == 0, i + 1 < images.count else { continue }
                let s = sim[[i, i + 1]]
                pairs += 1
                sims.append(s)
                if let s, s >= parameters.threshold { joined += 1 }
                // Joins of this group's images with any image of another source are false.
                for p in found where p.similarity >= parameters.threshold && (p.a == i || p.a == i + 1 || p.b == i || p.b == i + 1) {
                    if source[p.a] != source[p.b] && !(c == .lookalike && [p.a, p.b].sorted() == [i, i + 1]) { falseJoins += 1 }
                }
            }
            out.append((c, pairs, joined, sims, falseJoins))
        }
        return out
    }
}

extension NearDuplicateEvaluationSet {
    /// Another "photograph" of the cell in `image`: a window smaller by up to
    /// `jitter.cropChange` at a random offset (a shift of up to half that), brightness,
    /// contrast and colour jitter, fitted back to the original size.
    public static func recrop(_ image: RGBImage, jitter: Jitter = Jitter(), rng: inout SeededGenerator) -> RGBImage {
        func u(_ r: Double) -> Double { (Double(rng.nextUnitFloat()) * 2 - 1) * r }
        let S = min(image.width, image.height)
        let m = max(2, Int(jitter.cropChange * Double(S)))
        let w = S - m
        let ox = Int(rng.next() % UInt64(m + 1)), oy = Int(rng.next() % UInt64(m + 1))
        let b = u(jitter.brightness), c = 1 + u(jitter.contrast)
        let gains = (0..<3).map { _ in 1 + u(jitter.colour) }
        var px = [UInt8](repeating: 0, count: w * w * 3)
        for y in 0..<w {
            for x in 0..<w {
                for ch in 0..<3 {
                    let v = Double(image.pixels[((oy + y) * image.width + ox + x) * 3 + ch])
                    px[(y * w + x) * 3 + ch] = UInt8(max(0, min(255, (((v - 128) * c + 128 + b) * gains[ch]).rounded())))
                }
            }
        }
        return resize(RGBImage(width: w, height: w, pixels: px), height: image.height, width: image.width)
    }
}

extension SyntheticCells {
    /// Adds `count` near-duplicates to a generated set, of the kinds in `cases` taken in
    /// turn: copies of every k-th image, written beside them with the same class, named as
    /// the layout names files (ALL-IDB: numbering continues). `shift`: a re-crop
    /// (`recrop`); `mirror`/`rot90`/`rot180`/`rot270`: a re-crop mirrored or turned
    /// clockwise; `identical`: the same bytes; `frame-filling`: the original is redrawn
    /// magnified (the cell fills the frame) and re-cropped; `look-alike` (a decoy, not a
    /// near-duplicate): the original is redrawn magnified and a second image shows a cell
    /// of the same outline and nucleus shape, with other chromatin, on other surroundings
    /// (the real case: two small round lymphocytes; `makeCases` draws the harder decoy
    /// with the same chromatin too). Returns (original, new file, case) with relative paths.
    @discardableResult
    public static func addNearDuplicates(
        to report: SynthReport, count: Int, seed: UInt64, cases: [NearDuplicateCase] = [.shift]
    ) throws -> [(original: String, copy: String, case: NearDuplicateCase)] {
        guard count > 0 else { return [] }
        guard !cases.isEmpty else { throw DataError.invalidOption("synth: --near-duplicate-cases is empty") }
        let index = try DatasetIndex.load(path: report.directory.path, options: DatasetOptions(layout: report.layout))
        let items = index.items.sorted { $0.path < $1.path }
        guard count <= items.count else {
            throw DataError.invalidOption("synth: --near-duplicates \(count) is more than the \(items.count) images")
        }
        let step = items.count / count
        var rng = SeededGenerator.stream(seed: seed, "synth-near-duplicates")
        var made: [(String, String, NearDuplicateCase)] = []
        let root = report.directory.path
        func write(_ image: RGBImage, _ url: URL) throws {
            if url.pathExtension.lowercased() == "png" {
                try ImageCodec.writePNG(image, to: url, level: 1)
            } else {
                try ImageCodec.writeTIFF(image, to: url, compression: .none)
            }
        }
        for k in 0..<count {
            let item = items[k * step]
            let c = cases[k % cases.count]
            let dir = (item.path as NSString).deletingLastPathComponent
            let ext = (item.path as NSString).pathExtension
            let name: String
            switch report.layout {
            case .allIDB:
                let label = DatasetLayout.allIDBLabel((item.path as NSString).lastPathComponent) ?? 0
                name = "Im\(String(format: "%03d", items.count + k + 1))_\(label).\(ext)"
            default:
                let base = ((item.path as NSString).lastPathComponent as NSString).deletingPathExtension
                name = "\(base)_dup\(k + 1).\(ext)"
            }
            let url = URL(fileURLWithPath: dir).appendingPathComponent(name)
            let originalURL = URL(fileURLWithPath: item.path)
            let kind = cellKind(of: item, layout: report.layout)
            let size = report.size
            let s = seed &+ UInt64(k + 1) &* 104_729
            switch c {
            case .identical:
                try Data(FileBytes.read(item.path)).write(to: url)
            case .frameFilling:
                let magnified = renderMagnified(kind: kind, size: size, seed: s)
                try write(magnified, originalURL)
                try write(NearDuplicateEvaluationSet.recrop(magnified, rng: &rng), url)
            case .lookalike:
                let z = NearDuplicateEvaluationSet.lookalikeZoom
                try write(render(kind: kind, size: size, zoom: z, surroundingsSeed: s, cellSeed: s, textureSeed: s), originalURL)
                try write(render(kind: kind, size: size, zoom: z, surroundingsSeed: s &+ 1, cellSeed: s, textureSeed: s &+ 2), url)
            default:
                let original = try ImageCodec.decode(bytes: FileBytes.read(item.path), name: item.path)
                try write(NearDuplicateEvaluationSet.recrop(original, rng: &rng).oriented(c), url)
            }
            let prefix = root.hasSuffix("/") ? root : root + "/"
            made.append((String(item.path.dropFirst(prefix.count)), String(url.path.dropFirst(prefix.count)), c))
        }
        return made
    }

    /// The cell type drawn for an image of a generated set (ALL-IDB: lymphoblast or lymphocyte).
    static func cellKind(of item: DatasetItem, layout: DatasetLayout) -> CellKind {
        switch layout {
        case .allIDB: return item.label == 1 || item.className == "blast" ? .lymphoblast : .lymphocyte
        case .aml: return CellKind.amlFolders[item.className] ?? .lymphocyte
        default: return folderClasses.first { $0.0 == item.className }?.1 ?? .lymphocyte
        }
    }
}
