import CytoCore
import CytoData
import CytoTrain
import Foundation

/// The result of one (fold, training size) cell, written atomically as
/// `cells/fold<F>-size<S>.json` (`SweepLayout`) once the cell is finished.
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
    /// CPU seconds of the worker thread that ran the cell, by phase; nil in older records.
    public var threadCPUSeconds: CellCPUSeconds? = nil
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

    public var fileName: String { SweepLayout.fileName(SweepCell(fold: fold, size: size), .record) }

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

/// CPU seconds of the thread that ran a cell (`ThreadCPUTime`), by phase. With the CPU
/// backend at one thread per cell (the default) a cell computes entirely on that
/// thread, so these are the cell's own cost, unlike the wall-clock seconds, which on a
/// shared machine include the time other processes held the core. With a backend of
/// several threads, or a GPU, they count only the worker thread's share.
public struct CellCPUSeconds: Sendable, Codable, Equatable {
    /// The whole cell: reading its images, training, testing, calibration, writing.
    public var total: Double
    /// Copying the training and validation images out of the data (cache).
    public var data: Double
    /// Training including the per-epoch validation passes.
    public var training: Double
    /// The per-epoch validation passes alone.
    public var validation: Double
    /// Predicting the test images.
    public var test: Double

    public init(total: Double, data: Double, training: Double, validation: Double, test: Double) {
        self.total = total; self.data = data; self.training = training; self.validation = validation; self.test = test
    }

    var fields: [(String, Double)] {
        [("total", total), ("data", data), ("training", training), ("validation", validation), ("test", test)]
    }
}
