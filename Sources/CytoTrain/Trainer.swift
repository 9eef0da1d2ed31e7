import CytoCore
import Foundation

/// Images already decoded and fitted to the model input: NHWC uint8 pixels and one
/// class index per image. This is what the data stage hands to training.
public struct LabeledImages: Sendable {
    public var geometry: ImageGeometry
    public var pixels: [UInt8]
    public var labels: [Int]
    /// Where each image came from (for predictions and sweep records).
    public var paths: [String]

    public init(geometry: ImageGeometry, pixels: [UInt8], labels: [Int], paths: [String]) {
        precondition(pixels.count == labels.count * geometry.pixelsPerImage, "pixels do not match labels")
        self.geometry = geometry; self.pixels = pixels; self.labels = labels; self.paths = paths
    }

    public var count: Int { labels.count }

    /// A subset in the given order.
    public func subset(_ indices: [Int]) -> LabeledImages {
        let n = geometry.pixelsPerImage
        var px = [UInt8](repeating: 0, count: indices.count * n)
        px.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    (dst.baseAddress! + k * n).update(from: src.baseAddress! + i * n, count: n)
                }
            }
        }
        return LabeledImages(
            geometry: geometry, pixels: px, labels: indices.map { labels[$0] },
            paths: indices.map { paths[$0] })
    }
}

/// The paper's training settings by default (RMSprop 0.001, batch 5, 500 epochs,
/// early stopping with patience 50 on validation loss, min_delta 0).
public struct TrainingConfig: Sendable, Codable, Equatable {
    public var optimizer: OptimizerConfig = .paperBinary
    public var batchSize = 5
    public var maxEpochs = 500
    public var patience = 50
    public var minDelta: Double = 0
    public var seed: UInt64 = 1
    /// Random rotation + flips on every training batch (the ALL-IDB protocol).
    public var augment = false
    /// How augmented images are resampled: the paper's Keras 2.0.8 nearest-neighbour
    /// sampler by default. nil only in records written before the choice existed,
    /// which sampled bilinearly (`resolvedAugmentSampler`).
    public var augmentSampler: AugmentSampler? = .paper
    /// How an unbalanced training set is fed (nil: as it is, the paper's protocols).
    /// A set chosen by `sweep --selection` can hold 9 images of one class and 1 of the
    /// other; trained as it is, the network learns the prior, its validation loss rises
    /// from the first epoch and early stopping keeps the untrained weights (measured:
    /// every such cell kept epoch 1, docs/selection.md).
    public var classBalance: ClassBalance? = nil

    /// The sampler this configuration trains with.
    public var resolvedAugmentSampler: AugmentSampler { augmentSampler ?? .bilinear }

    public init() {}
}

/// How the trainer evens out classes of unequal size in the training set.
public enum ClassBalance: String, Sendable, Codable, CaseIterable, Equatable {
    /// Every image once per epoch, whatever the class counts.
    case none
    /// Each epoch shows every class present as often as the largest: the images of a
    /// smaller class are repeated (each repetition in a fresh random order). The
    /// expected gradient is that of the cross-entropy weighted per class by the inverse
    /// of its count (class-balanced weights), without a weighted loss in each backend's
    /// kernels. On a set with equal class counts the epoch is exactly the unbalanced one.
    case oversample
}

/// One line of history.csv.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var seconds: Double

    public static let csvHeader = "epoch,loss,accuracy,val_loss,val_accuracy,seconds"
    public var csvRow: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        return "\(epoch),\(f(loss)),\(f(accuracy)),\(f(validationLoss)),\(f(validationAccuracy)),\(String(format: "%.3f", seconds))"
    }
}

public struct TrainingResult: Sendable {
    public var history: [EpochRecord]
    /// 1-based epoch whose weights were kept (lowest monitored loss).
    public var bestEpoch: Int
    public var bestLoss: Double
    public var stopReason: StopReason
    /// Wall seconds of the per-epoch validation passes, summed (part of the epochs'
    /// `seconds`): at the AML protocol's small sizes they cost more than the training
    /// steps, so a sweep records them apart (`SweepRecord.validationSeconds`).
    public var validationSeconds: Double = 0
    /// CPU seconds of the calling thread in those passes (`ThreadCPUTime`): with a
    /// one-thread CPU backend, what validation cost whatever else the machine ran.
    public var validationThreadCPUSeconds: Double = 0

    public enum StopReason: Sendable, Equatable, CustomStringConvertible {
        case maxEpochs
        case earlyStopping(patience: Int)
        /// The loss became NaN or infinite.
        case nonFinite(epoch: Int, what: String)
        /// The loss is finite but exploded past `Trainer.DivergenceLimits` (e.g. Adam
        /// at a too-high rate reaching 1e30): as useless as a NaN, so treated alike.
        case exploded(epoch: Int, what: String, loss: Double, limit: String)
        /// `Trainer.stopAtChance` was set and the training loss had not left the chance
        /// loss by then: the caller re-initialises (`sweep --restarts`).
        case stuckAtChance(epochs: Int)
        /// `Trainer.interruption` reported a signal during `epoch` (that epoch is not
        /// counted: its weights were never validated).
        case interrupted(signal: Int32, epoch: Int)

        public var description: String {
            switch self {
            case .maxEpochs: return "reached the maximum number of epochs"
            case .earlyStopping(let p): return "early stopping: no improvement of the monitored loss for \(p) epochs"
            case .nonFinite(let e, let w): return "diverged at epoch \(e): the \(w) is not finite (NaN or Inf)"
            case .exploded(let e, let w, let l, let limit):
                return "diverged at epoch \(e): the \(w) \(String(format: "%.4g", l)) exploded (\(limit))"
            case .stuckAtChance(let e):
                return "stopped after \(e) epochs: the training loss never left the chance loss (a dead initialisation)"
            case .interrupted(let sig, let e): return "interrupted by \(StopRequest.name(sig)) during epoch \(e)"
            }
        }

        /// True when training stopped because the loss diverged (non-finite or exploded).
        public var diverged: Bool {
            switch self {
            case .nonFinite, .exploded: return true
            case .maxEpochs, .earlyStopping, .stuckAtChance, .interrupted: return false
            }
        }
    }

    /// True when training diverged before any epoch gave usable weights: nothing
    /// worth saving or testing exists, and callers must fail instead of writing a model.
    public var divergedWithoutModel: Bool { stopReason.diverged && bestEpoch == 0 }

    /// What a user is told when training diverged: where, and which epoch's weights
    /// were kept (or that none were).
    public var divergenceSummary: String? {
        guard stopReason.diverged else { return nil }
        if bestEpoch == 0 { return "training \(stopReason); no epoch before it gave usable weights" }
        return
            "training \(stopReason); kept the weights of epoch \(bestEpoch) (monitored loss \(String(format: "%.5g", bestLoss))), the best before it"
    }

    public var historyCSV: String {
        ([EpochRecord.csvHeader] + history.map(\.csvRow)).joined(separator: "\n") + "\n"
    }
}

/// Mini-batch training with early stopping and best-checkpoint restore, with every
/// step on the backend: the training and validation images are uploaded once as
/// uint8, batches are gathered (and augmented) on the device, and the host reads
/// back two small metric vectors per epoch.
///
/// A backend failure stops training: the backend is checked after every step
/// (`checkErrors`) and every read throws, so `fit` throws the device's error and no
/// loss, weight or model is ever produced from a failed device.
public final class Trainer {
    public let network: Network
    public let config: TrainingConfig
    /// When a finite loss counts as diverged.
    public var divergence = DivergenceLimits()
    /// When set, training stops (`.stuckAtChance`) after this many epochs if every one
    /// of them had a training loss within `Collapse.lossTolerance` of ln(classes).
    public var stopAtChance: Int?
    /// Asked before every batch: a signal number stops training there (`.interrupted`),
    /// with the best weights so far restored, so the caller can save them.
    public var interruption: (() -> Int32?)?
    private let best: [any DeviceBuffer]

    /// A mean categorical cross-entropy is about ln(classes) (0.69 for two classes)
    /// for an untrained network and falls from there; a confidently wrong network
    /// on every image reaches tens. A loss above `absolute`, or one that grew to more
    /// than `growth` times the first epoch's training loss (and above
    /// `growthFloor`, so that a loss near zero may still bounce), is a run that
    /// blew up (Adam at a too-high rate reaching 1e30): it is treated like NaN.
    public struct DivergenceLimits: Sendable, Equatable {
        public var absolute: Double = 1e4
        public var growth: Double = 1e3
        public var growthFloor: Double = 100
        public init() {}

        /// Why `loss` counts as exploded, or nil when it does not.
        func violation(_ loss: Double, firstLoss: Double?) -> String? {
            if loss > absolute { return "above the limit \(String(format: "%.0e", absolute)) for a cross-entropy" }
            if let f = firstLoss, f > 0, loss > growthFloor, loss > growth * f {
                return String(format: "more than %.0fx the first epoch's %.4g", growth, f)
            }
            return nil
        }
    }

    public init(network: Network, config: TrainingConfig) throws {
        precondition(config.batchSize <= network.maxBatch, "batch size exceeds the network's buffers")
        self.network = network; self.config = config
        best = try network.parameters.map {
            try network.backend.makeBuffer(.float32, count: $0.count, label: "best.\($0.name)")
        }
    }

    /// Trains and leaves the best weights in the network.
    /// - Parameter onEpoch: called after every epoch (progress display).
    public func fit(
        train: LabeledImages, validation: LabeledImages?,
        onEpoch: (EpochRecord) -> Void = { _ in }
    ) throws -> TrainingResult {
        guard train.count > 0 else { throw CytoError.invalidArgument("the training set is empty") }
        let backend = network.backend
        let trainImages = try upload(train, label: "train images")
        let valImages = try validation.map { try upload($0, label: "validation images") }
        var orderRNG = SeededGenerator.stream(seed: config.seed, "shuffle")
        var augmentRNG = SeededGenerator.stream(seed: config.seed, "augment")
        let sampler = config.resolvedAugmentSampler
        var history: [EpochRecord] = []
        var bestLoss = Double.infinity, bestEpoch = 0, wait = 0
        var stop = TrainingResult.StopReason.maxEpochs
        var validationSeconds = 0.0, validationCPU = 0.0
        _ = try network.takeMetrics()
        saveBest()

        for epoch in 1...max(1, config.maxEpochs) {
            let start = Date()
            let order = Trainer.epochOrder(labels: train.labels, balance: config.classBalance, using: &orderRNG)
            var i = 0
            var caught: Int32?
            while i < order.count {
                if let sig = interruption?() { caught = sig; break }
                let batch = Array(order[i..<min(i + config.batchSize, order.count)])
                let transforms = config.augment ? batch.map { _ in AugmentTransform.random(using: &augmentRNG, sampler: sampler) } : nil
                backend.gatherBatch(
                    images: trainImages, geometry: train.geometry, indices: batch.map { Int32($0) },
                    transforms: transforms, output: network.input)
                backend.write(batch.map { Float(train.labels[$0]) }, to: network.labels, offset: 0)
                try network.trainStep(batch: batch.count, optimizer: config.optimizer)
                try backend.checkErrors()
                i += batch.count
            }
            if let sig = caught {
                stop = .interrupted(signal: sig, epoch: epoch)
                break
            }
            let trainMetrics = try network.takeMetrics()
            var record = EpochRecord(
                epoch: epoch, loss: trainMetrics.loss, accuracy: trainMetrics.accuracy,
                validationLoss: nil, validationAccuracy: nil, seconds: 0)
            if let v = validation, let vi = valImages {
                let validationStart = Date(), validationCPUStart = ThreadCPUTime.now()
                let m = try evaluateLoss(v, images: vi)
                record.validationLoss = m.loss; record.validationAccuracy = m.accuracy
                validationSeconds += Date().timeIntervalSince(validationStart)
                validationCPU += ThreadCPUTime.now() - validationCPUStart
            }
            record.seconds = Date().timeIntervalSince(start)
            history.append(record)
            onEpoch(record)

            let monitored = record.validationLoss ?? record.loss
            if !record.loss.isFinite || !monitored.isFinite {
                stop = .nonFinite(epoch: epoch, what: record.loss.isFinite ? "validation loss" : "training loss")
                break
            }
            if let why = divergence.violation(record.loss, firstLoss: history.first?.loss) {
                stop = .exploded(epoch: epoch, what: "training loss", loss: record.loss, limit: why)
                break
            }
            if let vl = record.validationLoss, let why = divergence.violation(vl, firstLoss: nil) {
                stop = .exploded(epoch: epoch, what: "validation loss", loss: vl, limit: why)
                break
            }
            if let n = stopAtChance, epoch == n,
                history.allSatisfy({ Collapse.atChance($0.loss, classes: network.spec.classes) })
            {
                stop = .stuckAtChance(epochs: n)
                break
            }
            if monitored < bestLoss - config.minDelta {
                bestLoss = monitored; bestEpoch = epoch; wait = 0
                saveBest()
            } else {
                wait += 1
                if wait >= config.patience { stop = .earlyStopping(patience: config.patience); break }
            }
        }
        restoreBest()
        try backend.checkErrors()
        var result = TrainingResult(history: history, bestEpoch: bestEpoch, bestLoss: bestLoss, stopReason: stop)
        result.validationSeconds = validationSeconds
        result.validationThreadCPUSeconds = validationCPU
        return result
    }

    /// The order of one epoch's training images (indices into `labels`): a shuffle of
    /// every image, or with `.oversample` and unequal counts, every class present repeated
    /// to the largest class's count, then shuffled.
    public static func epochOrder(
        labels: [Int], balance: ClassBalance?, using rng: inout some RandomNumberGenerator
    ) -> [Int] {
        var byClass: [Int: [Int]] = [:]
        if balance == .oversample { for (i, l) in labels.enumerated() { byClass[l, default: []].append(i) } }
        let largest = byClass.values.map(\.count).max() ?? 0
        guard balance == .oversample, byClass.values.contains(where: { $0.count != largest }) else {
            var order = Array(labels.indices)
            order.shuffle(using: &rng)
            return order
        }
        var order: [Int] = []
        order.reserveCapacity(largest * byClass.count)
        for c in byClass.keys.sorted() {
            let members = byClass[c]!
            var taken = 0
            while taken < largest {
                var copy = members
                copy.shuffle(using: &rng)
                order += copy.prefix(largest - taken)
                taken += min(copy.count, largest - taken)
            }
        }
        order.shuffle(using: &rng)
        return order
    }

    /// Mean loss and accuracy of the current weights on a set already on the device.
    func evaluateLoss(_ set: LabeledImages, images: any DeviceBuffer) throws -> (loss: Double, accuracy: Double) {
        let backend = network.backend
        _ = try network.takeMetrics()
        var i = 0
        let step = network.maxBatch
        while i < set.count {
            let n = min(step, set.count - i)
            backend.gatherBatch(
                images: images, geometry: set.geometry, indices: (i..<(i + n)).map { Int32($0) },
                transforms: nil, output: network.input)
            backend.write(set.labels[i..<(i + n)].map { Float($0) }, to: network.labels, offset: 0)
            network.forward(batch: n, keepingActivations: false)
            network.loss(batch: n, gradient: false)
            i += n
        }
        let m = try network.takeMetrics()
        return (m.loss, m.accuracy)
    }

    func upload(_ set: LabeledImages, label: String) throws -> any DeviceBuffer {
        let buffer = try network.backend.makeBuffer(.uint8, count: max(1, set.pixels.count), label: label)
        set.pixels.withUnsafeBytes { network.backend.write(bytes: $0, to: buffer, byteOffset: 0) }
        return buffer
    }

    private func saveBest() {
        for (p, b) in zip(network.parameters, best) { network.backend.copy(from: p.value, to: b, count: p.count) }
    }

    private func restoreBest() {
        for (p, b) in zip(network.parameters, best) { network.backend.copy(from: b, to: p.value, count: p.count) }
    }
}

/// Runs a model over images in batches and returns softmax probabilities.
///
/// The one place CytoCL turns logits into probabilities for predict, evaluate, sweep
/// cells and demo: softmax(logits / T) with the model file's temperature (1 unless the
/// model was trained with `--calibrate`).
public struct Predictor {
    public let network: Network
    /// Softmax temperature (`ModelFile.temperature`).
    public let temperature: Double

    public init(network: Network, temperature: Double = 1) {
        precondition(temperature.isFinite && temperature > 0, "temperature must be positive")
        self.network = network; self.temperature = temperature
    }

    /// Probabilities per image, [count][classes].
    public func probabilities(_ set: LabeledImages) throws -> [[Float]] {
        // T = 1 keeps the backend's softmax (bit-for-bit what uncalibrated models always gave).
        guard temperature != 1 else { return try run(set, logits: false) }
        return try run(set, logits: true).map { l in
            TemperatureScaling.probabilities(logits: l, temperature: temperature).map { Float($0) }
        }
    }

    /// Logits (pre-softmax outputs) per image, [count][classes]: what `train --calibrate`
    /// fits the temperature on.
    public func logits(_ set: LabeledImages) throws -> [[Float]] { try run(set, logits: true) }

    private func run(_ set: LabeledImages, logits wantLogits: Bool) throws -> [[Float]] {
        let backend = network.backend
        let images = try backend.makeBuffer(.uint8, count: max(1, set.pixels.count), label: "images")
        set.pixels.withUnsafeBytes { backend.write(bytes: $0, to: images, byteOffset: 0) }
        var out: [[Float]] = []
        out.reserveCapacity(set.count)
        let k = network.spec.classes
        var i = 0
        while i < set.count {
            let n = min(network.maxBatch, set.count - i)
            backend.gatherBatch(
                images: images, geometry: set.geometry, indices: (i..<(i + n)).map { Int32($0) },
                transforms: nil, output: network.input)
            network.forward(batch: n, keepingActivations: false)
            let p: [Float]
            if wantLogits {
                p = try backend.read(network.logits, offset: 0, count: n * k)
            } else {
                network.computeProbabilities(batch: n)
                p = try backend.read(network.probabilities, offset: 0, count: n * k)
            }
            // Finite weights can still overflow float32 on the way (e.g. weights of 1e30):
            // a NaN probability must never be printed as a prediction.
            if let bad = p.firstIndex(where: { !$0.isFinite }) {
                throw CytoError.invalidModel(
                    "the model's output for \(set.paths[i + bad / k]) is not finite (NaN or Inf): its weights overflow float32 arithmetic")
            }
            for j in 0..<n { out.append(Array(p[(j * k)..<((j + 1) * k)])) }
            i += n
        }
        return out
    }
}

/// A run whose network never learned: it gives the same output for every image, or its
/// training loss never left the chance loss ln(classes). A six-layer ReLU network with 4
/// filters in its first layer can start dead (every first-layer unit negative on every
/// pixel), and the paper's protocol has no restarts, so a faithful sweep keeps such a
/// cell; the record and the report mark it (`SweepRecord.collapse`).
public enum Collapse {
    /// How far from ln(classes) a training loss may be and still count as chance. A dead
    /// network learns only the class prior: ln 2 = 0.693 for balanced pairs, 0.691 for
    /// the unbalanced 94/106 of ALL-IDB2's largest size; a network that learns anything
    /// leaves this band within a few epochs.
    public static let lossTolerance = 0.02
    /// Test outputs whose probabilities differ by at most this much count as one output.
    public static let outputSpread: Float = 1e-4
    /// Epochs after which `--restarts` re-initialises a run still at chance: enough for
    /// a live network at the paper's RMSprop 0.001 and batch 5 to leave the band even at
    /// size 10 (20 steps), few against the protocol's patience of 50.
    public static let restartCheckEpochs = 10

    public static func atChance(_ loss: Double, classes k: Int) -> Bool {
        loss.isFinite && abs(loss - log(Double(max(2, k)))) <= lossTolerance
    }

    /// Why a run learned nothing, or nil: the same output for every test image, or a
    /// training loss at chance in every epoch of at least `restartCheckEpochs`.
    public static func reason(history: [EpochRecord], probabilities: [[Float]], classes k: Int) -> String? {
        if probabilities.count >= 2, let first = probabilities.first,
            probabilities.allSatisfy({ $0.count == first.count && zip($0, first).allSatisfy { abs($0 - $1) <= outputSpread } })
        {
            return "the same output for every test image ("
                + first.map { String(format: "%.4f", $0) }.joined(separator: "/") + ")"
        }
        // Every run starts at chance: a loss that stayed there says something only
        // after as many epochs as a live network needs to leave it.
        if history.count >= restartCheckEpochs, history.allSatisfy({ atChance($0.loss, classes: k) }) {
            let lo = history.map(\.loss).min()!, hi = history.map(\.loss).max()!
            return String(
                format: "training loss %.3f-%.3f in all %d epochs, never leaving ln %d = %.3f ± %.2f", lo, hi, history.count, k,
                log(Double(k)), lossTolerance)
        }
        return nil
    }
}
