import Foundation
import XCTest

@testable import CytoData

/// A flat folder of unlabelled crops plus the labels file `cytocl label` writes is a data
/// set (`pool` layout): what the page labelled can be trained on (before, `train --data
/// POOL --labels FILE` refused the folder as having no layout).
final class PoolLayoutTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// `pool/cell1.tif` .. `cell6.tif` (and `pool/more/cell7.tif`), names no layout knows.
    func makePool() throws -> URL {
        let pool = dir.appendingPathComponent("pool")
        for (k, n) in ["cell1", "cell2", "cell3", "cell4", "cell5", "cell6", "more/cell7"].enumerated() {
            var img = TestSupport.gradient(width: 8, height: 8)
            img.pixels[0] = UInt8(k)
            let url = pool.appendingPathComponent(n + ".tif")
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ImageCodec.writeTIFF(img, to: url)
        }
        return pool
    }

    func testAPoolWithALabelsFileIsADataSetOfTheLabelledImages() throws {
        let pool = try makePool()
        let labels = dir.appendingPathComponent("labels.csv")
        try Data("path,label\r\ncell1.tif,blast\r\ncell2.tif,other\r\ncell3.tif,other\r\nmore/cell7.tif,blast\r\n".utf8).write(to: labels)
        var options = DatasetOptions()
        options.labelsFile = labels.path
        let index = try DatasetIndex.load(path: pool.path, options: options)
        XCTAssertEqual(index.layout, .pool)
        XCTAssertEqual(index.classNames, ["blast", "other"])
        XCTAssertEqual(index.items.count, 4)
        XCTAssertEqual(Set(index.items.map { ($0.path as NSString).lastPathComponent }), ["cell1.tif", "cell2.tif", "cell3.tif", "cell7.tif"])
        XCTAssertEqual(index.items.filter { $0.className == "blast" }.count, 2)
    }

    func testWithoutALabelsFileThePoolIsStillRefusedWithTheReason() throws {
        let pool = try makePool()
        XCTAssertThrowsError(try DatasetIndex.load(path: pool.path)) { error in
            XCTAssertTrue("\(error)".contains("cannot tell the layout"), "\(error)")
        }
        XCTAssertThrowsError(try DatasetIndex.load(path: pool.path, options: DatasetOptions(layout: .pool))) { error in
            XCTAssertTrue("\(error)".contains("--layout pool needs --labels FILE"), "\(error)")
        }
    }
}
