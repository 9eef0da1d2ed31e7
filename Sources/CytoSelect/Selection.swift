import CytoCore
import Foundation

/// How the next images to label are chosen.
///
/// At budgets of tens of labels the measured order is typical-and-diverse first
/// (Hacohen et al., ICML 2022, TypiClust; Chen et al., MIDL 2023 on medical images),
/// uncertainty only once a model exists and only combined with diversity (Ash et al.,
/// ICLR 2020, BADGE). docs/selection.md has the figures behind `active`.
public enum SelectionStrategy: String, Sendable, Codable, CaseIterable {
    /// Uniformly at random among the candidates (in a sweep: the paper's balanced draw).
    case random
    /// TypiClust: the most typical image of each of the largest clusters without a label.
    case typical
    /// The images the previous model is least sure of (smallest top-2 margin); typical
    /// while there is no model yet.
    case uncertainty
    /// Typical and diverse at the cold start; once a model exists, clusters without a
    /// label and clusters of classes the labels lack come first, and within a cluster
    /// typicality and uncertainty count together.
    case active
    /// Uniformly at random among the candidates, without labels: in `suggest` the same
    /// as `random`; in a sweep the label-free draw a labeller actually has, beside the
    /// protocol's draw (`random`), which takes half per class and so sees every label.
    case uniform
}

/// One chosen image and why.
public struct SelectionPick: Sendable, Equatable {
    /// Index into the embeddings.
    public var index: Int
    /// Higher = more wanted (its meaning depends on the strategy: typicality, uncertainty, ...).
    public var score: Double
    /// One line for the person labelling: which cluster, how typical or uncertain.
    public var reason: String
    public init(index: Int, score: Double, reason: String) { self.index = index; self.score = score; self.reason = reason }
}

/// What a strategy may look at: the label-free embedding of every image, the images
/// already labelled and their labels, and (after the first round) the previous model's
/// probabilities. Never the labels of the others.
public struct SelectionState: Sendable {
    /// One row per image (standardised; `Embedding`).
    public var embeddings: [[Float]]
    /// Indices already labelled, and their class indices (same order).
    public var picked: [Int]
    public var pickedLabels: [Int]
    /// The previous model's class probabilities for every image, nil before any model.
    public var probabilities: [[Float]]?
    /// Indices never picked and left out of the clusters (not part of the pool).
    public var excluded: Set<Int>
    /// Near-duplicate group of each image (nil: none known): a group with a labelled
    /// member is never picked from, and at most one member of a group is picked.
    public var groupOf: [Int]?
    /// Name of each class index, for the reasons a person reads ("wanted class blast"
    /// rather than "wanted class 0"); nil: the reasons show indices.
    public var classNames: [String]?

    public init(
        embeddings: [[Float]], picked: [Int] = [], pickedLabels: [Int] = [], probabilities: [[Float]]? = nil,
        excluded: Set<Int> = [], groupOf: [Int]? = nil, classNames: [String]? = nil
    ) {
        precondition(picked.count == pickedLabels.count, "one label per picked image")
        self.embeddings = embeddings; self.picked = picked; self.pickedLabels = pickedLabels
        self.probabilities = probabilities; self.excluded = excluded; self.groupOf = groupOf
        self.classNames = classNames
    }
}

/// Tuning of `active` (the defaults are the measured choice, docs/selection.md).
public struct ActiveOptions: Sendable, Equatable, Codable {
    /// Weight of the uncertainty (1 − top-2 margin) against typicality within a cluster.
    public var uncertaintyWeight = 0.5
    /// Whether clusters the model assigns to classes with fewer labels come first.
    public var classBalance = true
    /// While the wanted class has fewer labels than another, take its likeliest
    /// candidates (typicality times likeness squared, no uncertainty) instead of
    /// uncertain ones. Off: measured, it balanced the picks and still lost to the
    /// default at sizes 20 and 30 on every PBC task tried (docs/selection.md).
    public var exploitWhileBehind = false
    /// How the first set (no labels, no model) is chosen.
    public var coldStart: ColdStart = .typical
    /// How the picks are chosen once a model exists: `blend`, measured better than the
    /// `uncertain` rule alone over 10 seeds (docs/selection.md).
    public var rounds: ActiveRounds = .blend
    public init() {}
}

public enum Selector {
    /// Up to `count` picks (fewer when the candidates run out), in the order to label them.
    /// Deterministic for a seed.
    public static func select(
        _ strategy: SelectionStrategy, state: SelectionState, count: Int, seed: UInt64, active: ActiveOptions = ActiveOptions()
    ) -> [SelectionPick] {
        guard count > 0 else { return [] }
        var pool = Pool(state)
        switch strategy {
        case .random, .uniform: return random(&pool, count: count, seed: seed)
        case .typical: return clustered(&pool, state: state, count: count, seed: seed, probabilities: nil, active: active)
        case .uncertainty:
            guard let p = state.probabilities else {
                return clustered(&pool, state: state, count: count, seed: seed, probabilities: nil, active: active)
                    .map { SelectionPick(index: $0.index, score: $0.score, reason: "no model yet; " + $0.reason) }
            }
            return uncertain(&pool, probabilities: p, count: count)
        case .active:
            if let p = state.probabilities {
                if let picks = laterRound(&pool, state: state, probabilities: p, count: count, seed: seed, active: active) { return picks }
            } else if state.picked.isEmpty,
                let picks = firstSet(&pool, state: state, count: count, seed: seed, coldStart: active.coldStart)
            {
                return picks
            }
            // TypiClust (the first set, or labels without a model), or the uncertain rounds.
            return clustered(&pool, state: state, count: count, seed: seed, probabilities: state.probabilities, active: active)
        }
    }

    /// 1 − (largest − second largest probability): 1 for a tie, 0 for certainty.
    public static func uncertainty(_ p: [Float]) -> Double {
        var a = -Float.infinity, b = -Float.infinity
        for v in p { if v > a { b = a; a = v } else if v > b { b = v } }
        return p.count < 2 ? 0 : Double(1 - (a - b))
    }

    /// The candidates left, honouring near-duplicate groups.
    struct Pool {
        var candidates: Set<Int>
        let groupOf: [Int]?
        var members: [Int: [Int]] = [:]

        init(_ s: SelectionState) {
            groupOf = s.groupOf
            var c = Set(s.embeddings.indices).subtracting(s.excluded).subtracting(s.picked)
            if let g = s.groupOf {
                for (i, gi) in g.enumerated() { members[gi, default: []].append(i) }
                for i in s.picked { for j in members[g[i]] ?? [] { c.remove(j) } }
            }
            candidates = c
        }

        mutating func take(_ i: Int) {
            candidates.remove(i)
            if let g = groupOf { for j in members[g[i]] ?? [] { candidates.remove(j) } }
        }
    }

    static func random(_ pool: inout Pool, count: Int, seed: UInt64) -> [SelectionPick] {
        var rng = SeededGenerator.stream(seed: seed, "select-random")
        var order = pool.candidates.sorted()
        order.shuffle(using: &rng)
        var out: [SelectionPick] = []
        for i in order where out.count < count && pool.candidates.contains(i) {
            pool.take(i)
            out.append(SelectionPick(index: i, score: 0, reason: "random"))
        }
        return out
    }

    static func uncertain(_ pool: inout Pool, probabilities p: [[Float]], count: Int) -> [SelectionPick] {
        let ranked = pool.candidates.map { ($0, uncertainty(p[$0])) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var out: [SelectionPick] = []
        for (i, u) in ranked where out.count < count && pool.candidates.contains(i) {
            pool.take(i)
            let top = p[i].indices.max { p[i][$0] < p[i][$1] } ?? 0
            out.append(
                SelectionPick(
                    index: i, score: u,
                    reason: String(format: "uncertain: top-2 margin %.3f (predicted class %d)", 1 - u, top)))
        }
        return out
    }

    /// TypiClust, and `active` when `probabilities` are given: the pool (labelled and
    /// candidates) is cut into (labelled + count) clusters; each pick comes from the
    /// cluster that most lacks a label (no labelled member first, then the largest per
    /// label; with probabilities, clusters that look like the class with the fewest
    /// labels first), and within it the candidate with the highest typicality (the inverse mean
    /// distance to its nearest neighbours in the cluster), with uncertainty mixed in.
    static func clustered(
        _ pool: inout Pool, state s: SelectionState, count: Int, seed: UInt64, probabilities: [[Float]]?,
        active: ActiveOptions, alreadyOwed: [Int] = []
    ) -> [SelectionPick] {
        let points = (Set(s.picked).union(pool.candidates)).sorted()
        guard !points.isEmpty, !pool.candidates.isEmpty else { return [] }
        let k = min(points.count, s.picked.count + count)
        let assignment = KMeans.cluster(points.map { s.embeddings[$0] }, k: k, seed: seed)
        var clusterOf: [Int: Int] = [:]
        var clusterMembers = [[Int]](repeating: [], count: k)
        for (j, i) in points.enumerated() { clusterOf[i] = assignment[j]; clusterMembers[assignment[j]].append(i) }
        var labelledIn = [Int](repeating: 0, count: k)
        for i in s.picked { if let c = clusterOf[i] { labelledIn[c] += 1 } }
        // Labels per class (the model's classes first; labels beyond them are counted but never wanted).
        let classes = probabilities?.first?.count ?? 0
        var labelsPerClass = [Double](repeating: 0, count: max(classes, (s.pickedLabels.max() ?? -1) + 1))
        for l in s.pickedLabels { labelsPerClass[l] += 1 }
        for c in alreadyOwed where c < labelsPerClass.count { labelsPerClass[c] += 1 }
        var typicalityCache: [Int: [Int: Double]] = [:]
        var affinityCache: [Int: [Int: Double]] = [:]
        var out: [SelectionPick] = []
        while out.count < count && !pool.candidates.isEmpty {
            // With a model: the class with the fewest labels so far (counting the picks
            // of this round by their predicted probabilities) is wanted next, so a class
            // the first picks missed is looked for where the model places it.
            var target: Int? = nil
            if probabilities != nil && active.classBalance && classes > 0 {
                target = (0..<classes).min { labelsPerClass[$0] < labelsPerClass[$1] }
            }
            let exploit = active.exploitWhileBehind && target.map { labelsPerClass[$0] < (labelsPerClass.max() ?? 0) } == true
            // The cluster to pick from: without a label first, then the largest per label;
            // with a target class, weighted by how much the model places it there.
            var best = -1
            var bestKey = (uncovered: false, weight: -Double.infinity)
            for c in 0..<k {
                let free = clusterMembers[c].filter { pool.candidates.contains($0) }
                guard !free.isEmpty else { continue }
                var weight = Double(clusterMembers[c].count) / Double(1 + labelledIn[c])
                var uncovered = labelledIn[c] == 0
                if let t = target {
                    if affinityCache[t] == nil { affinityCache[t] = labelAffinity(s, target: t, candidates: pool.candidates) }
                    let a = free.reduce(0.0) { $0 + 0.5 * Double(probabilities![$1][t]) + 0.5 * (affinityCache[t]![$1] ?? 0) }
                        / Double(free.count)
                    weight *= a * a
                    uncovered = true  // the wanted class outranks coverage
                }
                let key = (uncovered: uncovered, weight: weight)
                if best < 0 || (key.uncovered && !bestKey.uncovered) || (key.uncovered == bestKey.uncovered && key.weight > bestKey.weight) {
                    best = c; bestKey = key
                }
            }
            guard best >= 0 else { break }
            // How much each candidate looks like the wanted class: the model's probability
            // and, from the labels alone, its nearness in the embedding to the labelled
            // images of that class (the model of a few labels finds a rare class badly).
            func affinity(_ i: Int) -> Double {
                guard let t = target, let p = probabilities else { return 1 }
                if affinityCache[t] == nil { affinityCache[t] = labelAffinity(s, target: t, candidates: pool.candidates) }
                return 0.5 * Double(p[i][t]) + 0.5 * (affinityCache[t]![i] ?? 0)
            }
            if typicalityCache[best] == nil { typicalityCache[best] = typicality(clusterMembers[best], embeddings: s.embeddings) }
            let typ = typicalityCache[best]!
            let free = clusterMembers[best].filter { pool.candidates.contains($0) }
            let maxTyp = free.map { typ[$0] ?? 0 }.max() ?? 1
            var choice = free[0], choiceScore = -Double.infinity
            for i in free {
                let t = (typ[i] ?? 0) / max(maxTyp, 1e-12)
                var score = probabilities == nil ? (typ[i] ?? 0) : t
                if let p = probabilities {
                    let w = active.uncertaintyWeight
                    score = exploit ? t : (1 - w) * t + w * uncertainty(p[i])
                    if target != nil { score *= exploit ? affinity(i) * affinity(i) : affinity(i) }
                }
                if score > choiceScore || (score == choiceScore && i < choice) { choice = i; choiceScore = score }
            }
            pool.take(choice)
            let covered = labelledIn[best]
            labelledIn[best] += 1
            let members = clusterMembers[best].count
            var reason = "typical of cluster \(best + 1) of \(k) (\(members) image\(members == 1 ? "" : "s"), "
                + (covered == 0 ? "none labelled" : "\(covered) labelled") + String(format: "), typicality %.3f", typ[choice] ?? 0)
            if let p = probabilities {
                reason += String(format: ", uncertainty %.3f", uncertainty(p[choice]))
                if let t = target {
                    let name = s.classNames.flatMap { t < $0.count ? $0[t] : nil } ?? "\(t)"
                    reason += ", wanted class \(name)" + String(format: " (fewest labels): probability %.3f, likeness %.3f", p[choice][t], affinity(choice))
                    if exploit { reason += ", its likeliest (the class is behind)" }
                }
                // The pick counts for the class it was wanted for (counted by its predicted
                // probabilities instead, an uncertain pick added half a label to each class
                // and a gap between the classes never closed: measured 14/6 at size 20).
                if let t = target { labelsPerClass[t] += 1 }
            }
            out.append(SelectionPick(index: choice, score: choiceScore, reason: reason))
        }
        return out
    }

    /// From the labels alone, how much each candidate looks like class `t` (0...1): with
    /// labelled images of `t`, d(other) / (d(t) + d(other)) for the distances to the
    /// nearest labelled image of `t` and of any other class; with none, its distance to
    /// the nearest labelled image over the largest such distance (a class no label has
    /// found yet is looked for among the images least like the labelled ones).
    static func labelAffinity(_ s: SelectionState, target t: Int, candidates: Set<Int>) -> [Int: Double] {
        let e = s.embeddings
        let labelled = Array(zip(s.picked, s.pickedLabels))
        var out: [Int: Double] = [:]
        guard !labelled.isEmpty else { return out }
        if !s.pickedLabels.contains(t) {
            var far: [Int: Double] = [:]
            for i in candidates {
                far[i] = labelled.map { Double(KMeans.distanceSquared(e[i], e[$0.0]).squareRoot()) }.min() ?? 0
            }
            let top = max(far.values.max() ?? 1, 1e-12)
            for (i, v) in far { out[i] = v / top }
            return out
        }
        for i in candidates {
            var dt = Double.infinity, other = Double.infinity
            for (j, l) in labelled {
                let d = Double(KMeans.distanceSquared(e[i], e[j]).squareRoot())
                if l == t { dt = min(dt, d) } else { other = min(other, d) }
            }
            out[i] = other.isInfinite ? 1 : other / max(dt + other, 1e-12)
        }
        return out
    }

    /// 1 / (mean distance to the nearest min(20, n−1) members of the cluster); n = 1: 1.
    static func typicality(_ members: [Int], embeddings e: [[Float]]) -> [Int: Double] {
        let n = members.count
        guard n > 1 else { return Dictionary(uniqueKeysWithValues: members.map { ($0, 1.0) }) }
        let kNN = min(20, n - 1)
        let values = Parallel.map(n, chunk: 16) { a -> Double in
            var d = [Float](repeating: 0, count: n)
            let x = e[members[a]]
            for b in 0..<n { d[b] = KMeans.distanceSquared(x, e[members[b]]).squareRoot() }
            d[a] = .infinity
            d.sort()
            let mean = d.prefix(kNN).reduce(0, +) / Float(kNN)
            return 1 / Double(max(mean, 1e-6))
        }
        return Dictionary(uniqueKeysWithValues: zip(members, values))
    }
}

/// Seeded k-means (k-means++ start, Lloyd iterations): deterministic for a seed.
public enum KMeans {
    static func distanceSquared(_ a: [Float], _ b: [Float]) -> Float {
        var s: Float = 0
        for j in a.indices { let d = a[j] - b[j]; s += d * d }
        return s
    }

    /// Cluster index of each point (0..<k; every cluster non-empty when k ≤ distinct points).
    public static func cluster(_ points: [[Float]], k: Int, seed: UInt64, iterations: Int = 30) -> [Int] {
        let n = points.count
        guard n > 0, k > 1 else { return [Int](repeating: 0, count: n) }
        var rng = SeededGenerator.stream(seed: seed, "kmeans")
        var centres: [[Float]] = [points[Int(rng.next() % UInt64(n))]]
        var nearest = points.map { distanceSquared($0, centres[0]) }
        while centres.count < k {
            let total = nearest.reduce(0, { $0 + Double($1) })
            guard total > 0 else { break }  // fewer distinct points than k
            var r = Double(rng.nextUnitFloat()) * total
            var pick = n - 1
            for i in 0..<n {
                r -= Double(nearest[i])
                if r <= 0 && nearest[i] > 0 { pick = i; break }
            }
            centres.append(points[pick])
            for i in 0..<n { nearest[i] = min(nearest[i], distanceSquared(points[i], points[pick])) }
        }
        var assign = [Int](repeating: 0, count: n)
        for _ in 0..<iterations {
            let current = centres
            let next = Parallel.map(n, chunk: 64) { i -> Int in
                var best = 0, bd = Float.infinity
                for (c, centre) in current.enumerated() {
                    let d = distanceSquared(points[i], centre)
                    if d < bd { bd = d; best = c }
                }
                return best
            }
            let changed = next != assign
            assign = next
            for (c, mean) in means(points, assignment: assign, k: centres.count).enumerated() {
                if let mean { centres[c] = mean }
            }
            if !changed { break }
        }
        return assign
    }

    /// The mean of each cluster's points (nil for an empty cluster), summed in Double.
    static func means(_ points: [[Float]], assignment: [Int], k: Int) -> [[Float]?] {
        let d = points.first?.count ?? 0
        var sums = [[Double]](repeating: [Double](repeating: 0, count: d), count: k)
        var counts = [Int](repeating: 0, count: k)
        for (i, c) in assignment.enumerated() {
            counts[c] += 1
            for j in 0..<d { sums[c][j] += Double(points[i][j]) }
        }
        return (0..<k).map { c in counts[c] > 0 ? sums[c].map { Float($0 / Double(counts[c])) } : nil }
    }
}
