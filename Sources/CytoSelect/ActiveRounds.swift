import CytoCore
import Foundation

/// How `active` picks once a model exists (the rounds after the first set).
public enum ActiveRounds: String, Sendable, Codable, CaseIterable, Equatable {
    /// Clusters weighted by how much they look like the class with the fewest labels;
    /// within the chosen cluster typicality and uncertainty count equally.
    case uncertain
    /// Stratified by the previous model's predicted class, TypiClust within each: every
    /// pick goes to the class with the fewest labels so far (the round's own picks
    /// counting for the class they were wanted for), and the candidates the model
    /// assigns to that class are cut into (its labels + its picks) clusters, the most
    /// typical image of each of the largest clusters without a label taken. The
    /// protocol's draw is label-balanced and spread like the data; this keeps both
    /// virtues with predicted labels, and places the picks on the modes of each class
    /// rather than where chance puts them.
    case stratified
    /// `stratified`, but every second pick of a class is the cluster's most uncertain
    /// typical image (typicality and uncertainty counting equally) rather than its most
    /// typical one: half representative, half informative.
    case mixed
    /// `uncertain` without the uncertainty: clusters weighted by how much they look like
    /// the class with the fewest labels, and within the chosen cluster its most typical
    /// image times that likeness (TypiClust steered by the labels, for budgets at which
    /// the model is too weak for its doubts to inform).
    case typical
    /// The protocol's draw imitated: every pick is owed to the class with the fewest labels
    /// (the round's picks counting for their class) and drawn uniformly at random among the
    /// candidates that look most like that class — by the model's probability and by
    /// nearness to the labelled images, half each — so the picks are spread like the data
    /// within each class, as the label-balanced draw's are, rather than on its modes.
    case sampled
    /// Half the round `sampled` (balanced, spread like the data), the other half
    /// `uncertain` (informative), the latter counting the former's picks for the
    /// classes they were owed to.
    case blend
}

extension Selector {
    /// A round of `active` once a model exists, by `active.rounds`; nil for `.uncertain`,
    /// which is `clustered` with the model's probabilities.
    static func laterRound(
        _ pool: inout Pool, state: SelectionState, probabilities p: [[Float]], count: Int, seed: UInt64, active: ActiveOptions
    ) -> [SelectionPick]? {
        switch active.rounds {
        case .uncertain: return nil
        case .typical:
            var typicalOnly = active
            typicalOnly.uncertaintyWeight = 0
            return clustered(&pool, state: state, count: count, seed: seed, probabilities: p, active: typicalOnly)
        case .stratified, .mixed:
            return stratified(&pool, state: state, probabilities: p, count: count, seed: seed, mixed: active.rounds == .mixed)
        case .sampled: return sampled(&pool, state: state, probabilities: p, count: count, seed: seed).map(\.pick)
        case .blend:
            let half = sampled(&pool, state: state, probabilities: p, count: (count + 1) / 2, seed: seed)
            return half.map(\.pick)
                + clustered(
                    &pool, state: state, count: count - half.count, seed: seed, probabilities: p, active: active,
                    alreadyOwed: half.map(\.owedTo))
        }
    }

    /// `ActiveRounds.stratified` and `.mixed` (the doc comments there say what and why).
    /// The class of a candidate is the previous model's most probable one; a class the
    /// model hardly predicts (fewer than 4 candidates per pick it is owed) is looked for
    /// among the candidates the model gives it the highest probability (a class with no
    /// label yet: half that, half distance from every labelled image), so a class the
    /// first picks missed is still looked for where the model places it best.
    static func stratified(
        _ pool: inout Pool, state s: SelectionState, probabilities p: [[Float]], count: Int, seed: UInt64, mixed: Bool
    ) -> [SelectionPick] {
        let classes = p.first?.count ?? 0
        guard classes > 1 else {
            return clustered(&pool, state: s, count: count, seed: seed, probabilities: nil, active: ActiveOptions())
        }
        let (labels, order, quota) = owedPicks(s, classes: classes, picks: min(count, pool.candidates.count))
        func predicted(_ i: Int) -> Int { p[i].indices.max { (p[i][$0], $1) < (p[i][$1], $0) } ?? 0 }
        let candidates = pool.candidates.sorted()
        var picksOf = [[SelectionPick]](repeating: [], count: classes)
        for t in 0..<classes where quota[t] > 0 {
            let q = quota[t]
            var group = candidates.filter { pool.candidates.contains($0) && predicted($0) == t }
            if group.count < 4 * q {
                // A class without a label is one the model cannot know: half its
                // probability, half distance from every labelled image (as `uncertain`).
                let far = labels[t] == 0 ? labelAffinity(s, target: t, candidates: pool.candidates) : [:]
                func like(_ i: Int) -> Double { labels[t] == 0 ? 0.5 * Double(p[i][t]) + 0.5 * (far[i] ?? 0) : Double(p[i][t]) }
                let likeliest = candidates.filter { pool.candidates.contains($0) }
                    .sorted { (like($0), $1) > (like($1), $0) }.prefix(4 * q)
                group = Array(Set(group).union(likeliest)).sorted()
            }
            guard !group.isEmpty else { continue }
            let mine = zip(s.picked, s.pickedLabels).filter { $0.1 == t }.map(\.0)
            let points = mine + group
            let k = min(points.count, mine.count + q)
            let assignment = KMeans.cluster(
                points.map { s.embeddings[$0] }, k: k, seed: seed &+ UInt64(t + 1) &* 0x9E37_79B9_7F4A_7C15)
            var members = [[Int]](repeating: [], count: k)
            for (j, i) in points.enumerated() { members[assignment[j]].append(i) }
            var labelledIn = [Int](repeating: 0, count: k)
            for j in 0..<mine.count { labelledIn[assignment[j]] += 1 }
            var typicalityOf: [Int: [Int: Double]] = [:]
            for n in 0..<q {
                // The cluster: without a label first, then the largest per label.
                var best = -1, bestKey = (uncovered: false, weight: -Double.infinity)
                for c in 0..<k where members[c].contains(where: { pool.candidates.contains($0) }) {
                    let key = (uncovered: labelledIn[c] == 0, weight: Double(members[c].count) / Double(1 + labelledIn[c]))
                    let better = (key.uncovered && !bestKey.uncovered)
                        || (key.uncovered == bestKey.uncovered && key.weight > bestKey.weight)
                    if best < 0 || better {
                        best = c; bestKey = key
                    }
                }
                guard best >= 0 else { break }
                if typicalityOf[best] == nil { typicalityOf[best] = typicality(members[best], embeddings: s.embeddings) }
                let typ = typicalityOf[best]!
                let free = members[best].filter { pool.candidates.contains($0) }
                let top = max(free.map { typ[$0] ?? 0 }.max() ?? 1, 1e-12)
                let informative = mixed && n % 2 == 1
                var choice = free[0], choiceScore = -Double.infinity
                for i in free {
                    let typical = (typ[i] ?? 0) / top
                    let score = informative ? 0.5 * typical + 0.5 * uncertainty(p[i]) : typical
                    if score > choiceScore || (score == choiceScore && i < choice) { choice = i; choiceScore = score }
                }
                pool.take(choice)
                let covered = labelledIn[best]
                labelledIn[best] += 1
                let name = s.classNames.flatMap { t < $0.count ? $0[t] : nil } ?? "\(t)"
                let reason =
                    "predicted class \(name) (\(labels[t]) labelled, pick \(n + 1) of \(q) owed to it): "
                    + (informative ? "uncertain and typical" : "typical")
                    + " of its cluster \(best + 1) of \(k) (\(members[best].count) images, "
                    + (covered == 0 ? "none labelled" : "\(covered) labelled")
                    + String(
                        format: "), typicality %.3f, probability %.3f, uncertainty %.3f",
                        typ[choice] ?? 0, p[choice][t], uncertainty(p[choice]))
                picksOf[t].append(SelectionPick(index: choice, score: choiceScore, reason: reason))
            }
        }
        // In the order the picks were owed (the class furthest behind first), so a labeller
        // who stops early still has the most balanced set.
        var next = [Int](repeating: 0, count: classes), out: [SelectionPick] = []
        for t in order where next[t] < picksOf[t].count {
            out.append(picksOf[t][next[t]]); next[t] += 1
        }
        if out.count < count && !pool.candidates.isEmpty {
            out += clustered(&pool, state: s, count: count - out.count, seed: seed, probabilities: nil, active: ActiveOptions())
        }
        return out
    }
}

extension Selector {
    /// Whom the round's picks are owed to: each pick, in turn, to the class with the
    /// fewest labels and picks so far (ties: the lower index). `labels[t]`: the picks of
    /// class t labelled before this round; `order[k]`: the class pick k is owed to;
    /// `quota[t]`: how many picks class t is owed.
    static func owedPicks(_ s: SelectionState, classes: Int, picks: Int) -> (labels: [Int], order: [Int], quota: [Int]) {
        var labels = [Int](repeating: 0, count: classes)
        for l in s.pickedLabels where l < classes { labels[l] += 1 }
        var owed = labels, order: [Int] = [], quota = [Int](repeating: 0, count: classes)
        for _ in 0..<picks {
            let t = (0..<classes).min { (owed[$0], $0) < (owed[$1], $1) }!
            owed[t] += 1; quota[t] += 1; order.append(t)
        }
        return (labels, order, quota)
    }
}

extension Selector {
    /// `ActiveRounds.sampled` (the doc comment there says what and why). A candidate's
    /// likeness to class c is half the model's probability of c and half `labelAffinity`
    /// (nearness to c's labelled images against the others'; for a class without a label,
    /// distance from every labelled image); it belongs to the class it is most like. The
    /// picks owed to class t are drawn at random among the candidates that belong to t,
    /// or, when fewer than 4 per owed pick do, among its 4-per-pick likeliest.
    static func sampled(
        _ pool: inout Pool, state s: SelectionState, probabilities p: [[Float]], count: Int, seed: UInt64
    ) -> [(pick: SelectionPick, owedTo: Int)] {
        let classes = p.first?.count ?? 0
        guard classes > 1 else { return random(&pool, count: count, seed: seed).map { ($0, 0) } }
        let (labels, order, quota) = owedPicks(s, classes: classes, picks: min(count, pool.candidates.count))
        let candidates = pool.candidates.sorted()
        let affinity = (0..<classes).map { labelAffinity(s, target: $0, candidates: pool.candidates) }
        func like(_ i: Int, _ c: Int) -> Double { 0.5 * Double(p[i][c]) + 0.5 * (affinity[c][i] ?? 0) }
        var belongs = [[Int]](repeating: [], count: classes)
        for i in candidates {
            let c = (0..<classes).max { (like(i, $0), $1) < (like(i, $1), $0) }!
            belongs[c].append(i)
        }
        var rng = SeededGenerator.stream(seed: seed, "select-sampled")
        var picksOf = [[SelectionPick]](repeating: [], count: classes)
        for t in 0..<classes where quota[t] > 0 {
            let q = quota[t]
            var group = belongs[t].filter { pool.candidates.contains($0) }
            let own = group.count
            if group.count < 4 * q {
                group = candidates.filter { pool.candidates.contains($0) }.sorted { (like($0, t), $1) > (like($1, t), $0) }
                group = Array(group.prefix(4 * q))
            }
            group.shuffle(using: &rng)
            let name = s.classNames.flatMap { t < $0.count ? $0[t] : nil } ?? "\(t)"
            for i in group where picksOf[t].count < q && pool.candidates.contains(i) {
                pool.take(i)
                let from = own >= 4 * q ? "the \(own) candidates most like it" : "its \(group.count) likeliest candidates"
                picksOf[t].append(
                    SelectionPick(
                        index: i, score: like(i, t),
                        reason: "class \(name) (\(labels[t]) labelled, pick \(picksOf[t].count + 1) of \(q) owed to it): at random among "
                            + from + String(format: " (likeness %.3f, probability %.3f)", like(i, t), p[i][t])))
            }
        }
        var next = [Int](repeating: 0, count: classes), out: [(pick: SelectionPick, owedTo: Int)] = []
        for t in order where next[t] < picksOf[t].count {
            out.append((picksOf[t][next[t]], t)); next[t] += 1
        }
        if out.count < count && !pool.candidates.isEmpty {
            out += random(&pool, count: count - out.count, seed: seed).map { ($0, order.last ?? 0) }
        }
        return out
    }
}
