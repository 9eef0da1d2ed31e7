import CytoCore
import CytoReport
import CytoSweep
import CytoTrain
import Foundation
import XCTest

/// The sweep report on hand-made records: summary.csv numbers, and every figure present.
final class SweepReportTests: XCTestCase {
    /// A self-consistent record: its test probabilities are made to give `value` (the
    /// ROC-AUC for two classes, to 0.01; roughly the accuracy for more), and every stored
    /// metric is computed from them, as `cytocl sweep` does, so the reader's recomputation
    /// accepts it.
    func record(fold: Int, size: Int, value: Double, classes: [String], metric: String) -> SweepRecord {
        let k = classes.count
        var labels: [Int] = [], probs: [[Float]] = []
        if k == 2 {
            (labels, probs) = binaryOutputs(rocAUC: value)
        } else {
            // Ten images per class; the first `wrong` are predicted as the next class.
            let n = 10 * k, wrong = Int(((1 - value) * Double(n)).rounded())
            for i in 0..<n {
                let l = i % k, predicted = i < wrong ? (l + 1) % k : l
                labels.append(l)
                probs.append((0..<k).map { $0 == predicted ? 0.7 : 0.3 / Float(k - 1) })
            }
        }
        return fixtureRecord(fold: fold, size: size, classes: classes, labels: labels, probabilities: probs, metric: metric)
    }

    func makeSweep(protocolName: String, classes: [String], metric: String, values: [Int: [Double]], folds: Int? = nil) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-report-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        var p = try SweepProtocol.named(protocolName)
        p.sizes = values.keys.sorted(); p.folds = folds ?? values.values.map(\.count).max()!; p.metric = metric
        // The split the records below were drawn from: each fold's test and validation
        // ids as `record` names them, and a training pool per class large enough for every size.
        let testCount = classes.count == 2 ? 20 : 10 * classes.count
        let a = FoldAssignment(
            folds: p.folds, classNames: classes,
            test: (0..<p.folds).map { f in (0..<testCount).map { "f\(f)-t\($0)" } },
            validation: (0..<p.folds).map { ["f\($0)-v"] },
            trainingOrder: (0..<p.folds).map { f in classes.indices.map { c in (0..<p.sizes.max()!).map { "f\(f)-c\(c)-\($0)" } } })
        let m = SweepManifest(
            protocolSettings: p, dataPath: "/data/x", dataHash: "abc", imageCount: 100, classNames: classes,
            classCounts: classes.map { _ in 10 }, seed: 1,
            spec: .paper(height: 64, width: 64, classes: classes.count), assignment: a, created: "now")
        try writeAtomically(m.encoded(), to: SweepLayout(dir).manifestURL)
        for (s, vs) in values {
            for (f, v) in vs.enumerated() {
                var r = record(fold: f, size: s, value: v, classes: classes, metric: metric)
                r.protocolName = p.name; r.seed = m.cellSeed(SweepCell(fold: f, size: s))
                r.trainIDs = try a.trainingIDs(fold: f, size: s, protocol: p)
                try writeAtomically(r.encoded(), to: SweepLayout(dir).cellsDirectory.appendingPathComponent(r.fileName))
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
        XCTAssertEqual(all.count, 1 + 2 * 5)
        XCTAssertEqual(
            all.dropFirst().map { $0[2] },
            [
                "roc_auc", "accuracy", "f1_weighted", "f1_macro", "ece",
                "roc_auc", "accuracy", "f1_weighted", "f1_macro", "ece",
            ])
        let rows = [all[0]] + all.dropFirst().filter { $0[2] == "roc_auc" }
        XCTAssertEqual(rows[1][0], "10"); XCTAssertEqual(rows[1][1], "3"); XCTAssertEqual(rows[1][2], "roc_auc")
        XCTAssertEqual(Double(rows[1][3])!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(Double(rows[1][4])!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(rows[2][0], "200")
        XCTAssertEqual(Double(rows[2][3])!, 0.97, accuracy: 1e-12)
        XCTAssertEqual(Double(rows[2][4])!, 0.02, accuracy: 1e-12)
        let accuracy = all.first { $0[0] == "10" && $0[2] == "accuracy" }!
        let accuracies = [0.8, 0.9, 0.7].map {
            record(fold: 0, size: 10, value: $0, classes: ["other", "blast"], metric: "roc_auc").accuracy
        }
        XCTAssertEqual(Double(accuracy[3])!, Metrics.mean(accuracies), accuracy: 1e-12)
        XCTAssertEqual(Double(accuracy[4])!, Metrics.sampleSD(accuracies), accuracy: 1e-12)
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
        let f1 = [0.7, 0.9].map { record(fold: 0, size: 150, value: $0, classes: ["LYT", "MON", "NGS"], metric: "f1_weighted").f1Weighted }
        XCTAssertEqual(Double(rows[1][3])!, Metrics.mean(f1), accuracy: 1e-12)
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
        let cells = SweepLayout(dir).cellsDirectory
        var bad = record(fold: 1, size: 10, value: 0.9, classes: ["other", "blast"], metric: "roc_auc")
        bad.value = 2.59; bad.rocAUC = 2.59
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

    /// A hand-edited ROC-AUC (0.99 over probabilities that give 0.5) is recomputed on
    /// read, named with both values and never averaged into the summary.
    func testEditedROCAUCIsRecomputedAndLeftOut() throws {
        let dir = try makeSweep(
            protocolName: "all-idb-binary", classes: ["other", "blast"], metric: "roc_auc", values: [10: [0.8, 0.6, 0.5]])
        let cells = SweepLayout(dir).cellsDirectory
        var forged = record(fold: 2, size: 10, value: 0.5, classes: ["other", "blast"], metric: "roc_auc")
        XCTAssertEqual(forged.rocAUC, 0.5)
        forged.rocAUC = 0.99; forged.value = 0.99
        try writeAtomically(forged.encoded(), to: cells.appendingPathComponent(forged.fileName))
        let w = try SweepReport.write(sweep: dir)
        XCTAssertEqual(w.cells, 2)
        XCTAssertEqual(w.rejected.map(\.url.lastPathComponent), ["fold2-size10.json"])
        XCTAssertEqual(w.rejected.first?.kind, .corrupt)
        XCTAssertEqual(w.rejected.first?.reason, "roc_auc 0.99 is not the 0.5 its test probabilities and labels give")
        let rows = CSVWriter.parse(try String(contentsOf: w.summaryCSV, encoding: .utf8))
        XCTAssertEqual(Double(rows[1][3])!, 0.7, accuracy: 1e-12, "mean of 0.8 and 0.6 only")

        // F1 is recomputed the same way.
        var f1 = record(fold: 2, size: 10, value: 0.5, classes: ["other", "blast"], metric: "roc_auc")
        f1.f1Weighted = min(1, f1.f1Weighted + 0.1)
        XCTAssertTrue(
            f1.inconsistency(expected: nil, manifest: nil)?.hasPrefix("f1_weighted ") == true,
            f1.inconsistency(expected: nil, manifest: nil) ?? "accepted")
        // A value off only in the last bits (JSON round trip) is accepted.
        var close = record(fold: 2, size: 10, value: 0.5, classes: ["other", "blast"], metric: "roc_auc")
        close.f1Macro = close.f1Macro.nextUp
        XCTAssertNil(close.inconsistency(expected: nil, manifest: nil))
    }

    /// With one fold the s.d. is undefined: "n/a" on the page and an empty field in
    /// summary.csv, never 0 or NaN, and "1 fold" in the ROC legend and caption.
    func testOneFoldHasNoStandardDeviation() throws {
        let dir = try makeSweep(
            protocolName: "all-idb-binary", classes: ["other", "blast"], metric: "roc_auc", values: [10: [0.8]], folds: 1)
        let w = try SweepReport.write(sweep: dir)
        XCTAssertEqual(w.cells, 1)
        let csv = try String(contentsOf: w.summaryCSV, encoding: .utf8)
        XCTAssertFalse(csv.contains("NaN"), csv)
        let auc = CSVWriter.parse(csv).first { $0[2] == "roc_auc" }!
        XCTAssertEqual(auc[1], "1")
        XCTAssertEqual(Double(auc[3])!, 0.8, accuracy: 1e-12)
        XCTAssertEqual(auc[4], "", "no s.d. of one fold")
        let html = try String(contentsOf: w.html, encoding: .utf8)
        XCTAssertTrue(html.contains("mean ROC (AUC 0.800 ± n/a, 1 fold)"), "legend")
        XCTAssertTrue(html.contains("Mean ROC over 1 fold, AUC 0.800 ± n/a"), "caption")
        XCTAssertFalse(html.contains("1 folds"))
        XCTAssertFalse(html.contains("0 folds"))
        XCTAssertFalse(html.contains("± 0.000"))
        XCTAssertFalse(html.contains("NaN") || html.contains(" nan") || html.contains("±  "))
    }
}
