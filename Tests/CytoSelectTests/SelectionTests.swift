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

    /// `active` with the uncertain rounds (the default before `blend`), for the tests of that rule.
    var uncertainRounds: ActiveOptions {
        var o = ActiveOptions()
        o.rounds = .uncertain
        return o
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
        for rounds in ActiveRounds.allCases {
            var r = ActiveOptions()
            r.rounds = rounds
            let a = Selector.select(.active, state: state, count: 6, seed: 42, active: r)
            XCTAssertEqual(a, Selector.select(.active, state: state, count: 6, seed: 42, active: r), "\(rounds)")
            XCTAssertEqual(Set(a.map(\.index)).count, 6, "\(rounds): six different images")
        }
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
        // The same for active's later rounds (with a model) and its first sets (none labelled).
        let probs = points.indices.map { i -> [Float] in [Float(i % 5) / 5, 1 - Float(i % 5) / 5] }
        let withModel = SelectionState(embeddings: points, picked: [1], pickedLabels: [0], probabilities: probs, groupOf: group)
        for rounds in ActiveRounds.allCases {
            var o = ActiveOptions()
            o.rounds = rounds
            let picks = Selector.select(.active, state: withModel, count: points.count, seed: 5, active: o).map(\.index)
            XCTAssertTrue(Set(picks).isDisjoint(with: [0, 1, 2]), "\(rounds) picked the labelled image or its near-duplicate: \(picks)")
            XCTAssertFalse(picks.contains(12) && picks.contains(13), "\(rounds) picked both of a near-duplicate pair")
            XCTAssertEqual(picks.count, points.count - 4, "\(rounds): every other image, once")
        }
        for start in ColdStart.allCases {
            var o = ActiveOptions()
            o.coldStart = start
            let picks = Selector.select(.active, state: SelectionState(embeddings: points, groupOf: group), count: 8, seed: 5, active: o)
                .map(\.index)
            XCTAssertLessThanOrEqual(picks.filter { [0, 1, 2].contains($0) }.count, 1, "\(start): two of one near-duplicate group")
            XCTAssertFalse(picks.contains(12) && picks.contains(13), "\(start) picked both of a near-duplicate pair")
            XCTAssertEqual(Set(picks).count, 8, "\(start)")
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
            count: 1, seed: 0, active: uncertainRounds)
        XCTAssertEqual(a.first.map { blob[$0.index] }, 3, a.first?.reason ?? "")
        // With class names the reason names the wanted class (it said "wanted class 1").
        let named = Selector.select(
            .active,
            state: SelectionState(
                embeddings: points, picked: picked, pickedLabels: [0, 0, 0], probabilities: probs, classNames: ["lymphocyte", "blast"]),
            count: 1, seed: 0, active: uncertainRounds)
        XCTAssertTrue(named.first?.reason.contains("wanted class blast (fewest labels)") ?? false, named.first?.reason ?? "")
        XCTAssertFalse(named.first?.reason.contains("1 images") ?? true)
    }

    /// A planted pool: blob 3 is the rare class (10 of 40), three labels all of the
    /// common class. Both ways `active`'s uncertain rounds go to the rare class's blob;
    /// by default they take a coin-toss image of it, with `exploitWhileBehind` the ones
    /// the model is surest of.
    func testActiveGoesToTheRareClassAndExploitsItOnlyWhenAsked() {
        let (points, blob) = blobs([10, 10, 10, 10])
        var probs = blob.map { $0 == 3 ? [Float(0.05), 0.95] : [Float(0.9), 0.1] }
        let rare = blob.indices.filter { blob[$0] == 3 }
        for i in rare.prefix(5) { probs[i] = [0.5, 0.5] }
        let state = SelectionState(embeddings: points, picked: [0, 10, 20], pickedLabels: [0, 0, 0], probabilities: probs)
        let uncertain = Selector.select(.active, state: state, count: 1, seed: 0, active: uncertainRounds)
        XCTAssertEqual(uncertain.first.map { blob[$0.index] }, 3, uncertain.first?.reason ?? "")
        XCTAssertEqual(uncertain.first.map { probs[$0.index][1] }, 0.5, "the uncertain member")
        var exploit = uncertainRounds
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

    /// Four blobs of 15; the model predicts class 0 for blob 0, 1 for blob 1 and 2 for
    /// blobs 2 and 3. `uncertain[i]`: image i is a near coin toss (still predicted its
    /// blob's class).
    func stratifiedPool(uncertain: (Int) -> Bool = { _ in false }) -> (points: [[Float]], blob: [Int], probs: [[Float]]) {
        let (points, blob) = blobs([15, 15, 15, 15])
        let probs = blob.indices.map { i -> [Float] in
            let c = min(blob[i], 2)
            var p = [Float](repeating: uncertain(i) ? 0.3 : 0.05, count: 3)
            p[c] = uncertain(i) ? 0.4 : 0.9
            return p
        }
        return (points, blob, probs)
    }

    /// `ActiveRounds.stratified`: with labels 2 / 1 / 0 per class, six picks are owed
    /// 1 / 2 / 3, so labels plus picks are 3 per predicted class; the class behind comes
    /// first, and its three picks spread over both of its modes (blobs 2 and 3).
    func testStratifiedRoundsBalanceThePredictedClassesAndCoverEachClassesModes() {
        let (points, blob, probs) = stratifiedPool()
        var o = ActiveOptions()
        o.rounds = .stratified
        let state = SelectionState(embeddings: points, picked: [0, 1, 15], pickedLabels: [0, 0, 1], probabilities: probs)
        let picks = Selector.select(.active, state: state, count: 6, seed: 4, active: o)
        let why = picks.map(\.reason).joined(separator: "\n")
        let predicted = picks.map { min(blob[$0.index], 2) }
        XCTAssertEqual(predicted.filter { $0 == 0 }.count, 1, why)
        XCTAssertEqual(predicted.filter { $0 == 1 }.count, 2, why)
        XCTAssertEqual(predicted.filter { $0 == 2 }.count, 3, why)
        XCTAssertEqual(predicted.first, 2, "the class with no label first: \(why)")
        let modes = Set(picks.map { blob[$0.index] }.filter { $0 >= 2 })
        XCTAssertEqual(modes, [2, 3], "both modes of class 2: \(why)")
        XCTAssertTrue(Set(picks.map(\.index)).isDisjoint(with: [0, 1, 15]), why)
        XCTAssertEqual(Set(picks.map(\.index)).count, 6)
        XCTAssertTrue(picks.first?.reason.contains("predicted class 2 (0 labelled") ?? false, why)
        XCTAssertEqual(picks, Selector.select(.active, state: state, count: 6, seed: 4, active: o), "deterministic for a seed")
        // The uncertain rounds are something else.
        XCTAssertNotEqual(picks.map(\.index), Selector.select(.active, state: state, count: 6, seed: 4, active: uncertainRounds).map(\.index))
    }

    /// A class the model predicts for no image (a model of a few labels under-predicts a
    /// rare class) is looked for where the model gives it the highest probability;
    /// near-duplicates of labelled images are never picked.
    func testStratifiedRoundsFindAClassTheModelNeverPredicts() {
        let (points, blob) = blobs([20, 20, 20])
        // Class 1 (one label, in blob 2) is never the most probable; blob 2 is where the
        // model places it best.
        let probs = blob.map { $0 == 2 ? [Float(0.6), 0.4] : [Float(0.95), 0.05] }
        var group = Array(points.indices)
        group[41] = 40  // image 41 is a near-duplicate of the labelled image 40
        var o = ActiveOptions()
        o.rounds = .stratified
        let state = SelectionState(
            embeddings: points, picked: [0, 20, 21, 40], pickedLabels: [0, 0, 0, 1], probabilities: probs, groupOf: group)
        let picks = Selector.select(.active, state: state, count: 2, seed: 1, active: o)
        XCTAssertEqual(picks.map { blob[$0.index] }, [2, 2], picks.map(\.reason).joined(separator: "\n"))
        XCTAssertFalse(picks.contains { [40, 41].contains($0.index) }, "a labelled image or its near-duplicate")
    }

    /// `ActiveRounds.mixed`: every second pick of a class is its cluster's uncertain
    /// typical image: here always one of the coin tosses (every other image).
    func testMixedRoundsTakeEverySecondPickOfAClassUncertain() {
        let (points, blob, probs) = stratifiedPool(uncertain: { $0 % 2 == 1 })
        var o = ActiveOptions()
        o.rounds = .mixed
        let state = SelectionState(embeddings: points, picked: [0, 2, 16], pickedLabels: [0, 0, 1], probabilities: probs)
        let picks = Selector.select(.active, state: state, count: 6, seed: 2, active: o)
        let informative = picks.filter { $0.reason.contains("uncertain and typical") }
        XCTAssertEqual(informative.count, 2, "the second of class 1's two picks and of class 2's three")
        XCTAssertTrue(informative.allSatisfy { $0.index % 2 == 1 }, picks.map(\.reason).joined(separator: "\n"))
        XCTAssertEqual(picks.map { min(blob[$0.index], 2) }.filter { $0 == 2 }.count, 3)
    }

    /// `ActiveRounds.sampled`: with labels 2 / 1 / 0 per class the six picks are owed
    /// 1 / 2 / 3 (the class with no label first), each drawn at random among the
    /// candidates most like its class, so another seed gives other images of the same
    /// classes.
    func testSampledRoundsOweEachPickToTheClassBehindAndDrawItAtRandomWithinTheClass() {
        let (points, blob, probs) = stratifiedPool()
        var o = ActiveOptions()
        o.rounds = .sampled
        let state = SelectionState(embeddings: points, picked: [0, 1, 15], pickedLabels: [0, 0, 1], probabilities: probs)
        var seen: [Set<Int>] = []
        for seed: UInt64 in [4, 5] {
            let picks = Selector.select(.active, state: state, count: 6, seed: seed, active: o)
            let why = picks.map(\.reason).joined(separator: "\n")
            let predicted = picks.map { min(blob[$0.index], 2) }
            XCTAssertEqual([0, 1, 2].map { c in predicted.filter { $0 == c }.count }, [1, 2, 3], why)
            XCTAssertEqual(predicted.first, 2, "the class with no label first: \(why)")
            XCTAssertTrue(picks.allSatisfy { $0.reason.contains("at random among") }, why)
            XCTAssertTrue(Set(picks.map(\.index)).isDisjoint(with: [0, 1, 15]), why)
            XCTAssertEqual(picks, Selector.select(.active, state: state, count: 6, seed: seed, active: o), "deterministic for a seed")
            seen.append(Set(picks.map(\.index)))
        }
        XCTAssertNotEqual(seen[0], seen[1], "another seed draws other images")
    }

    /// `ActiveRounds.blend`: the first half of a round of six drawn as `sampled` (labels
    /// 2 / 1 / 0: owed to class 2, then 1, then 2), the second half by the uncertain rule,
    /// which counts the first half's picks for the classes they were owed to (2 / 2 / 2)
    /// and so wants class 0 next, where on the labels alone it would want class 2.
    func testBlendRoundsTakeHalfSampledAndHalfUncertain() {
        let (points, blob, probs) = stratifiedPool()
        var o = ActiveOptions()
        o.rounds = .blend
        let state = SelectionState(embeddings: points, picked: [0, 1, 15], pickedLabels: [0, 0, 1], probabilities: probs)
        let picks = Selector.select(.active, state: state, count: 6, seed: 3, active: o)
        let why = picks.map(\.reason).joined(separator: "\n")
        XCTAssertEqual(picks.prefix(3).filter { $0.reason.contains("at random among") }.count, 3, why)
        XCTAssertEqual(picks.suffix(3).filter { $0.reason.contains("uncertainty") }.count, 3, why)
        XCTAssertEqual(picks.prefix(3).map { min(blob[$0.index], 2) }, [2, 1, 2], why)
        XCTAssertTrue(picks[3].reason.contains("wanted class 0"), why)
        XCTAssertTrue(Selector.select(.active, state: state, count: 1, seed: 3, active: uncertainRounds)[0].reason.contains("wanted class 2"))
        XCTAssertEqual(Set(picks.map(\.index)).count, 6, why)
    }

    /// `ActiveRounds.typical`: the uncertain rounds without the uncertainty. Where half of
    /// every blob is a coin toss for the model, the uncertain rounds' picks are mostly coin
    /// tosses and the typical rounds' mostly not.
    func testTypicalRoundsLeaveOutTheUncertaintyTheDefaultRoundsWeigh() {
        let (points, _, probs) = stratifiedPool(uncertain: { $0 % 2 == 1 })
        let state = SelectionState(embeddings: points, picked: [0, 2, 16], pickedLabels: [0, 0, 1], probabilities: probs)
        var o = ActiveOptions()
        o.rounds = .typical
        let typical = Selector.select(.active, state: state, count: 6, seed: 2, active: o)
        let uncertain = Selector.select(.active, state: state, count: 6, seed: 2, active: uncertainRounds)
        let coinTosses = { (picks: [SelectionPick]) in picks.filter { $0.index % 2 == 1 }.count }
        XCTAssertGreaterThanOrEqual(coinTosses(uncertain), 4, uncertain.map(\.reason).joined(separator: "\n"))
        XCTAssertLessThanOrEqual(coinTosses(typical), 2, typical.map(\.reason).joined(separator: "\n"))
    }

    /// `ColdStart.pseudoclass`: two classes named, so the pool is cut into two k-means
    /// groups (here the two blobs, one five times the other) and the six picks are
    /// shared three and three, alternating, whatever the seed.
    func testPseudoClassColdStartSharesThePicksEquallyAmongAsManyGroupsAsClasses() {
        let (points, blob) = blobs([60, 12])
        let cold = SelectionState(embeddings: points, classNames: ["blast", "other"])
        var o = ActiveOptions()
        o.coldStart = .pseudoclass
        for seed: UInt64 in 1...5 {
            let picks = Selector.select(.active, state: cold, count: 6, seed: seed, active: o)
            let why = picks.map(\.reason).joined(separator: "\n")
            XCTAssertEqual(picks.map { blob[$0.index] }, [0, 1, 0, 1, 0, 1], "seed \(seed): the larger group first, alternating: \(why)")
            XCTAssertEqual(Set(picks.map(\.index)).count, 6, why)
            XCTAssertEqual(picks, Selector.select(.active, state: cold, count: 6, seed: seed, active: o), "deterministic")
        }
    }

    /// ProbCover's first set: the largest blob first (its ball covers the most), then one
    /// image in each other blob (the covered ones add nothing).
    func testProbCoverColdStartCoversTheLargestModesFirst() {
        let (points, blob) = blobs([40, 30, 20, 10])
        var o = ActiveOptions()
        o.coldStart = .probcover
        let cold = SelectionState(embeddings: points, classNames: ["a", "b", "c", "d"])
        let picks = Selector.select(.active, state: cold, count: 4, seed: 1, active: o)
        XCTAssertEqual(picks.map { blob[$0.index] }, [0, 1, 2, 3], picks.map(\.reason).joined(separator: "\n"))
        XCTAssertEqual(picks, Selector.select(.active, state: cold, count: 4, seed: 1, active: o), "deterministic")
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
