import CytoCore
import Foundation

/// The first set of `active`, chosen before any label exists.
public enum ColdStart: String, Sendable, Codable, CaseIterable, Equatable {
    /// TypiClust: the most typical image of each of the largest clusters.
    case typical
    /// Uniformly at random among the candidates.
    case uniform
    /// The pool cut into twice as many clusters as picks; clusters taken farthest-first
    /// (the largest, then each time the one whose centre is farthest from those taken),
    /// the most typical image of each: the embedding's distinct modes, a rare class's
    /// included, rather than its largest ones.
    case distinct
    /// ProbCover (Yehuda et al., NeurIPS 2022): the candidates whose balls of radius δ
    /// cover the most images not yet covered, δ the largest radius at which 95% of the
    /// balls hold one k-means pseudo-class.
    case probcover
    /// The pool cut by k-means into as many groups as there are classes (the class list
    /// is known before any label), the picks shared equally among the groups (the
    /// largest first), and TypiClust within each group: a label-free guess at the
    /// protocol's half-per-class draw, for pools whose clusters are dominated by the
    /// more varied class.
    case pseudoclass
}

extension Selector {
    /// `active`'s first set by `coldStart`; nil for `.typical`, which is TypiClust (`clustered`).
    static func firstSet(_ pool: inout Pool, state: SelectionState, count: Int, seed: UInt64, coldStart: ColdStart) -> [SelectionPick]? {
        switch coldStart {
        case .typical: return nil
        case .uniform:
            return random(&pool, count: count, seed: seed).map {
                SelectionPick(index: $0.index, score: $0.score, reason: "random (no labels yet)")
            }
        case .distinct: return distinct(&pool, state: state, count: count, seed: seed)
        case .probcover: return probCover(&pool, state: state, count: count, seed: seed)
        case .pseudoclass: return pseudoClass(&pool, state: state, count: count, seed: seed)
        }
    }

    /// `ColdStart.distinct`: 2 x count clusters, taken farthest-first from the largest,
    /// the most typical candidate of each.
    static func distinct(_ pool: inout Pool, state s: SelectionState, count: Int, seed: UInt64) -> [SelectionPick] {
        let points = pool.candidates.sorted()
        guard !points.isEmpty else { return [] }
        let k = min(points.count, 2 * count)
        let vectors = points.map { s.embeddings[$0] }
        let assignment = KMeans.cluster(vectors, k: k, seed: seed)
        var members = [[Int]](repeating: [], count: k)
        for (j, i) in points.enumerated() { members[assignment[j]].append(i) }
        let centres = KMeans.means(vectors, assignment: assignment, k: k).map { $0 ?? [] }
        let live = (0..<k).filter { !members[$0].isEmpty }
        guard let first = live.max(by: { (members[$0].count, $1) < (members[$1].count, $0) }) else { return [] }
        var order = [first]
        var nearest = Dictionary(uniqueKeysWithValues: live.map { ($0, KMeans.distanceSquared(centres[$0], centres[first])) })
        while order.count < live.count {
            guard let next = live.filter({ !order.contains($0) }).max(by: { (nearest[$0]!, $1) < (nearest[$1]!, $0) }) else { break }
            order.append(next)
            for c in live { nearest[c] = min(nearest[c]!, KMeans.distanceSquared(centres[c], centres[next])) }
        }
        var out: [SelectionPick] = []
        for c in order where out.count < count {
            let typ = typicality(members[c], embeddings: s.embeddings)
            let free = members[c].filter { pool.candidates.contains($0) }
            guard let choice = free.max(by: { (typ[$0] ?? 0, $1) < (typ[$1] ?? 0, $0) }) else { continue }
            pool.take(choice)
            out.append(
                SelectionPick(
                    index: choice, score: typ[choice] ?? 0,
                    reason: "typical of distinct cluster \(c + 1) of \(k) (\(members[c].count) images, taken \(out.count + 1)\(out.isEmpty ? ", the largest" : ", farthest from those taken"))"))
        }
        if out.count < count { out += random(&pool, count: count - out.count, seed: seed) }
        return out
    }

    /// `ColdStart.pseudoclass` (the doc comment there says what and why).
    static func pseudoClass(_ pool: inout Pool, state s: SelectionState, count: Int, seed: UInt64) -> [SelectionPick] {
        let points = pool.candidates.sorted()
        let k = min(points.count, max(2, s.classNames?.count ?? 0))
        guard k > 1 else { return random(&pool, count: count, seed: seed) }
        let assignment = KMeans.cluster(points.map { s.embeddings[$0] }, k: k, seed: seed)
        var groups = [[Int]](repeating: [], count: k)
        for (j, i) in points.enumerated() { groups[assignment[j]].append(i) }
        let bySize = (0..<k).filter { !groups[$0].isEmpty }.sorted { (groups[$0].count, $1) > (groups[$1].count, $0) }
        guard !bySize.isEmpty else { return [] }
        var quota = [Int](repeating: 0, count: k)
        for n in 0..<count { quota[bySize[n % bySize.count]] += 1 }
        var perGroup = [[SelectionPick]](repeating: [], count: bySize.count)
        for (rank, g) in bySize.enumerated() where quota[g] > 0 {
            let q = min(quota[g], groups[g].count)
            let sub = KMeans.cluster(groups[g].map { s.embeddings[$0] }, k: q, seed: seed &+ UInt64(g + 1))
            var members = [[Int]](repeating: [], count: q)
            for (j, i) in groups[g].enumerated() { members[sub[j]].append(i) }
            for c in (0..<q).sorted(by: { (members[$0].count, $1) > (members[$1].count, $0) }) {
                let typ = typicality(members[c], embeddings: s.embeddings)
                guard let choice = members[c].filter({ pool.candidates.contains($0) }).max(by: { (typ[$0] ?? 0, $1) < (typ[$1] ?? 0, $0) })
                else { continue }
                pool.take(choice)
                perGroup[rank].append(
                    SelectionPick(
                        index: choice, score: typ[choice] ?? 0,
                        reason: "typical of cluster \(c + 1) of \(q) in pseudo-class \(rank + 1) of \(k) (\(groups[g].count) images)"
                            + String(format: ", typicality %.3f", typ[choice] ?? 0)))
            }
        }
        // Round-robin over the groups, so a labeller who stops early has the most even set.
        var out: [SelectionPick] = []
        for n in 0..<(perGroup.map(\.count).max() ?? 0) {
            for picks in perGroup where n < picks.count { out.append(picks[n]) }
        }
        if out.count < count && !pool.candidates.isEmpty { out += random(&pool, count: count - out.count, seed: seed) }
        return out
    }

    /// `ColdStart.probCover` (Yehuda et al., NeurIPS 2022, ProbCover): each candidate
    /// covers the candidates within δ of it; greedily the candidate that covers the most
    /// not yet covered is taken, its ball then counting as covered. δ is the largest
    /// radius at which 95% of the balls are pure with respect to k-means pseudo-classes
    /// (k: the number of classes when known, else 2): the 5% quantile of each point's
    /// distance to its nearest point of another pseudo-class. Once everything is
    /// covered, the rest is TypiClust's.
    static func probCover(_ pool: inout Pool, state s: SelectionState, count: Int, seed: UInt64) -> [SelectionPick] {
        let points = pool.candidates.sorted()
        let n = points.count
        guard n > 1 else { return random(&pool, count: count, seed: seed) }
        let vectors = points.map { s.embeddings[$0] }
        let k = min(n, max(2, s.classNames?.count ?? 0))
        let pseudo = KMeans.cluster(vectors, k: k, seed: seed)
        let toOther = Parallel.map(n, chunk: 32) { i -> Float in
            var m = Float.infinity
            for j in 0..<n where pseudo[j] != pseudo[i] { m = min(m, KMeans.distanceSquared(vectors[i], vectors[j])) }
            return m.squareRoot()
        }
        let sortedOther = toOther.filter { $0.isFinite }.sorted()
        let delta = sortedOther.isEmpty ? Float.infinity : sortedOther[Int(Double(sortedOther.count - 1) * 0.05)]
        let limit = delta * delta
        let balls = Parallel.map(n, chunk: 32) { i -> [Int32] in
            (0..<n).filter { KMeans.distanceSquared(vectors[i], vectors[$0]) <= limit }.map { Int32($0) }
        }
        var covered = [Bool](repeating: false, count: n)
        // gain[i]: the uncovered images in i's ball. Distances are symmetric, so the balls
        // that hold j are those of the images in j's ball.
        var gain = balls.map(\.count)
        var out: [SelectionPick] = []
        while out.count < count {
            var best = -1
            for i in 0..<n where pool.candidates.contains(points[i]) && gain[i] > 0 {
                if best < 0 || gain[i] > gain[best] { best = i }
            }
            guard best >= 0 else { break }
            let g = gain[best]
            pool.take(points[best])
            for j32 in balls[best] where !covered[Int(j32)] {
                let j = Int(j32)
                covered[j] = true
                for h in balls[j] { gain[Int(h)] -= 1 }
            }
            out.append(
                SelectionPick(
                    index: points[best], score: Double(g),
                    reason: "covers \(g) uncovered image\(g == 1 ? "" : "s")"
                        + String(format: " within %.3f (ProbCover, %d pseudo-classes)", delta, k)))
        }
        if out.count < count && !pool.candidates.isEmpty {
            out += clustered(&pool, state: s, count: count - out.count, seed: seed, probabilities: nil, active: ActiveOptions())
        }
        return out
    }
}
