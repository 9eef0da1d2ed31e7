import CytoCPU
import CytoCore
import CytoData
import XCTest

@testable import CytoSelect

/// The strategies on embeddings whose structure is known: blobs for clusters, groups
/// for near-duplicates, probabilities for uncertainty.
final class SelectionTests: XCTestCase {
    /// `sizes[b]` points around centre b (far apart), jittered by a seeded generator;
    /// returns the points and the blob of each.
    func blobs(_ sizes: [Int], seed: UInt64 = 3) -> (points: [[Float]], blob: [Int]) {
        var rng = SeededGenerator(seed: seed)
        var points: [[Float]] = [], blob: [Int] = []
        for (b, n) in sizes.enumerated() {
            let cx = Float(b % 2) * 20, cy = Float(b / 2) * 20
            for _ in 0..<n {
                points.append([cx + rng.nextUnitFloat() * 2 - 1, cy + rng.nextUnitFloat() * 2 - 1])
                blob.append(b)
            }
        }
        return (points, blob)
    }

    func testTypicalPicksOneImageFromEachClusterLargestFirst() {
        let (points, blob) = blobs([40, 30, 20, 10])
        let picks = Selector.select(.typical, state: SelectionState(embeddings: points), count: 4, seed: 1)
        XCTAssertEqual(picks.map { blob[$0.index] }, [0, 1, 2, 3], "one per cluster, the largest without a label first")
        // The pick is the cluster's typical member: near its centre, not on its rim.
        for p in picks {
            let members = points.indices.filter { blob[$0] == blob[p.index] }
            let mx = members.map { points[$0][0] }.reduce(0, +) / Float(members.count)
            let my = members.map { points[$0][1] }.reduce(0, +) / Float(members.count)
            let d = hypot(points[p.index][0] - mx, points[p.index][1] - my)
            XCTAssertLessThan(d, 0.6, "pick \(p.index) is \(d) from its cluster's centre")
        }
        // With one cluster already labelled, the next picks go to the other three.
        let first = points.indices.first { blob[$0] == 0 }!
        let next = Selector.select(
            .typical, state: SelectionState(embeddings: points, picked: [first], pickedLabels: [0]), count: 3, seed: 1)
        XCTAssertEqual(Set(next.map { blob[$0.index] }), [1, 2, 3])
    }

    func testEveryStrategyIsDeterministicForASeed() {
        let (points, _) = blobs([15, 15, 10])
        var rng = SeededGenerator(seed: 9)
        let probs = points.map { _ -> [Float] in let a = rng.nextUnitFloat(); return [a, 1 - a] }
        let state = SelectionState(embeddings: points, picked: [0, 20], pickedLabels: [0, 1], probabilities: probs)
        for s in SelectionStrategy.allCases {
            let a = Selector.select(s, state: state, count: 6, seed: 42)
            let b = Selector.select(s, state: state, count: 6, seed: 42)
            XCTAssertEqual(a, b, "\(s)")
            XCTAssertEqual(a.count, 6, "\(s)")
            XCTAssertEqual(Set(a.map(\.index)).count, 6, "\(s): no image twice")
        }
        let r1 = Selector.select(.random, state: state, count: 6, seed: 1).map(\.index)
        let r2 = Selector.select(.random, state: state, count: 6, seed: 2).map(\.index)
        XCTAssertNotEqual(r1, r2, "the seed changes random picks")
        // `uniform` is the label-free draw: in the selector the same as `random` (in a
        // sweep `random` is the protocol's draw, which sees every label).
        XCTAssertEqual(Selector.select(.uniform, state: state, count: 6, seed: 1).map(\.index), r1)
        // `active`'s first set (no labels, no model): typical by default, or at random.
        let cold = SelectionState(embeddings: points)
        var uniformStart = ActiveOptions()
        uniformStart.coldStart = .uniform
        XCTAssertEqual(
            Selector.select(.active, state: cold, count: 6, seed: 1),
            Selector.select(.typical, state: cold, count: 6, seed: 1))
        XCTAssertEqual(
            Selector.select(.active, state: cold, count: 6, seed: 1, active: uniformStart).map(\.index),
            Selector.select(.uniform, state: cold, count: 6, seed: 1).map(\.index))
        // Once labels exist the cold start no longer matters.
        XCTAssertEqual(
            Selector.select(.active, state: state, count: 6, seed: 1, active: uniformStart),
            Selector.select(.active, state: state, count: 6, seed: 1))
    }

    func testNeverPicksALabelledImageNorANearDuplicateOfOne() {
        let (points, _) = blobs([12, 12])
        // Images 0, 1, 2 are one near-duplicate group (the same cell photographed thrice),
        // 12 and 13 another; everyone else is alone.
        var group = Array(points.indices)
        group[1] = 0; group[2] = 0; group[13] = 12
        let state = SelectionState(embeddings: points, picked: [1], pickedLabels: [0], groupOf: group)
        for s in SelectionStrategy.allCases {
            let picks = Selector.select(s, state: state, count: points.count, seed: 5).map(\.index)
            XCTAssertTrue(Set(picks).isDisjoint(with: [0, 1, 2]), "\(s) picked the labelled image or its near-duplicate: \(picks)")
            XCTAssertFalse(picks.contains(12) && picks.contains(13), "\(s) picked both of a near-duplicate pair")
            XCTAssertEqual(picks.count, points.count - 4, "\(s): every other image, once")
        }
    }

    func testUncertaintyPicksTheSmallestMarginsAndActiveFavoursClassesWithFewLabels() {
        let (points, blob) = blobs([10, 10, 10, 10])
        // The model says blobs 0-2 are class 0 and blob 3 class 1; image 5 is a coin toss.
        var probs = blob.map { $0 == 3 ? [Float(0.1), 0.9] : [Float(0.9), 0.1] }
        probs[5] = [0.52, 0.48]
        let u = Selector.select(.uncertainty, state: SelectionState(embeddings: points, probabilities: probs), count: 1, seed: 0)
        XCTAssertEqual(u.first?.index, 5)
        XCTAssertEqual(u.first?.score ?? 0, 0.96, accuracy: 1e-6)
        XCTAssertEqual(Selector.uncertainty([0.25, 0.25, 0.5]), 0.75, accuracy: 1e-6)
        // One label in each of blobs 0, 1, 2 (all class 0): active goes to blob 3, the
        // cluster the model calls class 1, which has no label yet.
        let picked = [0, 10, 20]
        let a = Selector.select(
            .active, state: SelectionState(embeddings: points, picked: picked, pickedLabels: [0, 0, 0], probabilities: probs),
            count: 1, seed: 0)
        XCTAssertEqual(a.first.map { blob[$0.index] }, 3, a.first?.reason ?? "")
        // With class names the reason names the wanted class (it said "wanted class 1").
        let named = Selector.select(
            .active,
            state: SelectionState(
                embeddings: points, picked: picked, pickedLabels: [0, 0, 0], probabilities: probs, classNames: ["lymphocyte", "blast"]),
            count: 1, seed: 0)
        XCTAssertTrue(named.first?.reason.contains("wanted class blast (fewest labels)") ?? false, named.first?.reason ?? "")
        XCTAssertFalse(named.first?.reason.contains("1 images") ?? true)
    }

    /// A planted pool: blob 3 is the rare class (10 of 40), three labels all of the
    /// common class. Both ways `active` goes to the rare class's blob; by default it
    /// takes a coin-toss image of it, with `exploitWhileBehind` the ones the model is
    /// surest of.
    func testActiveGoesToTheRareClassAndExploitsItOnlyWhenAsked() {
        let (points, blob) = blobs([10, 10, 10, 10])
        var probs = blob.map { $0 == 3 ? [Float(0.05), 0.95] : [Float(0.9), 0.1] }
        let rare = blob.indices.filter { blob[$0] == 3 }
        for i in rare.prefix(5) { probs[i] = [0.5, 0.5] }
        let state = SelectionState(embeddings: points, picked: [0, 10, 20], pickedLabels: [0, 0, 0], probabilities: probs)
        let uncertain = Selector.select(.active, state: state, count: 1, seed: 0)
        XCTAssertEqual(uncertain.first.map { blob[$0.index] }, 3, uncertain.first?.reason ?? "")
        XCTAssertEqual(uncertain.first.map { probs[$0.index][1] }, 0.5, "by default the uncertain member")
        var exploit = ActiveOptions()
        exploit.exploitWhileBehind = true
        let likeliest = Selector.select(.active, state: state, count: 3, seed: 0, active: exploit)
        XCTAssertEqual(likeliest.map { blob[$0.index] }, [3, 3, 3], likeliest.map(\.reason).joined(separator: "\n"))
        XCTAssertTrue(likeliest.allSatisfy { probs[$0.index][1] > 0.9 }, "the likeliest members: \(likeliest.map(\.index))")
        XCTAssertTrue(likeliest.first?.reason.contains("its likeliest") ?? false, likeliest.first?.reason ?? "")
    }

    /// `ColdStart.distinct`: with two picks, TypiClust takes the two largest blobs; the
    /// distinct start takes the largest and then the blob farthest from it, here the
    /// smallest (the rare class of a planted pool).
    func testDistinctColdStartReachesAFarSmallMode() {
        let (points, blob) = blobs([40, 30, 20, 5])
        let cold = SelectionState(embeddings: points)
        XCTAssertEqual(Selector.select(.typical, state: cold, count: 2, seed: 1).map { blob[$0.index] }, [0, 1])
        var o = ActiveOptions()
        o.coldStart = .distinct
        let picks = Selector.select(.active, state: cold, count: 2, seed: 1, active: o)
        XCTAssertEqual(picks.map { blob[$0.index] }, [0, 3], picks.map(\.reason).joined(separator: "\n"))
        XCTAssertEqual(picks, Selector.select(.active, state: cold, count: 2, seed: 1, active: o), "deterministic")
    }

    func testEmbeddingsAreFiniteStandardisedAndWithoutConstantColumns() throws {
        let side = 48
        var pixels: [UInt8] = []
        let kinds: [CellKind] = [.lymphocyte, .segmentedNeutrophil, .monocyte, .eosinophil, .myeloblast, .basophil]
        for (i, k) in kinds.enumerated() { pixels += SyntheticCells.render(kind: k, size: side, seed: UInt64(i)).pixels }
        let stain = StainFeatures.rows(pixels: pixels, count: kinds.count, height: side, width: side)
        XCTAssertEqual(stain[0].count, StainFeatures.names.count)
        let backend = CPUBackend()
        // The contrastive embedding trains a network, too slow at 48x48 in a debug build:
        // ContrastiveTests checks it at 16x16.
        for kind in EmbeddingKind.allCases where kind != .contrastive {
            let e = try Embedding.compute(kind, pixels: pixels, count: kinds.count, height: side, width: side, backend: backend)
            XCTAssertEqual(e.count, kinds.count)
            XCTAssertFalse(e[0].isEmpty, "\(kind)")
            XCTAssertTrue(e.allSatisfy { $0.allSatisfy(\.isFinite) }, "\(kind)")
            for j in e[0].indices {
                let col = e.map { Double($0[j]) }
                let mean = col.reduce(0, +) / Double(col.count)
                if kind != .combined { XCTAssertEqual(mean, 0, accuracy: 1e-4, "\(kind) column \(j)") }
                XCTAssertGreaterThan(col.max()! - col.min()!, 0, "\(kind) column \(j) is constant")
            }
        }
    }
}
