import Foundation
import XCTest

@testable import CytoData

final class SynthTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testAMLClassCounts() {
        let full = SyntheticCells.classCounts(layout: .aml, count: 18365)
        XCTAssertEqual(full.map(\.0), DatasetLayout.amlClasses)
        for (cls, n) in full { XCTAssertEqual(n, DatasetLayout.amlCounts[cls], cls) }
        for count in [15, 29, 30, 100, 1000, 2000] {
            let c = SyntheticCells.classCounts(layout: .aml, count: count)
            XCTAssertEqual(c.reduce(0) { $0 + $1.1 }, count, "\(count)")
            XCTAssertTrue(c.allSatisfy { $0.1 >= (count >= 30 ? 2 : 1) }, "\(count): \(c)")
        }
        let c2000 = Dictionary(uniqueKeysWithValues: SyntheticCells.classCounts(layout: .aml, count: 2000))
        XCTAssertEqual(c2000["NGS"]!, 924, accuracy: 3)  // 8484 / 18365 * 2000 = 923.9
        XCTAssertEqual(c2000["MYO"]!, 356, accuracy: 2)
        let small = SyntheticCells.classCounts(layout: .aml, count: 3)
        XCTAssertEqual(small.filter { $0.1 > 0 }.map(\.0).sorted(), ["MOB", "MYO", "NGS"])
        XCTAssertEqual(SyntheticCells.classCounts(layout: .allIDB, count: 11).map(\.1), [6, 5])
    }

    func testAllIDBGenerationNamesSizesAndDeterminism() throws {
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b"), c = dir.appendingPathComponent("c")
        try SyntheticCells.generate(into: a, layout: .allIDB, count: 6, size: 48, seed: 7)
        try SyntheticCells.generate(into: b, layout: .allIDB, count: 6, size: 48, seed: 7)
        try SyntheticCells.generate(into: c, layout: .allIDB, count: 6, size: 48, seed: 8)
        let names = try FileManager.default.contentsOfDirectory(atPath: a.path).sorted()
        XCTAssertEqual(names, ["Im001_1.tif", "Im002_1.tif", "Im003_1.tif", "Im004_0.tif", "Im005_0.tif", "Im006_0.tif"])
        for n in names {
            let x = try Data(contentsOf: a.appendingPathComponent(n)), y = try Data(contentsOf: b.appendingPathComponent(n))
            XCTAssertEqual(x, y, "same seed, same bytes: \(n)")
            XCTAssertNotEqual(x, try Data(contentsOf: c.appendingPathComponent(n)), "another seed differs: \(n)")
            let info = try ImageCodec.readInfo(path: a.appendingPathComponent(n).path)
            XCTAssertEqual(info, ImageInfo(format: .tiff, width: 48, height: 48, channels: 3, bitsPerSample: 8))
        }
        let idx = try DatasetIndex.load(path: a.path)
        XCTAssertEqual(idx.layout, .allIDB)
        XCTAssertEqual(idx.counts, [3, 3])
    }

    func testAMLAndFoldersLayoutsLoadBack() throws {
        let aml = dir.appendingPathComponent("aml")
        let r = try SyntheticCells.generate(into: aml, layout: .aml, count: 40, size: 32, seed: 1)
        XCTAssertEqual(r.count, 40)
        let idx = try DatasetIndex.load(path: aml.path, options: DatasetOptions(positive: DatasetLayout.amlBlastClasses))
        XCTAssertEqual(idx.layout, .aml)
        XCTAssertEqual(idx.items.count, 40)
        let expectedBlasts = r.classCounts.filter { DatasetLayout.amlBlastClasses.contains($0.0) }.reduce(0) { $0 + $1.1 }
        XCTAssertEqual(idx.counts[1], expectedBlasts)
        XCTAssertTrue(FileManager.default.fileExists(atPath: aml.appendingPathComponent("MYO/MYO_0001.tiff").path))

        let folders = dir.appendingPathComponent("folders")
        try SyntheticCells.generate(into: folders, layout: .folders, count: 12, size: 24, seed: 1)
        let fidx = try DatasetIndex.load(path: folders.path)
        XCTAssertEqual(fidx.layout, .folders)
        XCTAssertEqual(fidx.classNames, SyntheticCells.folderClasses.map(\.0))
        XCTAssertEqual(fidx.counts, [2, 2, 2, 2, 2, 2])
        XCTAssertEqual(try ImageCodec.readInfo(path: fidx.items[0].path).format, .png)
    }

    /// Blasts and other cells must be separable at 32x32 by something far simpler than
    /// a CNN (nearest class mean on held-out images), so a tiny CNN can learn them.
    func testBlastVersusOtherIsLearnableAtLowResolution() {
        func features(_ kind: CellKind, _ seed: UInt64) -> [Float] {
            let img = resize(SyntheticCells.render(kind: kind, size: 64, zoom: 1.3, seed: seed), height: 32, width: 32)
            return img.pixels.map { Float($0) / 255 }
        }
        let others: [CellKind] = [.lymphocyte, .segmentedNeutrophil, .monocyte, .eosinophil]
        var trainB: [[Float]] = [], trainO: [[Float]] = []
        for s in 0..<12 { trainB.append(features(.lymphoblast, UInt64(s))); trainO.append(features(others[s % 4], UInt64(s))) }
        func mean(_ xs: [[Float]]) -> [Float] { (0..<xs[0].count).map { i in xs.reduce(0) { $0 + $1[i] } / Float(xs.count) } }
        let mb = mean(trainB), mo = mean(trainO)
        func dist(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        var correct = 0, total = 0
        for s in 100..<116 {
            let b = features(.lymphoblast, UInt64(s)), o = features(others[s % 4], UInt64(s))
            if dist(b, mb) < dist(b, mo) { correct += 1 }
            if dist(o, mo) < dist(o, mb) { correct += 1 }
            total += 2
        }
        XCTAssertGreaterThanOrEqual(Double(correct) / Double(total), 0.8, "\(correct)/\(total)")
    }

    func testRenderedCellLooksLikeASmear() {
        let img = SyntheticCells.render(kind: .myeloblast, size: 96, seed: 3)
        // pale corners, dark purple centre (nucleus)
        let corner = img[1, 1], centre = img[48, 48]
        XCTAssertGreaterThan(Int(corner.0) + Int(corner.1) + Int(corner.2), 3 * 150)
        XCTAssertLessThan(Int(centre.0) + Int(centre.1) + Int(centre.2), Int(corner.0) + Int(corner.1) + Int(corner.2) - 120)
        XCTAssertGreaterThan(centre.2, centre.1, "nucleus is purple: more blue than green")
    }
}
