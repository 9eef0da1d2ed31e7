import CytoCore
import CytoTrain
import Foundation

/// The seeded, stratified split of a data set into cross-validation folds, saved with
/// a sweep so that it can be reproduced exactly. Images are named by their id (path
/// relative to the data set root), so the assignment does not depend on the order in
/// which files were listed.
public struct FoldAssignment: Sendable, Codable, Equatable {
    public var folds: Int
    public var classNames: [String]
    /// Ids of each fold's test images.
    public var test: [[String]]
    /// Ids of each fold's validation images (disjoint from that fold's test set).
    public var validation: [[String]]
    /// Per fold, per class: the training pool in drawing order, cut to what the
    /// largest size needs. Training set of size S = the first share(S) of each class, so
    /// training sets are nested.
    public var trainingOrder: [[[String]]]
    /// Per fold, per class: how many training images the fold's pool holds (all images
    /// of the class not in its test or validation set). Sizes are split over the classes
    /// from these counts (balanced where they allow, else filled or capped). nil in sweeps
    /// made before it existed (then: balanced from `trainingOrder`).
    public var poolCounts: [[Int]]?

    public init(
        folds: Int, classNames: [String], test: [[String]], validation: [[String]], trainingOrder: [[[String]]],
        poolCounts: [[Int]]? = nil
    ) {
        self.folds = folds; self.classNames = classNames; self.test = test; self.validation = validation
        self.trainingOrder = trainingOrder; self.poolCounts = poolCounts
    }

    /// The image indices (into the data the ids map to) of one cell.
    public func plan(fold f: Int, size: Int, protocol p: SweepProtocol, indexOf: [String: Int]) throws -> CellPlan {
        func idx(_ ids: [String]) throws -> [Int] {
            try ids.map {
                guard let i = indexOf[$0] else {
                    throw CytoError.invalidArgument("image '\($0)' of the fold assignment is not in the data set")
                }
                return i
            }
        }
        var train: [Int] = []
        let k = classNames.count
        let pools = poolCounts?[f] ?? trainingOrder[f].map(\.count)
        let split = p.trainingShares(size: size, pools: pools)
        var drawn = [Int](repeating: 0, count: k)
        for c in 0..<k {
            let pool = try idx(trainingOrder[f][c])
            let share = split.shares[c]
            if p.balancePerClass {
                guard !pool.isEmpty else { continue }
                train += (0..<share).map { pool[$0 % pool.count] }
                drawn[c] = share
            } else {
                guard pool.count >= share else {
                    throw CytoError.invalidArgument(
                        "fold \(f): class '\(classNames[c])' has \(pool.count) training images, size \(size) needs \(share)")
                }
                train += pool.prefix(share)
                drawn[c] = share
            }
        }
        return CellPlan(
            fold: f, size: size, train: train, validation: try idx(validation[f]), test: try idx(test[f]),
            balanced: split.balanced, classCounts: drawn,
            capped: !p.balancePerClass && size > pools.reduce(0, +))
    }
}

extension FoldAssignment {
    /// The training image ids `plan` draws for one cell, without the data set (for
    /// checking a record against the stored split).
    public func trainingIDs(fold f: Int, size: Int, protocol p: SweepProtocol) throws -> [String] {
        let ids = trainingOrder[f].flatMap { $0 }
        var indexOf: [String: Int] = [:]
        for (i, id) in (ids + validation[f] + test[f]).enumerated() where indexOf[id] == nil { indexOf[id] = i }
        let all = ids + validation[f] + test[f]
        return try plan(fold: f, size: size, protocol: p, indexOf: indexOf).train.map { all[$0] }
    }
}

extension FoldAssignment {
    /// Training images per class of each fold's set of `size` (with repeats for
    /// `balancePerClass`), from the pools' counts alone.
    public func trainingClassCounts(size: Int, protocol p: SweepProtocol) -> [[Int]] {
        (0..<folds).map { f in p.trainingShares(size: size, pools: poolCounts?[f] ?? trainingOrder[f].map(\.count)).shares }
    }

    /// One line per size whose training set is not balanced in some fold, saying by how
    /// much (`TrainingBalance.note`); empty when every set is balanced.
    public func balanceNotes(protocol p: SweepProtocol) -> [String] {
        guard !p.balancePerClass else { return [] }
        let k = classNames.count
        return p.sizes.compactMap { s in
            TrainingBalance.note(
                size: p.sizeLabel(s), classNames: classNames,
                target: (0..<k).map { p.trainingShare(size: s, classIndex: $0, classCount: k) },
                perFold: trainingClassCounts(size: s, protocol: p))
        }
    }
}

/// The images of one (fold, size) cell, as indices into the loaded data.
public struct CellPlan: Sendable, Equatable {
    public var fold: Int
    public var size: Int
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]
    /// False when the size could not be balanced: the smaller class gave all it has and
    /// the larger filled the rest (or, `capped`, the whole pool was taken).
    public var balanced: Bool = true
    /// Training images drawn per class (with repeats for `balancePerClass`).
    public var classCounts: [Int] = []
    /// The size is larger than the fold's training pool: the whole pool is the training set.
    public var capped: Bool = false

    /// `balanced`, `filled` (unbalanced: a class gave all it has, another filled the
    /// rest) or `capped` (the whole pool, fewer images than the size): the record's `sampling`.
    public var sampling: String { balanced ? "balanced" : capped ? "capped" : "filled" }
}

/// How far the training sets of one size are from balanced, over the folds: nil when
/// every fold's set is balanced. Used by `sweep` before it trains, and by the report
/// and its fidelity section from the records.
public enum TrainingBalance {
    /// - Parameters:
    ///   - perFold: training images per class of each fold's set (of this size).
    ///   - target: the balanced split of the size (`SweepProtocol.trainingShare`).
    public static func note(size: String, classNames: [String], target: [Int], perFold: [[Int]]) -> String? {
        let off = perFold.filter { $0 != target }
        guard !off.isEmpty else { return nil }
        func range(_ v: [Int]) -> String {
            let lo = v.min() ?? 0, hi = v.max() ?? 0
            return lo == hi ? "\(lo)" : "\(lo)–\(hi)"
        }
        let perClass = classNames.indices.map { c -> String in
            let v = off.map { $0[c] }
            let d = v.map { $0 - target[c] }
            let dl = d.min() ?? 0, dh = d.max() ?? 0
            func sign(_ x: Int) -> String { x > 0 ? "+\(x)" : "\(x)" }
            let delta = dl == dh ? sign(dl) : "\(sign(dl)) to \(sign(dh))"
            return "\(classNames[c]) \(range(v)) (\(delta))"
        }
        let totals = off.map { $0.reduce(0, +) }
        let wanted = target.reduce(0, +)
        let short = totals.filter { $0 < wanted }
        return "size \(size): \(off.count) of \(perFold.count) fold\(perFold.count == 1 ? "" : "s") not balanced "
            + "(\(target.map(String.init).joined(separator: "/")) wanted): " + perClass.joined(separator: ", ")
            + (short.isEmpty
                ? ""
                : "; \(short.count) capped at the whole training pool (\(range(short)) images instead of \(wanted))")
    }
}

/// The data set is too small for the protocol: per class, how many images are needed and how many there are.
public struct TooSmallError: Error, CustomStringConvertible, Equatable {
    public var protocolName: String
    public var classes: [(name: String, needed: Int, available: Int)]
    public var detail: String

    public static func == (a: TooSmallError, b: TooSmallError) -> Bool { a.description == b.description }

    public var description: String {
        let per = classes.map {
            "class '\($0.name)' needs at least \($0.needed) images and has \($0.available)"
                + ($0.available < $0.needed ? " (short by \($0.needed - $0.available))" : "")
        }
        return "the data set is too small for protocol \(protocolName) (\(detail)): " + per.joined(separator: "; ")
    }
}

public enum Folds {
    /// Share of `total` for class `c` of `k` (balanced; the first classes get the remainder).
    static func share(_ total: Int, _ c: Int, _ k: Int) -> Int { total / k + (c < total % k ? 1 : 0) }

    /// Images class `c` needs for the protocol (the smallest count for which every fold
    /// has its test set, validation set and the largest training set).
    public static func needed(protocol p: SweepProtocol, classIndex c: Int, classCount k: Int) -> Int {
        let K = p.folds
        let maxSize = p.sizes.max() ?? 0
        let trainNeed = p.balancePerClass ? 1 : p.trainingShare(size: maxSize, classIndex: c, classCount: k)
        if let t = p.testPerFold {
            let tc = share(t, c, k)
            let vc = min(p.valPerFold.map { share($0, c, k) } ?? tc, tc)
            return max(K * tc, tc + vc + trainNeed)
        }
        let minimum = p.balancePerClass ? 3 : K  // binary: every test fold holds both classes
        var n = max(1, minimum)
        // With validation taken from the next fold's test block, K < 3 folds leave no
        // training images at any data size; `checkSize` reports that case by name.
        if p.valPerFold == nil && K < 3 { return Int.max }
        while n < Int(Int32.max) {
            let block = (n + K - 1) / K
            let testAndVal: Int
            if let vp = p.valPerFold {
                testAndVal = block + min(share(vp, c, k), block)
            } else {
                // Alternating deal: two neighbouring folds hold at most ceil(2n/K) (K even).
                testAndVal = K % 2 == 0 ? (2 * n + K - 1) / K : 2 * block
            }
            if n - testAndVal >= trainNeed { return n }
            n += 1
        }
        return Int.max
    }

    /// Throws `TooSmallError` unless every class has enough images.
    public static func checkSize(labels: [Int], classNames: [String], protocol p: SweepProtocol) throws {
        if p.valPerFold == nil && p.folds < 3 {
            throw CytoError.invalidArgument(
                "\(p.folds) folds leave no training images: validation is the next fold's test block, so use at least 3 folds or give --val-per-fold"
            )
        }
        let k = classNames.count
        let counts = (0..<k).map { c in labels.lazy.filter { $0 == c }.count }
        let rows = (0..<k).map { (name: classNames[$0], needed: needed(protocol: p, classIndex: $0, classCount: k), available: counts[$0]) }
        if rows.contains(where: { $0.available < $0.needed }) {
            var detail = "\(p.folds) folds, largest training size \(p.sizes.max() ?? 0)"
            if p.balancePerClass { detail += " per class" }
            if let t = p.testPerFold { detail += ", \(t) test images per fold" }
            if let v = p.valPerFold { detail += ", \(v) validation images per fold" }
            throw TooSmallError(protocolName: p.name, classes: rows, detail: detail)
        }
    }

    /// Replaces `SweepProtocol.allSize` (`--sizes all`) by the number of training images
    /// the smallest fold's pool holds (per class for `balancePerClass` protocols), and
    /// records it in `allTrainingSize`. Protocols without `all` are returned unchanged.
    public static func resolvingAll(
        _ p: SweepProtocol, labels: [Int], ids: [String], classNames: [String],
        seed: UInt64, groups: [[String]] = []
    ) throws -> SweepProtocol {
        guard p.sizes.contains(SweepProtocol.allSize) else { return p }
        var structural = p
        structural.sizes = [classNames.count]
        try checkSize(labels: labels, classNames: classNames, protocol: structural)
        let part = partition(labels: labels, ids: ids, classNames: classNames, protocol: p, seed: seed, groups: groups)
        let n = part.pools.map { pools in p.balancePerClass ? (pools.map(\.count).max() ?? 0) : pools.map(\.count).reduce(0, +) }.min() ?? 0
        var r = p
        r.sizes = Array(Set(p.concreteSizes + [n])).sorted()
        r.allTrainingSize = n
        return r
    }

    /// Test blocks, validation sets and the whole shuffled training pool of every fold.
    struct Partition {
        var test: [[String]]
        var validation: [[String]]
        /// [fold][class]: shuffled training pool.
        var pools: [[[String]]]
    }

    /// Assumes the structural size check passed (every fold can have its test and validation sets).
    /// `groups`: sets of ids that must stay together (near-duplicates): each group is dealt
    /// as one unit, lands in a single fold's test block, and no member of a fold's test or
    /// validation group is in that fold's training pool. Without groups every image is its
    /// own unit (the assignment is the same as before groups existed).
    static func partition(
        labels: [Int], ids: [String], classNames: [String], protocol p: SweepProtocol,
        seed: UInt64, groups: [[String]] = []
    ) -> Partition {
        let k = classNames.count, K = p.folds
        var keyOf: [String: String] = [:]
        for g in groups { if let first = g.min() { for id in g { keyOf[id] = first } } }
        func key(_ id: String) -> String { keyOf[id] ?? id }
        // Per class: ids sorted, then shuffled with the seed.
        var members: [[String]] = (0..<k).map { c in
            zip(ids, labels).filter { $0.1 == c }.map(\.0).sorted()
        }
        for c in 0..<k {
            var rng = SeededGenerator.stream(seed: seed, "folds-class-\(c)")
            members[c].shuffle(using: &rng)
        }
        // Per class: units (ids sharing a key), in the order of their first member.
        let units: [[[String]]] = members.map { list in
            var order: [String] = [], byKey: [String: [String]] = [:]
            for id in list {
                let kk = key(id)
                if byKey[kk] == nil { order.append(kk) }
                byKey[kk, default: []].append(id)
            }
            return order.map { byKey[$0]! }
        }
        // testBlocks[f][c]: ids of class c in fold f's test block, in shuffled order.
        var testBlocks = [[[String]]](repeating: [[String]](repeating: [], count: k), count: K)
        if let t = p.testPerFold {
            for c in 0..<k {
                let tc = share(t, c, k)
                var f = 0
                for u in units[c] {
                    while f < K && testBlocks[f][c].count >= tc { f += 1 }
                    guard f < K else { break }
                    testBlocks[f][c] += u
                }
            }
        } else {
            // Deal round-robin over the folds in the order 0,2,4,...,1,3,5,...; the counter
            // continues across classes, so fold sizes differ by at most one and a fold plus
            // the next one (its validation block) hold an even share of every class.
            let dealOrder = Array(stride(from: 0, to: K, by: 2)) + Array(stride(from: 1, to: K, by: 2))
            var counter = 0
            for c in 0..<k {
                for u in units[c] { testBlocks[dealOrder[counter % K]][c] += u; counter += 1 }
            }
        }
        if !groups.isEmpty {
            // A group whose members are of several classes was dealt once per class: move
            // every member to the fold where its first member landed.
            var foldOfKey: [String: Int] = [:]
            for f in 0..<K { for c in 0..<k { for id in testBlocks[f][c] where foldOfKey[key(id)] == nil { foldOfKey[key(id)] = f } } }
            for f in 0..<K {
                for c in 0..<k {
                    let moving = testBlocks[f][c].filter { foldOfKey[key($0)] != f }
                    guard !moving.isEmpty else { continue }
                    testBlocks[f][c].removeAll { foldOfKey[key($0)] != f }
                    for id in moving { testBlocks[foldOfKey[key(id)]!][c].append(id) }
                }
            }
        }
        var test: [[String]] = [], validation: [[String]] = [], pools: [[[String]]] = []
        for f in 0..<K {
            let next = testBlocks[(f + 1) % K]
            var val: [[String]] = []
            for c in 0..<k {
                let v = p.valPerFold.map { share($0, c, k) } ?? next[c].count
                val.append(Array(next[c].prefix(v)))
            }
            let excluded = Set((testBlocks[f].flatMap { $0 } + val.flatMap { $0 }).map(key))
            var perClass: [[String]] = []
            for c in 0..<k {
                var pool = members[c].filter { !excluded.contains(key($0)) }.sorted()
                var rng = SeededGenerator.stream(seed: seed, "training-order-fold-\(f)-class-\(c)")
                pool.shuffle(using: &rng)
                perClass.append(pool)
            }
            test.append(testBlocks[f].flatMap { $0 })
            validation.append(val.flatMap { $0 })
            pools.append(perClass)
        }
        return Partition(test: test, validation: validation, pools: pools)
    }

    /// Stratified, seeded fold assignment. Training sizes are split balanced over the
    /// classes where each fold's pools allow it; otherwise the smaller class gives all it
    /// has and the larger fills the rest, and a size larger than a fold's whole training
    /// pool takes that pool (`SweepProtocol.trainingShares`). Refused (`TooSmallError`)
    /// only when a fold cannot have its test and validation sets and a training image
    /// of every class, or when two sizes would train the same sets in every fold.
    /// - Parameters:
    ///   - labels: class index of each image.
    ///   - ids: a unique id of each image (relative path).
    ///   - groups: sets of ids kept in a single fold (near-duplicates; see `partition`).
    public static func assign(
        labels: [Int], ids: [String], classNames: [String], protocol p: SweepProtocol,
        seed: UInt64, groups: [[String]] = []
    ) throws -> FoldAssignment {
        precondition(labels.count == ids.count)
        guard Set(ids).count == ids.count else { throw CytoError.invalidArgument("image ids are not unique") }
        guard !p.sizes.contains(SweepProtocol.allSize) else {
            throw CytoError.invalidArgument("resolve --sizes all with Folds.resolvingAll before assigning folds")
        }
        let k = classNames.count, K = p.folds
        var balancedError: TooSmallError?
        do { try checkSize(labels: labels, classNames: classNames, protocol: p) } catch let e as TooSmallError {
            // Too small for balanced sets: unbalanced (filled, or capped at the pool) sets
            // are drawn as long as every fold has its test and validation sets.
            if p.balancePerClass { throw e }
            var structural = p
            structural.sizes = [k]
            try checkSize(labels: labels, classNames: classNames, protocol: structural)
            balancedError = e
        }
        let part = partition(labels: labels, ids: ids, classNames: classNames, protocol: p, seed: seed, groups: groups)
        var order: [[[String]]] = [], counts: [[Int]] = []
        for f in 0..<K {
            let pools = part.pools[f].map(\.count)
            var perClass: [[String]] = []
            for c in 0..<k {
                let pool = part.pools[f][c]
                if p.balancePerClass {
                    if pool.isEmpty {
                        let have = labels.lazy.filter { $0 == c }.count
                        throw TooSmallError(
                            protocolName: p.name,
                            classes: [
                                (
                                    name: classNames[c],
                                    needed: max(have + 1, needed(protocol: p, classIndex: c, classCount: k)), available: have
                                )
                            ],
                            detail: "fold \(f) leaves no training image of this class")
                    }
                    perClass.append(pool)
                } else {
                    let need = p.sizes.map { p.trainingShares(size: $0, pools: pools).shares[c] }.max() ?? 0
                    perClass.append(Array(pool.prefix(need)))
                }
            }
            order.append(perClass)
            counts.append(pools)
        }
        // Capping is for the largest sizes of a protocol written for a slightly larger
        // data set; two sizes capped to the same sets in every fold would train the same
        // cells twice over, so such a data set is refused with the largest size that fits.
        if !p.balancePerClass {
            let sizes = p.sizes.sorted()
            for (a, b) in zip(sizes, sizes.dropFirst()) {
                let same = counts.allSatisfy { p.trainingShares(size: a, pools: $0).shares == p.trainingShares(size: b, pools: $0).shares }
                guard same else { continue }
                let largest = counts.map { $0.reduce(0, +) }.max() ?? 0
                let sameSets =
                    "sizes \(a) and \(b) both take every training image of every fold (at most \(largest)), so they would train the same sets; use --sizes up to \(largest)"
                // The balanced check's detail already names the folds.
                let detail = balancedError.map { $0.detail + "; " + sameSets } ?? "\(K) folds; " + sameSets
                let rows = (0..<k).map { c in
                    (
                        name: classNames[c], needed: needed(protocol: p, classIndex: c, classCount: k),
                        available: labels.lazy.filter { $0 == c }.count
                    )
                }
                throw TooSmallError(protocolName: p.name, classes: rows, detail: detail)
            }
        }
        return FoldAssignment(
            folds: K, classNames: classNames, test: part.test, validation: part.validation,
            trainingOrder: order, poolCounts: counts)
    }
}
