import CytoCore
import CytoData
import CytoSelect
import CytoTrain
import Foundation
import Synchronization

/// How a sweep's training sets are chosen when not by the paper's random draw
/// (`sweep --selection`). Stored in `sweep.json`: a folder made with one selection is
/// refused to a run with another. Nil in the manifest = the paper's draw (`random`).
public struct SweepSelection: Sendable, Codable, Equatable, CustomStringConvertible {
    public var strategy: SelectionStrategy
    /// The label-free description the strategy measures distances in.
    public var embedding: EmbeddingKind
    /// How each cell trains on its picks when their classes are unequal
    /// (`TrainingConfig.classBalance`). nil: as they are (sweeps made before the option).
    /// A no-op on the protocol's draw, which takes half per class.
    public var classBalance: ClassBalance?
    /// `active`'s first set; nil: typical (sweeps made before the option).
    public var coldStart: ColdStart?
    /// `active`'s picks once a model exists; nil: uncertain (as asked for, and sweeps made
    /// before the option and before `blend` became the default, which resume unchanged).
    public var rounds: ActiveRounds?
    public init(
        strategy: SelectionStrategy, embedding: EmbeddingKind = .stain, classBalance: ClassBalance? = nil, coldStart: ColdStart? = nil,
        rounds: ActiveRounds? = nil
    ) {
        self.strategy = strategy; self.embedding = embedding; self.classBalance = classBalance
        self.coldStart = strategy == .active && coldStart != .typical ? coldStart : nil
        self.rounds = strategy == .active && rounds != .uncertain ? rounds : nil
    }
    public var description: String {
        let balance = classBalance.map { $0 == .none ? "" : ", \($0.rawValue)d classes" } ?? ""
        let start = coldStart.map { ", \($0.rawValue) first set" } ?? ""
        // nil rounds are uncertain ones, named: with blend the default, a folder of
        // uncertain rounds refused to a plain run read "the directory has active (stain
        // embedding, oversampled classes), this run has active (…, blend rounds)".
        let later = strategy == .active ? ", \((rounds ?? .uncertain).rawValue) rounds" : ""
        return strategy == .uniform
            ? "uniform (no labels\(balance))" : "\(strategy.rawValue) (\(embedding.rawValue) embedding\(balance)\(start)\(later))"
    }

    /// The tuning `active` runs with.
    var activeOptions: ActiveOptions {
        var o = ActiveOptions()
        if let coldStart { o.coldStart = coldStart }
        o.rounds = rounds ?? .uncertain
        return o
    }

    /// The record's `sampling` of a cell whose training set was chosen by a strategy.
    public static let sampling = "selected"
}

extension SweepManifest {
    /// `selection` as a user names it: the strategy, `random` for the paper's draw.
    public var selectionName: String { selection.map(\.description) ?? "random (the protocol's draw)" }

    /// How many workers (Slurm array tasks) `cells` can keep busy: one per cell, or with a
    /// selection one per fold (a fold's sizes extend each other, so a shard takes whole
    /// folds); more tasks than this start, load the data and find nothing to do.
    public func workUnits(_ cells: [SweepCell]) -> Int {
        selection == nil ? cells.count : Set(cells.map(\.fold)).count
    }
}

/// The cache of the data set's embedding, one per runner (computed by the first cell
/// that needs it, on that cell's backend).
final class SelectionEmbeddingCache: Sendable {
    let value = Mutex<[[Float]]?>(nil)
}

extension SweepRunner {
    /// The cell whose training set this cell's set extends (the fold's next smaller
    /// size), nil for the smallest size or a sweep without a selection.
    public func predecessor(_ c: SweepCell) -> SweepCell? {
        guard manifest.selection != nil else { return nil }
        let sizes = manifest.sizes.sorted()
        guard let k = sizes.firstIndex(of: c.size), k > 0 else { return nil }
        return SweepCell(fold: c.fold, size: sizes[k - 1])
    }

    /// Indices (into the data) of fold `f`'s whole training pool: every image not in its
    /// test or validation set nor in a near-duplicate group with one of them (as the
    /// protocol's partition excludes them).
    func selectionPool(fold f: Int) -> [Int] {
        let a = manifest.assignment
        var keyOf: [String: String] = [:]
        for g in data.foldGroups { if let first = g.min() { for id in g { keyOf[id] = first } } }
        let excluded = Set((a.test[f] + a.validation[f]).map { keyOf[$0] ?? $0 })
        return data.ids.indices.filter { !excluded.contains(keyOf[data.ids[$0]] ?? data.ids[$0]) }
    }

    /// The training images of a cell of a sweep with a selection: the predecessor's set
    /// plus what the strategy picks given the predecessor's model and the labels of the
    /// images already picked (never the labels of the rest); at the smallest size, the
    /// strategy's cold-start picks (no labels, no model).
    func selectedPlan(_ cell: SweepCell, backend: any Backend) throws -> CellPlan {
        guard let selection = manifest.selection else { preconditionFailure("no selection") }
        let f = cell.fold
        let pool = selectionPool(fold: f)
        var position: [Int: Int] = [:]
        for (p, i) in pool.enumerated() { position[i] = p }
        let all = try selectionEmbedding(selection.embedding, backend: backend)
        var picked: [Int] = []
        var probabilities: [[Float]]? = nil
        if let prev = predecessor(cell) {
            guard case .valid(let rec) = SweepRecord.check(recordURL(prev), cell: prev, manifest: manifest) else {
                throw CytoError.invalidArgument("\(cell) extends \(prev)'s training set, which is not finished")
            }
            picked = try rec.trainIDs.map { id in
                guard let i = indexOf[id], let p = position[i] else {
                    throw CytoError.invalidArgument("\(prev)'s training image \(id) is not in fold \(f)'s training pool")
                }
                return p
            }
            let model = try ModelFile.read(from: modelURL(prev))
            let net = try Network(spec: model.spec, backend: backend, maxBatch: 32)
            try net.setWeights(model.weights)
            let predictor = Predictor(network: net)
            var probs: [[Float]] = []
            probs.reserveCapacity(pool.count)
            var i = 0
            while i < pool.count {
                let chunk = Array(pool[i..<min(i + max(1, testChunk), pool.count)])
                probs += try predictor.probabilities(try data.images(chunk))
                i += chunk.count
            }
            probabilities = probs
        }
        var groupKey: [String: Int] = [:]
        for (g, members) in data.foldGroups.enumerated() { for id in members { groupKey[id] = pool.count + g } }
        let groupOf = pool.enumerated().map { p, i in groupKey[data.ids[i]] ?? p }
        let state = SelectionState(
            embeddings: pool.map { all[$0] }, picked: picked, pickedLabels: picked.map { data.labels[pool[$0]] },
            probabilities: probabilities, groupOf: groupOf, classNames: manifest.classNames)
        let want = max(0, min(cell.size, pool.count) - picked.count)
        let picks = Selector.select(
            selection.strategy, state: state, count: want, seed: cellSeed(cell), active: selection.activeOptions)
        let train = (picked + picks.map(\.index)).map { pool[$0] }
        let a = manifest.assignment
        func idx(_ ids: [String]) throws -> [Int] {
            try ids.map {
                guard let i = indexOf[$0] else { throw CytoError.invalidArgument("image '\($0)' of the fold assignment is not in the data set") }
                return i
            }
        }
        var counts = [Int](repeating: 0, count: manifest.classNames.count)
        for i in train { counts[data.labels[i]] += 1 }
        return CellPlan(
            fold: f, size: cell.size, train: train, validation: try idx(a.validation[f]), test: try idx(a.test[f]),
            balanced: Set(counts).count == 1, classCounts: counts, capped: cell.size > pool.count)
    }

    /// The embedding of every image of the data (the whole set, so each fold's pool is a
    /// subset of the same rows), computed once per run.
    /// It is computed under the lock: the cells that start together wait for the first
    /// one's rows rather than each computing them again (a contrastive embedding trains
    /// a network, seconds that the waiting cells would only repeat).
    func selectionEmbedding(_ kind: EmbeddingKind, backend: any Backend) throws -> [[Float]] {
        try selectionCache.value.withLock { cached throws -> [[Float]] in
            if let e = cached { return e }
            let images = try data.images(Array(0..<data.count))
            let e = try Embedding.compute(
                kind, pixels: images.pixels, count: data.count, height: data.geometry.height, width: data.geometry.width,
                backend: backend)
            cached = e
            return e
        }
    }
}
