import CytoCore
import CytoData
import CytoTrain
import Foundation

/// A cross-validation protocol: how folds, validation and training sets are drawn,
/// which training-set sizes are swept, how the network is trained, and which metric is
/// reported. The paper's three protocols are `allIDBBinary`, `amlBinary` and
/// `multiclass`; `custom` starts from neutral defaults for any data set.
///
/// Size semantics: for binary protocols a size is the total number of training images,
/// split evenly over the two classes (nested: each set contains the smaller ones). For
/// `multiclass` (`balancePerClass == true`) a size is the number of training images
/// *per class*: classes with fewer images are repeated (with augmentation on, every
/// repeat is a different random transform) and classes with more are subsampled.
public struct SweepProtocol: Sendable, Codable, Equatable {
    public var name: String
    /// Number of cross-validation folds.
    public var folds: Int
    /// Training-set sizes swept, ascending.
    public var sizes: [Int]
    /// nil: every image is in exactly one fold's test block (K-fold partition).
    /// A number: each fold gets a balanced test set of this many images, and each image
    /// is in at most one fold's test set.
    public var testPerFold: Int?
    /// nil: validation is the whole next fold's test block. A number: a balanced subset
    /// of that size drawn from the next fold's test block (always disjoint from the test set).
    public var valPerFold: Int?
    /// Sizes count images per class, and classes are balanced by repetition (multiclass).
    public var balancePerClass: Bool
    /// Training settings (optimizer, epochs, patience, batch, augmentation). The seed is
    /// replaced per cell.
    public var training: TrainingConfig
    /// `roc_auc` (two classes) or `f1_weighted`.
    public var metric: String
    /// Data-set options the protocol implies: classes counted as positive (binary AML).
    public var positiveClasses: [String]?
    /// Classes with fewer images are dropped (multiclass: 5).
    public var minPerClass: Int?
    /// Default model input (height = width).
    public var inputSize: Int
    /// When `--sizes` contained `all`: the concrete size it was resolved to (every
    /// training image the smallest fold's pool holds). nil otherwise.
    public var allTrainingSize: Int?
    /// Remarks shown in the report (departures from the original scripts).
    public var notes: [String]
    /// `--restarts N`: a cell whose training loss is still at chance after
    /// `Collapse.restartCheckEpochs` epochs is re-initialised with the next seed, at
    /// most N times (the last attempt trains to the end whatever happens). nil or 0:
    /// off, as in the paper.
    public var restarts: Int? = nil

    public init(
        name: String, folds: Int, sizes: [Int], testPerFold: Int? = nil, valPerFold: Int? = nil,
        balancePerClass: Bool = false, training: TrainingConfig = TrainingConfig(), metric: String = "roc_auc",
        positiveClasses: [String]? = nil, minPerClass: Int? = nil, inputSize: Int = 257, notes: [String] = []
    ) {
        self.name = name; self.folds = folds; self.sizes = sizes; self.testPerFold = testPerFold
        self.valPerFold = valPerFold; self.balancePerClass = balancePerClass; self.training = training
        self.metric = metric; self.positiveClasses = positiveClasses; self.minPerClass = minPerClass
        self.inputSize = inputSize; self.notes = notes
    }

    /// The sizes without the unresolved `all`.
    public var concreteSizes: [Int] { sizes.filter { $0 > 0 } }

    /// `--sizes all` before it is resolved against the data (`Folds.resolvingAll`).
    public static let allSize = -1
    /// Bounds that keep a sweep's bookkeeping small: cells = folds x sizes.
    public static let maxSizes = 10_000
    public static let maxFolds = 1_000

    public static let names = ["all-idb-binary", "aml-binary", "multiclass", "custom"]

    /// The named protocol with the paper's settings.
    public static func named(_ name: String) throws -> SweepProtocol {
        switch name {
        case "all-idb-binary": return allIDBBinary
        case "aml-binary": return amlBinary
        case "multiclass": return multiclass
        case "custom": return custom
        default:
            throw CytoError.invalidArgument("unknown protocol '\(name)': use \(names.joined(separator: ", "))")
        }
    }

    /// ALL-IDB2 blast vs other: tenfold CV, 25 test images per fold, validation = the next
    /// fold's test block, nested balanced training sets 10...200, augmentation on,
    /// RMSprop 0.001, patience 50, at most 500 epochs.
    public static var allIDBBinary: SweepProtocol {
        var t = TrainingConfig()
        t.optimizer = .paperBinary; t.augment = true
        return SweepProtocol(
            name: "all-idb-binary", folds: 10, sizes: Array(stride(from: 10, through: 200, by: 10)),
            training: t, metric: "roc_auc", inputSize: 257,
            notes: ["Validation is the next fold's test block, as in the paper."])
    }

    /// AML-Cytomorphology blasts (MYO, MOB) vs the rest: balanced 600-image test set per
    /// fold, sizes 10..100 by 10 and 200, no augmentation, validation disjoint from test.
    public static var amlBinary: SweepProtocol {
        var t = TrainingConfig()
        t.optimizer = .paperBinary; t.augment = false
        return SweepProtocol(
            name: "aml-binary", folds: 10, sizes: Array(stride(from: 10, through: 100, by: 10)) + [200],
            testPerFold: 600, valPerFold: 100, training: t, metric: "roc_auc",
            positiveClasses: DatasetLayout.amlBlastClasses, inputSize: 400,
            notes: [
                "The original script drew the validation images from the test fold; this replication "
                    + "draws them from the next fold's test block, so validation and test are disjoint."
            ])
    }

    /// ALL-IDB2 six classes (classes with at least 5 images): tenfold CV, each class
    /// balanced to 150 training images by augmentation, Adam 0.0001, weighted F1.
    public static var multiclass: SweepProtocol {
        var t = TrainingConfig()
        t.optimizer = .paperMulticlass; t.augment = true
        return SweepProtocol(
            name: "multiclass", folds: 10, sizes: [150], balancePerClass: true, training: t,
            metric: "f1_weighted", minPerClass: 5, inputSize: 257,
            notes: ["Sizes are training images per class after balancing by augmentation."])
    }

    /// Neutral defaults: 5 folds, sizes 10,20,50,100, RMSprop, no augmentation.
    public static var custom: SweepProtocol {
        var t = TrainingConfig()
        t.optimizer = .paperBinary
        return SweepProtocol(name: "custom", folds: 5, sizes: [10, 20, 50, 100], training: t, metric: "roc_auc")
    }

    /// Checks internal consistency.
    public func validate(classCount: Int) throws {
        guard folds >= 2 else { throw CytoError.invalidArgument("--folds must be at least 2 (got \(folds))") }
        guard folds <= Self.maxFolds else { throw CytoError.invalidArgument("--folds must be at most \(Self.maxFolds) (got \(folds))") }
        guard sizes.count <= Self.maxSizes else {
            throw CytoError.invalidArgument("at most \(Self.maxSizes) training sizes (got \(sizes.count))")
        }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 || $0 == SweepProtocol.allSize }) else {
            throw CytoError.invalidArgument("training sizes must be positive")
        }
        guard classCount >= 2 else {
            throw CytoError.invalidArgument("protocol \(name) needs at least two classes, the data has \(classCount)")
        }
        if metric == "roc_auc" && classCount != 2 {
            throw CytoError.invalidArgument("protocol \(name) reports ROC-AUC and needs exactly two classes, the data has \(classCount)")
        }
        if let t = testPerFold, t < classCount { throw CytoError.invalidArgument("--test-per-fold must be at least \(classCount)") }
        if let v = valPerFold, v < classCount { throw CytoError.invalidArgument("--val-per-fold must be at least \(classCount)") }
    }

    /// Training images drawn from class `c` (of `k`) for a training size.
    public func trainingShare(size: Int, classIndex c: Int, classCount k: Int) -> Int {
        balancePerClass ? size : size / k + (c < size % k ? 1 : 0)
    }

    /// Training images per class for a size, given how many training images each class
    /// has in a fold's pool: balanced where the classes allow. Otherwise a class that
    /// cannot give its half (its even share) gives every image it has and the rest is
    /// filled from the classes that have more, evenly over them (the paper's own ALL-IDB2
    /// split was 124/126, not 125/125); a size at least the pool's total takes the whole
    /// pool (capped). Shares grow with the size, so training sets stay nested.
    /// `balancePerClass` protocols always repeat to balance.
    public func trainingShares(size: Int, pools: [Int]) -> (shares: [Int], balanced: Bool) {
        let k = pools.count
        let balanced = (0..<k).map { trainingShare(size: size, classIndex: $0, classCount: k) }
        if balancePerClass || zip(balanced, pools).allSatisfy({ $0 <= $1 }) { return (balanced, true) }
        let total = pools.reduce(0, +)
        if size >= total { return (pools, false) }
        // Water-filling: classes short of an even share of what is left give all they
        // have; repeat over the others until every even share fits.
        var shares = [Int](repeating: 0, count: k)
        var open = Array(0..<k)
        var left = size
        while !open.isEmpty {
            let n = open.count
            let even = (0..<n).map { left / n + ($0 < left % n ? 1 : 0) }
            let short = (0..<n).filter { pools[open[$0]] < even[$0] }
            if short.isEmpty {
                for (j, c) in open.enumerated() { shares[c] = even[j] }
                break
            }
            for j in short { shares[open[j]] = pools[open[j]]; left -= pools[open[j]] }
            open = open.enumerated().filter { !short.contains($0.offset) }.map(\.element)
        }
        return (shares, false)
    }

    /// Sizes for display: `all (N)` for the resolved `all`.
    public func sizeLabel(_ size: Int) -> String {
        size == allTrainingSize ? "all (\(size))" : "\(size)"
    }
}

/// Parses `--sizes`: a list `30,200`, a range `10:200:10` (start:end:step, end included),
/// `all` (every training image of a fold) or a mix `10:100:10,200,500,all`. `all` is
/// returned as `SweepProtocol.allSize`, last.
public func parseSizes(_ text: String) throws -> [Int] {
    var out: [Int] = []
    let limit = SweepProtocol.maxSizes
    var all = false
    for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
        if part.lowercased() == "all" {
            all = true
        } else if part.contains(":") {
            let f = part.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard (2...3).contains(f.count), f.allSatisfy({ $0 != nil }) else {
                throw CytoError.invalidArgument("--sizes range '\(part)' should look like start:end:step, e.g. 10:200:10")
            }
            let a = f[0]!, b = f[1]!, s = f.count == 3 ? f[2]! : 1
            guard a > 0, b >= a, s > 0 else {
                throw CytoError.invalidArgument("--sizes range '\(part)': need 0 < start <= end and step > 0")
            }
            // Count before expanding: 1:100000000:1 must be refused, not materialised.
            let n = (b - a) / s + 1
            guard n <= limit - out.count else {
                throw CytoError.invalidArgument(
                    "--sizes range '\(part)' expands to \(formatThousands(n)) sizes; a sweep takes at most \(formatThousands(limit))")
            }
            out += Array(stride(from: a, through: b, by: s))
        } else {
            guard let v = Int(part), v > 0 else { throw CytoError.invalidArgument("--sizes: '\(part)' is not a positive integer") }
            out.append(v)
            guard out.count <= limit else { throw CytoError.invalidArgument("--sizes lists more than \(formatThousands(limit)) sizes") }
        }
    }
    guard !out.isEmpty || all else { throw CytoError.invalidArgument("--sizes is empty") }
    return Array(Set(out)).sorted() + (all ? [SweepProtocol.allSize] : [])
}

/// Parses `--shard I/N` (I counted from 0, 0 <= I < N).
public func parseShard(_ text: String) throws -> (index: Int, count: Int) {
    let f = text.split(separator: "/").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard f.count == 2, let i = f[0], let n = f[1], n >= 1, i >= 0, i < n else {
        throw CytoError.invalidArgument("--shard '\(text)' should be I/N with 0 <= I < N, e.g. 0/4")
    }
    return (i, n)
}
