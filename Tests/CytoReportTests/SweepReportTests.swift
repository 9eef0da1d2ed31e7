import CytoCore
import CytoReport
import CytoTrain
import Foundation
import XCTest

/// The sweep report on hand-made records: summary.csv numbers, and every figure present.
final class SweepReportTests: XCTestCase {
    func record(fold: Int, size: Int, value: Double, classes: [String], metric: String) -> SweepRecord {
        let k = classes.count
        let labels = (0..<8).map { $0 % k }
        let probs: [[Float]] = labels.enumerated().map { i, l in
            (0..<k).map { c in c == l ? Float(0.6 + 0.02 * Double(i)) : Float(0.4 - 0.02 * Double(i)) / Float(k - 1) }
        }
        var conf = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        for l in labels { conf[l][l] += 1 }
        let hist = (1...3).map { e in
            try! JSONDecoder().decode(
                EpochRecord.self,
                from: Data(
                    """
                    {"epoch":\(e),"loss":\(1.0 / Double(e)),"accuracy":0.5,"validationLoss":\(1.2 / Double(e)),"validationAccuracy":0.5,"seconds":0.1}
                    """.utf8))
        }
        return SweepRecord(
            fold: fold, size: size, seed: 1, protocolName: "x", classNames: classes, trainIDs: ["a"],
            validationIDs: ["b"], testIDs: labels.map { "t\($0)" }, epochsRun: 3, bestEpoch: 3,
            stopReason: "reached the maximum number of epochs", history: hist, testLabels: labels,
            testProbabilities: probs, metric: metric, value: value, rocAUC: k == 2 ? value : nil,
            accuracy: 1, f1Weighted: k == 2 ? 1 : value, f1Macro: 1, confusion: conf, wallSeconds: 2,
            trainingSeconds: 1.5, backend: "cpu (test)", host: "h", finished: "2024-01-01T00:00:00Z")
    }

    func makeSweep(protocolName: String, classes: [String], metric: String, values: [Int: [Double]], folds: Int? = nil) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-report-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        var p = try SweepProtocol.named(protocolName)
        p.sizes = values.keys.sorted(); p.folds = folds ?? values.values.map(\.count).max()!; p.metric = metric
        let a = FoldAssignment(folds: p.folds, classNames: classes, test: [], validation: [], trainingOrder: [])
        let m = SweepManifest(
            protocolSettings: p, dataPath: "/data/x", dataHash: "abc", imageCount: 100, classNames: classes,
            classCounts: classes.map { _ in 10 }, seed: 1,
            spec: .paper(height: 64, width: 64, classes: classes.count), assignment: a, created: "now")
        try writeAtomically(m.encoded(), to: dir.appendingPathComponent("sweep.json"))
        for (s, vs) in values {
            for (f, v) in vs.enumerated() {
                let r = record(fold: f, size: s, value: v, classes: classes, metric: metric)
                try writeAtomically(r.encoded(), to: dir.appendingPathComponent("cells").appendingPathComponent(r.fileName))
            }
        }
        return dir
    }

    func testBinaryReportSummaryAndFigures() throws {
        let dir = try makeSweep(
            protocolName: "all-idb-binary", classes: ["other", "blast"], metric: "roc_auc",
            values: [10: [0.8, 0.9, 0.7], 200: [0.95, 0.99, 0.97]])
        let w = try SweepReport.write(sweep: dir)
        XCTAssertEqual(w.cells, 6)
        let csv = try String(contentsOf: w.summaryCSV, encoding: .utf8)
        let all = CSVWriter.parse(csv)
        XCTAssertEqual(all[0], ["size", "folds", "metric", "mean", "sd"])
        // One row per size and metric (Table S2): the protocol's metric first.
        XCTAssertEqual(all.count, 1 + 2 * 4)
        XCTAssertEqual(
            all.dropFirst().map { $0[2] },
            [
                "roc_auc", "accuracy", "f1_weighted", "f1_macro",
                "roc_auc", "accuracy", "f1_weighted", "f1_macro",
            ])
        let rows = [all[0]] + all.dropFirst().filter { $0[2] == "roc_auc" }
        XCTAssertEqual(rows[1][0], "10"); XCTAssertEqual(rows[1][1], "3"); XCTAssertEqual(rows[1][2], "roc_auc")
        XCTAssertEqual(Double(rows[1][3])!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(Double(rows[1][4])!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(rows[2][0], "200")
        XCTAssertEqual(Double(rows[2][3])!, 0.97, accuracy: 1e-12)
        XCTAssertEqual(Double(rows[2][4])!, 0.02, accuracy: 1e-12)
        let accuracy = all.first { $0[0] == "10" && $0[2] == "accuracy" }!
        XCTAssertEqual(Double(accuracy[3])!, 1, accuracy: 1e-12)
        XCTAssertEqual(Double(accuracy[4])!, 0, accuracy: 1e-12)
        let html = try String(contentsOf: w.html, encoding: .utf8)
        XCTAssertTrue(html.contains("ROC-AUC against training-set size"))
        XCTAssertTrue(html.contains("Mean ROC curve at 200 training images"))
        XCTAssertTrue(html.contains("Loss curves"))
        XCTAssertTrue(html.contains("0.97 ± 0.02"), "paper value beside ours")
        XCTAssertTrue(html.contains("Table S2: every metric per training-set size"))
        XCTAssertTrue(html.contains("Fidelity to the paper"))
        XCTAssertTrue(html.contains("Keras 2.0.8 form: p −= lr·g / (√a + ε)"), "the optimizer form this run used")
        XCTAssertTrue(html.contains("the augmentation flag is 0 (off) in every published version"), "the scripts' facts")
        XCTAssertTrue(
            html.contains("follows the paper&#39;s text, not the published flag")
                || html.contains("follows the paper's text, not the published flag"),
            "augmentation on is reported as a departure from the published script")
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<svg").count - 1, 3)
        XCTAssertFalse(html.contains("http://") && html.contains("<script src"), "self-contained")
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.cellsCSV.path))
    }

    func testMulticlassReportHasConfusionMatrixAndPartialSweep() throws {
        let dir = try makeSweep(
            protocolName: "multiclass", classes: ["LYT", "MON", "NGS"], metric: "f1_weighted",
            values: [150: [0.7, 0.9]], folds: 10)
        let out = dir.appendingPathComponent("elsewhere")
        let w = try SweepReport.write(sweep: dir, to: out)
        XCTAssertEqual(w.html.deletingLastPathComponent().path, out.path)
        let rows = CSVWriter.parse(try String(contentsOf: w.summaryCSV, encoding: .utf8))
        XCTAssertEqual(rows[1][2], "f1_weighted")
        XCTAssertEqual(Double(rows[1][3])!, 0.8, accuracy: 1e-12)
        let html = try String(contentsOf: w.html, encoding: .utf8)
        XCTAssertTrue(html.contains("Confusion matrix"))
        XCTAssertTrue(html.contains("LYT (n="))
        XCTAssertTrue(html.contains("2 of 10 cells are finished"), "a running sweep reports what is finished")
    }

    /// A damaged or diverged cell file is named and left out; it never moves the mean.
    func testCorruptAndDivergedCellsAreNamedAndLeftOut() throws {
        let dir = try makeSweep(
            protocolName: "all-idb-binary", classes: ["other", "blast"], metric: "roc_auc",
            values: [10: [0.8, 0.9, 0.7, 0.6, 0.5]])
        let cells = dir.appendingPathComponent("cells")
        var bad = record(fold: 1, size: 10, value: 2.59, classes: ["other", "blast"], metric: "roc_auc")
        try writeAtomically(bad.encoded(), to: cells.appendingPathComponent(bad.fileName))
        bad = record(fold: 2, size: 10, value: 0.7, classes: ["other", "blast"], metric: "roc_auc")
        bad.history[1].loss = .nan
        try writeAtomically(bad.encoded(), to: cells.appendingPathComponent(bad.fileName))
        let full = try Data(contentsOf: cells.appendingPathComponent("fold3-size10.json"))
        try full.prefix(full.count / 2).write(to: cells.appendingPathComponent("fold3-size10.json"))
        let w = try SweepReport.write(sweep: dir)
        XCTAssertEqual(w.cells, 2)
        XCTAssertEqual(w.rejected.map(\.url.lastPathComponent), ["fold1-size10.json", "fold2-size10.json", "fold3-size10.json"])
        XCTAssertEqual(w.rejected.map(\.kind), [.corrupt, .diverged, .corrupt])
        XCTAssertTrue(w.rejected[0].reason.contains("2.59"), w.rejected[0].reason)
        let rows = CSVWriter.parse(try String(contentsOf: w.summaryCSV, encoding: .utf8))
        XCTAssertEqual(rows[1][1], "2")
        XCTAssertEqual(Double(rows[1][3])!, 0.65, accuracy: 1e-12, "mean of the two valid folds (0.8, 0.5)")
        let html = try String(contentsOf: w.html, encoding: .utf8)
        for n in ["fold1-size10.json", "fold2-size10.json", "fold3-size10.json"] { XCTAssertTrue(html.contains(n), n) }
    }
}
