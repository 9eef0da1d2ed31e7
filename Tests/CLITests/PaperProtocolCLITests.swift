import CytoTestSupport
import Foundation
import XCTest

/// The paper's protocol on a data set with ALL-IDB2's class counts after near-duplicate
/// removal (119 other, 128 blast), through the CLI as a user runs it: the sweep starts,
/// says which sizes are not balanced and by how much, and the report says it too.
final class PaperProtocolCLITests: XCTestCase, CLITestFolder {
    func cytocl(_ args: [String]) throws -> CLITests.Output { try CLITests.run(args) }

    var dir: URL!
    override func setUp() { dir = tempDir("cli-paper") }

    /// ALL-IDB2's structure at 24 px: 260 files `ImNNN_L.tif`, 10 of them smaller, one
    /// byte-identical pair; then 10 others and 2 blasts removed, leaving 119 other and
    /// 128 blast images after the exact duplicate is dropped (the counts after the real
    /// set's near-duplicate removal).
    func allIDB2Counts() throws -> String {
        let data = dir.appendingPathComponent("ALL_IDB2").path, small = dir.appendingPathComponent("small").path
        let synth = try cytocl(["synth", "--out", data, "--layout", "all-idb", "--count", "260", "--size", "24", "--seed", "2"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        XCTAssertEqual(try cytocl(["synth", "--out", small, "--layout", "all-idb", "--count", "20", "--size", "18"]).status, 0)
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }.sorted()
        let others = names.filter { $0.hasSuffix("_0.tif") }, blasts = names.filter { $0.hasSuffix("_1.tif") }
        XCTAssertEqual(others.count, 130); XCTAssertEqual(blasts.count, 130)
        for n in try fm.contentsOfDirectory(atPath: small).filter({ $0.hasSuffix(".tif") }).sorted().prefix(10) {
            try fm.removeItem(atPath: data + "/" + n)
            try fm.copyItem(atPath: small + "/" + n, toPath: data + "/" + n)
        }
        let twin = others[others.count - 1]
        try fm.removeItem(atPath: data + "/" + twin)
        try fm.copyItem(atPath: data + "/" + others[others.count - 2], toPath: data + "/" + twin)
        for n in others.dropFirst(10).prefix(10) + blasts.dropFirst(10).prefix(2) { try fm.removeItem(atPath: data + "/" + n) }
        return data
    }

    func testAllIDBBinaryRunsOnALLIDB2sClassCountsAndSaysWhatWasNotBalanced() throws {
        let data = try allIDB2Counts()
        let out = dir.appendingPathComponent("sweep").path
        let sweep = try cytocl([
            "sweep", "--protocol", "all-idb-binary", "--data", data, "--out", out, "--input", "24x24", "--conv", "2",
            "--dense", "4", "--epochs", "1", "--patience", "1", "--sizes", "10,200", "--near-duplicates", "off",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        XCTAssertTrue(sweep.stderr.contains("other 119, blast 128"), sweep.stderr)
        XCTAssertTrue(sweep.stderr.contains("size 200: 10 of 10 folds not balanced (100/100 wanted): other "), sweep.stderr)
        XCTAssertFalse(sweep.stderr.split(separator: "\n").contains { $0.hasPrefix("size 10:") }, "10 is balanced: \(sweep.stderr)")
        XCTAssertTrue(sweep.stdout.contains("20 of 20 cells finished"), sweep.stdout)
        let record =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: out + "/cells/fold0-size200.json"))) as! [String: Any]
        let counts = try XCTUnwrap(record["trainingClassCounts"] as? [Int])
        XCTAssertLessThan(counts[0], 100)
        XCTAssertEqual(counts.reduce(0, +), (record["trainIDs"] as! [String]).count)
        XCTAssertEqual(record["sampling"] as? String, "capped")

        let report = try cytocl(["report", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOfFile: out + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("200 (not balanced)"))
        XCTAssertTrue(html.contains("Training sets not balanced"))
        XCTAssertFalse(html.contains("(balanced, nested)"), "the run table does not call the sizes balanced")
        XCTAssertTrue(html.contains("(nested; balanced where the folds&#39; pools allow"), "the run table points at the note")
        XCTAssertTrue(html.contains("size 200: 10 of 10 folds not balanced"))
        XCTAssertTrue(html.contains("a size is never refused for it"), "the fidelity section names the deviation")
    }

    /// A --save-models sweep of a small network that trains only fold 0 (the one the
    /// figures show) at `sizes` (asserted to succeed); its folder.
    func sweepFoldZero(data: String, sizes: [Int], epochs: Int, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let out = dir.appendingPathComponent("sweep").path
        let cells = dir.appendingPathComponent("fold0.txt")
        try sizes.map { "0 \($0)\n" }.joined().write(to: cells, atomically: true, encoding: .utf8)
        let list = sizes.map(String.init).joined(separator: ",")
        let sweep = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--input", "32x32", "--conv", "4,8", "--dense", "8",
            "--epochs", "\(epochs)", "--patience", "\(epochs)", "--sizes", list, "--save-models", "--near-duplicates", "off",
            "--cells-file", cells.path,
        ])
        XCTAssertEqual(sweep.status, 0, sweep.stderr, file: file, line: line)
        return out
    }

    /// The look at the report: a --save-models sweep at sizes 8, 16, 24 put the
    /// panels of Fig. 4b and Fig. 5 in the order 8, 24, 16 (nearest to the paper's 10,
    /// 50, 100), and Fig. 4b's rows ran past a 1280-px window.
    func testModelFiguresAreInSizeOrderAndFitThePage() throws {
        let data = try synth("cells", layout: "all-idb", count: 60, size: 32, seed: 5)
        let out = try sweepFoldZero(data: data, sizes: [8, 16, 24], epochs: 2)
        let report = try cytocl(["report", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOfFile: out + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("then the networks trained on 8, 16, 24 images"), "Fig. 4b columns in size order")
        let titles = ["8 training images:", "16 training images:", "24 training images:"].map { html.range(of: $0)?.lowerBound }
        XCTAssertTrue(titles.allSatisfy { $0 != nil }, "every t-SNE panel is plotted")
        if titles.allSatisfy({ $0 != nil }) {
            XCTAssertTrue(titles[0]! < titles[1]! && titles[1]! < titles[2]!, "Fig. 5 panels in size order")
        }
        XCTAssertFalse(html.contains("Not plotted, the t-SNE layout means nothing"))
        XCTAssertTrue(html.contains("<div class=\"scroll\"><img"), "a wide PNG scrolls inside its own box")
        XCTAssertTrue(html.contains(".scroll{max-width:100%;overflow-x:auto}"))
    }

    /// Fig. 4b and Fig. 5 read the test images again from the sweep's data folder; with the
    /// folder moved, `report` left both figures out without a word (exit 0).
    func testModelFiguresSayWhyTheyAreMissingWhenTheDataFolderMoved() throws {
        let data = try synth("cells", layout: "all-idb", count: 40, size: 32, seed: 5)
        let out = try sweepFoldZero(data: data, sizes: [8], epochs: 1)
        XCTAssertEqual(try cytocl(["report", out]).status, 0)
        XCTAssertTrue(try String(contentsOfFile: out + "/report/index.html", encoding: .utf8).contains("Fig. 4b"))
        try FileManager.default.moveItem(atPath: data, toPath: data + "-moved")
        let report = try cytocl(["report", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stderr.contains("warning: Fig. 4b and Fig. 5 are not drawn"), report.stderr)
        XCTAssertTrue(report.stderr.contains(data), "the warning names the folder: \(report.stderr)")
        let html = try String(contentsOfFile: out + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Fig. 4b and Fig. 5 are not drawn"), "the page says why the figures are missing")
    }
}
