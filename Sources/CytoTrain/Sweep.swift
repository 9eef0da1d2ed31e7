import CytoCore
import CytoData
import Foundation

/// A data set ready for a sweep: decoded images plus a stable id (path relative to the
/// data root) per image.
public struct SweepData: Sendable {
    public var images: LabeledImages
    public var ids: [String]
    public var classNames: [String]
    /// Where the data came from (for the manifest and messages).
    public var path: String

    public init(images: LabeledImages, ids: [String], classNames: [String], path: String) {
        precondition(ids.count == images.count)
        self.images = images; self.ids = ids; self.classNames = classNames; self.path = path
    }

    /// Ids relative to `root` (the part after `root/`), or the path itself outside it.
    public static func relativeIDs(_ paths: [String], root: String) -> [String] {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return paths.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
    }
}

/// One (fold, size) cell of a sweep.
public struct SweepCell: Sendable, Hashable, CustomStringConvertible {
    public var fold: Int
    public var size: Int
    public init(fold: Int, size: Int) { self.fold = fold; self.size = size }
    public var description: String { "fold \(fold) size \(size)" }
}

/// What a sweep reports while it runs.
public enum SweepEvent {
    case cellStarted(SweepCell, index: Int, of: Int)
    case epoch(SweepCell, EpochRecord, maxEpochs: Int)
    case cellFinished(SweepRecord)
    case cellSkipped(SweepCell, reason: String)
}

/// Runs the cells of a sweep directory: one fresh network per (fold, size) cell, each
/// finished cell written atomically to `cells/fold<F>-size<S>.json`. Re-running
/// resumes: finished cells are skipped, cells whose claim is stale (the process was
/// killed) are redone, cells claimed by a live process are left to it.
public final class SweepRunner {
    public let directory: URL
    public let manifest: SweepManifest
    public let data: SweepData
    private let indexOf: [String: Int]
    /// Also write each cell's model as `cells/fold<F>-size<S>.safetensors`.
    public var saveModels = false
    /// A claim from another host without a heartbeat for this long is stale.
    public var staleAfter: TimeInterval = 900

    public var cellsDirectory: URL { directory.appendingPathComponent("cells") }

    /// Opens a sweep directory, creating `sweep.json` if it is new, or refusing if it
    /// was made by a different protocol, data set or settings.
    public init(directory: URL, protocol p: SweepProtocol, data: SweepData, spec: ModelSpec, seed: UInt64) throws {
        try p.validate(classCount: data.classNames.count)
        guard spec.classes == data.classNames.count else {
            throw CytoError.invalidArgument("the model has \(spec.classes) outputs but the data has \(data.classNames.count) classes")
        }
        guard spec.inputHeight == data.images.geometry.height, spec.inputWidth == data.images.geometry.width else {
            throw CytoError.invalidArgument("the model input \(spec.inputWidth)x\(spec.inputHeight) differs from the images' " +
                                            "\(data.images.geometry.width)x\(data.images.geometry.height)")
        }
        try spec.validate()
        self.directory = directory
        self.data = data
        var map: [String: Int] = [:]
        for (i, id) in data.ids.enumerated() { map[id] = i }
        indexOf = map
        let assignment = try Folds.assign(labels: data.images.labels, ids: data.ids, classNames: data.classNames,
                                          protocol: p, seed: seed)
        let counts = data.classNames.indices.map { c in data.images.labels.lazy.filter { $0 == c }.count }
        let fresh = SweepManifest(protocolSettings: p, dataPath: data.path,
                                  dataHash: SweepManifest.hash(ids: data.ids, labels: data.images.labels, classNames: data.classNames),
                                  imageCount: data.images.count, classNames: data.classNames, classCounts: counts, seed: seed,
                                  spec: spec, assignment: assignment, created: ISO8601DateFormatter().string(from: Date()))
        let url = directory.appendingPathComponent("sweep.json")
        if FileManager.default.fileExists(atPath: url.path) {
            let existing = try loadSweepManifest(directory)
            let diff = existing.differences(from: fresh)
            guard diff.isEmpty else {
                throw CytoError.invalidArgument("refusing to mix sweeps: \(directory.path) was made by a different run.\n  " +
                    diff.joined(separator: "\n  ") + "\nUse another --out directory, or the original settings to resume.")
            }
            manifest = existing
        } else {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("cells"), withIntermediateDirectories: true)
            try writeAtomically(fresh.encoded(), to: url)
            manifest = fresh
        }
        try FileManager.default.createDirectory(at: cellsDirectory, withIntermediateDirectories: true)
    }

    /// All cells, fold by fold, sizes ascending within a fold.
    public var cells: [SweepCell] {
        (0..<manifest.folds).flatMap { f in manifest.sizes.map { SweepCell(fold: f, size: $0) } }
    }

    /// The cells of shard `index` of `count`: every `count`-th cell starting at `index`.
    public func cells(shard: (index: Int, count: Int)?) -> [SweepCell] {
        guard let s = shard else { return cells }
        return cells.enumerated().filter { $0.offset % s.count == s.index }.map(\.element)
    }

    public func recordURL(_ c: SweepCell) -> URL { cellsDirectory.appendingPathComponent(SweepRecord.fileName(fold: c.fold, size: c.size)) }
    public func claimURL(_ c: SweepCell) -> URL { cellsDirectory.appendingPathComponent(CellClaim.fileName(fold: c.fold, size: c.size)) }
    public func modelURL(_ c: SweepCell) -> URL { cellsDirectory.appendingPathComponent("fold\(c.fold)-size\(c.size).safetensors") }

    public func isFinished(_ c: SweepCell) -> Bool { FileManager.default.fileExists(atPath: recordURL(c).path) }

    /// The seed of one cell, derived from the sweep seed.
    public func cellSeed(_ c: SweepCell) -> UInt64 {
        var g = SeededGenerator.stream(seed: manifest.seed, "cell-\(c.fold)-\(c.size)")
        return g.next() >> 1
    }

    public struct Outcome: Sendable {
        /// Cells trained by this call.
        public var ran: [SweepCell] = []
        /// Cells already finished.
        public var finished: [SweepCell] = []
        /// Cells claimed by another live process.
        public var busy: [SweepCell] = []
    }

    /// Runs the (shard's) cells that are not finished.
    public func run(backend: any Backend, shard: (index: Int, count: Int)? = nil,
                    onEvent: (SweepEvent) -> Void = { _ in }) throws -> Outcome {
        var outcome = Outcome()
        let todo = cells(shard: shard)
        for (i, cell) in todo.enumerated() {
            if isFinished(cell) {
                outcome.finished.append(cell); onEvent(.cellSkipped(cell, reason: "finished")); continue
            }
            let claim = claimURL(cell)
            var claimed = try CellClaim.create(at: claim)
            if !claimed {
                if CellClaim.isLive(at: claim, staleAfter: staleAfter) {
                    outcome.busy.append(cell); onEvent(.cellSkipped(cell, reason: "running elsewhere")); continue
                }
                try? FileManager.default.removeItem(at: claim)   // interrupted run: redo the cell
                claimed = try CellClaim.create(at: claim)
                if !claimed { outcome.busy.append(cell); onEvent(.cellSkipped(cell, reason: "running elsewhere")); continue }
            }
            if isFinished(cell) {   // finished between our check and the claim
                try? FileManager.default.removeItem(at: claim)
                outcome.finished.append(cell); continue
            }
            onEvent(.cellStarted(cell, index: i, of: todo.count))
            do {
                let record = try runCell(cell, backend: backend, claim: claim, onEvent: onEvent)
                try? FileManager.default.removeItem(at: claim)
                outcome.ran.append(cell)
                onEvent(.cellFinished(record))
            } catch {
                try? FileManager.default.removeItem(at: claim)
                throw error
            }
        }
        return outcome
    }

    /// Trains and evaluates one cell and writes its record (and model).
    @discardableResult
    public func runCell(_ cell: SweepCell, backend: any Backend, claim: URL? = nil,
                        onEvent: (SweepEvent) -> Void = { _ in }) throws -> SweepRecord {
        let start = Date()
        let p = manifest.protocolSettings
        let plan = try manifest.assignment.plan(fold: cell.fold, size: cell.size, protocol: p, indexOf: indexOf)
        let train = data.images.subset(plan.train)
        let validation = data.images.subset(plan.validation)
        let test = data.images.subset(plan.test)
        var config = p.training
        config.seed = cellSeed(cell)
        let net = try Network(spec: manifest.spec, backend: backend, maxBatch: max(config.batchSize, 32))
        net.initialize(seed: config.seed)
        let trainer = try Trainer(network: net, config: config)
        let trainStart = Date()
        let result = try trainer.fit(train: train, validation: validation.count > 0 ? validation : nil) { r in
            if let claim { CellClaim.touch(claim) }
            onEvent(.epoch(cell, r, maxEpochs: config.maxEpochs))
        }
        let trainingSeconds = Date().timeIntervalSince(trainStart)
        let probs = try Predictor(network: net).probabilities(test)
        let report = ClassificationReport(probabilities: probs, labels: test.labels, classNames: manifest.classNames)
        let value = p.metric == "roc_auc" ? (report.rocAUC ?? .nan) : report.f1Weighted
        let ids = data.ids
        let record = SweepRecord(
            fold: cell.fold, size: cell.size, seed: config.seed, protocolName: p.name, classNames: manifest.classNames,
            trainIDs: plan.train.map { ids[$0] }, validationIDs: plan.validation.map { ids[$0] },
            testIDs: plan.test.map { ids[$0] }, epochsRun: result.history.count, bestEpoch: result.bestEpoch,
            stopReason: "\(result.stopReason)", history: result.history, testLabels: test.labels,
            testProbabilities: probs, metric: p.metric, value: value, rocAUC: report.rocAUC, accuracy: report.accuracy,
            f1Weighted: report.f1Weighted, f1Macro: report.f1Macro, confusion: report.confusion,
            wallSeconds: Date().timeIntervalSince(start), trainingSeconds: trainingSeconds,
            backend: backend.deviceDescription, host: CellClaim.currentHost,
            finished: ISO8601DateFormatter().string(from: Date()))
        if saveModels {
            let model = ModelFile(spec: manifest.spec, classNames: manifest.classNames, weights: net.weights(),
                                  provenance: ["protocol": p.name, "fold": "\(cell.fold)", "size": "\(cell.size)",
                                               "seed": "\(config.seed)", "best_epoch": "\(result.bestEpoch)",
                                               "data": data.path])
            try model.write(to: modelURL(cell))
        }
        try writeAtomically(record.encoded(), to: recordURL(cell))
        return record
    }
}
