import CytoCore
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
    /// from these counts (balanced where they allow, else stratified). nil in sweeps
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
        let split = p.trainingShares(size: size, pools: poolCounts?[f] ?? trainingOrder[f].map(\.count))
        for c in 0..<k {
            let pool = try idx(trainingOrder[f][c])
            let share = split.shares[c]
            if p.balancePerClass {
                guard !pool.isEmpty else { continue }
                train += (0..<share).map { pool[$0 % pool.count] }
            } else {
                guard pool.count >= share else {
                    throw CytoError.invalidArgument(
                        "fold \(f): class '\(classNames[c])' has \(pool.count) training images, size \(size) needs \(share)")
                }
                train += pool.prefix(share)
            }
        }
        return CellPlan(
            fold: f, size: size, train: train, validation: try idx(validation[f]), test: try idx(test[f]),
            balanced: split.balanced)
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

/// The images of one (fold, size) cell, as indices into the loaded data.
public struct CellPlan: Sendable, Equatable {
    public var fold: Int
    public var size: Int
    public var train: [Int]
    public var validation: [Int]
    public var test: [Int]
    /// False when the size could not be balanced and was drawn stratified.
    public var balanced: Bool = true
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
    /// classes where each fold's pools allow it, otherwise stratified; a size larger than
    /// some fold's whole training pool is refused (`TooSmallError`).
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
        let maxSize = p.sizes.max() ?? 0
        var balancedError: TooSmallError?
        do { try checkSize(labels: labels, classNames: classNames, protocol: p) } catch let e as TooSmallError {
            // Too small for balanced sets; stratified sets may still fit.
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
            if let e = balancedError, pools.reduce(0, +) < maxSize {
                var detail = e.detail
                detail += "; fold \(f) has \(pools.reduce(0, +)) training images in all, even stratified"
                throw TooSmallError(protocolName: e.protocolName, classes: e.classes, detail: detail)
            }
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
        return FoldAssignment(
            folds: K, classNames: classNames, test: part.test, validation: part.validation,
            trainingOrder: order, poolCounts: counts)
    }
}
