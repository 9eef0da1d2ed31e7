import CytoCore
import CytoData
import CytoTrain
import Foundation
import Synchronization

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
    /// The cell threw; its error is recorded in `cells/fold<F>-size<S>.error.json`.
    case cellFailed(SweepCell, message: String)
}

/// Runs the cells of a sweep directory: one fresh network per (fold, size) cell, each
/// finished cell written atomically to `cells/fold<F>-size<S>.json`. Re-running
/// resumes: finished cells are skipped, cells whose claim is stale (the process was
/// killed) are redone, cells claimed by a live process are left to it. A cell that
/// fails is recorded in `cells/fold<F>-size<S>.error.json` and the run goes on.
public final class SweepRunner: @unchecked Sendable {
    public let directory: URL
    /// What the directory was made from: its `sweep.json`, or (before `create()`) the
    /// manifest this run would write.
    public private(set) var manifest: SweepManifest
    /// Whether `sweep.json` exists (read, or written by `create()`).
    public private(set) var isCreated: Bool
    public let data: SweepData
    let indexOf: [String: Int]
    /// The data set's embedding for a sweep with a selection (`SweepSelection`).
    let selectionCache = SelectionEmbeddingCache()
    /// Also write each cell's model as `cells/fold<F>-size<S>.safetensors`.
    public var saveModels = false
    /// Whether cells write their models: with `saveModels`, and always with a selection
    /// (the next size's picks need the model).
    public var savesModels: Bool { saveModels || manifest.selection != nil }
    /// Called after each (re-)initialisation of a cell's network with the attempt
    /// number (0 first): lets tests plant a network that is dead from the start.
    public var initializationHook: ((Network, Int) throws -> Void)?
    /// A claim from another host without a heartbeat for this long is stale.
    public var staleAfter: TimeInterval = 900
    /// Test images are predicted in chunks of this many (streamed from the data).
    public var testChunk = 200

    /// Where the sweep's files are (`cells/fold<F>-size<S>.json` and the rest).
    public var layout: SweepLayout { SweepLayout(directory) }
    public var cellsDirectory: URL { layout.cellsDirectory }

    /// Opens a sweep directory, creating `sweep.json` if it is new, or refusing if it
    /// was made by a different protocol, data set or settings. `--sizes all`
    /// (`SweepProtocol.allSize`) is resolved against the data first.
    /// - Parameter creating: false leaves a new directory unwritten until `create()`
    ///   (or the first `run`), so a command can check everything else first (backends,
    ///   memory): a `sweep.json` left by a run refused later would refuse the corrected rerun.
    /// - Parameter selection: how training sets are chosen (nil: the protocol's random draw).
    public init(
        directory: URL, protocol given: SweepProtocol, data: SweepData, spec: ModelSpec, seed: UInt64, creating: Bool = true,
        selection: SweepSelection? = nil
    ) throws {
        try given.validate(classCount: data.classNames.count)
        if selection != nil && given.balancePerClass {
            throw CytoError.invalidArgument(
                "--selection \(selection!.strategy.rawValue) chooses whole training sets; protocol \(given.name) balances each class by augmentation (sizes per class), so use --selection random")
        }
        let p = try Folds.resolvingAll(
            given, labels: data.labels, ids: data.ids, classNames: data.classNames, seed: seed,
            groups: data.foldGroups)
        guard spec.classes == data.classNames.count else {
            throw CytoError.invalidArgument("the model has \(spec.classes) outputs but the data has \(data.classNames.count) classes")
        }
        guard spec.inputHeight == data.geometry.height, spec.inputWidth == data.geometry.width else {
            throw CytoError.invalidArgument(
                "the model input \(spec.inputWidth)x\(spec.inputHeight) differs from the images' "
                    + "\(data.geometry.width)x\(data.geometry.height)")
        }
        try spec.validate()
        self.directory = directory
        self.data = data
        var map: [String: Int] = [:]
        for (i, id) in data.ids.enumerated() { map[id] = i }
        indexOf = map
        let assignment = try Folds.assign(
            labels: data.labels, ids: data.ids, classNames: data.classNames,
            protocol: p, seed: seed, groups: data.foldGroups)
        let counts = data.classNames.indices.map { c in data.labels.lazy.filter { $0 == c }.count }
        var fresh = SweepManifest(
            protocolSettings: p, dataPath: data.path,
            dataHash: SweepManifest.hash(ids: data.ids, labels: data.labels, classNames: data.classNames),
            imageCount: data.count, classNames: data.classNames, classCounts: counts, seed: seed,
            spec: spec, assignment: assignment, created: ISO8601DateFormatter().string(from: Date()))
        fresh.nearDuplicates = data.nearDuplicates
        fresh.selection = selection
        fresh.imagesHash = SweepManifest.imagesHash(
            ids: data.ids, labels: data.labels, classNames: data.classNames, checksums: data.imageChecksums)
        let url = SweepLayout(directory).manifestURL
        if FileManager.default.fileExists(atPath: url.path) {
            let existing = try loadSweepManifest(directory)
            let diff = existing.differences(from: fresh)
            guard diff.isEmpty else { throw Self.refusingToMix(directory, diff) }
            manifest = existing
            isCreated = true
        } else {
            manifest = fresh
            isCreated = false
        }
        if isCreated {
            try openCells()
        } else if creating {
            try create()
        }
    }

    /// Writes `sweep.json` of a new directory (nothing when it exists already). Two runs
    /// started at once into one new directory both found no `sweep.json`, and both wrote
    /// one, the last replacing the first: both went on, and the directory held one run's
    /// `sweep.json` and both runs' cells. It is now created exclusively, so one run wins;
    /// the other reads the winner's and goes on only when it describes the same sweep.
    public func create() throws {
        guard !isCreated else { return }
        try FileManager.default.createDirectory(at: cellsDirectory, withIntermediateDirectories: true)
        if try !AtomicFile.createExclusively(manifest.encoded(), at: layout.manifestURL) {
            let theirs = try loadSweepManifest(directory)
            let diff = theirs.differences(from: manifest)
            guard diff.isEmpty else { throw Self.refusingToMix(directory, diff, concurrent: true) }
            manifest = theirs
        }
        isCreated = true
        try openCells()
    }

    /// The refusal to run in a directory made by other settings.
    static func refusingToMix(_ directory: URL, _ diff: [String], concurrent: Bool = false) -> CytoError {
        CytoError.invalidArgument(
            "refusing to mix sweeps: \(directory.path) was made by a different run"
                + (concurrent ? " (started at the same time as this one)" : "") + " (" + diff.joined(separator: "; ")
                + "); use another directory (sweep --out, plan --keep), or the original settings to resume")
    }

    /// Creates `cells/` and removes what killed runs left half-written there.
    private func openCells() throws {
        try FileManager.default.createDirectory(at: cellsDirectory, withIntermediateDirectories: true)
        // Records and models half-written by killed runs (kill -9, node failure).
        AtomicFile.removeStaleTemporaries(in: directory)
        AtomicFile.removeStaleTemporaries(in: cellsDirectory)
    }

    /// Throws when `sweep.json` is no longer in the sweep folder: the folder was moved
    /// (or removed) while this run was in it. Writing on would recreate `DIR/cells` at the
    /// old path (AtomicFile creates missing folders), splitting the sweep's cells between
    /// two folders, the old one without a sweep.json, and the run still exited 0.
    public func requireInPlace() throws {
        let manifestPath = layout.manifestURL.path
        guard OSPath.isDirectory(manifestPath) == false else {
            throw CytoError.io(
                path: directory.path,
                reason:
                    "the sweep folder was moved or removed while this run was in it (no sweep.json there now); this run stops "
                    + "without writing the cell's results; resume the sweep where the folder is now")
        }
    }

    /// All cells, fold by fold, sizes ascending within a fold.
    public var cells: [SweepCell] { manifest.cells }

    /// The cells of shard `index` of `count`: every `count`-th cell starting at `index`,
    /// counted within `only` when given (a retry's list of cells).
    public func cells(shard: (index: Int, count: Int)?, only: Set<SweepCell>? = nil) -> [SweepCell] {
        let base = only.map { o in cells.filter { o.contains($0) } } ?? cells
        guard let s = shard else { return base }
        // With a selection a fold's sizes depend on each other: a shard takes whole folds.
        // The folds are dealt by their position among `base`'s folds, not by number, so
        // that a retry list of folds 2 and 4 on two tasks gives each task one.
        if manifest.selection != nil {
            let folds = Array(Set(base.map(\.fold))).sorted()
            let mine = Set(folds.enumerated().filter { $0.offset % s.count == s.index }.map(\.element))
            return base.filter { mine.contains($0.fold) }
        }
        return base.enumerated().filter { $0.offset % s.count == s.index }.map(\.element)
    }

    /// The order the workers take `cells` in (indices into `cells`): the largest
    /// training size first, folds in their listed order within a size. A cell's time
    /// grows with its size (size 200 of the AML protocol costs about three times size
    /// 100 and four to eight times size 10), and the workers take cells in list order:
    /// fold by fold with sizes ascending, the last fold's largest cell ran alone at the
    /// end while the other workers idled. Largest first (list scheduling's LPT rule) leaves
    /// small cells for the end, so the workers finish close together: from the AML
    /// protocol's measured per-cell costs, one fold on 2 workers 231 -> 190 s (the ideal),
    /// the whole sweep on 16 workers 295 -> 244 s against an ideal 237.
    public static func largestFirst(_ cells: [SweepCell]) -> [Int] {
        cells.indices.sorted { a, b in
            cells[a].size != cells[b].size ? cells[a].size > cells[b].size : a < b
        }
    }

    public func recordURL(_ c: SweepCell) -> URL { layout.recordURL(c) }
    public func claimURL(_ c: SweepCell) -> URL { layout.claimURL(c) }
    public func errorURL(_ c: SweepCell) -> URL { layout.errorURL(c) }
    public func modelURL(_ c: SweepCell) -> URL { layout.modelURL(c) }

    /// Checks, before any cell is trained, that the files `cells` will write (record,
    /// error file, claim, and model with `saveModels`) are not folders: a folder there
    /// would otherwise fail the rename after the cell's training. An empty folder is a
    /// harmless leftover and is removed; any other throws `CytoError.io` naming it.
    public static func preflightCellFiles(directory: URL, cells: [SweepCell], saveModels: Bool) throws {
        let layout = SweepLayout(directory)
        guard FileManager.default.fileExists(atPath: layout.cellsDirectory.path) else { return }
        for c in cells {
            var files: [SweepLayout.CellFile] = [.record, .error, .claim]
            if saveModels { files.append(.model) }
            for file in files {
                let path = layout.url(c, file).path
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
                if rmdir(path) == 0 { continue }
                throw CytoError.io(
                    path: path,
                    reason: "is a directory, in the place of cell \(c)'s \(file.role); move it away and run again")
            }
        }
    }

    /// Whether the cell has a valid record: a damaged or diverged record file does not
    /// count, so the cell is redone (the new record replaces it atomically).
    public func isFinished(_ c: SweepCell) -> Bool {
        guard FileManager.default.fileExists(atPath: recordURL(c).path) else { return false }
        if case .valid = SweepRecord.check(recordURL(c), cell: c, manifest: manifest) { return true }
        return false
    }

    /// The seed of one cell, derived from the sweep seed.
    public func cellSeed(_ c: SweepCell) -> UInt64 { manifest.cellSeed(c) }

    public struct Outcome: Sendable {
        /// Cells trained by this call.
        public var ran: [SweepCell] = []
        /// Cells already finished.
        public var finished: [SweepCell] = []
        /// Cells claimed by another live process.
        public var busy: [SweepCell] = []
        /// Cells that threw (recorded in their error file), with the message.
        public var failed: [(cell: SweepCell, message: String)] = []
        /// Failed cells whose error file could not be written (e.g. the disk is full),
        /// with why: only the message above tells what went wrong with them.
        public var unrecorded: [(cell: SweepCell, reason: String)] = []
        /// Devices that failed (their backend's `checkErrors` throws); each stopped
        /// taking cells, which are left for another run or `sweep retry`.
        public var failedDevices: [(device: String, message: String)] = []
    }

    /// Runs the (shard's) cells that are not finished on one backend.
    public func run(
        backend: any Backend, shard: (index: Int, count: Int)? = nil, only: Set<SweepCell>? = nil,
        onEvent: @escaping @Sendable (SweepEvent) -> Void = { _ in }
    ) throws -> Outcome {
        try run(backends: [backend], shard: shard, only: only) { _, e in onEvent(e) }
    }

    /// Runs the (shard's) cells that are not finished, one cell at a time per backend,
    /// the backends concurrently (each on its own thread; with one backend on the
    /// calling thread). `onEvent` gets the index of the backend; with several backends
    /// it is called from their threads, one call at a time.
    public func run(
        backends: [any Backend], shard: (index: Int, count: Int)? = nil, only: Set<SweepCell>? = nil,
        onEvent: @escaping @Sendable (Int, SweepEvent) -> Void = { _, _ in }
    ) throws -> Outcome {
        precondition(!backends.isEmpty)
        try create()
        let todo = cells(shard: shard, only: only)
        try SweepRunner.preflightCellFiles(directory: directory, cells: todo, saveModels: savesModels)
        // The workers take units: one cell each, or with a selection a fold's cells in
        // size order (size k extends size k-1's set), so several workers run folds side by side.
        let units: [[Int]] =
            manifest.selection == nil
            ? SweepRunner.largestFirst(todo).map { [$0] }
            : Dictionary(grouping: todo.indices, by: { todo[$0].fold }).sorted { $0.key < $1.key }.map { $0.value }
        /// What the workers share: the next unit to take and the outcome so far.
        struct Shared { var next = 0; var outcome = Outcome() }
        let shared = Mutex(Shared())
        let events = Mutex(())
        // A backend is not Sendable (it owns a command queue and scratch buffers):
        // worker w is the only thread that ever touches backends[w].
        nonisolated(unsafe) let backends = backends
        @Sendable func emit(_ w: Int, _ e: SweepEvent) { events.withLock { _ in onEvent(w, e) } }
        @Sendable func record(_ f: (inout Outcome) -> Void) { shared.withLock { f(&$0.outcome) } }
        /// Runs todo[i] on worker w; false when the worker must stop (its device failed,
        /// or the sweep folder is gone).
        @Sendable func runOne(_ i: Int, _ w: Int, _ backend: any Backend) -> Bool {
                let cell = todo[i]
                if isFinished(cell) {
                    record { $0.finished.append(cell) }; emit(w, .cellSkipped(cell, reason: "finished")); return true
                }
                if let prev = predecessor(cell), !isFinished(prev) {
                    record { $0.busy.append(cell) }
                    emit(w, .cellSkipped(cell, reason: "waits for \(prev), whose training set it extends"))
                    return true
                }
                let claim = claimURL(cell)
                // A claim of an interrupted run is taken over: the cell is redone.
                let acquired: CellClaim.Acquired
                do { acquired = try CellClaim.acquire(at: claim, staleAfter: staleAfter) } catch {
                    // The claim could not be created at all: the folder was moved between
                    // two cells (this used to count the cell as "running elsewhere" and
                    // exit 0), or cells/ is unwritable. Either way this worker stops.
                    var message = "\(error)"
                    do { try requireInPlace() } catch { message = "\(error)" }
                    record {
                        $0.failed.append((cell, message))
                        $0.unrecorded.append((cell, "no claim could be created"))
                    }
                    emit(w, .cellFailed(cell, message: message))
                    return false
                }
                guard acquired == .taken else {
                    record { $0.busy.append(cell) }; emit(w, .cellSkipped(cell, reason: "running elsewhere")); return true
                }
                // SIGTERM (a cluster's time limit) or Ctrl-C ends the process: the claim goes with it.
                InterruptCleanup.registerFile(claim)
                defer { InterruptCleanup.unregisterFile(claim) }
                if isFinished(cell) {  // finished between our check and the claim
                    try? FileManager.default.removeItem(at: claim)
                    record { $0.finished.append(cell) }; return true
                }
                emit(w, .cellStarted(cell, index: i, of: todo.count))
                let started = Date()
                do {
                    let rec = try runCell(cell, backend: backend, claim: claim) { emit(w, $0) }
                    try? FileManager.default.removeItem(at: errorURL(cell))
                    try? FileManager.default.removeItem(at: claim)
                    record { $0.ran.append(cell) }
                    emit(w, .cellFinished(rec))
                } catch {
                    let message = "\(error)"
                    let failure = CellFailure(
                        fold: cell.fold, size: cell.size, host: CellClaim.currentHost, pid: getpid(),
                        job: CellClaim.currentJob, backend: backend.deviceDescription,
                        started: ISO8601DateFormatter().string(from: started),
                        failed: ISO8601DateFormatter().string(from: Date()), message: message)
                    var unrecorded: String?
                    // A moved sweep folder: write nothing at the old path and take no more cells.
                    if let gone = (try? requireInPlace()) == nil ? message : nil {
                        record {
                            $0.failed.append((cell, gone))
                            $0.unrecorded.append((cell, "the sweep folder is gone"))
                        }
                        emit(w, .cellFailed(cell, message: gone))
                        return false
                    }
                    do { try AtomicFile.writeIntoExistingFolder(failure.encoded(), to: errorURL(cell)) } catch {
                        unrecorded = describeFileError(error)
                    }
                    try? FileManager.default.removeItem(at: claim)
                    record {
                        $0.failed.append((cell, message))
                        if let unrecorded { $0.unrecorded.append((cell, unrecorded)) }
                    }
                    emit(w, .cellFailed(cell, message: message))
                    // A failed device stays failed: give it no more cells.
                    do { try backend.checkErrors() } catch {
                        record { $0.failedDevices.append((backend.deviceDescription, "\(error)")) }
                        return false
                    }
                }
                return true
        }
        @Sendable func worker(_ w: Int) {
            let backend = backends[w]
            while true {
                let u = shared.withLock { s -> Int in
                    defer { s.next += 1 }; return s.next
                }
                guard u < units.count else { return }
                for i in units[u] where !runOne(i, w, backend) { return }
            }
        }
        if backends.count == 1 {
            worker(0)
        } else {
            let group = DispatchGroup()
            for w in backends.indices {
                group.enter()
                let t = Thread {
                    worker(w); group.leave()
                }
                t.stackSize = 8 << 20
                t.start()
            }
            group.wait()
        }
        return shared.withLock { $0.outcome }
    }

    /// Trains and evaluates one cell and writes its record (and model). Only the
    /// cell's training and validation images are materialised; the test images are
    /// copied and predicted `testChunk` at a time.
    @discardableResult
    public func runCell(
        _ cell: SweepCell, backend: any Backend, claim: URL? = nil,
        onEvent: (SweepEvent) -> Void = { _ in }
    ) throws -> SweepRecord {
        try create()
        let start = Date(), cpuStart = ThreadCPUTime.now()
        let p = manifest.protocolSettings
        let plan =
            manifest.selection == nil
            ? try manifest.assignment.plan(fold: cell.fold, size: cell.size, protocol: p, indexOf: indexOf)
            : try selectedPlan(cell, backend: backend)
        let train = try data.images(plan.train)
        let validation = try data.images(plan.validation)
        let dataSeconds = Date().timeIntervalSince(start)
        let dataCPU = ThreadCPUTime.now() - cpuStart
        var config = p.training
        config.seed = cellSeed(cell)
        if let balance = manifest.selection?.classBalance { config.classBalance = balance }
        let net = try Network(spec: manifest.spec, backend: backend, maxBatch: max(config.batchSize, 32))
        let trainStart = Date(), trainCPUStart = ThreadCPUTime.now()
        // With --restarts, a run still at the chance loss after a few epochs is begun
        // again from the next seed; the last attempt always trains to the end.
        let allowed = max(0, p.restarts ?? 0)
        var attempt = 0
        var result: TrainingResult
        var validationSeconds = 0.0, validationCPU = 0.0
        while true {
            config.seed = cellSeed(cell) &+ UInt64(attempt)
            net.initialize(seed: config.seed)
            try initializationHook?(net, attempt)
            let trainer = try Trainer(network: net, config: config)
            if attempt < allowed { trainer.stopAtChance = Collapse.restartCheckEpochs }
            result = try trainer.fit(train: train, validation: validation.count > 0 ? validation : nil) { r in
                if let claim { CellClaim.touch(claim) }
                onEvent(.epoch(cell, r, maxEpochs: config.maxEpochs))
            }
            validationSeconds += result.validationSeconds
            validationCPU += result.validationThreadCPUSeconds
            guard case .stuckAtChance = result.stopReason, attempt < allowed else { break }
            attempt += 1
        }
        let trainingSeconds = Date().timeIntervalSince(trainStart)
        let trainingCPU = ThreadCPUTime.now() - trainCPUStart
        // A diverged cell is a failed cell, never a result: its weights are not the
        // protocol's early-stopped network, so it is not tested or averaged in.
        if result.stopReason.diverged {
            throw CytoError.invalidArgument("training \(result.stopReason); the cell is not recorded (a lower --lr may help)")
        }
        let testStart = Date(), testCPUStart = ThreadCPUTime.now()
        let predictor = Predictor(network: net)
        var probs: [[Float]] = []
        probs.reserveCapacity(plan.test.count)
        var i = 0
        while i < plan.test.count {
            let chunk = Array(plan.test[i..<min(i + max(1, testChunk), plan.test.count)])
            probs += try predictor.probabilities(try data.images(chunk))
            i += chunk.count
        }
        let testSeconds = Date().timeIntervalSince(testStart)
        let testCPU = ThreadCPUTime.now() - testCPUStart
        let testLabels = plan.test.map { data.labels[$0] }
        let report = ClassificationReport(probabilities: probs, labels: testLabels, classNames: manifest.classNames)
        let value = p.metric == "roc_auc" ? (report.rocAUC ?? .nan) : report.f1Weighted
        let ids = data.ids
        var record = SweepRecord(
            fold: cell.fold, size: cell.size, seed: cellSeed(cell), protocolName: p.name, classNames: manifest.classNames,
            trainIDs: plan.train.map { ids[$0] }, validationIDs: plan.validation.map { ids[$0] },
            testIDs: plan.test.map { ids[$0] }, epochsRun: result.history.count, bestEpoch: result.bestEpoch,
            stopReason: "\(result.stopReason)", history: result.history, testLabels: testLabels,
            testProbabilities: probs, metric: p.metric, value: value, rocAUC: report.rocAUC, accuracy: report.accuracy,
            f1Weighted: report.f1Weighted, f1Macro: report.f1Macro, confusion: report.confusion,
            wallSeconds: Date().timeIntervalSince(start), trainingSeconds: trainingSeconds,
            backend: backend.deviceDescription, host: CellClaim.currentHost,
            finished: ISO8601DateFormatter().string(from: Date()))
        record.dataSeconds = dataSeconds
        record.testSeconds = testSeconds
        record.validationSeconds = validationSeconds
        record.sampling = manifest.selection == nil ? plan.sampling : SweepSelection.sampling
        record.trainingClassCounts = plan.classCounts
        record.restarts = attempt > 0 ? attempt : nil
        record.collapse = record.collapseReason
        record.job = CellClaim.currentJob
        record.optimizer = config.optimizer.summary
        record.imagesHash = manifest.imagesHash
        if validation.count > 0 {
            record.calibration = try CellCalibration.measure(
                network: net, validation: validation, testProbabilities: probs, testLabels: testLabels)
        }
        try requireInPlace()
        if savesModels {
            let model = ModelFile(
                spec: manifest.spec, classNames: manifest.classNames, weights: try net.weights(),
                provenance: [
                    "protocol": p.name, "fold": "\(cell.fold)", "size": "\(cell.size)",
                    "seed": "\(config.seed)", "best_epoch": "\(result.bestEpoch)",
                    "augment_sampler": config.augment ? config.resolvedAugmentSampler.rawValue : "none",
                    "optimizer": config.optimizer.summary,
                    "data": data.path,
                ])
            try model.write(to: modelURL(cell))
        }
        // A damaged "record" that is an (empty) folder would block the rename.
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: recordURL(cell).path, isDirectory: &isDir), isDir.boolValue,
            rmdir(recordURL(cell).path) != 0
        {
            throw CytoError.io(path: recordURL(cell).path, reason: "a folder is in the place of the cell's record; remove it")
        }
        try requireInPlace()
        // Everything but the record's own write (the model file, when saved, included).
        record.threadCPUSeconds = CellCPUSeconds(
            total: ThreadCPUTime.now() - cpuStart, data: dataCPU, training: trainingCPU, validation: validationCPU,
            test: testCPU)
        try AtomicFile.writeIntoExistingFolder(record.encoded(), to: recordURL(cell))
        return record
    }
}
