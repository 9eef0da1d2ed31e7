import CytoCPU
import CytoCore
import CytoData
import CytoTestSupport
import Foundation
import Synchronization
import XCTest

@testable import CytoSweep
@testable import CytoTrain

/// The order workers take a sweep's cells in, and the per-cell CPU time records keep.
final class SweepSchedulingTests: XCTestCase {
    /// 32x32 images and a one-block network: these tests are about order and timing, so
    /// every cell is as cheap as a cell can be (a debug build, in CI's budget).
    static let spec = ModelSpec(inputHeight: 32, inputWidth: 32, convFilters: [4], denseUnits: [8], classes: 2)
    static let data: Result<SweepData, any Error> = Result {
        let dir = makeProcessTemporaryFolder("scheduling")
        try SyntheticCells.generate(into: dir, layout: .allIDB, count: 40, size: 32, seed: 5)
        let index = try DatasetIndex.load(path: dir.path)
        let loaded = try ImageLoader.load(index.items, height: 32, width: 32)
        let images = LabeledImages(
            geometry: ImageGeometry(height: 32, width: 32), pixels: loaded.pixels, labels: loaded.labels,
            paths: loaded.items.map(\.path))
        return SweepData(
            images: images, ids: DatasetIndex.relativeIDs(images.paths, root: index.root), classNames: index.classNames,
            path: index.root)
    }

    func testLargestSizeFirstFoldsInListedOrderWithinASize() {
        let cells = [(0, 4), (0, 8), (0, 16), (1, 4), (1, 8), (3, 4), (3, 16)].map { SweepCell(fold: $0.0, size: $0.1) }
        let order = SweepRunner.largestFirst(cells).map { cells[$0] }
        XCTAssertEqual(
            order.map { "\($0.fold):\($0.size)" }, ["0:16", "3:16", "0:8", "1:8", "0:4", "1:4", "3:4"])
        XCTAssertEqual(SweepRunner.largestFirst([]), [])
    }

    /// One worker starts the cells largest size first; two workers (the
    /// default of one cell per core) give every cell the same record numbers as one, so
    /// the order changes when cells finish, never what they compute.
    func testCellsRunLargestFirstAndTwoWorkersGiveTheSameRecords() throws {
        let data = try Self.data.get()
        let p = SweepTests.tiny
        let one = tempDir("order-one"), two = tempDir("order-two")
        let started = Mutex<[SweepCell]>([])
        _ = try SweepRunner(directory: one, protocol: p, data: data, spec: Self.spec, seed: 6)
            .run(backend: CPUBackend(threads: 1)) { e in
                if case .cellStarted(let c, _, _) = e { started.withLock { $0.append(c) } }
            }
        XCTAssertEqual(
            started.withLock { $0 },
            [SweepCell(fold: 0, size: 8), SweepCell(fold: 1, size: 8), SweepCell(fold: 0, size: 4), SweepCell(fold: 1, size: 4)])
        let outcome = try SweepRunner(directory: two, protocol: p, data: data, spec: Self.spec, seed: 6)
            .run(backends: [CPUBackend(threads: 1), CPUBackend(threads: 1)])
        XCTAssertEqual(outcome.ran.count, 4)
        let a = try loadSweepRecords(one), b = try loadSweepRecords(two)
        XCTAssertEqual(a.map(\.fileName), b.map(\.fileName))
        for (p, q) in zip(a, b) {
            XCTAssertEqual(p.trainIDs, q.trainIDs)
            XCTAssertEqual(p.history.map(\.validationLoss), q.history.map(\.validationLoss))
            XCTAssertEqual(p.testProbabilities, q.testProbabilities)
            XCTAssertEqual(p.value, q.value)
        }
    }

    /// Each record splits its worker thread's CPU seconds by phase, validation apart
    /// from the training steps, and its wall-clock validation seconds.
    func testRecordsSplitTheCellsCPUTimeByPhase() throws {
        let dir = tempDir("cpu-time")
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try Self.data.get(), spec: Self.spec, seed: 3)
        let rec = try runner.runCell(SweepCell(fold: 0, size: 8), backend: CPUBackend(threads: 1))
        let cpu = try XCTUnwrap(rec.threadCPUSeconds)
        XCTAssertGreaterThan(cpu.validation, 0)
        XCTAssertGreaterThan(cpu.test, 0)
        XCTAssertGreaterThan(cpu.training, cpu.validation, "training includes its validation passes")
        XCTAssertGreaterThanOrEqual(cpu.total, cpu.data + cpu.training + cpu.test)
        XCTAssertGreaterThan(try XCTUnwrap(rec.validationSeconds), 0)
        XCTAssertLessThanOrEqual(rec.validationSeconds!, rec.trainingSeconds)
        let reread = try SweepRecord.decode(Data(contentsOf: runner.recordURL(SweepCell(fold: 0, size: 8))))
        XCTAssertEqual(reread.threadCPUSeconds, cpu)
    }
}
