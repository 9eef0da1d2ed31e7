import CytoTestSupport
import CytoCPU
import CytoCore
import CytoData
import XCTest

@testable import CytoSelect

/// Suggestions from a folder of images: never an image already labelled nor a
/// near-duplicate of one, the same list for the same seed, labels files as people
/// write them (CRLF, a header), and a clear error for a label naming no pool image.
final class SuggestionPoolTests: XCTestCase {
    /// A generated pool (`folders` layout, 48x48) with near-duplicate copies planted;
    /// returns its folder and (original, copy) relative paths.
    func pool(count: Int = 12, copies: Int = 2) throws -> (URL, [(String, String)]) {
        let dir = tempDir("select")
        let report = try SyntheticCells.generate(into: dir, layout: .folders, count: count, size: 48, seed: 7)
        let pairs = try SyntheticCells.addNearDuplicates(to: report, count: copies, seed: 7)
        return (dir, pairs.map { ($0.original, $0.copy) })
    }

    func testSuggestionsSkipLabelledImagesAndTheirNearDuplicatesAndRepeatForASeed() throws {
        let (dir, pairs) = try pool()
        let pool = try SuggestionPool(root: dir.path, height: 48, width: 48)
        XCTAssertEqual(pool.count, 14)
        for (a, b) in pairs {
            XCTAssertEqual(pool.groupOf[pool.index(of: a)!], pool.groupOf[pool.index(of: b)!], "\(a) ~ \(b) found as near-duplicates")
        }
        let labelled = Dictionary(uniqueKeysWithValues: pairs.map { ($0.0, "some class") })
        let backend = CPUBackend()
        for strategy in SelectionStrategy.allCases {
            let all = try pool.suggest(labelled: labelled, strategy: strategy, embedding: .stain, count: 100, seed: 3, backend: backend)
            let paths = Set(all.map(\.path))
            for (a, b) in pairs {
                XCTAssertFalse(paths.contains(a) || paths.contains(b), "\(strategy) suggested \(a) or its copy \(b)")
            }
            XCTAssertEqual(all.count, 14 - 4, "\(strategy): every other image once")
            XCTAssertTrue(all.allSatisfy { !$0.reason.isEmpty })
        }
        let again = try pool.suggest(labelled: labelled, embedding: .stain, count: 5, seed: 3, backend: backend)
        let fresh = try SuggestionPool(root: dir.path, height: 48, width: 48)
            .suggest(labelled: labelled, embedding: .stain, count: 5, seed: 3, backend: backend)
        XCTAssertEqual(again, fresh, "same inputs and seed, same list")

    }

    func testLabelsFilesWithCRLFAndAHeaderAndAClearErrorForAnUnknownImage() throws {
        let (dir, pairs) = try pool(count: 16, copies: 1)
        let pool = try SuggestionPool(root: dir.path, height: 48, width: 48)
        let labels = dir.appendingPathComponent("labels.csv")
        try Data("path,label\r\n\(pool.ids[0]),lymphocyte\r\n\(dir.path)/\(pool.ids[1]),neutrophil\r\n".utf8).write(to: labels)
        XCTAssertEqual(try pool.readLabels(labels.path), [pool.ids[0]: "lymphocyte", pool.ids[1]: "neutrophil"])
        // Excel's "Unicode Text": UTF-16 LE with a byte-order mark, tab-separated.
        let unicodeText = "path\tlabel\r\n\(pool.ids[0])\tlymphocyte\r\n\(pool.ids[1])\tneutrophil\r\n"
        try Data([0xFF, 0xFE] + unicodeText.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }).write(to: labels)
        XCTAssertEqual(try pool.readLabels(labels.path), [pool.ids[0]: "lymphocyte", pool.ids[1]: "neutrophil"])
        try Data("path,label\r\n\(pool.ids[0]),lymphocyte\r\nnot/here.png,blast\r\n".utf8).write(to: labels)
        XCTAssertThrowsError(try pool.readLabels(labels.path)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains(labels.path) && text.contains(":3:") && text.contains("not/here.png"), text)
        }
        XCTAssertThrowsError(try pool.suggest(labelled: ["missing.png": "x"], count: 1, backend: CPUBackend())) { e in
            XCTAssertTrue("\(e)".contains("'missing.png' is not an image of the pool"), "\(e)")
        }
        _ = pairs
    }

    /// One unreadable file stops the pool, naming it; with `skipBad` it is left out,
    /// counted, and never suggested.
    func testAnUnreadableFileIsNamedOrLeftOut() throws {
        let (dir, _) = try pool(count: 6, copies: 0)
        try Data("garbage".utf8).write(to: dir.appendingPathComponent("broken.png"))
        XCTAssertThrowsError(try SuggestionPool(root: dir.path, height: 48, width: 48)) { e in
            XCTAssertTrue("\(e)".contains("broken.png"), "\(e)")
        }
        let pool = try SuggestionPool(root: dir.path, height: 48, width: 48, skipBad: true)
        XCTAssertEqual(pool.count, 6)
        XCTAssertEqual(pool.skipped, 1)
        XCTAssertNil(pool.index(of: "broken.png"))
        let all = try pool.suggest(labelled: [:], strategy: .typical, count: 10, backend: CPUBackend())
        XCTAssertEqual(all.count, 6)
        XCTAssertFalse(all.contains { $0.path == "broken.png" })
    }

    /// A labels path with `..`, or absolute while the pool's root is relative (or the
    /// other way round), names the same image; a "name,label" header is a header.
    func testLabelsPathsAreNormalisedAndAnyHeaderNamingALabelColumnIsSkipped() throws {
        let (dir, _) = try pool(count: 6, copies: 0)
        let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relativeRoot = String(repeating: "../", count: depth) + dir.path.dropFirst()
        let pool = try SuggestionPool(root: relativeRoot, height: 48, width: 48)
        let (a, b) = (pool.ids[0], pool.ids[1])
        XCTAssertEqual(pool.index(of: dir.path + "/" + a), 0, "absolute path, relative root")
        XCTAssertEqual(pool.index(of: "x/../" + b), 1)
        XCTAssertEqual(pool.index(of: "./" + a), 0)
        XCTAssertNil(pool.index(of: "../" + a), "outside the pool")
        let absolute = try SuggestionPool(root: dir.path + "/", height: 48, width: 48)
        XCTAssertEqual(absolute.index(of: relativeRoot + "/" + b), 1, "relative path, absolute root")
        let labels = dir.appendingPathComponent("labels.txt")
        try Data("name,label\n\(dir.path)/\(a),blast\nsub/../\(b),blast\n".utf8).write(to: labels)
        XCTAssertEqual(try pool.readLabels(labels.path), [a: "blast", b: "blast"])
        // Relative to the labels file's folder, as `--labels` of train and sweep: a file beside the pool folder.
        let beside = dir.deletingLastPathComponent().appendingPathComponent("labels-\(UUID().uuidString).csv")
        defer { try? FileManager.default.removeItem(at: beside) }
        try Data("\(dir.lastPathComponent)/\(a),blast\n".utf8).write(to: beside)
        XCTAssertEqual(try pool.readLabels(beside.path), [a: "blast"])
    }
}
