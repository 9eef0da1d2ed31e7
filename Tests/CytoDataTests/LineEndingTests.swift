import Foundation
import XCTest

@testable import CytoData

/// The labels file and the CSV manifest read LF, CRLF, a byte-order mark and a file
/// without a final line break alike (a CRLF labels file used to be read as one line:
/// without a header one image was scored, with a header "the labels file has no rows").
final class LineEndingTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    static func variants(_ lines: [String]) -> [(name: String, bytes: [UInt8])] {
        let lf = lines.map { $0 + "\n" }.joined()
        return [
            ("LF", Array(lf.utf8)),
            ("CRLF", Array(lines.map { $0 + "\r\n" }.joined().utf8)),
            ("BOM", [0xEF, 0xBB, 0xBF] + Array(lf.utf8)),
            ("no final newline", Array(lines.joined(separator: "\n").utf8)),
        ]
    }

    /// A folders data set a/x1, a/x2, b/y1, b/y2 (8x8 TIFFs with distinct pixels).
    func makeData() throws -> URL {
        let data = dir.appendingPathComponent("data")
        for (k, n) in ["a/x1.tif", "a/x2.tif", "b/y1.tif", "b/y2.tif"].enumerated() {
            var img = TestSupport.gradient(width: 8, height: 8)
            img.pixels[0] = UInt8(k)
            let url = data.appendingPathComponent(n)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ImageCodec.writeTIFF(img, to: url)
        }
        return data
    }

    func testLabelsFileReadsEveryVariantWithAndWithoutHeader() throws {
        let data = try makeData()
        let rows = ["a/x1.tif,p", "a/x2.tif,q", "b/y1.tif,p", "b/y2.tif,q"]
        for header in [true, false] {
            for (name, bytes) in Self.variants((header ? ["path,label"] : []) + rows) {
                let labels = dir.appendingPathComponent("labels.csv")
                try Data(bytes).write(to: labels)
                var options = DatasetOptions()
                options.labelsFile = labels.path
                let idx = try DatasetIndex.load(path: data.path, options: options)
                XCTAssertEqual(idx.classNames, ["p", "q"], "\(name), header \(header)")
                XCTAssertEqual(idx.items.count, 4, "\(name), header \(header)")
                XCTAssertEqual(
                    idx.items.filter { $0.className == "p" }.map { ($0.path as NSString).lastPathComponent }.sorted(),
                    ["x1.tif", "y1.tif"], name)
            }
        }
    }

    func testManifestReadsEveryVariant() throws {
        _ = try makeData()
        let rows = ["data/a/x1.tif,p", "data/a/x2.tif,q", "data/b/y1.tif,p", "data/b/y2.tif,q"]
        for header in [true, false] {
            for (name, bytes) in Self.variants((header ? ["path,label"] : []) + rows) {
                let m = dir.appendingPathComponent("m.csv")
                try Data(bytes).write(to: m)
                let idx = try DatasetIndex.load(path: m.path, options: DatasetOptions())
                XCTAssertEqual(idx.classNames, ["p", "q"], "\(name), header \(header)")
                XCTAssertEqual(idx.items.count, 4, "\(name), header \(header)")
            }
        }
    }

    func testALabelsFileThatIsNotUTF8NamesTheFile() throws {
        let data = try makeData()
        let labels = dir.appendingPathComponent("labels.csv")
        try Data([0x61, 0x2C, 0xFF, 0x0A]).write(to: labels)
        var options = DatasetOptions()
        options.labelsFile = labels.path
        XCTAssertThrowsError(try DatasetIndex.load(path: data.path, options: options)) {
            XCTAssertTrue("\($0)".contains("labels.csv: cannot read the file (not UTF-8 text"), "\($0)")
        }
    }
}
