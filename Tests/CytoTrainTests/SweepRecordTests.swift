import CytoCPU
import CytoCore
import CytoData
import Foundation
import XCTest

@testable import CytoTrain
@testable import CytoSweep

/// Damaged cell files of a real (tiny) sweep: `status` lists them as corrupt or
/// failed, a re-run or retry redoes them, and they are never loaded as results.
final class SweepRecordTests: XCTestCase {
    func testEveryKindOfDamageIsCorruptAndRedone() throws {
        let dir = tempDir("records")
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40),
            spec: SweepTests.spec, seed: 3)
        let backend = CPUBackend(threads: 2)
        XCTAssertEqual(try runner.run(backend: backend).ran.count, 4)
        let cells = SweepLayout(dir).cellsDirectory
        func url(_ f: Int, _ s: Int) -> URL { SweepLayout(dir).recordURL(SweepCell(fold: f, size: s)) }
        let good = try Data(contentsOf: url(0, 4))
        let record = try SweepRecord.decode(good)
        func write(_ r: SweepRecord, _ f: Int, _ s: Int) throws { try r.encoded().write(to: url(f, s)) }

        // Truncated, empty, garbage, a folder in its place.
        try good.prefix(good.count / 2).write(to: url(0, 4))
        try Data().write(to: url(0, 8))
        try Data("hello, not json".utf8).write(to: url(1, 4))
        try FileManager.default.removeItem(at: url(1, 8))
        try FileManager.default.createDirectory(at: url(1, 8), withIntermediateDirectories: false)
        var st = try SweepStatus.scan(dir)
        XCTAssertEqual(st.cells("corrupt").count, 4, st.text)
        XCTAssertEqual(st.cells("done").count, 0)
        XCTAssertEqual(Set(st.toRetry), Set(runner.cells))
        XCTAssertTrue(st.text.contains("a folder is in the place"), st.text)
        XCTAssertTrue(st.text.contains("the file is empty"), st.text)
        XCTAssertEqual(try loadSweepRecords(dir).count, 0, "nothing damaged is loaded as a result")
        XCTAssertFalse(runner.isFinished(SweepCell(fold: 0, size: 4)))

        // Inconsistent but well-formed: another cell's record, AUC outside [0, 1], NaN.
        try FileManager.default.removeItem(at: url(1, 8))
        try good.write(to: url(0, 8))  // holds fold 0 size 4
        var r = record; r.fold = 1; r.value = 2.59; r.rocAUC = 2.59
        try write(r, 1, 4)
        r = record; r.fold = 1; r.size = 8; r.value = .nan; r.rocAUC = .nan
        try write(r, 1, 8)
        r = record; r.accuracy = .infinity
        try write(r, 0, 4)
        st = try SweepStatus.scan(dir)
        XCTAssertEqual(st.cells("corrupt").count, 4, st.text)
        XCTAssertTrue(st.text.contains("file name says fold 0 size 8"), st.text)
        XCTAssertTrue(st.text.contains("2.59"), st.text)

        // A diverged cell reads as failed, not done.
        r = record; r.history[0].loss = .infinity
        try write(r, 0, 4)
        st = try SweepStatus.scan(dir)
        XCTAssertEqual(st.cells("diverged"), [SweepCell(fold: 0, size: 4)])
        XCTAssertTrue(st.text.contains("failed   fold 0 size 4: training diverged"), st.text)

        // A re-run redoes every such cell and leaves valid records.
        let again = try runner.run(backend: backend)
        XCTAssertEqual(Set(again.ran), Set(runner.cells))
        st = try SweepStatus.scan(dir)
        XCTAssertEqual(st.cells("done").count, 4, st.text)
        XCTAssertEqual(try loadSweepRecords(dir).count, 4)
        let redone = try SweepRecord.decode(Data(contentsOf: url(0, 4)))
        XCTAssertEqual(redone.testProbabilities, record.testProbabilities, "the redone cell is the same cell")
        XCTAssertEqual(redone.value, record.value)
    }

    /// A well-formed record whose confusion matrix or accuracy is not the one its own
    /// test probabilities and labels give (labels edited under the stored metrics), or
    /// whose test images are also training images, used to be counted as done and
    /// averaged into the report with exit 0.
    func testMetricsThatContradictTheTestProbabilitiesAreCorrupt() throws {
        let classes = ["other", "blast"]
        let probabilities: [[Float]] = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2]]
        let labels = [0, 0, 1, 1]
        let truth = ClassificationReport(probabilities: probabilities, labels: labels, classNames: classes)
        let history = [EpochRecord(epoch: 1, loss: 0.7, accuracy: 0.5, validationLoss: 0.69, validationAccuracy: 0.5, seconds: 1)]
        let record = SweepRecord(
            fold: 0, size: 4, seed: 1, protocolName: "custom", classNames: classes,
            trainIDs: ["t1", "t2", "t3", "t4"], validationIDs: ["v1"], testIDs: ["a", "b", "c", "d"],
            epochsRun: 1, bestEpoch: 1, stopReason: "max_epochs", history: history,
            testLabels: labels, testProbabilities: probabilities, metric: "roc_auc",
            value: truth.rocAUC!, rocAUC: truth.rocAUC, accuracy: truth.accuracy,
            f1Weighted: truth.f1Weighted, f1Macro: truth.f1Macro, confusion: truth.confusion,
            wallSeconds: 1, trainingSeconds: 1, backend: "cpu", host: "h", finished: "now")
        let cell = SweepCell(fold: 0, size: 4)
        XCTAssertNil(record.inconsistency(expected: cell, manifest: nil), "the consistent record is accepted")
        XCTAssertEqual(truth.rocAUC, 0.75)

        var r = record; r.testLabels = [1, 1, 0, 0]
        XCTAssertNotNil(r.inconsistency(expected: cell, manifest: nil), "labels changed under the stored metrics")
        r = record; r.accuracy = 1
        XCTAssertTrue(r.inconsistency(expected: cell, manifest: nil)?.contains("accuracy") == true)
        r = record; r.trainIDs = ["t1", "c"]
        XCTAssertTrue(r.inconsistency(expected: cell, manifest: nil)?.contains("image c is in both") == true)
    }

    func testFileNameParsing() {
        XCTAssertEqual(SweepLayout.cell(fromRecordName: "fold3-size200.json"), SweepCell(fold: 3, size: 200))
        XCTAssertNil(SweepLayout.cell(fromRecordName: "fold3-size200.error.json"))
        XCTAssertNil(SweepLayout.cell(fromRecordName: "fold3-size0.json"))
        XCTAssertNil(SweepLayout.cell(fromRecordName: "fold-1-size4.json"))
    }

    /// The names users see in `cells/` (and scripts glob): every file of a cell shares
    /// its stem, and a record's name reads back as its cell.
    func testEveryFileOfACellIsNamedAfterItsFoldAndSize() {
        let layout = SweepLayout(URL(fileURLWithPath: "/sweeps/s1"))
        let cell = SweepCell(fold: 2, size: 30)
        XCTAssertEqual(layout.recordURL(cell).path, "/sweeps/s1/cells/fold2-size30.json")
        XCTAssertEqual(layout.claimURL(cell).path, "/sweeps/s1/cells/fold2-size30.claim")
        XCTAssertEqual(layout.errorURL(cell).path, "/sweeps/s1/cells/fold2-size30.error.json")
        XCTAssertEqual(layout.modelURL(cell).path, "/sweeps/s1/cells/fold2-size30.safetensors")
        XCTAssertEqual(layout.manifestURL.path, "/sweeps/s1/sweep.json")
        XCTAssertEqual(layout.invocationURL.path, "/sweeps/s1/invocation.json")
        XCTAssertEqual(layout.slurmDirectory.path, "/sweeps/s1/slurm")
        XCTAssertEqual(SweepLayout.cell(fromRecordName: layout.recordURL(cell).lastPathComponent), cell)
        for file in [SweepLayout.CellFile.claim, .error, .model] {
            XCTAssertNil(SweepLayout.cell(fromRecordName: SweepLayout.fileName(cell, file)), "\(file)")
        }
    }

    /// A folder (with something in it) where a cell's record goes stops the run before
    /// any cell is trained, naming the folder; an empty one is a leftover and removed.
    func testAFolderInThePlaceOfACellFileFailsBeforeTraining() throws {
        let dir = tempDir("folder-cell")
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40),
            spec: SweepTests.spec, seed: 3)
        let cells = SweepLayout(dir).cellsDirectory
        let blocking = SweepLayout(dir).recordURL(SweepCell(fold: 1, size: 8))
        try FileManager.default.createDirectory(at: blocking.appendingPathComponent("inside"), withIntermediateDirectories: true)
        let empty = SweepLayout(dir).recordURL(SweepCell(fold: 0, size: 8))
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try runner.run(backend: CPUBackend(threads: 2))) { error in
            XCTAssertEqual(
                "\(error)", "\(blocking.path): is a directory, in the place of cell fold 1 size 8's record; move it away and run again")
        }
        let written = try FileManager.default.contentsOfDirectory(atPath: cells.path).filter { $0.hasSuffix(".json") }
        XCTAssertEqual(written, [blocking.lastPathComponent], "no cell was trained or recorded")
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty.path), "the empty leftover folder is removed")
    }
}
