import CytoCPU
import CytoCore
import CytoData
import Foundation
import XCTest

@testable import CytoSweep
@testable import CytoTrain

/// Records a hostile user copied, renamed or edited, and sweeps resumed on other
/// images: each is refused by name, never counted (a wrong mean with exit 0).
final class SweepRecordTrustTests: XCTestCase {
    /// A finished tiny sweep (2 folds x sizes 4, 8).
    func finishedSweep(_ name: String) throws -> (SweepRunner, URL) {
        let dir = tempDir(name)
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40), spec: SweepTests.spec, seed: 3)
        XCTAssertEqual(try runner.run(backend: CPUBackend(threads: 2)).ran.count, runner.cells.count)
        return (runner, SweepLayout(dir).cellsDirectory)
    }

    /// A folder moved between two cells: the next cell's claim cannot be created. That
    /// used to count the cell as "running in another process" and exit 0 with the sweep
    /// unfinished (a CI run caught it); it is now a failure naming the move, and nothing
    /// is written at the old path.
    func testAFolderMovedBetweenCellsStopsTheRunNamingTheMove() throws {
        let dir = tempDir("moved-between"), moved = tempDir("moved-between-new").appendingPathComponent("S")
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40), spec: SweepTests.spec, seed: 3)
        try runner.create()
        try FileManager.default.moveItem(at: dir, to: moved)
        let outcome = try runner.run(backend: CPUBackend(threads: 2))
        XCTAssertEqual(outcome.ran.count, 0)
        XCTAssertEqual(outcome.busy.count, 0, "a moved folder is not a cell running elsewhere")
        XCTAssertEqual(outcome.failed.count, 1, "the worker stops at the first cell")
        XCTAssertTrue(outcome.failed.first?.message.contains("moved or removed while this run was in it") ?? false, "\(outcome.failed)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path), "the old path was recreated")
    }

    /// A record that is valid JSON but lacks a field names the field (it was "truncated
    /// or malformed JSON", which sends the user looking for the wrong problem).
    func testARecordMissingAFieldNamesTheField() throws {
        let dir = tempDir("missing-field")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("fold0-size4.json")
        try Data("{\"fold\": 0, \"size\": 4}".utf8).write(to: url)
        guard case .rejected(let r) = SweepRecord.check(url, cell: SweepCell(fold: 0, size: 4)) else { return XCTFail("accepted") }
        XCTAssertTrue(r.reason.hasPrefix("the field '"), r.reason)
        XCTAssertTrue(r.reason.contains("' is missing"), r.reason)
        XCTAssertFalse(r.reason.contains("malformed"), r.reason)
        try Data("{\"fold\": 0, \"si".utf8).write(to: url)
        guard case .rejected(let t) = SweepRecord.check(url, cell: nil) else { return XCTFail("accepted") }
        XCTAssertTrue(t.reason.hasPrefix("truncated or malformed JSON"), t.reason)
    }

    func testOnlyTheCanonicalFileNameIsACell() {
        XCTAssertEqual(SweepLayout.cell(fromRecordName: "fold1-size8.json"), SweepCell(fold: 1, size: 8))
        for n in ["fold01-size8.json", "fold00-size4.json", "fold0-size004.json", "fold+0-size4.json", "fold0-size+4.json"] {
            XCTAssertNil(SweepLayout.cell(fromRecordName: n), n)
            XCTAssertTrue(SweepLayout.isNonCanonicalRecordName(n), n)
        }
        XCTAssertFalse(SweepLayout.isNonCanonicalRecordName("fold1-size8.json"))
        XCTAssertFalse(SweepLayout.isNonCanonicalRecordName("fold1-size8.error.json"))
        XCTAssertFalse(SweepLayout.isNonCanonicalRecordName("fold1-size8.claim"))
    }

    /// `cp fold1-size8.json fold01-size8.json` used to count fold 1 twice ("7 of 6 cells").
    func testACopyUnderAPaddedOrSignedNameIsRefusedByName() throws {
        let (_, cells) = try finishedSweep("copies")
        let dir = cells.deletingLastPathComponent()
        XCTAssertEqual(try scanSweepRecords(dir, manifest: loadSweepManifest(dir)).records.count, 4)
        let original = cells.appendingPathComponent("fold1-size8.json")
        for n in ["fold01-size8.json", "fold00-size4.json", "fold0-size004.json", "fold+0-size4.json", "fold0-size+4.json"] {
            let copy = cells.appendingPathComponent(n)
            try FileManager.default.copyItem(at: original, to: copy)
            XCTAssertThrowsError(try scanSweepRecords(dir, manifest: loadSweepManifest(dir)), n) { error in
                XCTAssertTrue("\(error)".hasPrefix(copy.path + ": not a record name the sweep writes"), "\(error)")
            }
            XCTAssertThrowsError(try loadSweepRecords(dir), n)
            XCTAssertThrowsError(try SweepStatus.scan(dir), n) { error in
                XCTAssertTrue("\(error)".hasPrefix(copy.path + ": "), "\(error)")
            }
            try FileManager.default.removeItem(at: copy)
        }
        XCTAssertEqual(try SweepStatus.scan(dir).cells(.done).count, 4)
    }

    /// A record that contradicts the sweep's stored split or settings is corrupt,
    /// named with what differs, and never counted; the sweep's own records pass.
    func testRecordsAreCheckedAgainstTheSweepsSplitAndSettings() throws {
        let (runner, cells) = try finishedSweep("split")
        let dir = cells.deletingLastPathComponent()
        let m = runner.manifest
        func url(_ f: Int, _ s: Int) -> URL { SweepLayout(dir).recordURL(SweepCell(fold: f, size: s)) }
        for c in runner.cells {
            guard case .valid = SweepRecord.check(url(c.fold, c.size), cell: c, manifest: m) else {
                return XCTFail("the sweep's own record of \(c) is refused")
            }
        }
        let fold1 = try SweepRecord.decode(Data(contentsOf: url(1, 4)))
        let fold0 = try SweepRecord.decode(Data(contentsOf: url(0, 4)))
        XCTAssertNotNil(fold0.imagesHash)
        XCTAssertEqual(fold0.imagesHash, m.imagesHash)
        func assertRefused(_ r: SweepRecord, _ expected: String, line: UInt = #line) throws {
            try r.encoded().write(to: url(0, 4))
            switch SweepRecord.check(url(0, 4), cell: SweepCell(fold: 0, size: 4), manifest: m) {
            case .valid: XCTFail("accepted; expected \(expected)", line: line)
            case .rejected(let rej):
                XCTAssertEqual(rej.kind, .corrupt, line: line)
                XCTAssertTrue(rej.reason.contains(expected), rej.reason, line: line)
            }
            let scanned = try scanSweepRecords(dir, manifest: m)
            XCTAssertEqual(scanned.records.count, 3, line: line)
            XCTAssertEqual(scanned.rejected.map(\.url.lastPathComponent), ["fold0-size4.json"], line: line)
            XCTAssertFalse(runner.isFinished(SweepCell(fold: 0, size: 4)), "a re-run redoes it", line: line)
        }
        var r = fold1; r.fold = 0
        try assertRefused(r, "test images are not fold 0's")
        r = fold0; r.testIDs[0] = "not-in-the-data.png"
        try assertRefused(r, "not-in-the-data.png is not in that fold's test set")
        r = fold0; r.trainIDs.removeLast()
        try assertRefused(r, "it has 3 training images, size 4 of fold 0 draws 4")
        r = fold0; r.trainIDs[0] = fold0.validationIDs[0]
        try assertRefused(r, "training image \(fold0.validationIDs[0]) is not in fold 0's training pool")
        r = fold0; r.protocolName = "all-idb-binary"
        try assertRefused(r, "protocol all-idb-binary differs from the sweep's custom")
        r = fold0; r.seed += 1
        try assertRefused(r, "seed \(fold0.seed + 1) is not the \(fold0.seed)")
        r = fold0; r.wallSeconds = -5
        try assertRefused(r, "wallSeconds -5.0 is not a duration")
        r = fold0; r.threadCPUSeconds?.validation = -.infinity
        try assertRefused(r, "threadCPUSeconds.validation -inf is not a duration")
        r = fold0; r.testProbabilities[0] = [0.9, 0.3]
        try assertRefused(r, "sum to 1.2, not 1")
        r = fold0; r.imagesHash = String(repeating: "0", count: 64)
        try assertRefused(r, "trained on other images")
        // Rows that sum to 1 within float rounding are softmax outputs and pass.
        try fold0.encoded().write(to: url(0, 4))
        XCTAssertTrue(runner.isFinished(SweepCell(fold: 0, size: 4)))
    }

    /// The same file names and classes with other pixels used to resume silently and
    /// average cells of two image sets; the images hash (from the per-image checksums)
    /// refuses it, and a directory made before the hash existed is refused too.
    func testResumingOnOtherPixelsUnderTheSameNamesIsRefused() throws {
        let dir = tempDir("pixels")
        let data = try SweepTests.data(count: 40)
        _ = try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 3)
        XCTAssertNoThrow(try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 3))
        var images = try data.images(Array(0..<data.count))
        images.pixels[5 * data.geometry.pixelsPerImage + 17] ^= 0x40  // one byte of image 5
        let other = SweepData(images: images, ids: data.ids, classNames: data.classNames, path: data.path)
        XCTAssertEqual(
            SweepManifest.hash(ids: other.ids, labels: other.labels, classNames: other.classNames),
            SweepManifest.hash(ids: data.ids, labels: data.labels, classNames: data.classNames), "same names and classes")
        XCTAssertThrowsError(try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: other, spec: SweepTests.spec, seed: 3)) {
            XCTAssertTrue("\($0)".contains("the same 40 file names and classes, but other image contents"), "\($0)")
        }
        // A sweep.json without the images hash (an older cytocl's) cannot be checked.
        let url = SweepLayout(dir).manifestURL
        var old = try SweepManifest.decode(Data(contentsOf: url))
        old.imagesHash = nil
        try old.encoded().write(to: url)
        XCTAssertThrowsError(try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 3)) {
            XCTAssertTrue("\($0)".contains("older cytocl that did not record the images' contents"), "\($0)")
        }
    }
}
