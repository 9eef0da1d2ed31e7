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
    /// `balanced`; `filled` when a class's pool could not give its half (it gave all it
    /// has, the other class filled the rest); `capped` when the size was larger than the
    /// fold's training pool (the whole pool was used). `stratified` in records written
    /// before filling replaced proportional draws.
    public var sampling: String? = nil
    /// Training images per class (entries of `trainIDs`, repeats counted), in
    /// `classNames` order. nil in records written before it was recorded: then
    /// `classCounts(manifest:)` derives it from the ids and the sweep's fold assignment.
    public var trainingClassCounts: [Int]? = nil
    /// Why the network never learned (`Collapse.reason`), or nil. The report recomputes
    /// it from every record (older records without the field included); a record that
    /// claims a collapse its outputs and losses do not show is refused.
    public var collapse: String? = nil
    /// Times the cell was re-initialised with the next seed (`sweep --restarts`): the
    /// network that was tested was initialised with `seed + restarts`. nil: none.
    public var restarts: Int? = nil

    /// Whether this run learned nothing (recomputed from its history and test outputs).
    public var collapseReason: String? {
        Collapse.reason(history: history, probabilities: testProbabilities, classes: classNames.count)
    }
    /// The Slurm job (`JOBID_TASK`) that ran the cell, if any.
    public var job: String? = nil
    /// The optimizer and its formulas (`OptimizerConfig.summary`, e.g. `... form=keras2`);
    /// nil in records written before the form was recorded (those used Keras 3's).
    public var optimizer: String? = nil
    /// The sweep's `imagesHash` when the cell ran (ids, classes and decoded pixels of
    /// the data set): a record trained on other images is not counted. nil in records
    /// written before it was recorded.
    public var imagesHash: String? = nil
    /// Temperature scaling fitted on the cell's validation images, with the ECE before and
    /// after (`CellCalibration`); nil without validation images and in older records.
    public var calibration: CellCalibration? = nil

    public init(
        fold: Int, size: Int, seed: UInt64, protocolName: String, classNames: [String], trainIDs: [String],
        validationIDs: [String], testIDs: [String], epochsRun: Int, bestEpoch: Int, stopReason: String,
        history: [EpochRecord], testLabels: [Int], testProbabilities: [[Float]], metric: String, value: Double,
        rocAUC: Double?, accuracy: Double, f1Weighted: Double, f1Macro: Double, confusion: [[Int]],
        wallSeconds: Double, trainingSeconds: Double, backend: String, host: String, finished: String
    ) {
        self.fold = fold; self.size = size; self.seed = seed; self.protocolName = protocolName; self.classNames = classNames
        self.trainIDs = trainIDs; self.validationIDs = validationIDs; self.testIDs = testIDs; self.epochsRun = epochsRun
        self.bestEpoch = bestEpoch; self.stopReason = stopReason; self.history = history; self.testLabels = testLabels
        self.testProbabilities = testProbabilities; self.metric = metric; self.value = value; self.rocAUC = rocAUC
        self.accuracy = accuracy; self.f1Weighted = f1Weighted; self.f1Macro = f1Macro; self.confusion = confusion
        self.wallSeconds = wallSeconds; self.trainingSeconds = trainingSeconds; self.backend = backend; self.host = host
        self.finished = finished
    }

    public var fileName: String { SweepRecord.fileName(fold: fold, size: size) }

    /// Training images per class: the stored counts, or for older records the classes of
    /// `trainIDs` in the sweep's fold assignment (nil when neither is available).
    public func classCounts(manifest: SweepManifest?) -> [Int]? {
        if let c = trainingClassCounts { return c }
        return manifest.flatMap { derivedClassCounts($0) }
    }

    /// The classes of `trainIDs` counted from fold `fold`'s training pool in the sweep's
    /// fold assignment (nil when an id is not in it).
    func derivedClassCounts(_ m: SweepManifest) -> [Int]? {
        let a = m.assignment
        guard fold < a.trainingOrder.count else { return nil }
        var classOf: [String: Int] = [:]
        for (c, ids) in a.trainingOrder[fold].enumerated() { for id in ids { classOf[id] = c } }
        var counts = [Int](repeating: 0, count: a.classNames.count)
        for id in trainIDs {
            guard let c = classOf[id], c < counts.count else { return nil }
            counts[c] += 1
        }
        return counts
    }
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
    /// SHA-256 over the sorted `id\tclass\tpixel checksum` lines of the data set: unlike
    /// `dataHash` it changes when an image's pixels change under the same file name.
    /// nil in sweeps made before it was recorded (those are refused on resume: their
    /// images cannot be checked).
    public var imagesHash: String? = nil

    public var folds: Int { protocolSettings.folds }
    public var sizes: [Int] { protocolSettings.sizes }
    /// All cells, fold by fold, sizes ascending within a fold.
    public var cells: [SweepCell] { (0..<folds).flatMap { f in sizes.map { SweepCell(fold: f, size: $0) } } }

    public init(
        protocolSettings: SweepProtocol, dataPath: String, dataHash: String, imageCount: Int, classNames: [String],
        classCounts: [Int], seed: UInt64, spec: ModelSpec, assignment: FoldAssignment, created: String
    ) {
        self.protocolSettings = protocolSettings; self.dataPath = dataPath; self.dataHash = dataHash
        self.imageCount = imageCount; self.classNames = classNames; self.classCounts = classCounts; self.seed = seed
        self.spec = spec; self.assignment = assignment; self.created = created
    }

    /// The seed of one cell, derived from the sweep seed (what the cell's record holds).
    public func cellSeed(_ c: SweepCell) -> UInt64 {
        var g = SeededGenerator.stream(seed: seed, "cell-\(c.fold)-\(c.size)")
        return g.next() >> 1
    }

    /// SHA-256 over sorted `id\tclass\n` lines.
    public static func hash(ids: [String], labels: [Int], classNames: [String]) -> String {
        var h = SHA256()
        for (id, l) in zip(ids, labels).sorted(by: { $0.0 < $1.0 }) { h.update("\(id)\t\(classNames[l])\n") }
        return SHA256.hex(h.finalize())
    }

    /// SHA-256 over sorted `id\tclass\tchecksum\n` lines, the checksum being the image
    /// cache's 64-bit checksum of each image's decoded pixels.
    public static func imagesHash(ids: [String], labels: [Int], classNames: [String], checksums: [UInt64]) -> String {
        precondition(ids.count == labels.count && ids.count == checksums.count)
        var h = SHA256()
        for i in ids.indices.sorted(by: { ids[$0] < ids[$1] }) {
            let sum = String(checksums[i], radix: 16)
            h.update("\(ids[i])\t\(classNames[labels[i]])\t\(String(repeating: "0", count: 16 - sum.count))\(sum)\n")
        }
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
            d.append(
                "data set: the directory was made from \(dataPath) (\(imageCount) images, classes "
                    + "\(zip(classNames, classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(dataHash.prefix(12))), "
                    + "this run has \(other.dataPath) (\(other.imageCount) images, classes "
                    + "\(zip(other.classNames, other.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(other.dataHash.prefix(12)))"
            )
        } else {
            cmp("classes", classNames, other.classNames) { $0.joined(separator: ",") }
            if imagesHash == nil, other.imagesHash != nil {
                d.append(
                    "data set: the directory was made by an older cytocl that did not record the images' contents, "
                        + "so this run cannot check that \(other.dataPath) holds the same images; start a new --out directory")
            } else if imagesHash != other.imagesHash {
                d.append(
                    "data set: the same \(imageCount) file names and classes, but other image contents (the directory's images hash "
                        + "\(imagesHash.map { String($0.prefix(12)) } ?? "none"), \(other.dataPath)'s \(other.imagesHash.map { String($0.prefix(12)) } ?? "none"))"
                        + ": the pixels of some images changed since the sweep started")
            }
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
        cmp("restarts of cells at chance", p.restarts ?? 0, q.restarts ?? 0)
        if p.training.augment || q.training.augment {
            cmp("augmentation sampler", p.training.resolvedAugmentSampler, q.training.resolvedAugmentSampler) { $0.rawValue }
        }
        cmp("near-duplicate handling", nearDuplicates?.policy, other.nearDuplicates?.policy) { $0?.rawValue ?? "none" }
        cmp("near-duplicate threshold", nearDuplicates?.parameters.threshold, other.nearDuplicates?.parameters.threshold) {
            $0.map { String($0) } ?? "none"
        }
        cmp("model", spec, other.spec) {
            "\($0.inputWidth)x\($0.inputHeight) conv \($0.convFilters) dense \($0.denseUnits) classes \($0.classes)"
        }
        if d.isEmpty {
            var theirs = other.assignment
            if assignment.poolCounts == nil { theirs.poolCounts = nil }  // made before pool counts were saved
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
/// `staleAfter` seconds is stale, and its cell is redone. The same claim locks a
/// `train` run folder for the run's duration (`acquire`, `release`).
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

    /// What `acquire` found: the claim is now this process's, or a live process holds
    /// it (nil when its file cannot be read, e.g. written that very moment).
    public enum Acquired: Sendable, Equatable {
        case taken
        case heldBy(CellClaim?)
    }

    /// Takes the claim at `url` for this process: creates it exclusively, or, when the
    /// process holding it is gone (`isLive`), removes it and creates it again. Throws
    /// when the file cannot be created for another reason than existing.
    public static func acquire(at url: URL, staleAfter: TimeInterval) throws -> Acquired {
        if try create(at: url) { return .taken }
        if isLive(at: url, staleAfter: staleAfter) { return .heldBy(read(url)) }
        try? FileManager.default.removeItem(at: url)  // an interrupted run's: take it over
        if try create(at: url) { return .taken }
        return .heldBy(read(url))
    }

    /// Removes the claim at `url` if it is still this process's (never one taken over
    /// by another process meanwhile).
    public static func release(at url: URL) {
        guard let c = read(url), c.host == currentHost, c.pid == getpid() else { return }
        try? FileManager.default.removeItem(at: url)
    }

    /// Whether a claim file belongs to a process that is (probably) still running the cell.
    public static func isLive(at url: URL, staleAfter: TimeInterval) -> Bool {
        guard let data = try? Data(contentsOf: url), let claim = try? JSONDecoder().decode(CellClaim.self, from: data) else {
            // Unreadable (half-written by a process killed at that moment): live only if very fresh.
            let age = modificationAge(url) ?? .infinity
            return age < 5
        }
        if claim.host == currentHost {
            if claim.pid == getpid() { return false }  // our own leftover (not possible while running)
            return kill(claim.pid, 0) == 0 || errno == EPERM
        }
        return (modificationAge(url) ?? .infinity) < staleAfter
    }

    public static func modificationAge(_ url: URL) -> TimeInterval? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: url.path),
            let date = attrs[.modificationDate] as? Date
        else { return nil }
        return Date().timeIntervalSince(date)
    }

    /// Refreshes the modification time (heartbeat).
    public static func touch(_ url: URL) {
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

/// A cell file that was read but cannot be counted: damaged (`corrupt`) or from a
/// training run whose loss stopped being finite (`diverged`, shown as failed).
public struct RejectedRecord: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case corrupt, diverged }
    public var url: URL
    public var cell: SweepCell?
    public var kind: Kind
    public var reason: String
    public var description: String { "\(url.path): \(kind == .corrupt ? "corrupt sweep record" : "training diverged"): \(reason)" }
}

/// The outcome of reading one cell file.
public enum RecordCheck: Sendable {
    case valid(SweepRecord)
    case rejected(RejectedRecord)
}

extension SweepRecord {
    /// `fold<F>-size<S>.json` -> (F, S), or nil for other names. Only the exact name
    /// `fileName(fold:size:)` writes counts: `fold01-size8.json`, `fold+0-size4.json`
    /// or `fold0-size004.json` would otherwise be a second copy of a cell, counted twice.
    public static func cell(fromFileName name: String) -> SweepCell? {
        guard name.hasPrefix("fold"), name.hasSuffix(".json"), !name.hasSuffix(".error.json") else { return nil }
        let core = name.dropFirst(4).dropLast(5)
        let parts = core.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("size"), let f = Int(parts[0]), let s = Int(parts[1].dropFirst(4)),
            f >= 0, s > 0, fileName(fold: f, size: s) == name
        else { return nil }
        return SweepCell(fold: f, size: s)
    }

    /// Whether `name` looks like a record file (`fold*.json`, not an error file) but is
    /// not the canonical name of any cell: such a file is a copy or an edit, never a
    /// record the sweep wrote, and is refused rather than silently skipped or counted.
    public static func isNonCanonicalRecordName(_ name: String) -> Bool {
        name.hasPrefix("fold") && name.hasSuffix(".json") && !name.hasSuffix(".error.json") && cell(fromFileName: name) == nil
    }

    /// Reads and validates the cell file at `url` (expected to hold `cell` of the sweep
    /// described by `manifest`, when given). Never throws: an unreadable, truncated,
    /// garbage or inconsistent file is `.rejected(.corrupt)`, a record of a run whose
    /// loss was not finite `.rejected(.diverged)`, so a damaged file is neither counted
    /// as done nor averaged into a report.
    public static func check(_ url: URL, cell expected: SweepCell?, manifest: SweepManifest? = nil) -> RecordCheck {
        func reject(_ kind: RejectedRecord.Kind, _ reason: String) -> RecordCheck {
            .rejected(RejectedRecord(url: url, cell: expected, kind: kind, reason: reason))
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            return reject(.corrupt, "a folder is in the place of the record file")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { return reject(.corrupt, "cannot read it (\(describeFileError(error)))") }
        if data.isEmpty { return reject(.corrupt, "the file is empty") }
        let record: SweepRecord
        do { record = try decode(data) } catch {
            // Valid JSON missing a field (or holding one of the wrong type) names the field.
            if let field = describeDecodingProblem(error) { return reject(.corrupt, "\(field) (\(data.count) bytes)") }
            let head = data.prefix(1) == Data("{".utf8) ? "truncated or malformed JSON" : "not a JSON sweep record"
            return reject(.corrupt, "\(head) (\(data.count) bytes)")
        }
        if let c = expected, c.fold != record.fold || c.size != record.size {
            return reject(
                .corrupt, "it holds fold \(record.fold) size \(record.size), but its file name says fold \(c.fold) size \(c.size)")
        }
        // Divergence first: a diverged run's record may also hold NaN metrics, and it
        // should read as a failed training, not as a damaged file.
        if let d = record.divergence { return reject(.diverged, d) }
        if let problem = record.inconsistency(expected: expected, manifest: manifest) { return reject(.corrupt, problem) }
        return .valid(record)
    }

    /// Why this record's training cannot be trusted (a non-finite loss), or nil.
    public var divergence: String? {
        for e in history {
            if !e.loss.isFinite { return "training loss \(e.loss) at epoch \(e.epoch)" }
            if let v = e.validationLoss, !v.isFinite { return "validation loss \(v) at epoch \(e.epoch)" }
        }
        if stopReason.contains("not finite") { return stopReason }
        return nil
    }

    /// Whether a stored metric equals the one recomputed from the stored probabilities,
    /// up to a relative 1e-6 (the record holds JSON doubles; the sums may differ in the
    /// last bits between the writer's and the reader's order of operations).
    static func agree(_ stored: Double, _ derived: Double) -> Bool {
        if stored.isNaN || derived.isNaN { return stored.isNaN && derived.isNaN }
        return abs(stored - derived) <= 1e-6 * max(abs(stored), abs(derived), 1e-12)
    }

    /// The first way this record contradicts itself, its file name or its sweep, or nil.
    public func inconsistency(expected: SweepCell?, manifest: SweepManifest?) -> String? {
        if let c = expected, c.fold != fold || c.size != size {
            return "it holds fold \(fold) size \(size), but its file name says fold \(c.fold) size \(c.size)"
        }
        if fold < 0 || size <= 0 { return "fold \(fold) size \(size) is not a cell" }
        func unit(_ name: String, _ v: Double) -> String? {
            v.isFinite ? (v >= 0 && v <= 1 ? nil : "\(name) \(v) is outside [0, 1]") : "\(name) is \(v)"
        }
        if let p = unit(metric, value) ?? rocAUC.flatMap({ unit("roc_auc", $0) }) ?? unit("accuracy", accuracy)
            ?? unit("f1_weighted", f1Weighted) ?? unit("f1_macro", f1Macro)
        {
            return p
        }
        if metric == "roc_auc", let a = rocAUC, a != value { return "value \(value) differs from its roc_auc \(a)" }
        if metric == "f1_weighted", f1Weighted != value { return "value \(value) differs from its f1_weighted \(f1Weighted)" }
        let k = classNames.count
        if k < 2 { return "\(k) class names" }
        if testLabels.count != testIDs.count || testProbabilities.count != testIDs.count {
            return "\(testIDs.count) test images but \(testLabels.count) labels and \(testProbabilities.count) probability rows"
        }
        if testIDs.isEmpty { return "no test images" }
        if let l = testLabels.first(where: { $0 < 0 || $0 >= k }) { return "test label \(l) is not one of \(k) classes" }
        for (i, row) in testProbabilities.enumerated() {
            if row.count != k { return "a probability row has \(row.count) values for \(k) classes" }
            if row.contains(where: { !$0.isFinite || $0 < 0 || $0 > 1 }) { return "a test probability is not in [0, 1]" }
            // Softmax outputs: a row that does not sum to 1 was not written by a network.
            let sum = row.reduce(0.0) { $0 + Double($1) }
            if abs(sum - 1) > 1e-4 {
                return "the probabilities of test image \(i) (\(testIDs[i])) sum to \(String(format: "%.6g", sum)), not 1"
            }
        }
        let times: [(String, Double?)] = [
            ("wallSeconds", wallSeconds), ("trainingSeconds", trainingSeconds), ("dataSeconds", dataSeconds),
            ("testSeconds", testSeconds), ("validationSeconds", validationSeconds),
        ]
        for case (let name, let t?) in times where !(t.isFinite && t >= 0) { return "\(name) \(t) is not a duration" }
        if confusion.count != k || confusion.contains(where: { $0.count != k || $0.contains { $0 < 0 } })
            || confusion.joined().reduce(0, +) != testIDs.count
        {
            return "the confusion matrix does not fit \(k) classes and \(testIDs.count) test images"
        }
        // The confusion matrix and accuracy must be the ones its own test probabilities
        // give: test labels edited (or written by a broken run) under the stored metrics
        // would otherwise be counted as done and averaged into the report.
        // ROC-AUC and F1 too: a hand-edited `rocAUC` of 0.99 over probabilities that
        // give 0.5 would otherwise be averaged into the summary.
        let derived = ClassificationReport(probabilities: testProbabilities, labels: testLabels, classNames: classNames)
        if derived.confusion != confusion { return "its confusion matrix is not the one its test probabilities and labels give" }
        let stored: [(String, Double?, Double?)] = [
            ("accuracy", accuracy, derived.accuracy), ("roc_auc", rocAUC, derived.rocAUC),
            ("f1_weighted", f1Weighted, derived.f1Weighted), ("f1_macro", f1Macro, derived.f1Macro),
        ]
        for (name, s, d) in stored {
            switch (s, d) {
            case (nil, nil): continue
            case (let s?, nil): return "\(name) \(s) is stored, but \(k) classes have no \(name)"
            case (nil, let d?): return "\(name) is missing; its test probabilities give \(d)"
            case (let s?, let d?):
                if !Self.agree(s, d) { return "\(name) \(s) is not the \(d) its test probabilities and labels give" }
            }
        }
        if trainIDs.isEmpty { return "no training images" }
        if let c = calibration,
            let p = c.inconsistency(testProbabilities: testProbabilities, testLabels: testLabels, validationCount: validationIDs.count)
        {
            return p
        }
        if collapse != nil, collapseReason == nil {
            return "it is marked collapsed, but its test outputs differ and its training loss left the chance loss"
        }
        if let n = restarts, n < 0 || n > (manifest?.protocolSettings.restarts ?? n) {
            return "\(n) restarts, the sweep allows \(manifest?.protocolSettings.restarts ?? 0)"
        }
        if let s = sampling, !["balanced", "filled", "capped", "stratified"].contains(s) {
            return "sampling '\(s)' is not one the sweep writes"
        }
        if let shared = Set(trainIDs).intersection(testIDs).sorted().first {
            return "image \(shared) is in both its training and its test set"
        }
        if epochsRun != history.count || bestEpoch < 0 || bestEpoch > max(1, epochsRun) {
            return "epochs run \(epochsRun), best epoch \(bestEpoch) and \(history.count) history rows disagree"
        }
        if let m = manifest {
            if classNames != m.classNames { return "classes \(classNames) differ from the sweep's \(m.classNames)" }
            if metric != m.protocolSettings.metric { return "metric \(metric) differs from the sweep's \(m.protocolSettings.metric)" }
            if fold >= m.folds || !m.sizes.contains(size) { return "fold \(fold) size \(size) is not a cell of this sweep" }
            if protocolName != m.protocolSettings.name {
                return "protocol \(protocolName) differs from the sweep's \(m.protocolSettings.name)"
            }
            if let problem = imagesInconsistency(m) { return problem }
            let cellSeed = m.cellSeed(SweepCell(fold: fold, size: size))
            if seed != cellSeed { return "seed \(seed) is not the \(cellSeed) the sweep's seed \(m.seed) gives fold \(fold) size \(size)" }
            if let h = m.imagesHash, imagesHash != h {
                return "it was trained on other images (data hash \(imagesHash.map { String($0.prefix(12)) } ?? "not recorded"), "
                    + "the sweep's is \(h.prefix(12)))"
            }
        }
        if let c = trainingClassCounts {
            if c.count != k || c.contains(where: { $0 < 0 }) || c.reduce(0, +) != trainIDs.count {
                return "its training class counts \(c) do not fit \(k) classes and \(trainIDs.count) training images"
            }
        }
        return nil
    }

    /// How the record's image ids contradict fold `fold` of the sweep's stored split, or
    /// nil: the test set must be exactly the fold's, the validation set too, and the
    /// training set as many of the fold's training pool as the size draws (a record
    /// copied from another fold, or edited, would otherwise be averaged in).
    func imagesInconsistency(_ m: SweepManifest) -> String? {
        let a = m.assignment
        guard fold < a.test.count, fold < a.validation.count, fold < a.trainingOrder.count else {
            return "the sweep's fold assignment has no fold \(fold)"
        }
        let test = a.test[fold]
        if testIDs.count != test.count || Set(testIDs) != Set(test) {
            let extra = Set(testIDs).subtracting(test).sorted().first
            return "its \(testIDs.count) test images are not fold \(fold)'s \(test.count)"
                + (extra.map { " (\($0) is not in that fold's test set)" } ?? "")
        }
        let validation = a.validation[fold]
        if validationIDs.count != validation.count || Set(validationIDs) != Set(validation) {
            return "its \(validationIDs.count) validation images are not fold \(fold)'s \(validation.count)"
        }
        let pool = Set(a.trainingOrder[fold].joined())
        if let stranger = trainIDs.first(where: { !pool.contains($0) }) {
            return "training image \(stranger) is not in fold \(fold)'s training pool"
        }
        guard let expected = try? a.trainingIDs(fold: fold, size: size, protocol: m.protocolSettings) else {
            return "the sweep's fold assignment cannot draw size \(size) for fold \(fold)"
        }
        if trainIDs.count != expected.count {
            return "it has \(trainIDs.count) training images, size \(size) of fold \(fold) draws \(expected.count)"
        }
        if let stored = trainingClassCounts, let derived = derivedClassCounts(m), stored != derived {
            return "its training class counts \(stored) are not the \(derived) its training images have in fold \(fold)"
        }
        return nil
    }
}

/// The cell files of a sweep directory, validated: records to count, and the files
/// left out with the reason (named by `report` and `sweep status`).
public struct SweepRecords: Sendable {
    /// Valid records, sorted by size then fold.
    public var records: [SweepRecord]
    public var rejected: [RejectedRecord]
}

/// Reads and validates every `cells/fold<F>-size<S>.json` of a sweep directory.
public func scanSweepRecords(_ dir: URL, manifest: SweepManifest? = nil) throws -> SweepRecords {
    let cells = dir.appendingPathComponent("cells")
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: cells.path, isDirectory: &isDir) else { return SweepRecords(records: [], rejected: []) }
    let names: [String]
    do { names = try FileManager.default.contentsOfDirectory(atPath: cells.path) } catch {
        throw CytoError.io(path: cells.path, reason: "cannot list the sweep's cells folder (\(describeFileError(error)))")
    }
    try refuseNonCanonicalRecords(cells, names: names)
    var out = SweepRecords(records: [], rejected: [])
    var seen: [SweepCell: String] = [:]
    for n in names.sorted() {
        guard let cell = SweepRecord.cell(fromFileName: n) else { continue }
        // Unreachable while names are canonical (one name per cell), kept so that a
        // future second spelling can never count a cell twice.
        if let first = seen[cell] {
            throw CytoError.io(
                path: cells.appendingPathComponent(n).path,
                reason: "a second record of \(cell) (the first is \(first)); remove the copy")
        }
        seen[cell] = n
        switch SweepRecord.check(cells.appendingPathComponent(n), cell: cell, manifest: manifest) {
        case .valid(let r): out.records.append(r)
        case .rejected(let r): out.rejected.append(r)
        }
    }
    out.records.sort { ($0.size, $0.fold) < ($1.size, $1.fold) }
    return out
}

/// Throws, naming the first such file, when the cells folder holds a `fold*.json` file
/// that is not the canonical record name of a cell (`fold01-size8.json`,
/// `fold+0-size4.json`, a copy): it is a copy or an edit of a record, and a report or
/// status that skipped it silently could hide a second result for one cell.
public func refuseNonCanonicalRecords(_ cells: URL, names: [String]) throws {
    guard let n = names.sorted().first(where: SweepRecord.isNonCanonicalRecordName) else { return }
    throw CytoError.io(
        path: cells.appendingPathComponent(n).path,
        reason: "not a record name the sweep writes (fold<F>-size<N>.json, no padding or sign): a copy of a cell's record? "
            + "Move it out of the cells folder")
}

/// The valid records of a sweep directory (finished cells only), sorted by size then
/// fold; damaged and diverged cell files are left out (see `scanSweepRecords`).
public func loadSweepRecords(_ dir: URL) throws -> [SweepRecord] {
    try scanSweepRecords(dir, manifest: try? loadSweepManifest(dir)).records
}

/// Reads `sweep.json`.
public func loadSweepManifest(_ dir: URL) throws -> SweepManifest {
    let url = dir.appendingPathComponent("sweep.json")
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw CytoError.io(path: url.path, reason: "no sweep.json: \(dir.path) is not a sweep directory (made by `cytocl sweep`)")
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw CytoError.io(path: url.path, reason: "cannot read the sweep manifest (\(describeFileError(error)))")
    }
    do { return try SweepManifest.decode(data) } catch {
        throw CytoError.io(
            path: url.path, reason: "damaged sweep manifest: \(data.isEmpty ? "the file is empty" : "not a valid sweep.json")")
    }
}

/// What a `DecodingError` says about a field, in words (`the field 'metrics.accuracy' is
/// missing`), or nil when the text itself is not JSON (then the caller says so).
func describeDecodingProblem(_ error: Error) -> String? {
    guard let e = error as? DecodingError else { return nil }
    func path(_ keys: [CodingKey], _ last: CodingKey? = nil) -> String {
        let all = keys + (last.map { [$0] } ?? [])
        return all.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }
    switch e {
    case .keyNotFound(let key, let c): return "the field '\(path(c.codingPath, key))' is missing"
    case .valueNotFound(_, let c): return "the field '\(path(c.codingPath))' is null"
    case .typeMismatch(let t, let c): return "the field '\(path(c.codingPath))' is not \(t == String.self ? "a string" : "a \(t)")"
    case .dataCorrupted(let c) where !c.codingPath.isEmpty: return "the field '\(path(c.codingPath))' holds an invalid value"
    default: return nil
    }
}
