import CytoCore
import CytoData
import Foundation
import XCTest

/// What a user sees when files are damaged or paths are hostile: one line naming the
/// file, a non-zero exit without a usage block, nothing counted that cannot be trusted.
extension CLITests {
    /// The last line of stderr, and that it is the only `Error:` line and no usage block follows.
    func assertOneLineError(_ r: Output, naming path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
        XCTAssertEqual(errors.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(errors.first?.contains(path) == true, r.stderr, file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Usage:"), r.stderr, file: file, line: line)
        XCTAssertFalse(r.stderr.contains("NSCocoaErrorDomain"), r.stderr, file: file, line: line)
    }

    func testSweepDamageIsListedRedoneAndLeftOutOfTheReport() throws {
        let data = try synth("cells", layout: "all-idb", count: 40, size: 64, seed: 9)
        let out = dir.appendingPathComponent("sweep").path
        let args = [
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "4", "--folds", "3",
            "--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "1", "--patience", "1", "--save-models",
        ]
        let first = try cytocl(args)
        XCTAssertEqual(first.status, 0, first.stderr)
        let cells = out + "/cells/"
        // A record with an impossible AUC, and a leftover of a killed write.
        var record =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cells + "fold1-size4.json"))) as! [String: Any]
        record["value"] = 2.59; record["rocAUC"] = 2.59
        try JSONSerialization.data(withJSONObject: record).write(to: URL(fileURLWithPath: cells + "fold1-size4.json"))
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        let leftover = cells + ".fold2-size4.json.tmp-\(dead.processIdentifier)-\(AtomicFile.hostTag)-1"
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover, contents: Data("{".utf8)))

        let status = try cytocl(["sweep", "status", out])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertTrue(status.stdout.contains("done 2,") && status.stdout.contains("corrupt 1"), status.stdout)
        XCTAssertTrue(status.stdout.contains("corrupt  fold 1 size 4") && status.stdout.contains("2.59"), status.stdout)

        // report refuses the damaged record (one line, the file and its value), writing nothing.
        let report = try cytocl(["report", out, "--no-explain"])
        assertOneLineError(report, naming: cells + "fold1-size4.json")
        XCTAssertTrue(report.stderr.contains("2.59") && report.stderr.contains("sweep retry"), report.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/report/summary.csv"))

        // The next run of the sweep removes the dead process's temporary file and redoes the cell.
        let again = try cytocl(args)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover))
        XCTAssertTrue(try cytocl(["sweep", "status", out]).stdout.contains("done 3,"))
        let fine = try cytocl(["report", out, "--no-explain"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        let summary = try CSVReader.rows(String(contentsOfFile: out + "/report/summary.csv", encoding: .utf8))
        XCTAssertEqual(summary[1][1], "3", "three folds averaged")

        // A plausible ROC-AUC edited into a record whose probabilities give another one
        // is refused too, naming the file and both values.
        let edited = URL(fileURLWithPath: cells + "fold0-size4.json")
        record = try JSONSerialization.jsonObject(with: Data(contentsOf: edited)) as! [String: Any]
        // The stored AUC, exactly as the record (Swift's JSONEncoder) wrote it.
        let text = try String(contentsOf: edited, encoding: .utf8)
        let derived = String(text[text.range(of: "\"rocAUC\":")!.upperBound...].prefix { "0123456789.e-".contains($0) })
        let forged = derived == "0.99" ? 0.98 : 0.99
        record["value"] = forged; record["rocAUC"] = forged
        try JSONSerialization.data(withJSONObject: record).write(to: edited)
        let forgedReport = try cytocl(["report", out, "--no-explain"])
        assertOneLineError(forgedReport, naming: edited.path)
        XCTAssertTrue(forgedReport.stderr.contains("roc_auc \(forged) is not the \(derived)"), forgedReport.stderr)

        // A damaged invocation.json is named by retry.
        try Data("{\"arguments\": [".utf8).write(to: URL(fileURLWithPath: out + "/invocation.json"))
        try FileManager.default.removeItem(atPath: cells + "fold0-size4.json")
        assertOneLineError(try cytocl(["sweep", "retry", out]), naming: out + "/invocation.json")

        // predict rejects a bad image in one line, offering the option it takes to go on without it.
        let model = cells + "fold2-size4.safetensors"
        let bad = dir.appendingPathComponent("bad.png")
        try Data("not an image".utf8).write(to: bad)
        let predict = try cytocl(["predict", "--model", model, bad.path])
        assertOneLineError(predict, naming: bad.path)
        XCTAssertTrue(predict.stderr.contains("(use --skip-bad-images to continue without it)"), predict.stderr)

        // CSV rows survive a file name with a carriage return and a comma.
        let odd = dir.appendingPathComponent("odd\r,name.png")
        try FileManager.default.copyItem(
            atPath: try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }
                .sorted().map { data + "/" + $0 }.first!, toPath: odd.path)
        let csv = try cytocl(["predict", "--model", model, odd.path])
        XCTAssertEqual(csv.status, 0, csv.stderr)
        let rows = try CSVReader.rows(csv.stdout)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[1][0], odd.path)
        XCTAssertEqual(rows[1].count, 4)
    }

    func testNonUTF8FileNameIsListedAndRead() throws {
        let data = try synth("cells", layout: "folders", count: 12, size: 64, seed: 9)
        let first = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0]
        let script = "mv \"$1/blast/\(first)\" \"$1/blast/\"$'bad\\xffname.png' && exec \"$0\" dataset inspect \"$1\""
        let r = try cytocl(["-c", script, Self.binary.path, data], shell: true)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("unreadable files: none"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PNG 12"), r.stdout)
    }

    func testUnwritableOutputFailsBeforeTraining() throws {
        let blocker = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: blocker)
        let out = blocker.appendingPathComponent("run").path
        let start = Date()
        let r = try cytocl(["train", "--data", "/nonexistent/data", "--out", out, "--epochs", "1"])
        assertOneLineError(r, naming: blocker.path)
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        let sweep = try cytocl(["sweep", "--protocol", "custom", "--data", "/nonexistent/data", "--out", out])
        assertOneLineError(sweep, naming: blocker.path)
        let report = try cytocl(["report", dir.appendingPathComponent("nowhere").path])
        assertOneLineError(report, naming: "nowhere/sweep.json")
        assertOneLineError(try cytocl(["sweep", "status", dir.appendingPathComponent("nowhere").path]), naming: "nowhere/sweep.json")
    }

    /// Output paths that are folders fail before any work, with one line naming the path.
    func testOutputPathsThatAreFoldersFailFirst() throws {
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8])
        let folder = dir.appendingPathComponent("model.onnx")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let export = try cytocl(["export", "--model", model.path, "--out", folder.path])
        assertOneLineError(export, naming: folder.path)
        XCTAssertTrue(export.stderr.contains("is a directory"), export.stderr)
        XCTAssertFalse(export.stderr.contains("rename"), export.stderr)

        // A sweep (first run, resume or retry) with a folder in the place of a cell record:
        // refused before the data is read (a data path that does not exist is never reached).
        let out = dir.appendingPathComponent("sweep")
        let blocking = out.appendingPathComponent("cells/fold1-size4.json")
        try FileManager.default.createDirectory(at: blocking.appendingPathComponent("x"), withIntermediateDirectories: true)
        let sweep = try cytocl([
            "sweep", "--protocol", "custom", "--data", dir.appendingPathComponent("no-data-here").path, "--out", out.path,
            "--sizes", "4", "--folds", "3", "--input", "64x64", "--conv", "4,8,8", "--epochs", "1",
        ])
        assertOneLineError(sweep, naming: blocking.path)
        XCTAssertTrue(sweep.stderr.contains("is a directory"), sweep.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("sweep.json").path))
    }

    /// File names with a CR, an LF, a terminal escape or bytes that are not UTF-8 are
    /// printed escaped by `dataset inspect` (class counts, duplicate and near-duplicate
    /// lists): one line per entry, no control character reaches the terminal.
    func testHostileFileNamesAreEscapedInListings() throws {
        let data = try synth("cells", layout: "folders", count: 12, size: 64, seed: 9)
        let first = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0]
        // Byte-identical copies, so each name is listed among the duplicates and near-duplicates.
        for name in ["cr\rname.png", "lf\nname.png", "esc\u{1B}[2Kname.png"] {
            try FileManager.default.copyItem(atPath: data + "/blast/" + first, toPath: data + "/blast/" + name)
        }
        let script = "cp \"$1/blast/\(first)\" \"$1/blast/\"$'bad\\xffname.png' && exec \"$0\" dataset inspect \"$1\""
        let r = try cytocl(["-c", script, Self.binary.path, data], shell: true)
        XCTAssertEqual(r.status, 0, r.stderr)
        for escaped in ["cr\\rname.png", "lf\\nname.png", "esc\\x1B[2Kname.png", "bad\\xFFname.png"] {
            XCTAssertTrue(r.stdout.contains("blast/" + escaped), "\(escaped) in\n\(r.stdout)")
        }
        XCTAssertFalse(r.stdout.unicodeScalars.contains { $0 == "\r" || $0 == "\u{1B}" }, r.stdout)
        let duplicates = r.stdout.split(separator: "\n").filter { $0.contains(" == ") }
        XCTAssertEqual(duplicates.count, 1, r.stdout)
        XCTAssertTrue(duplicates.first?.contains("lf\\nname.png") == true, "the whole set on one line: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("duplicates: 1 set(s) of byte-identical files (4 would be dropped"), r.stdout)
    }
}
