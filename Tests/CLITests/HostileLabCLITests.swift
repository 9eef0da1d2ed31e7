import CytoTestSupport
import Foundation
import XCTest

/// A lab's day: runs that end early (a cluster's time limit sends SIGTERM to `train` and
/// `sweep`), half-copied folders, commands refused after making their `--out` folder, a
/// labels file from Excel. What was written is kept, what is refused leaves nothing.
extension CLITests {
    /// `suggest --labels` read `Blast` and `blast` as two classes where `train` refuses
    /// the file: one reading of a labels file everywhere.
    func testSuggestRefusesALabelSpeltTwoWays() throws {
        let data = try synth("pool", layout: "all-idb", count: 12, size: 32, seed: 3)
        let labels = dir.appendingPathComponent("labels.csv")
        let ids = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }.sorted()
        try "path;label\r\n\(ids[0]);blast\r\n\(ids[1]);Blast\r\n".write(to: labels, atomically: true, encoding: .utf8)
        let r = try cytocl(["suggest", "--data", data, "--labels", labels.path, "--count", "2"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("labels.csv:3: the labels 'Blast' and 'blast' (line 2) differ only in case"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    /// `train` killed by SIGTERM after hours kept nothing but its lock: the best validated
    /// weights lived only in memory. Now it stops after the current batch, writes the
    /// best model so far and the history, says so in one line and exits 128 + 15.
    func testATrainStoppedBySIGTERMKeepsItsBestModel() throws {
        let data = try synth("cells", layout: "all-idb", count: 24, size: 32, seed: 2)
        let run = dir.appendingPathComponent("run")
        let p = try TestProcess.startInBackground(
            CLITests.binary,
            [
                "train", "--data", data, "--out", run.path, "--input", "32x32", "--conv", "4", "--dense", "4",
                "--epochs", "100000", "--patience", "100000", "--backend", "cpu", "--threads", "1", "--near-duplicates", "off",
            ])
        // SIGTERM once two epochs have ended: the run's lock is touched after every epoch
        // (its heartbeat), so its modification time changes twice.
        let lock = run.appendingPathComponent("train.lock").path
        func touched() -> Date? { (try? FileManager.default.attributesOfItem(atPath: lock))?[.modificationDate] as? Date }
        var stamps: [Date] = []
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline && stamps.count < 3 {
            if let t = touched(), t != stamps.last { stamps.append(t) }
            usleep(5_000)
        }
        XCTAssertTrue(p.isRunning, "training ended before the signal; make it longer")
        kill(p.processIdentifier, SIGTERM)
        let ended = try p.finish()
        let stderr = ended.stderr
        XCTAssertEqual(ended.status, 128 + SIGTERM, stderr)
        let last = stderr.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).last.map(String.init) ?? ""
        XCTAssertTrue(last.hasPrefix("Error: training interrupted by SIGTERM during epoch "), last)
        XCTAssertTrue(last.contains("wrote the best model so far, epoch "), last)
        XCTAssertTrue(last.contains("to \(run.path)/model.safetensors; --init-from it to train on"), last)
        let model = run.appendingPathComponent("model.safetensors").path
        let meta = try safetensorsMetadata(model)
        XCTAssertTrue(meta["cytocl.provenance.stop_reason"]?.hasPrefix("interrupted by SIGTERM during epoch") ?? false, "\(meta)")
        let history = try String(contentsOfFile: run.appendingPathComponent("history.csv").path, encoding: .utf8)
        XCTAssertGreaterThan(history.split(separator: "\n").count, 2, "the completed epochs are in the history")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("train.lock").path))
        // The model is a model: it predicts, and training goes on from it.
        let cell = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: data).sorted().first { $0.hasSuffix(".tif") })
        let predict = try cytocl(["predict", "--model", model, data + "/" + cell])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let more = try cytocl([
            "train", "--data", data, "--out", dir.appendingPathComponent("run2").path, "--init-from", model, "--epochs", "1",
            "--backend", "cpu", "--near-duplicates", "off",
        ])
        XCTAssertEqual(more.status, 0, more.stderr)
    }

    /// A sweep killed by its cluster's time limit left its claims: the job requeued on
    /// another node skipped those cells as "running elsewhere" for 15 minutes.
    func testASweepStoppedBySIGTERMLeavesNoClaims() throws {
        let data = try synth("cells", layout: "all-idb", count: 60, size: 16, seed: 3)
        let sweep = dir.appendingPathComponent("sweep")
        let p = try TestProcess.startInBackground(
            CLITests.binary,
            [
                "sweep", "--protocol", "custom", "--data", data, "--out", sweep.path, "--sizes", "4", "--folds", "3",
                "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "100000", "--patience", "100000",
                "--backend", "cpu", "--near-duplicates", "off",
            ])
        func claims() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: sweep.path + "/cells")) ?? []).filter { $0.hasSuffix(".claim") }
        }
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline && claims().isEmpty { usleep(20_000) }
        XCTAssertFalse(claims().isEmpty, "no cell was claimed")
        kill(p.processIdentifier, SIGTERM)
        let ended = try p.finish()
        XCTAssertEqual(ended.status, 128 + SIGTERM, ended.stderr)
        XCTAssertEqual(claims(), [], "the stopped sweep left its claims")
        XCTAssertTrue(FileManager.default.fileExists(atPath: sweep.path + "/sweep.json"), "the sweep itself is kept")
    }

    /// A sweep folder copied half-way (a cell record cut short): `report` refused it, but
    /// `report --compare` left that fold out without a word ("over 2 folds") and exit 0.
    func testAComparisonWithAHalfCopiedSweepIsRefused() throws {
        let data = try synth("cells", layout: "all-idb", count: 60, size: 16, seed: 3)
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        let sweep = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", a.path, "--sizes", "4", "--folds", "3",
            "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "1", "--backend", "cpu", "--near-duplicates", "off",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        try FileManager.default.copyItem(at: a, to: b)
        let record = b.appendingPathComponent("cells/fold1-size4.json")
        try Data(try Data(contentsOf: record).prefix(100)).write(to: record)
        let compare = try cytocl(["report", a.path, "--compare", b.path, "--out", dir.appendingPathComponent("cmp").path])
        XCTAssertEqual(compare.status, 1, compare.stderr)
        XCTAssertTrue(
            compare.stderr.contains("\(record.path): corrupt sweep record: truncated or malformed JSON (100 bytes) (`cytocl sweep retry \(b.path)` redoes the cell)"),
            compare.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cmp").path), "nothing is written")
    }

    /// `explain` refused after making its `--out` folder (an unknown `--class`) and `train`
    /// refused on a damaged image left the empty folders behind; inside a class-folder data
    /// set the next run read such a folder as an empty class.
    func testRefusedExplainAndTrainLeaveNoOutputFolder() throws {
        let data = try synth("cells", layout: "folders", count: 12, size: 64, seed: 3)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["blast", "lymphocyte"])
        let maps = dir.appendingPathComponent("maps/today")
        let explain = try cytocl(["explain", "--model", model.path, "--out", maps.path, "--class", "monocyte", data + "/blast/blast_0001.png"])
        XCTAssertEqual(explain.status, 64, explain.stderr)
        XCTAssertTrue(explain.stderr.contains("--class 'monocyte' is not predicted, true, or one of blast, lymphocyte"), explain.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("maps").path), "explain left its --out")

        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: data + "/blast/cut.jpg"))
        let run = data + "/runs/first"
        let train = try cytocl(["train", "--data", data, "--out", run, "--input", "64x64", "--conv", "4,8,8", "--epochs", "1"])
        XCTAssertEqual(train.status, 1, train.stderr)
        XCTAssertTrue(train.stderr.contains("cut.jpg: truncated JPEG file"), train.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data + "/runs"), "train left its run folder in the data set")
        // A validation fraction that leaves nothing to train on: said before training, nothing left.
        try FileManager.default.removeItem(atPath: data + "/blast/cut.jpg")
        let all = try cytocl([
            "train", "--data", data, "--out", run, "--input", "64x64", "--conv", "4,8,8", "--epochs", "1", "--val-fraction", "0.99",
            "--near-duplicates", "off",
        ])
        XCTAssertEqual(all.status, 1, all.stderr)
        XCTAssertTrue(
            all.stderr.contains("--val-fraction 0.99 holds out all 12 images of \(data) for validation: none is left to train on"), all.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data + "/runs"))
        // An existing --out is left as it was.
        let kept = dir.appendingPathComponent("kept")
        try FileManager.default.createDirectory(at: kept, withIntermediateDirectories: true)
        let again = try cytocl(["explain", "--model", model.path, "--out", kept.path, "--class", "monocyte", data + "/blast/blast_0001.png"])
        XCTAssertEqual(again.status, 64, again.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: kept.path))
    }
}
