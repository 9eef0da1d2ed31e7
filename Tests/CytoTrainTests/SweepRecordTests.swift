import CytoCore
import CytoCPU
import CytoData
import CytoTrain
import Foundation
import XCTest

/// Damaged cell files of a real (tiny) sweep: `status` lists them as corrupt or
/// failed, a re-run or retry redoes them, and they are never loaded as results.
final class SweepRecordTests: XCTestCase {
    func tempDir(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-\(name)-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    func testEveryKindOfDamageIsCorruptAndRedone() throws {
        let dir = tempDir("records")
        let runner = try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40),
                                     spec: SweepTests.spec, seed: 3)
        let backend = CPUBackend(threads: 2)
        XCTAssertEqual(try runner.run(backend: backend).ran.count, 4)
        let cells = dir.appendingPathComponent("cells")
        func url(_ f: Int, _ s: Int) -> URL { cells.appendingPathComponent(SweepRecord.fileName(fold: f, size: s)) }
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
        try good.write(to: url(0, 8))                              // holds fold 0 size 4
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

    func testFileNameParsing() {
        XCTAssertEqual(SweepRecord.cell(fromFileName: "fold3-size200.json"), SweepCell(fold: 3, size: 200))
        XCTAssertNil(SweepRecord.cell(fromFileName: "fold3-size200.error.json"))
        XCTAssertNil(SweepRecord.cell(fromFileName: "fold3-size0.json"))
        XCTAssertNil(SweepRecord.cell(fromFileName: "fold-1-size4.json"))
    }
}
