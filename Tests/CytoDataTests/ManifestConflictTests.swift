import Foundation
import XCTest

@testable import CytoData

/// A `path,label` manifest lists each file once: the same file under two labels (however
/// its path is spelled) or twice under one would be scored twice or under the wrong label.
final class ManifestConflictTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func manifest(_ rows: String) throws -> String {
        for n in ["Im001_1.tif", "Im013_0.tif", "Im014_0.tif"] {
            try ImageCodec.writeTIFF(TestSupport.gradient(width: 8, height: 8), to: dir.appendingPathComponent(n))
        }
        let m = dir.appendingPathComponent("m.csv")
        try ("path,label\n" + rows).write(to: m, atomically: true, encoding: .utf8)
        return m.path
    }

    func assertRefused(_ path: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        for dedupe in [true, false] {
            XCTAssertThrowsError(try DatasetIndex.load(path: path, options: DatasetOptions(dedupe: dedupe)), file: file, line: line) {
                XCTAssertTrue("\($0)".contains(expected), "expected '\(expected)' in: \($0)", file: file, line: line)
            }
        }
    }

    func testOneFileWithTwoLabelsIsRefusedWhateverItsSpelling() throws {
        let m = try manifest("Im001_1.tif,blast\n./Im001_1.tif,other\nIm013_0.tif,other\n")
        assertRefused(m, "m.csv:3: './Im001_1.tif' is labelled 'blast' on line 2 and 'other' here")

        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        let dotdot = try manifest("Im001_1.tif,blast\nsub/../Im001_1.tif,other\nIm013_0.tif,other\n")
        assertRefused(dotdot, "'sub/../Im001_1.tif' is labelled 'blast' on line 2")

        try FileManager.default.createSymbolicLink(
            atPath: dir.appendingPathComponent("link.tif").path, withDestinationPath: dir.appendingPathComponent("Im001_1.tif").path)
        let link = try manifest("Im001_1.tif,blast\nlink.tif,other\nIm013_0.tif,other\n")
        assertRefused(link, "'link.tif' is labelled 'blast' on line 2 and 'other' here")

        let absolute = try manifest("Im001_1.tif,blast\n\(dir.path)/Im001_1.tif,other\nIm013_0.tif,other\n")
        assertRefused(absolute, "is labelled 'blast' on line 2 and 'other' here")
    }

    func testTheSameFileListedTwiceIsRefused() throws {
        let m = try manifest("Im001_1.tif,blast\nIm013_0.tif,other\nIm001_1.tif,blast\nIm014_0.tif,other\n")
        assertRefused(m, "m.csv:4: 'Im001_1.tif' is the file already listed on line 2")
    }

    func testDistinctFilesStillLoad() throws {
        let m = try manifest("Im001_1.tif,blast\n./Im013_0.tif,other\nIm014_0.tif,other\n")
        var options = DatasetOptions(dedupe: false)
        options.strict = false
        let idx = try DatasetIndex.load(path: m, options: options)
        XCTAssertEqual(idx.items.count, 3)
    }
}
