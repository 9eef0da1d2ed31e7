import Foundation
import XCTest

@testable import CytoData

/// The labels file and the CSV manifest read LF, CRLF, a byte-order mark, a file without
/// a final line break and UTF-16 with a byte-order mark (Excel's "Unicode Text") alike (a CRLF labels file used to be read as one line:
/// without a header one image was scored, with a header "the labels file has no rows").
final class LineEndingTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    static func variants(_ lines: [String]) -> [(name: String, bytes: [UInt8])] {
        let lf = lines.map { $0 + "\n" }.joined()
        let tabbedCRLF = lines.map { $0.replacingOccurrences(of: ",", with: "\t") + "\r\n" }.joined()
        return [
            ("LF", Array(lf.utf8)),
            ("CRLF", Array(lines.map { $0 + "\r\n" }.joined().utf8)),
            ("BOM", [0xEF, 0xBB, 0xBF] + Array(lf.utf8)),
            ("no final newline", Array(lines.joined(separator: "\n").utf8)),
            ("BOM+CRLF", [0xEF, 0xBB, 0xBF] + Array(lines.map { $0 + "\r\n" }.joined().utf8)),
            // Excel's "Unicode Text": UTF-16 LE with a byte-order mark, tabs, CRLF.
            ("UTF-16 LE, tabs", [0xFF, 0xFE] + tabbedCRLF.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
            ("UTF-16 BE", [0xFE, 0xFF] + lf.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }),
        ]
    }

    /// A folders data set a/x1, a/x2, b/y1, b/y2 (8x8 TIFFs with distinct pixels).
    func makeData() throws -> URL { try Self.makeData(in: dir) }

    static func makeData(in dir: URL) throws -> URL {
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

    /// A manifest saved by Excel as "Unicode Text" (UTF-16, tabs) is named `.txt`: given
    /// as --data it was refused for its name ("expected a data folder or a .csv
    /// manifest") before its text was read. Any other file is still refused.
    func testAManifestSavedAsUnicodeTextIsReadUnderItsTxtName() throws {
        _ = try makeData()
        let rows = ["path,label", "data/a/x1.tif,p", "data/a/x2.tif,q", "data/b/y1.tif,p", "data/b/y2.tif,q"]
        let unicodeText = try XCTUnwrap(Self.variants(rows).first { $0.name == "UTF-16 LE, tabs" }).bytes
        for name in ["m.txt", "m.TSV"] {
            let m = dir.appendingPathComponent(name)
            try Data(unicodeText).write(to: m)
            let idx = try DatasetIndex.load(path: m.path, options: DatasetOptions())
            XCTAssertEqual(idx.classNames, ["p", "q"], name)
            XCTAssertEqual(idx.items.count, 4, name)
        }
        let other = dir.appendingPathComponent("m.xlsx")
        try Data(unicodeText).write(to: other)
        XCTAssertThrowsError(try DatasetIndex.load(path: other.path, options: DatasetOptions())) {
            XCTAssertTrue("\($0)".contains("m.xlsx: expected a data folder or a manifest (.csv, .tsv or .txt)"), "\($0)")
        }
    }

    /// The same "Unicode Text" manifest saved as `labels.txt` beside flat images: the folder
    /// is read for a `.csv` manifest only, and the refusal ("cannot tell the layout",
    /// "--layout csv: no .csv manifest") did not mention the file; it now says to name it.
    func testAUnicodeTextManifestInAFolderIsNamedInTheRefusal() throws {
        let pool = dir.appendingPathComponent("pool")
        try FileManager.default.createDirectory(at: pool, withIntermediateDirectories: true)
        for n in ["x1.png", "x2.png"] { try Data([1, 2, 3]).write(to: pool.appendingPathComponent(n)) }
        try Data("path\tlabel\r\nx1.png\tp\r\nx2.png\tq\r\n".utf8).write(to: pool.appendingPathComponent("labels.txt"))
        try Data("notes".utf8).write(to: pool.appendingPathComponent("README.txt"))
        let hint = "labels.txt is read as a manifest only when named: give --data \(pool.path)/labels.txt"
        XCTAssertThrowsError(try DatasetIndex.load(path: pool.path, options: DatasetOptions())) {
            XCTAssertTrue("\($0)".contains("cannot tell the layout") && "\($0)".hasSuffix(hint), "\($0)")
        }
        var csv = DatasetOptions()
        csv.layout = .csv
        XCTAssertThrowsError(try DatasetIndex.load(path: pool.path, options: csv)) {
            XCTAssertTrue("\($0)".contains("--layout csv: no .csv manifest in the folder; " + hint), "\($0)")
        }
        // A README.txt alone is no manifest: not named.
        try FileManager.default.removeItem(at: pool.appendingPathComponent("labels.txt"))
        XCTAssertThrowsError(try DatasetIndex.load(path: pool.path, options: DatasetOptions())) {
            XCTAssertFalse("\($0)".contains("README"), "\($0)")
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

/// Paths in a labels file and a manifest resolve the same way whatever the spelling of
/// `--data` and of the manifest's own path.
final class PathResolutionTests: XCTestCase {
    var dir: URL!
    var saved = ""
    override func setUp() {
        dir = TestSupport.tempDir(name)
        saved = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(dir.path)
    }
    override func tearDown() {
        FileManager.default.changeCurrentDirectoryPath(saved)
        try? FileManager.default.removeItem(at: dir)
    }

    /// With a relative `--data`, absolute rows and `../` rows (relative to the labels
    /// file) were "not an image of the data set"; both work with an absolute `--data`.
    func testLabelsFileRowsMatchARelativeDataFolder() throws {
        _ = try LineEndingTests.makeData(in: dir)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("lab"), withIntermediateDirectories: true)
        let labels = dir.appendingPathComponent("lab/labels.csv")
        let rows = "path,label\n\(dir.path)/data/a/x1.tif,p\n../data/a/x2.tif,q\nb/y1.tif,p\n../lab/../data/b/y2.tif,q\n"
        try rows.write(to: labels, atomically: true, encoding: .utf8)
        for data in ["data", "./data/", dir.path + "/data"] {
            for labelsPath in ["lab/labels.csv", labels.path] {
                var options = DatasetOptions()
                options.labelsFile = labelsPath
                let idx = try DatasetIndex.load(path: data, options: options)
                XCTAssertEqual(idx.classNames, ["p", "q"], "--data \(data) --labels \(labelsPath)")
                XCTAssertEqual(idx.items.count, 4, "--data \(data) --labels \(labelsPath)")
            }
        }
    }

    /// A manifest named by its bare file name resolved its rows against `/`.
    func testManifestGivenAsABareFileNameResolvesAgainstItsFolder() throws {
        _ = try LineEndingTests.makeData(in: dir)
        try "path,label\ndata/a/x1.tif,p\ndata/a/x2.tif,q\ndata/b/y1.tif,p\ndata/b/y2.tif,q\n".write(
            to: dir.appendingPathComponent("m.csv"), atomically: true, encoding: .utf8)
        for m in ["m.csv", "./m.csv", dir.path + "/m.csv"] {
            let idx = try DatasetIndex.load(path: m, options: DatasetOptions())
            XCTAssertEqual(idx.items.count, 4, m)
            XCTAssertTrue(FileManager.default.fileExists(atPath: idx.items[0].path), "\(m): \(idx.items[0].path)")
        }
    }
}
