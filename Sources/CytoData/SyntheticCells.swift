import CytoSupport
import Foundation

/// The cell types the synthetic generator draws.
///
/// The AML-Cytomorphology_LMU classes plus the ALL lymphoblast; each has a
/// morphology recipe (`CellRecipe`) following the textbook descriptions the
/// paper's classes rest on, so that a tiny CNN has the same kind of cues to
/// learn (nucleus size and shape, chromatin, nucleoli, cytoplasm colour, granules).
public enum CellKind: String, Sendable, CaseIterable {
    case myeloblast, monoblast, lymphoblast
    case lymphocyte, atypicalLymphocyte
    case segmentedNeutrophil, bandNeutrophil
    case eosinophil, basophil, monocyte
    case promyelocyte, bilobedPromyelocyte, myelocyte, metamyelocyte
    case erythroblast, smudgeCell

    /// The AML-Cytomorphology_LMU folder of each AML kind.
    public static let amlFolders: [String: CellKind] = [
        "BAS": .basophil, "EBO": .erythroblast, "EOS": .eosinophil, "KSC": .smudgeCell,
        "LYA": .atypicalLymphocyte, "LYT": .lymphocyte, "MMZ": .metamyelocyte, "MOB": .monoblast,
        "MON": .monocyte, "MYB": .myelocyte, "MYO": .myeloblast, "NGB": .bandNeutrophil,
        "NGS": .segmentedNeutrophil, "PMB": .bilobedPromyelocyte, "PMO": .promyelocyte,
    ]

    public var isBlast: Bool { self == .myeloblast || self == .monoblast || self == .lymphoblast }
}

/// What `SyntheticCells.generate` wrote.
public struct SynthReport: Sendable {
    public var directory: URL
    public var layout: DatasetLayout
    public var size: Int
    /// Images per class folder / label, in writing order.
    public var classCounts: [(String, Int)]
    public var count: Int { classCounts.reduce(0) { $0 + $1.1 } }
}

/// Plausible single-cell smear images for demos, tests and the AML-scale stand-in.
///
/// A pale background under an uneven illumination, red cells (with central
/// pallor) scattered around, and one leukocyte near the centre drawn from its
/// class recipe, with per-image stain variation and sensor noise. Every image is
/// a pure function of (seed, layout, image number), so the set is identical
/// however many threads draw it.
public enum SyntheticCells {
    /// The 6 classes of the `folders` layout (the ALL-IDB six-class task's cell types).
    public static let folderClasses: [(String, CellKind)] = [
        ("basophil", .basophil), ("blast", .myeloblast), ("eosinophil", .eosinophil),
        ("lymphocyte", .lymphocyte), ("monocyte", .monocyte), ("neutrophil", .segmentedNeutrophil),
    ]

    public static func defaultSize(for layout: DatasetLayout) -> Int {
        switch layout {
        case .allIDB: return 257
        case .aml: return 400
        case .folders, .csv, .pool: return 128
        }
    }

    /// Images per class for `count` images: ALL-IDB half blasts; AML in the real
    /// set's proportions (exactly the real counts for 18,365), at least two per
    /// class from 30 images and one from 15 (below 15: the blasts, then the
    /// largest classes); folders evenly.
    public static func classCounts(layout: DatasetLayout, count: Int) -> [(String, Int)] {
        switch layout {
        case .allIDB:
            return [("blast", count / 2 + count % 2), ("other", count / 2)]
        case .folders, .csv, .pool:
            let k = folderClasses.count
            return folderClasses.enumerated().map { (i, c) in (c.0, count / k + (i < count % k ? 1 : 0)) }
        case .aml:
            let names = DatasetLayout.amlClasses
            let real = names.map { DatasetLayout.amlCounts[$0]! }
            let total = real.reduce(0, +)
            if count <= 0 { return names.map { ($0, 0) } }
            if count < names.count {
                // Too few for every class: the blasts first, then the largest classes.
                let order = names.indices.sorted {
                    let a = DatasetLayout.amlBlastClasses.contains(names[$0]), b = DatasetLayout.amlBlastClasses.contains(names[$1])
                    return a != b ? a : real[$0] > real[$1]
                }
                var c = [Int](repeating: 0, count: names.count)
                for i in order.prefix(count) { c[i] = 1 }
                return zip(names, c).map { ($0, $1) }
            }
            // Largest remainder with a floor of two (one below 30 images): a class
            // with a single image cannot be split, and the loader rejects it.
            let floor = count >= 2 * names.count ? 2 : 1
            let quotas = real.map { Double($0) * Double(count) / Double(total) }
            var c = quotas.map { max(floor, Int($0.rounded(.down))) }
            var sum = c.reduce(0, +)
            let byRemainder = names.indices.sorted { quotas[$0] - quotas[$0].rounded(.down) > quotas[$1] - quotas[$1].rounded(.down) }
            var k = 0
            while sum < count { c[byRemainder[k % names.count]] += 1; sum += 1; k += 1 }
            while sum > count {
                let i = c.indices.filter { c[$0] > floor }.max { Double(c[$0]) - quotas[$0] < Double(c[$1]) - quotas[$1] }!
                c[i] -= 1; sum -= 1
            }
            return zip(names, c).map { ($0, $1) }
        }
    }

    /// Draws the set into `dir` (created if needed) on all cores.
    @discardableResult
    public static func generate(
        into dir: URL, layout: DatasetLayout, count: Int, size: Int? = nil, seed: UInt64,
        progress: ProgressHandler? = nil
    ) throws -> SynthReport {
        guard layout != .csv else { throw DataError.invalidOption("synth: layout csv is not supported (use all-idb, aml or folders)") }
        guard count > 0 else { throw DataError.invalidOption("synth: --count must be positive") }
        let side = size ?? defaultSize(for: layout)
        guard side >= 16 && side <= 2048 else { throw DataError.invalidOption("synth: --size must be between 16 and 2048") }
        let counts = classCounts(layout: layout, count: count)
        // Jobs: (relative path, kind, per-image seed name)
        var jobs: [(String, CellKind?, String)] = []
        switch layout {
        case .allIDB:
            let digits = max(3, String(count).count)
            for i in 0..<count {
                let blast = i < counts[0].1
                let name = "Im" + String(repeating: "0", count: max(0, digits - String(i + 1).count)) + "\(i + 1)_\(blast ? 1 : 0).tif"
                jobs.append((name, blast ? .lymphoblast : nil, name))
            }
        case .aml:
            for (cls, n) in counts where n > 0 {
                for j in 0..<n {
                    let name = String(format: "%@/%@_%04d.tiff", cls, cls, j + 1)
                    jobs.append((name, CellKind.amlFolders[cls]!, name))
                }
            }
        case .folders, .csv, .pool:
            for (k, (cls, n)) in counts.enumerated() {
                for j in 0..<n { jobs.append((String(format: "%@/%@_%04d.png", cls, cls, j + 1), folderClasses[k].1, "\(cls)/\(j)")) }
            }
        }
        do { try OSPath.createDirectories(dir.path) } catch {  // byte for byte: `--out` may not be UTF-8
            throw DataError.writeFailed(path: dir.path, reason: "cannot create the folder")
        }
        for (cls, n) in counts where n > 0 && layout != .allIDB {
            try? OSPath.createDirectories(dir.appendingPathComponent(cls).path)
        }
        let zoom: Float = layout == .allIDB ? 1.3 : 1.0
        let failures = Parallel.map(jobs.count, progress: progress) { [jobs] i -> DataError? in
            let (rel, kindOrNil, seedName) = jobs[i]
            var rng = SeededGenerator.stream(seed: seed, "synth/\(layout.rawValue)/\(seedName)")
            let kind = kindOrNil ?? allIDBOther(&rng)
            let image = render(kind: kind, size: side, zoom: zoom, rng: &rng)
            let url = dir.appendingPathComponent(rel)
            do {
                if layout == .folders {
                    try ImageCodec.writePNG(image, to: url, level: 1)
                } else {
                    try ImageCodec.writeTIFF(image, to: url, compression: .none)
                }
                return nil
            } catch {
                return (error as? DataError) ?? .writeFailed(path: url.path, reason: "\(error)")
            }
        }
        if let e = failures.compactMap({ $0 }).first { throw e }
        return SynthReport(directory: dir, layout: layout, size: side, classCounts: counts)
    }

    /// The non-blast cells of ALL-IDB2: mostly normal lymphocytes, some other leukocytes.
    static func allIDBOther(_ rng: inout SeededGenerator) -> CellKind {
        let u = rng.nextUnitFloat()
        if u < 0.6 { return .lymphocyte }
        if u < 0.72 { return .segmentedNeutrophil }
        if u < 0.82 { return .monocyte }
        if u < 0.88 { return .atypicalLymphocyte }
        if u < 0.94 { return .eosinophil }
        return .basophil
    }

    /// One image of `kind`, `size` x `size`. `zoom` scales the cells (ALL-IDB crops are tighter).
    public static func render(kind: CellKind, size: Int, zoom: Float = 1, seed: UInt64) -> RGBImage {
        var rng = SeededGenerator.stream(seed: seed, "render/\(kind.rawValue)")
        return render(kind: kind, size: size, zoom: zoom, rng: &rng)
    }

    /// Two different cells of one shape: the surroundings (background, red cells, stain),
    /// the leukocyte's outline and nucleus shape, and its texture (chromatin, nucleoli,
    /// granules) each from their own seed; illumination and sensor noise go with the
    /// surroundings. Same `cellSeed` with another `surroundingsSeed`: the look-alike that
    /// near-duplicate detection must not join (the same `textureSeed` too: the hardest one,
    /// a cell indistinguishable by itself).
    public static func render(
        kind: CellKind, size: Int, zoom: Float = 1, surroundingsSeed: UInt64, cellSeed: UInt64, textureSeed: UInt64
    ) -> RGBImage {
        var painter = SmearPainter(size: size, rng: SeededGenerator.stream(seed: surroundingsSeed, "render/surroundings"))
        painter.paintBackground()
        painter.paintRedCells(zoom: zoom)
        painter.rng = SeededGenerator.stream(seed: cellSeed, "render/cell/\(kind.rawValue)")
        painter.paintLeukocyte(
            CellRecipe.recipe(for: kind), zoom: zoom, texture: SeededGenerator.stream(seed: textureSeed, "render/texture"))
        painter.rng = SeededGenerator.stream(seed: surroundingsSeed, "render/finish")  // illumination and sensor noise
        return painter.finish()
    }

    /// A cell of `kind` photographed at higher magnification, filling the frame: cell, red
    /// cells and the cell's texture (chromatin, granules) all magnified by `frameFillingZoom`.
    public static func renderMagnified(kind: CellKind, size: Int, seed: UInt64, canvasScale: Float = 1) -> RGBImage {
        let zoom = frameFillingZoom(kind)
        var painter = SmearPainter(size: size, rng: SeededGenerator.stream(seed: seed, "render/\(kind.rawValue)"))
        painter.textureScale = zoom * canvasScale
        painter.paintBackground()
        painter.paintRedCells(zoom: zoom * canvasScale)
        painter.paintLeukocyte(CellRecipe.recipe(for: kind), zoom: zoom * canvasScale)
        return painter.finish()
    }

    /// The zoom at which a cell of `kind` about fills a square image (its radius 0.46 of the side).
    public static func frameFillingZoom(_ kind: CellKind) -> Float {
        let r = CellRecipe.recipe(for: kind).cellRadius
        return 0.46 / ((r.lowerBound + r.upperBound) / 2)
    }

    static func render(kind: CellKind, size: Int, zoom: Float, rng: inout SeededGenerator) -> RGBImage {
        var painter = SmearPainter(size: size, rng: rng)
        painter.paintBackground()
        painter.paintRedCells(zoom: zoom)
        painter.paintLeukocyte(CellRecipe.recipe(for: kind), zoom: zoom)
        let img = painter.finish()
        rng = painter.rng
        return img
    }
}
