import CytoCPU
import CytoCore
import CytoData
import CytoSweep
import CytoTestSupport
import CytoTrain
import Foundation
import Synchronization
import XCTest

/// Sweeps at a tiny scale: resume after a lost record or a killed cell, shards, and
/// refusing to mix sweeps.
final class SweepTests: XCTestCase {
    static let size = 64
    static let spec = ModelSpec(inputHeight: size, inputWidth: size, convFilters: [4, 8, 8], denseUnits: [16], classes: 2)
    /// Generated data sets by image count, shared by the tests (XCTest may run them on any thread).
    static let cache = Mutex<[Int: SweepData]>([:])

    static func data(count: Int) throws -> SweepData {
        if let d = cache.withLock({ $0[count] }) { return d }
        let dir = makeProcessTemporaryFolder("sweep-data-\(count)")
        try SyntheticCells.generate(into: dir, layout: .allIDB, count: count, size: size, seed: 5)
        let index = try DatasetIndex.load(path: dir.path)
        let loaded = try ImageLoader.load(index.items, height: size, width: size)
        let images = LabeledImages(
            geometry: ImageGeometry(height: size, width: size), pixels: loaded.pixels,
            labels: loaded.labels, paths: loaded.items.map(\.path))
        let d = SweepData(
            images: images, ids: DatasetIndex.relativeIDs(images.paths, root: index.root),
            classNames: index.classNames, path: index.root)
        cache.withLock { $0[count] = d }
        return d
    }

    static var tiny: SweepProtocol {
        var p = SweepProtocol.custom
        p.folds = 2; p.sizes = [4, 8]; p.valPerFold = 4
        p.training.maxEpochs = 2; p.training.patience = 2
        return p
    }

    func bytes(_ dir: URL) throws -> [String: Data] {
        let cells = SweepLayout(dir).cellsDirectory
        var out: [String: Data] = [:]
        for n in try FileManager.default.contentsOfDirectory(atPath: cells.path) {
            out[n] = try Data(contentsOf: cells.appendingPathComponent(n))
        }
        return out
    }

    func testResumeRedoesOnlyMissingAndInterruptedCells() throws {
        let dir = tempDir("resume")
        let data = try Self.data(count: 40)
        let backend = CPUBackend(threads: 2)
        let runner = try SweepRunner(directory: dir, protocol: Self.tiny, data: data, spec: Self.spec, seed: 3)
        let first = try runner.run(backend: backend)
        XCTAssertEqual(first.ran.count, 4)
        let before = try bytes(dir)
        XCTAssertEqual(before.keys.sorted(), ["fold0-size4.json", "fold0-size8.json", "fold1-size4.json", "fold1-size8.json"])
        let rec = try SweepRecord.decode(before["fold1-size8.json"]!)
        XCTAssertEqual(rec.trainIDs.count, 8)
        XCTAssertEqual(rec.testIDs.count, 20)
        XCTAssertEqual(rec.validationIDs.count, 4)
        XCTAssertTrue(Set(rec.trainIDs).isDisjoint(with: rec.testIDs))
        XCTAssertEqual(rec.history.count, 2)
        XCTAssertEqual(rec.testProbabilities.count, 20)
        XCTAssertEqual(rec.value, Metrics.rocAUC(scores: rec.testProbabilities.map { Double($0[1]) }, labels: rec.testLabels))

        // 1. A lost record: only that cell is recomputed; the others' bytes are unchanged.
        try FileManager.default.removeItem(at: runner.recordURL(SweepCell(fold: 0, size: 8)))
        // 2. A cell killed mid-way (claim of a dead process, no record): redone.
        try FileManager.default.removeItem(at: runner.recordURL(SweepCell(fold: 1, size: 4)))
        let dead = CellClaim(host: CellClaim.currentHost, pid: Int32.max - 7, started: "2024-01-01T00:00:00Z")
        try JSONEncoder().encode(dead).write(to: runner.claimURL(SweepCell(fold: 1, size: 4)))
        // 3. A cell claimed by a live process (our parent) is left to it.
        try FileManager.default.removeItem(at: runner.recordURL(SweepCell(fold: 1, size: 8)))
        let live = CellClaim(host: CellClaim.currentHost, pid: getppid(), started: "2024-01-01T00:00:00Z")
        try JSONEncoder().encode(live).write(to: runner.claimURL(SweepCell(fold: 1, size: 8)))

        let again = try SweepRunner(directory: dir, protocol: Self.tiny, data: data, spec: Self.spec, seed: 3)
        let second = try again.run(backend: backend)
        XCTAssertEqual(Set(second.ran), [SweepCell(fold: 0, size: 8), SweepCell(fold: 1, size: 4)])
        XCTAssertEqual(second.finished, [SweepCell(fold: 0, size: 4)])
        XCTAssertEqual(second.busy, [SweepCell(fold: 1, size: 8)])
        let after = try bytes(dir)
        XCTAssertEqual(after["fold0-size4.json"], before["fold0-size4.json"], "a finished record must not be rewritten")
        XCTAssertNil(after["fold1-size4.claim"], "the claim is removed when the cell finishes")
        // Same seed and data: the recomputed cell reproduces its record's numbers.
        let redone = try SweepRecord.decode(after["fold0-size8.json"]!)
        let original = try SweepRecord.decode(before["fold0-size8.json"]!)
        XCTAssertEqual(redone.trainIDs, original.trainIDs)
        XCTAssertEqual(redone.value, original.value, accuracy: 1e-6)
    }

    func testShardsUnionEqualsFullRun() throws {
        let data = try Self.data(count: 40)
        let backend = CPUBackend(threads: 2)
        let full = tempDir("full"), sharded = tempDir("sharded")
        _ = try SweepRunner(directory: full, protocol: Self.tiny, data: data, spec: Self.spec, seed: 4).run(backend: backend)
        let r = try SweepRunner(directory: sharded, protocol: Self.tiny, data: data, spec: Self.spec, seed: 4)
        let a = try r.run(backend: backend, shard: (0, 2)), b = try r.run(backend: backend, shard: (1, 2))
        XCTAssertEqual(a.ran.count, 2); XCTAssertEqual(b.ran.count, 2)
        XCTAssertTrue(Set(a.ran).isDisjoint(with: b.ran))
        let x = try loadSweepRecords(full), y = try loadSweepRecords(sharded)
        XCTAssertEqual(x.map(\.fileName), y.map(\.fileName))
        for (p, q) in zip(x, y) {
            XCTAssertEqual(p.trainIDs, q.trainIDs); XCTAssertEqual(p.testIDs, q.testIDs)
            XCTAssertEqual(p.value, q.value, accuracy: 1e-6)
        }
    }

    func testRefusesAMismatchedSweepDirectory() throws {
        let dir = tempDir("mismatch")
        _ = try SweepRunner(directory: dir, protocol: Self.tiny, data: try Self.data(count: 40), spec: Self.spec, seed: 3)
        var other = Self.tiny
        other.name = "aml-binary"; other.sizes = [4, 6]
        XCTAssertThrowsError(try SweepRunner(directory: dir, protocol: other, data: try Self.data(count: 48), spec: Self.spec, seed: 3)) {
            e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("refusing to mix sweeps"), m)
            XCTAssertTrue(m.contains("protocol: the directory has custom, this run has aml-binary"), m)
            XCTAssertTrue(m.contains("data set: the directory was made from"), m)
            XCTAssertTrue(m.contains("40 images"), m)
            XCTAssertTrue(m.contains("48 images"), m)
            XCTAssertTrue(m.contains("sizes: the directory has 4,8, this run has 4,6"), m)
        }
        XCTAssertThrowsError(try SweepRunner(directory: dir, protocol: Self.tiny, data: try Self.data(count: 40), spec: Self.spec, seed: 9))
        { e in
            XCTAssertTrue("\(e)".contains("seed: the directory has 3, this run has 9"), "\(e)")
        }
        // The same settings open it again.
        XCTAssertNoThrow(try SweepRunner(directory: dir, protocol: Self.tiny, data: try Self.data(count: 40), spec: Self.spec, seed: 3))
    }

    func testTooSmallDataForAProtocol() throws {
        var p = SweepProtocol.allIDBBinary
        p.training.maxEpochs = 1
        XCTAssertThrowsError(
            try SweepRunner(
                directory: tempDir("small"), protocol: p, data: try Self.data(count: 40),
                spec: Self.spec, seed: 1)
        ) { e in
            XCTAssertTrue("\(e)".contains("class 'blast' needs at least 125 images and has 20"), "\(e)")
        }
    }

    /// Off a terminal (a log, a Slurm job) the final block is printed once: the last
    /// finished cell printed it and `finish()` printed it again.
    func testProgressOffATerminalPrintsTheFinalBlockOnce() {
        let out = Mutex("")
        let display = ProgressDisplay(redrawInterval: 0, plainInterval: 3600, isTerminal: false) { t in out.withLock { $0 += t } }
        let progress = SweepProgress(devices: ["cpu"], total: 1, done: 0, display: display)
        let cell = SweepCell(fold: 0, size: 4)
        let record = SweepRecord(
            fold: 0, size: 4, seed: 1, protocolName: "custom", classNames: ["a", "b"], trainIDs: ["t"], validationIDs: ["v"],
            testIDs: ["x"], epochsRun: 1, bestEpoch: 1, stopReason: "max_epochs", history: [], testLabels: [0],
            testProbabilities: [[0.6, 0.4]], metric: "roc_auc", value: 0.5, rocAUC: 0.5, accuracy: 1, f1Weighted: 1, f1Macro: 1,
            confusion: [[1, 0], [0, 0]], wallSeconds: 1, trainingSeconds: 1, backend: "cpu", host: "h", finished: "now")
        progress.handle(worker: 0, event: .cellStarted(cell, index: 0, of: 1))
        progress.handle(worker: 0, event: .cellFinished(record))
        progress.finish()
        let text = out.withLock { $0 }
        XCTAssertEqual(text.components(separatedBy: "sweep 1/1 cells").count - 1, 1, text)
        XCTAssertEqual(text.components(separatedBy: "fold 0 size 4 done: roc_auc 0.500").count - 1, 1, text)
    }
}
