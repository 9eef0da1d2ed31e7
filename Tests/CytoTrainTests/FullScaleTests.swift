import CytoCPU
import CytoCore
import CytoData
import CytoSweep
import CytoTrain
import Foundation
import Synchronization
import XCTest

/// The full-scale sweep at a tiny scale: sizes past the paper (`all`, balanced else
/// stratified), cached data streamed per cell, several devices, failed cells recorded.
final class FullScaleTests: XCTestCase {
    func testSizesParseAll() throws {
        XCTAssertEqual(try parseSizes("10:30:10,200,all"), [10, 20, 30, 200, SweepProtocol.allSize])
        XCTAssertEqual(try parseSizes("all"), [SweepProtocol.allSize])
        XCTAssertEqual(try parseSizes("5000, 1000,ALL,10"), [10, 1000, 5000, SweepProtocol.allSize])
        XCTAssertThrowsError(try parseSizes("alll"))
    }

    func testSharesAreBalancedWhereTheClassesAllowElseFilled() {
        let p = SweepProtocol.amlBinary
        // AML fold pools: 14,721 others and 2,944 blasts.
        XCTAssertEqual(p.trainingShares(size: 200, pools: [14721, 2944]).shares, [100, 100])
        XCTAssertTrue(p.trainingShares(size: 5000, pools: [14721, 2944]).balanced)
        let s = p.trainingShares(size: 10000, pools: [14721, 2944])
        XCTAssertFalse(s.balanced)
        XCTAssertEqual(s.shares.reduce(0, +), 10000)
        XCTAssertEqual(s.shares, [7056, 2944], "every blast, the rest from the others")
        XCTAssertEqual(p.trainingShares(size: 17665, pools: [14721, 2944]).shares, [14721, 2944])
        XCTAssertEqual(p.trainingShares(size: 99999, pools: [14721, 2944]).shares, [14721, 2944])
    }

    func testAllAndLargeSizesKeepTestAndValidationDisjoint() throws {
        var p = SweepProtocol.amlBinary
        p.testPerFold = 20; p.valPerFold = 6; p.folds = 4
        p.sizes = try parseSizes("10,60,100,all")
        let (labels, ids) = labelsAndIDs([200, 45])
        let r = try Folds.resolvingAll(p, labels: labels, ids: ids, classNames: ["other", "blast"], seed: 2)
        // Pool per fold: others 200 - 10 - 3 = 187, blasts 45 - 10 - 3 = 32.
        XCTAssertEqual(r.allTrainingSize, 219)
        XCTAssertEqual(r.sizes, [10, 60, 100, 219])
        XCTAssertEqual(r.sizeLabel(219), "all (219)")
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: r, seed: 2)
        var idx: [String: Int] = [:]
        for (i, id) in ids.enumerated() { idx[id] = i }
        for f in 0..<4 {
            for s in r.sizes {
                let plan = try a.plan(fold: f, size: s, protocol: r, indexOf: idx)
                XCTAssertEqual(plan.train.count, s)
                XCTAssertEqual(Set(plan.train).count, s, "no repeats")
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.test))
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.validation))
                XCTAssertTrue(Set(plan.test).isDisjoint(with: plan.validation))
                let blasts = plan.train.filter { labels[$0] == 1 }.count
                if s <= 60 {
                    XCTAssertTrue(plan.balanced); XCTAssertEqual(blasts, s / 2)
                } else {
                    XCTAssertFalse(plan.balanced, "size \(s) cannot be balanced with 32 blasts")
                    XCTAssertEqual(blasts, 32, "every blast of the pool, the others fill the rest")
                }
            }
        }
        // A size above the pool takes the whole pool; two such sizes would train the same
        // sets twice and are refused with the largest size that fits.
        var q = p
        q.sizes = [500]
        let capped = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: q, seed: 2)
        XCTAssertEqual(try capped.plan(fold: 0, size: 500, protocol: q, indexOf: idx).train.count, 219)
        q.sizes = [400, 500]
        XCTAssertThrowsError(try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: q, seed: 2)) { e in
            XCTAssertTrue("\(e)".contains("sizes 400 and 500 both take every training image"), "\(e)")
            XCTAssertEqual("\(e)".components(separatedBy: "folds").count, 2, "the folds are named once: \(e)")
        }
    }

    static let size = 64
    static let spec = ModelSpec(inputHeight: size, inputWidth: size, convFilters: [4, 8, 8], denseUnits: [16], classes: 2)

    static var tiny: SweepProtocol {
        var p = SweepProtocol.custom
        p.folds = 2; p.sizes = [4, 8]; p.valPerFold = 4
        p.training.maxEpochs = 2; p.training.patience = 2
        return p
    }

    /// The same data twice: decoded in memory, and through a memory-mapped cache.
    func bothData() throws -> (memory: SweepData, cached: SweepData) {
        let dir = tempDir("fullscale-data")
        try SyntheticCells.generate(into: dir, layout: .allIDB, count: 40, size: Self.size, seed: 5)
        let index = try DatasetIndex.load(path: dir.path)
        let loaded = try ImageLoader.load(index.items, height: Self.size, width: Self.size)
        let images = LabeledImages(
            geometry: ImageGeometry(height: Self.size, width: Self.size), pixels: loaded.pixels,
            labels: loaded.labels, paths: loaded.items.map(\.path))
        let memory = SweepData(
            images: images, ids: DatasetIndex.relativeIDs(images.paths, root: index.root),
            classNames: index.classNames, path: index.root)
        let cache = try ImageCache.open(index: index, height: Self.size, width: Self.size, directory: tempDir("fullscale-cache"))
        let paths = index.items.map(\.path)
        let cached = SweepData(
            cache: cache, cacheIndices: Array(0..<paths.count), labels: index.items.map(\.label), paths: paths,
            ids: DatasetIndex.relativeIDs(paths, root: index.root), classNames: index.classNames, path: index.root)
        return (memory, cached)
    }

    func testCachedStreamingSweepEqualsInMemorySweep() throws {
        let (memory, cached) = try bothData()
        XCTAssertTrue(cached.isCached)
        XCTAssertEqual(try cached.images([3, 1]).pixels, try memory.images([3, 1]).pixels)
        let a = tempDir("mem"), b = tempDir("cached")
        _ = try SweepRunner(directory: a, protocol: Self.tiny, data: memory, spec: Self.spec, seed: 3).run(backend: CPUBackend(threads: 1))
        let r = try SweepRunner(directory: b, protocol: Self.tiny, data: cached, spec: Self.spec, seed: 3)
        r.testChunk = 3  // stream the 20 test images in 7 chunks
        _ = try r.run(backend: CPUBackend(threads: 1))
        let x = try loadSweepRecords(a), y = try loadSweepRecords(b)
        XCTAssertEqual(x.count, 4); XCTAssertEqual(y.count, 4)
        for (p, q) in zip(x, y) {
            XCTAssertEqual(p.testIDs, q.testIDs); XCTAssertEqual(p.trainIDs, q.trainIDs)
            XCTAssertEqual(p.testProbabilities.count, q.testProbabilities.count)
            for (u, v) in zip(p.testProbabilities, q.testProbabilities) { XCTAssertEqual(u[1], v[1], accuracy: 1e-6) }
            XCTAssertEqual(p.value, q.value, accuracy: 1e-9)
            XCTAssertEqual(q.sampling, "balanced")
            XCTAssertNotNil(q.testSeconds)
        }
    }

    func testSeveralDevicesRunCellsConcurrentlyWithTheSameResults() throws {
        let (_, cached) = try bothData()
        let a = tempDir("one"), b = tempDir("two")
        _ = try SweepRunner(directory: a, protocol: Self.tiny, data: cached, spec: Self.spec, seed: 4).run(backend: CPUBackend(threads: 1))
        let workers = Mutex(Set<Int>())
        let out = try SweepRunner(directory: b, protocol: Self.tiny, data: cached, spec: Self.spec, seed: 4)
            .run(backends: [CPUBackend(threads: 1), CPUBackend(threads: 1)]) { w, e in
                if case .cellStarted = e { workers.withLock { _ = $0.insert(w) } }
            }
        XCTAssertEqual(out.ran.count, 4)
        XCTAssertEqual(workers.withLock { $0 }, [0, 1], "both devices got cells")
        let x = try loadSweepRecords(a), y = try loadSweepRecords(b)
        XCTAssertEqual(x.map(\.fileName), y.map(\.fileName))
        for (p, q) in zip(x, y) { XCTAssertEqual(p.value, q.value, accuracy: 1e-9); XCTAssertEqual(p.trainIDs, q.trainIDs) }
    }

    func testAFailedCellIsRecordedAndTheRunGoesOn() throws {
        let (_, cached) = try bothData()
        let dir = tempDir("failed")
        let r = try SweepRunner(directory: dir, protocol: Self.tiny, data: cached, spec: Self.spec, seed: 5)
        r.saveModels = true
        // A directory that appears, once the cell has started, where fold 0 size 8's model
        // goes makes that cell fail when writing it. (One there before the run is refused
        // up front: SweepRecordTests.testAFolderInThePlaceOfACellFileFailsBeforeTraining.)
        let blocker = r.modelURL(SweepCell(fold: 0, size: 8))
        let out = try r.run(backend: CPUBackend(threads: 1)) { event in
            if case .cellStarted(let c, _, _) = event, c == SweepCell(fold: 0, size: 8) {
                try? FileManager.default.createDirectory(at: blocker.appendingPathComponent("x"), withIntermediateDirectories: true)
            }
        }
        XCTAssertEqual(out.ran.count, 3)
        XCTAssertEqual(out.failed.map(\.cell), [SweepCell(fold: 0, size: 8)])
        let failure = try XCTUnwrap(CellFailure.read(r.errorURL(SweepCell(fold: 0, size: 8))))
        XCTAssertEqual(failure.host, CellClaim.currentHost)
        XCTAssertFalse(failure.message.isEmpty)
        XCTAssertFalse(FileManager.default.fileExists(atPath: r.claimURL(SweepCell(fold: 0, size: 8)).path))
        let st = try SweepStatus.scan(dir)
        XCTAssertEqual(st.cells(.done).count, 3)
        XCTAssertEqual(st.cells(.failed), [SweepCell(fold: 0, size: 8)])
        XCTAssertEqual(st.toRetry, [SweepCell(fold: 0, size: 8)])
        XCTAssertTrue(st.text.contains("failed   fold 0 size 8: on \(CellClaim.currentHost)"), st.text)
        // Fixed: a retry of just that cell succeeds and removes the error file.
        try FileManager.default.removeItem(at: blocker)
        let again = try r.run(backend: CPUBackend(threads: 1), only: Set(st.toRetry))
        XCTAssertEqual(again.ran, [SweepCell(fold: 0, size: 8)])
        XCTAssertNil(CellFailure.read(r.errorURL(SweepCell(fold: 0, size: 8))))
        XCTAssertEqual(try SweepStatus.scan(dir).cells(.done).count, 4)
    }
}
