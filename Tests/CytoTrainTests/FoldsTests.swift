import CytoCore
import CytoTrain
import CytoSweep
import XCTest

/// Fold assignment: stratified, seeded, disjoint, nested; the protocols' parameters; and
/// the message for a data set that is too small.
final class FoldsTests: XCTestCase {
    func testAllIDBPartitionMatchesThePaper() throws {
        let (labels, ids) = labelsAndIDs([125, 125])
        let p = SweepProtocol.allIDBBinary
        XCTAssertEqual(p.sizes, Array(stride(from: 10, through: 200, by: 10)))
        XCTAssertEqual(p.folds, 10)
        XCTAssertTrue(p.training.augment)
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 7)
        let label = Dictionary(uniqueKeysWithValues: zip(ids, labels))
        // Every image in exactly one test block of 25, balanced 12/13.
        XCTAssertEqual(a.test.flatMap { $0 }.sorted(), ids.sorted())
        for f in 0..<10 {
            XCTAssertEqual(a.test[f].count, 25)
            let blasts = a.test[f].filter { label[$0] == 1 }.count
            XCTAssertTrue(blasts == 12 || blasts == 13, "fold \(f): \(blasts) blasts")
            XCTAssertEqual(a.validation[f], a.test[(f + 1) % 10], "validation = the next fold's test block")
            var idx: [String: Int] = [:]
            for (i, id) in ids.enumerated() { idx[id] = i }
            var previous = Set<Int>()
            for s in p.sizes {
                let plan = try a.plan(fold: f, size: s, protocol: p, indexOf: idx)
                XCTAssertEqual(plan.train.count, s)
                XCTAssertEqual(plan.train.filter { labels[$0] == 1 }.count, s / 2, "half from each class")
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.test))
                XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.validation))
                XCTAssertTrue(previous.isSubset(of: Set(plan.train)), "nested training sets")
                previous = Set(plan.train)
            }
            XCTAssertEqual(previous.count, 200, "the largest set is all other images")
        }
        // Seeded: same seed same assignment, other seed another.
        XCTAssertEqual(
            a,
            try Folds.assign(
                labels: labels, ids: ids.reversed().map { $0 }.reversed(), classNames: ["other", "blast"], protocol: p, seed: 7))
        XCTAssertNotEqual(a.test, try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 8).test)
        // Independent of the listing order.
        let perm = Array(zip(ids, labels)).shuffled()
        let b = try Folds.assign(labels: perm.map(\.1), ids: perm.map(\.0), classNames: ["other", "blast"], protocol: p, seed: 7)
        XCTAssertEqual(a, b)
    }

    func testAMLBalancedDisjointTestSets() throws {
        var p = SweepProtocol.amlBinary
        XCTAssertEqual(p.sizes, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 200])
        XCTAssertFalse(p.training.augment)
        p.testPerFold = 20; p.valPerFold = 6; p.folds = 4; p.sizes = [10, 30]
        let (labels, ids) = labelsAndIDs([200, 45])
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["other", "blast"], protocol: p, seed: 1)
        let label = Dictionary(uniqueKeysWithValues: zip(ids, labels))
        XCTAssertEqual(Set(a.test.flatMap { $0 }).count, 80, "each image in at most one test set")
        for f in 0..<4 {
            XCTAssertEqual(a.test[f].filter { label[$0] == 1 }.count, 10)
            XCTAssertEqual(a.validation[f].count, 6)
            XCTAssertTrue(Set(a.validation[f]).isDisjoint(with: a.test[f]))
        }
    }

    func testMulticlassBalancesByRepetition() throws {
        var p = SweepProtocol.multiclass
        XCTAssertEqual(p.metric, "f1_weighted")
        XCTAssertEqual(p.minPerClass, 5)
        p.folds = 5; p.sizes = [20]
        let (labels, ids) = labelsAndIDs([40, 12, 5])
        let a = try Folds.assign(labels: labels, ids: ids, classNames: ["a", "b", "c"], protocol: p, seed: 3)
        var idx: [String: Int] = [:]
        for (i, id) in ids.enumerated() { idx[id] = i }
        let plan = try a.plan(fold: 0, size: 20, protocol: p, indexOf: idx)
        XCTAssertEqual((0..<3).map { c in plan.train.filter { labels[$0] == c }.count }, [20, 20, 20])
        XCTAssertTrue(Set(plan.train).isDisjoint(with: plan.test))
    }

    func testTooSmallSaysPerClassWhatIsNeeded() {
        let (labels, ids) = labelsAndIDs([20, 20])
        XCTAssertThrowsError(
            try Folds.assign(
                labels: labels, ids: ids, classNames: ["other", "blast"],
                protocol: .allIDBBinary, seed: 1)
        ) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("too small for protocol all-idb-binary"), m)
            XCTAssertTrue(m.contains("class 'other' needs at least 125 images and has 20"), m)
            XCTAssertTrue(m.contains("class 'blast' needs at least 125 images and has 20"), m)
        }
        // Exactly the paper's 125 + 125 is enough.
        let (l2, i2) = labelsAndIDs([125, 125])
        XCTAssertNoThrow(try Folds.assign(labels: l2, ids: i2, classNames: ["other", "blast"], protocol: .allIDBBinary, seed: 1))
    }

    func testProtocolNamesAndParsing() throws {
        XCTAssertThrowsError(try SweepProtocol.named("all-idb")) { e in
            XCTAssertTrue("\(e)".contains("unknown protocol 'all-idb'"))
            XCTAssertTrue("\(e)".contains("all-idb-binary, aml-binary, multiclass, custom"))
        }
        for n in SweepProtocol.names { XCTAssertEqual(try SweepProtocol.named(n).name, n) }
        XCTAssertEqual(try parseSizes("30,200"), [30, 200])
        XCTAssertEqual(try parseSizes("10:50:10"), [10, 20, 30, 40, 50])
        XCTAssertEqual(try parseSizes("10:30:10,100"), [10, 20, 30, 100])
        XCTAssertThrowsError(try parseSizes("10:x"))
        XCTAssertThrowsError(try parseSizes("0"))
        XCTAssertEqual(try parseShard("1/4").index, 1)
        XCTAssertThrowsError(try parseShard("4/4"))
    }
}
