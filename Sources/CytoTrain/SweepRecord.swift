import CytoCore
import CytoData
import Foundation

/// The result of one (fold, training size) cell, written atomically as
/// `cells/fold<F>-size<S>.json` once the cell is finished.
public struct SweepRecord: Sendable, Codable, Equatable {
    public var fold: Int
    public var size: Int
    /// Seed of this cell's initialisation, shuffling and augmentation.
    public var seed: UInt64
    public var protocolName: String
    public var classNames: [String]
    /// Image ids (paths relative to the data root) used for training (with repeats when
    /// balancing), validation and test.
    public var trainIDs: [String]
    public var validationIDs: [String]
    public var testIDs: [String]
    public var epochsRun: Int
    public var bestEpoch: Int
    public var stopReason: String
    public var history: [EpochRecord]
    /// True class of each test image and its predicted probabilities.
    public var testLabels: [Int]
    public var testProbabilities: [[Float]]
    /// `roc_auc` or `f1_weighted`, and its value.
    public var metric: String
    public var value: Double
    public var rocAUC: Double?
    public var accuracy: Double
    public var f1Weighted: Double
    public var f1Macro: Double
    public var confusion: [[Int]]
    public var wallSeconds: Double
    public var trainingSeconds: Double
    public var backend: String
    public var host: String
    public var finished: String
    /// Seconds spent copying the cell's training and validation images out of the data (cache).
    public var dataSeconds: Double? = nil
    /// Seconds spent predicting the test images (streamed in chunks).
    public var testSeconds: Double? = nil
    /// Seconds of validation inside training, when measured separately.
    public var validationSeconds: Double? = nil
    /// `balanced`, or `stratified` when the classes' pools did not allow a balanced set.
    public var sampling: String? = nil
    /// The Slurm job (`JOBID_TASK`) that ran the cell, if any.
    public var job: String? = nil
    /// The optimizer and its formulas (`OptimizerConfig.summary`, e.g. `... form=keras2`);
    /// nil in records written before the form was recorded (those used Keras 3's).
    public var optimizer: String? = nil

    public init(fold: Int, size: Int, seed: UInt64, protocolName: String, classNames: [String], trainIDs: [String],
                validationIDs: [String], testIDs: [String], epochsRun: Int, bestEpoch: Int, stopReason: String,
                history: [EpochRecord], testLabels: [Int], testProbabilities: [[Float]], metric: String, value: Double,
                rocAUC: Double?, accuracy: Double, f1Weighted: Double, f1Macro: Double, confusion: [[Int]],
                wallSeconds: Double, trainingSeconds: Double, backend: String, host: String, finished: String) {
        self.fold = fold; self.size = size; self.seed = seed; self.protocolName = protocolName; self.classNames = classNames
        self.trainIDs = trainIDs; self.validationIDs = validationIDs; self.testIDs = testIDs; self.epochsRun = epochsRun
        self.bestEpoch = bestEpoch; self.stopReason = stopReason; self.history = history; self.testLabels = testLabels
        self.testProbabilities = testProbabilities; self.metric = metric; self.value = value; self.rocAUC = rocAUC
        self.accuracy = accuracy; self.f1Weighted = f1Weighted; self.f1Macro = f1Macro; self.confusion = confusion
        self.wallSeconds = wallSeconds; self.trainingSeconds = trainingSeconds; self.backend = backend; self.host = host
        self.finished = finished
    }

    public var fileName: String { SweepRecord.fileName(fold: fold, size: size) }
    public static func fileName(fold: Int, size: Int) -> String { "fold\(fold)-size\(size).json" }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "NaN")
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "NaN")
        return d
    }()

    public func encoded() throws -> Data { try SweepRecord.encoder.encode(self) }
    public static func decode(_ data: Data) throws -> SweepRecord { try decoder.decode(SweepRecord.self, from: data) }
}

/// `sweep.json`: what a sweep directory was made from. A later run on the same
/// directory must match it, or it is refused.
public struct SweepManifest: Sendable, Codable, Equatable {
    public var formatVersion = 1
    public var protocolSettings: SweepProtocol
    public var dataPath: String
    /// SHA-256 of the sorted "id<TAB>class" lines of the data set.
    public var dataHash: String
    public var imageCount: Int
    public var classNames: [String]
    public var classCounts: [Int]
    public var seed: UInt64
    public var spec: ModelSpec
    public var assignment: FoldAssignment
    public var created: String
    /// Near-duplicate groups of the data and what was done with them (dropped ids, or
    /// groups kept in one fold); nil when not looked for (or made before it existed).
    public var nearDuplicates: NearDuplicateSummary? = nil

    public var folds: Int { protocolSettings.folds }
    public var sizes: [Int] { protocolSettings.sizes }
    /// All cells, fold by fold, sizes ascending within a fold.
    public var cells: [SweepCell] { (0..<folds).flatMap { f in sizes.map { SweepCell(fold: f, size: $0) } } }

    public init(protocolSettings: SweepProtocol, dataPath: String, dataHash: String, imageCount: Int, classNames: [String],
                classCounts: [Int], seed: UInt64, spec: ModelSpec, assignment: FoldAssignment, created: String) {
        self.protocolSettings = protocolSettings; self.dataPath = dataPath; self.dataHash = dataHash
        self.imageCount = imageCount; self.classNames = classNames; self.classCounts = classCounts; self.seed = seed
        self.spec = spec; self.assignment = assignment; self.created = created
    }

    /// SHA-256 over sorted `id\tclass\n` lines.
    public static func hash(ids: [String], labels: [Int], classNames: [String]) -> String {
        var h = SHA256()
        for (id, l) in zip(ids, labels).sorted(by: { $0.0 < $1.0 }) { h.update("\(id)\t\(classNames[l])\n") }
        return SHA256.hex(h.finalize())
    }

    /// Human-readable differences that make `other` a different sweep (empty when compatible).
    public func differences(from other: SweepManifest) -> [String] {
        var d: [String] = []
        func cmp<T: Equatable>(_ what: String, _ a: T, _ b: T, _ show: (T) -> String = { "\($0)" }) {
            if a != b { d.append("\(what): the directory has \(show(a)), this run has \(show(b))") }
        }
        let p = protocolSettings, q = other.protocolSettings
        cmp("protocol", p.name, q.name)
        if dataHash != other.dataHash {
            d.append("data set: the directory was made from \(dataPath) (\(imageCount) images, classes " +
                     "\(zip(classNames, classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(dataHash.prefix(12))), " +
                     "this run has \(other.dataPath) (\(other.imageCount) images, classes " +
                     "\(zip(other.classNames, other.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(other.dataHash.prefix(12)))")
        } else {
            cmp("classes", classNames, other.classNames) { $0.joined(separator: ",") }
        }
        cmp("seed", seed, other.seed)
        cmp("folds", p.folds, q.folds)
        cmp("sizes", p.sizes, q.sizes) { $0.map(String.init).joined(separator: ",") }
        cmp("test images per fold", p.testPerFold, q.testPerFold) { $0.map(String.init) ?? "one fold's block" }
        cmp("validation images per fold", p.valPerFold, q.valPerFold) { $0.map(String.init) ?? "next fold's block" }
        cmp("class balancing", p.balancePerClass, q.balancePerClass)
        cmp("optimizer", p.training.optimizer, q.training.optimizer) { $0.summary }
        cmp("maximum epochs", p.training.maxEpochs, q.training.maxEpochs)
        cmp("patience", p.training.patience, q.training.patience)
        cmp("batch size", p.training.batchSize, q.training.batchSize)
        cmp("augmentation", p.training.augment, q.training.augment)
        if p.training.augment || q.training.augment {
            cmp("augmentation sampler", p.training.resolvedAugmentSampler, q.training.resolvedAugmentSampler) { $0.rawValue }
        }
        cmp("near-duplicate handling", nearDuplicates?.policy, other.nearDuplicates?.policy) { $0?.rawValue ?? "none" }
        cmp("near-duplicate threshold", nearDuplicates?.parameters.threshold, other.nearDuplicates?.parameters.threshold) {
            $0.map { String($0) } ?? "none"
        }
        cmp("model", spec, other.spec) { "\($0.inputWidth)x\($0.inputHeight) conv \($0.convFilters) dense \($0.denseUnits) classes \($0.classes)" }
        if d.isEmpty {
            var theirs = other.assignment
            if assignment.poolCounts == nil { theirs.poolCounts = nil }   // made before pool counts were saved
            cmp("fold assignment", assignment, theirs) { _ in "another" }
        }
        return d
    }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try e.encode(self)
    }
    public static func decode(_ data: Data) throws -> SweepManifest { try JSONDecoder().decode(SweepManifest.self, from: data) }
}

/// A claim on a cell by a running process: `cells/fold<F>-size<S>.claim` with host, pid
/// and start time. Its modification time is refreshed every epoch (heartbeat). A claim
/// whose process is gone (same host, pid not alive) or whose heartbeat is older than
/// `staleAfter` seconds is stale, and its cell is redone.
public struct CellClaim: Sendable, Codable, Equatable {
    public var host: String
    public var pid: Int32
    public var started: String
    /// The Slurm job (`JOBID_TASK`) holding the claim, if any.
    public var job: String? = nil

    public init(host: String, pid: Int32, started: String, job: String? = nil) {
        self.host = host; self.pid = pid; self.started = started; self.job = job
    }

    /// `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID`, or `SLURM_JOB_ID`, when running under Slurm.
    public static var currentJob: String? {
        let env = ProcessInfo.processInfo.environment
        if let a = env["SLURM_ARRAY_JOB_ID"], let t = env["SLURM_ARRAY_TASK_ID"] { return "\(a)_\(t)" }
        return env["SLURM_JOB_ID"]
    }

    /// Reads a claim file (nil when missing or half-written).
    public static func read(_ url: URL) -> CellClaim? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(CellClaim.self, from: data)
    }

    public static func fileName(fold: Int, size: Int) -> String { "fold\(fold)-size\(size).claim" }

    public static var currentHost: String { ProcessInfo.processInfo.hostName }

    public static func mine() -> CellClaim {
        CellClaim(host: currentHost, pid: getpid(), started: ISO8601DateFormatter().string(from: Date()), job: currentJob)
    }

    /// Creates the claim file exclusively; false when it exists already.
    static func create(at url: URL) throws -> Bool {
        let data = try JSONEncoder().encode(mine())
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw CytoError.io(path: url.path, reason: "cannot create the claim file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return true
    }

    /// Whether a claim file belongs to a process that is (probably) still running the cell.
    public static func isLive(at url: URL, staleAfter: TimeInterval) -> Bool {
        guard let data = try? Data(contentsOf: url), let claim = try? JSONDecoder().decode(CellClaim.self, from: data) else {
            // Unreadable (half-written by a process killed at that moment): live only if very fresh.
            let age = modificationAge(url) ?? .infinity
            return age < 5
        }
        if claim.host == currentHost {
            if claim.pid == getpid() { return false }   // our own leftover (not possible while running)
            return kill(claim.pid, 0) == 0 || errno == EPERM
        }
        return (modificationAge(url) ?? .infinity) < staleAfter
    }

    public static func modificationAge(_ url: URL) -> TimeInterval? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: url.path),
              let date = attrs[.modificationDate] as? Date else { return nil }
        return Date().timeIntervalSince(date)
    }

    /// Refreshes the modification time (heartbeat).
    static func touch(_ url: URL) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: url.path)
    }
}

/// A cell that threw: `cells/fold<F>-size<S>.error.json`, removed when the cell later succeeds.
public struct CellFailure: Sendable, Codable, Equatable {
    public var fold: Int
    public var size: Int
    public var host: String
    public var pid: Int32
    public var job: String?
    public var backend: String
    public var started: String
    public var failed: String
    public var message: String

    public static func fileName(fold: Int, size: Int) -> String { "fold\(fold)-size\(size).error.json" }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try e.encode(self)
    }
    public static func read(_ url: URL) -> CellFailure? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(CellFailure.self, from: data)
    }
}

/// Reads the records of a sweep directory (finished cells only), sorted by size then fold.
public func loadSweepRecords(_ dir: URL) throws -> [SweepRecord] {
    let cells = dir.appendingPathComponent("cells")
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: cells.path) else { return [] }
    var out: [SweepRecord] = []
    for n in names where n.hasPrefix("fold") && n.hasSuffix(".json") && !n.hasSuffix(".error.json") {
        let url = cells.appendingPathComponent(n)
        do { out.append(try SweepRecord.decode(Data(contentsOf: url))) } catch {
            throw CytoError.io(path: url.path, reason: "not a readable sweep record: \(error)")
        }
    }
    return out.sorted { ($0.size, $0.fold) < ($1.size, $1.fold) }
}

/// Reads `sweep.json`.
public func loadSweepManifest(_ dir: URL) throws -> SweepManifest {
    let url = dir.appendingPathComponent("sweep.json")
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw CytoError.io(path: url.path, reason: "no sweep.json: \(dir.path) is not a sweep directory (made by `cytocl sweep`)")
    }
    do { return try SweepManifest.decode(Data(contentsOf: url)) } catch {
        throw CytoError.io(path: url.path, reason: "cannot read the sweep manifest: \(error)")
    }
}
