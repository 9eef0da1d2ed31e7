import CytoCore
import CytoTrain
import CytoSweep
import XCTest

/// `--near-duplicates group`: every group of near-duplicate images lands in one fold's
/// test block, and no fold trains on a member of a group it tests or validates on.
final class FoldGroupTests: XCTestCase {
    func data(_ counts: [Int]) -> ([Int], [String]) {
        var labels: [Int] = [], ids: [String] = []
        for (c, n) in counts.enumerated() { for i in 0..<n { labels.append(c); ids.append("c\(c)/img\(String(format: "%03d", i)).png") } }
        return (labels, ids)
    }

    func check(_ p: SweepProtocol, counts: [Int], groups: [[String]], file: StaticString = #filePath, line: UInt = #line) throws {
        let (labels, ids) = data(counts)
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 3, groups: groups)
        var index: [String: Int] = [:]
        for (i, id) in ids.enumerated() { index[id] = i }
        for g in groups {
            let folds = Set(g.compactMap { id in a.test.firstIndex { $0.contains(id) } })
            XCTAssertLessThanOrEqual(folds.count, 1, "group \(g) is split over test folds \(folds)", file: file, line: line)
        }
        for f in 0..<p.folds {
            let held = Set(a.test[f] + a.validation[f])
            let heldGroups = groups.filter { !held.isDisjoint(with: $0) }
            for s in p.sizes {
                let plan = try a.plan(fold: f, size: s, protocol: p, indexOf: index)
                let train = Set(plan.train.map { ids[$0] })
                for g in heldGroups {
                    XCTAssertTrue(
                        train.isDisjoint(with: g), "fold \(f) size \(s) trains on \(train.intersection(g)) of a held-out group",
                        file: file, line: line)
                }
            }
        }
    }

    func testGroupsStayInOneFoldWithPartitionedFolds() throws {
        var p = SweepProtocol.allIDBBinary
        p.sizes = [10, 40]
        p.folds = 5
        // Pairs and a triple, within a class and across the classes.
        let groups = [
            ["c0/img000.png", "c0/img001.png"], ["c0/img010.png", "c0/img011.png", "c0/img012.png"],
            ["c1/img005.png", "c1/img006.png"], ["c0/img020.png", "c1/img020.png"],
        ]
        try check(p, counts: [60, 60], groups: groups)
    }

    func testGroupsStayInOneFoldWithFixedTestSets() throws {
        var p = SweepProtocol.amlBinary
        p.testPerFold = 10; p.valPerFold = 4; p.folds = 4; p.sizes = [10, 20]
        let groups =
            (0..<10).map { ["c0/img\(String(format: "%03d", 2 * $0)).png", "c0/img\(String(format: "%03d", 2 * $0 + 1)).png"] } + [
                ["c1/img000.png", "c1/img001.png", "c1/img002.png"]
            ]
        try check(p, counts: [80, 40], groups: groups)
    }

    /// Without groups the assignment is the one sweeps made before groups existed (so
    /// resuming an old sweep directory still matches its fold assignment).
    func testNoGroupsLeavesTheAssignmentUnchanged() throws {
        var p = SweepProtocol.allIDBBinary
        p.sizes = [10, 20]
        let (labels, ids) = data([40, 40])
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 5)
        let b = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 5, groups: [])
        XCTAssertEqual(a, b)
        // Singleton groups change nothing either.
        let c = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 5, groups: [[ids[0]]])
        XCTAssertEqual(a, c)
    }
}
