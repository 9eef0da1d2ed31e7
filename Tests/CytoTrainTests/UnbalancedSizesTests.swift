import CytoCPU
import CytoCore
import CytoData
import CytoTrain
import CytoSweep
import Foundation
import XCTest

/// The paper's protocols on the paper's data: ALL-IDB2 after near-duplicate removal has
/// 119 other and 128 blast images, so a fold's pool holds about 95 others and size 200
/// cannot be drawn half per class. The smaller class gives all it has, the larger fills
/// the rest, and a size above the pool takes the whole pool; nothing is refused.
final class UnbalancedSizesTests: XCTestCase {
    func testSmallerClassGivesAllItHasAndTheLargerFills() {
        let p = SweepProtocol.allIDBBinary
        XCTAssertEqual(p.trainingShares(size: 180, pools: [94, 103]).shares, [90, 90])
        XCTAssertTrue(p.trainingShares(size: 180, pools: [94, 103]).balanced)
        let filled = p.trainingShares(size: 190, pools: [94, 103])
        XCTAssertEqual(filled.shares, [94, 96])
        XCTAssertFalse(filled.balanced)
        XCTAssertEqual(p.trainingShares(size: 197, pools: [94, 103]).shares, [94, 103])
        XCTAssertEqual(p.trainingShares(size: 200, pools: [94, 103]).shares, [94, 103], "capped at the whole pool")
        // Three classes: the short one gives all, the other two split the rest evenly.
        XCTAssertEqual(SweepProtocol.custom.trainingShares(size: 30, pools: [4, 50, 50]).shares, [4, 13, 13])
        XCTAssertEqual(SweepProtocol.custom.trainingShares(size: 31, pools: [4, 50, 12]).shares, [4, 15, 12])
        // Shares never shrink as the size grows, so training sets stay nested.
        for pools in [[94, 103], [3, 100, 40], [0, 20]] {
            var last = [Int](repeating: 0, count: pools.count)
            for s in 1...260 {
                let sh = SweepProtocol.custom.trainingShares(size: s, pools: pools).shares
                XCTAssertEqual(sh.reduce(0, +), min(s, pools.reduce(0, +)), "\(pools) size \(s)")
                XCTAssertTrue(zip(sh, pools).allSatisfy { $0 <= $1 })
                XCTAssertTrue(zip(last, sh).allSatisfy { $0 <= $1 }, "\(pools): size \(s) \(sh) after \(last)")
                last = sh
            }
        }
    }

    /// Every fold x every default size of all-idb-binary on 119/128 is planned: nested,
    /// disjoint from test and validation, the size (or the whole pool) drawn.
    func checkEveryCellPlans(labels: [Int], ids: [String], groups: [[String]] = []) throws -> FoldAssignment {
        let p = SweepProtocol.allIDBBinary
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 1, groups: groups)
        var idx: [String: Int] = [:]
        for (i, id) in ids.enumerated() { idx[id] = i }
        for f in 0..<10 {
            let pools = a.poolCounts![f]
            var previous = Set<Int>()
            for s in p.sizes {
                let plan = try a.plan(fold: f, size: s, protocol: p, indexOf: idx)
                let counts = (0..<2).map { c in plan.train.filter { labels[$0] == c }.count }
                XCTAssertEqual(counts, plan.classCounts)
                XCTAssertEqual(plan.train.count, min(s, pools.reduce(0, +)), "fold \(f) size \(s)")
                XCTAssertEqual(Set(plan.train).count, plan.train.count, "no repeats")
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.test))
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.validation))
                XCTAssertTrue(previous.isSubset(of: Set(plan.train)), "nested")
                previous = Set(plan.train)
                if s / 2 <= pools[0] {
                    XCTAssertEqual(counts, [s / 2, s / 2]); XCTAssertEqual(plan.sampling, "balanced")
                } else {
                    XCTAssertEqual(counts[0], pools[0], "fold \(f) size \(s): every other image of the pool")
                    XCTAssertEqual(counts[1], min(s - pools[0], pools[1]))
                    XCTAssertEqual(plan.sampling, s > pools.reduce(0, +) ? "capped" : "filled")
                }
            }
        }
        return a
    }

    func testALLIDB2AfterNearDuplicateRemovalRunsEveryDefaultSize() throws {
        let (labels, ids) = labelsAndIDs([119, 128])
        let a = try checkEveryCellPlans(labels: labels, ids: ids)
        let notes = a.balanceNotes(protocol: .allIDBBinary)
        XCTAssertTrue(notes.contains { $0.hasPrefix("size 200: 10 of 10 folds not balanced (100/100 wanted): other ") }, "\(notes)")
        XCTAssertTrue(notes.contains { $0.contains("capped at the whole training pool") }, "\(notes)")
        XCTAssertFalse(notes.contains { $0.hasPrefix("size 180:") }, "180 is balanced in every fold: \(notes)")
        // 125/125 (what the paper kept) is balanced at every size.
        let (l2, i2) = labelsAndIDs([125, 125])
        XCTAssertEqual(
            try Folds.assign(labels: l2, ids: i2, classNames: ["other", "blast"], protocol: .allIDBBinary, seed: 1)
                .balanceNotes(protocol: .allIDBBinary), [])
    }

    /// The full 260 with near-duplicates grouped (kept in one fold) as ALL-IDB2's:
    /// 11 same-cell groups among the others (one the byte-identical pair), one of three blasts.
    func testFullALLIDB2WithItsNearDuplicateGroupsKeptTogether() throws {
        let (labels, ids) = labelsAndIDs([130, 130])
        var groups = (0..<11).map { g in ["c0/img\(2 * g).png", "c0/img\(2 * g + 1).png"] }
        groups.append(["c1/img0.png", "c1/img1.png", "c1/img2.png"])
        _ = try checkEveryCellPlans(labels: labels, ids: ids, groups: groups)
    }

    func testADataSetWhereSeveralSizesWouldTrainTheSameSetsIsRefused() {
        let (labels, ids) = labelsAndIDs([20, 20])
        XCTAssertThrowsError(
            try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: .allIDBBinary, seed: 1)
        ) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("too small for protocol all-idb-binary"), m)
            XCTAssertTrue(m.contains("would train the same sets; use --sizes up to 3"), m)
        }
    }

    /// A sweep of the paper's protocol on 119/128 images (tiny network, one epoch, the
    /// smallest and the largest size): it runs, and each record states its class counts.
    func testSweepRecordsStateTheirClassCountsAndOldRecordsDeriveThem() throws {
        let side = 16
        let (labels, ids) = labelsAndIDs([119, 128])
        var rng = SeededGenerator(seed: 3)
        let pixels = (0..<(labels.count * side * side * 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let images = LabeledImages(
            geometry: ImageGeometry(height: side, width: side), pixels: pixels, labels: labels, paths: ids)
        let data = SweepData(images: images, ids: ids, classNames: ["other", "blast"], path: "/generated")
        var p = SweepProtocol.allIDBBinary
        p.sizes = [10, 200]; p.training.maxEpochs = 1; p.training.patience = 1; p.training.augment = false
        let spec = ModelSpec(inputHeight: side, inputWidth: side, convFilters: [2], denseUnits: [4], classes: 2)
        let dir = tempDir("unbalanced")
        let runner = try SweepRunner(directory: dir, protocol: p, data: data, spec: spec, seed: 1)
        let out = try runner.run(backend: CPUBackend(threads: 1))
        XCTAssertEqual(out.ran.count, 20)
        XCTAssertTrue(out.failed.isEmpty, "\(out.failed)")
        let records = try loadSweepRecords(dir)
        XCTAssertEqual(records.count, 20)
        for r in records {
            let counts = try XCTUnwrap(r.trainingClassCounts)
            let pools = runner.manifest.assignment.poolCounts![r.fold]
            if r.size == 10 {
                XCTAssertEqual(counts, [5, 5]); XCTAssertEqual(r.sampling, "balanced")
            } else {
                XCTAssertEqual(counts, pools, "size 200 takes fold \(r.fold)'s whole pool")
                XCTAssertEqual(r.sampling, "capped")
                XCTAssertLessThan(counts[0], 100)
            }
        }
        // Stored counts that contradict the training ids are refused.
        let cells = SweepLayout(dir).cellsDirectory
        let url = cells.appendingPathComponent("fold0-size200.json")
        let original = try SweepRecord.decode(Data(contentsOf: url))
        var edited = original
        edited.trainingClassCounts = [original.trainingClassCounts![0] + 1, original.trainingClassCounts![1] - 1]
        try edited.encoded().write(to: url)
        guard case .rejected(let rej) = SweepRecord.check(url, cell: SweepCell(fold: 0, size: 200), manifest: runner.manifest) else {
            return XCTFail("edited class counts accepted")
        }
        XCTAssertTrue(rej.reason.contains("training class counts"), rej.reason)
        // A record written before the counts existed is still read; its counts come from
        // its training ids and the sweep's fold assignment.
        var old = original
        old.trainingClassCounts = nil
        old.sampling = "stratified"
        try old.encoded().write(to: url)
        guard case .valid(let back) = SweepRecord.check(url, cell: SweepCell(fold: 0, size: 200), manifest: runner.manifest) else {
            return XCTFail("a record without class counts is refused")
        }
        XCTAssertNil(back.trainingClassCounts)
        XCTAssertEqual(back.classCounts(manifest: runner.manifest), original.trainingClassCounts)
    }
}
