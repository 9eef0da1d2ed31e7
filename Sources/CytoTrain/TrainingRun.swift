import CytoCore
import CytoData
import Foundation

/// How a training run's validation images are chosen when no validation set is given.
public enum ValidationSplit {
    /// Splits indices per class, seeded: `fraction` of each class goes to validation
    /// (at least one image of every class with two or more).
    public static func stratified(labels: [Int], fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
        var rng = SeededGenerator.stream(seed: seed, "validation-split")
        var train: [Int] = [], val: [Int] = []
        for c in Set(labels).sorted() {
            var idx = labels.indices.filter { labels[$0] == c }
            idx.shuffle(using: &rng)
            let k = idx.count > 1 ? max(1, Int((Double(idx.count) * fraction).rounded())) : 0
            val += idx.prefix(k); train += idx.dropFirst(k)
        }
        return (train.sorted(), val.sorted())
    }

    /// Moves every near-duplicate group that the split cut in two wholly into validation,
    /// so that no cell is both trained on and validated on (`--near-duplicates group`).
    public static func keepingGroupsTogether(
        _ split: (train: [Int], validation: [Int]), groups: [NearDuplicateGroup], ids: [String]
    ) -> (train: [Int], validation: [Int]) {
        var groupOf: [String: Int] = [:]
        for (g, group) in groups.enumerated() { for m in group.members { groupOf[m] = g } }
        let inValidation = Set(split.validation.compactMap { groupOf[ids[$0]] })
        let moving = split.train.filter { groupOf[ids[$0]].map(inValidation.contains) ?? false }
        return (split.train.filter { !moving.contains($0) }, split.validation + moving)
    }
}

/// A training run's folder: `model.safetensors` (with its provenance and, calibrated,
/// its temperature), `history.csv` (one line per epoch) and, when near-duplicates were
/// grouped, `near-duplicates.txt`. `train` and `demo` write one; a sweep writes cells.
public struct TrainingRun {
    public var directory: URL
    public init(_ directory: URL) { self.directory = directory }

    public var modelURL: URL { directory.appendingPathComponent("model.safetensors") }
    public var historyURL: URL { directory.appendingPathComponent("history.csv") }
    public var nearDuplicatesURL: URL { directory.appendingPathComponent("near-duplicates.txt") }
    /// The files every run writes (checked writable before any data is decoded).
    public var outputs: [URL] { [modelURL, historyURL] }

    /// For data classes `data` that are the model's classes `model` in another order: the
    /// model's index of each data class; nil when they are the same order or other classes.
    /// Names are matched ignoring case: folders `Other/`, `blast/` sort `Other` first, and
    /// matched exactly they trained an ALL-IDB-order model's blast output as `Other`.
    public static func modelOrder(of data: [String], model: [String]) -> [Int]? {
        let (d, m) = (data.map { $0.lowercased() }, model.map { $0.lowercased() })
        guard d != m, d.count == m.count, Set(d) == Set(m), Set(d).count == d.count else { return nil }
        return d.map { m.firstIndex(of: $0)! }
    }

    /// Trains a network and writes the run folder.
    /// - Parameters:
    ///   - provenance: stored in the model file; the run adds epochs, stop reason,
    ///     backend, optimizer, seed and time.
    ///   - calibrate: fit a softmax temperature on `validation` and store it.
    ///   - note: lines for the user (the stop reason, warnings, the calibration).
    ///   - onEpoch: after every epoch (a progress display, a lock's heartbeat).
    ///   - interruption: asked before every batch (`Trainer.interruption`); a signal stops
    ///     training, the best model so far and the history are written, and
    ///     `CytoError.interrupted` says where (nothing is written when no epoch ended).
    public func train(
        backend: any Backend, spec: ModelSpec, classNames: [String], train: LabeledImages,
        validation: LabeledImages?, config: TrainingConfig, initFrom: ModelFile? = nil,
        provenance: [String: String], calibrate: Bool = false,
        note: (String) -> Void, onEpoch: (EpochRecord) -> Void = { _ in },
        interruption: (() -> Int32?)? = nil
    ) throws -> (Network, TrainingResult) {
        var (classNames, train, validation) = (classNames, train, validation)
        if let m = initFrom, let order = Self.modelOrder(of: classNames, model: m.classNames) {
            // The model's outputs keep their classes: fine-tuning an ALL-IDB model (other,
            // blast) on folders `blast/`, `other/` (blast first) started from swapped
            // outputs (accuracy 0 before the first step) and, with a few epochs at a low
            // rate, saved a model that called every blast `other`.
            // The data's spelling is kept (its classes are named as the user's folders or
            // labels), in the model's order.
            var ordered = m.classNames
            for (i, name) in classNames.enumerated() { ordered[order[i]] = name }
            note("the --init-from model's class order is kept: \(ordered.joined(separator: ", ")) (the data lists \(classNames.joined(separator: ", ")))")
            train.labels = train.labels.map { order[$0] }
            if var v = validation { v.labels = v.labels.map { order[$0] }; validation = v }
            classNames = ordered
        } else if let m = initFrom, m.classNames.map({ $0.lowercased() }) == classNames.map({ $0.lowercased() }), m.classNames != classNames {
            // Only the spelling differs (folders `Blast/`, `Other/` on a `blast, other` model):
            // every output keeps its class, which is no cause for a warning.
            note("the --init-from model's classes are spelt \(m.classNames.joined(separator: ", ")); the data's spelling is kept: \(classNames.joined(separator: ", "))")
        } else if let m = initFrom, m.classNames != classNames {
            let pairs = zip(m.classNames, classNames).map { "\($0) as \($1)" }.joined(separator: ", ")
            note("warning: the --init-from model's classes are not the data's: its outputs are trained on (model's class as the data's) \(pairs)")
        }
        let net = try Network(spec: spec, backend: backend, maxBatch: max(config.batchSize, 32))
        if let m = initFrom { try net.setWeights(m.weights) } else { net.initialize(seed: config.seed) }
        let trainer = try Trainer(network: net, config: config)
        trainer.interruption = interruption
        let result = try trainer.fit(train: train, validation: validation, onEpoch: onEpoch)
        var interrupted: (signal: Int32, epoch: Int)?
        if case .interrupted(let sig, let epoch) = result.stopReason {
            interrupted = (sig, epoch)
            guard result.bestEpoch > 0 else {
                throw CytoError.interrupted(
                    signal: sig, "training \(result.stopReason), before any epoch ended: no model written")
            }
        }
        if result.divergedWithoutModel {
            // Nothing usable was learnt: write the loss history (to see what happened), never a model.
            try writeAtomically(Data(result.historyCSV.utf8), to: historyURL)
            throw CytoError.invalidArgument(
                "\(result.divergenceSummary!); no model written (history in \(historyURL.path)); try a lower --lr")
        }
        if let d = result.divergenceSummary {
            note("warning: \(d). The model is that epoch's; try a lower --lr to train further.")
        } else if interrupted == nil {
            note("\(result.stopReason); best epoch \(result.bestEpoch) (monitored loss \(String(format: "%.5f", result.bestLoss)))")
        }
        var prov = provenance
        prov["epochs_run"] = "\(result.history.count)"
        prov["best_epoch"] = "\(result.bestEpoch)"
        prov["stop_reason"] = "\(result.stopReason)"
        prov["backend"] = backend.deviceDescription
        prov["optimizer"] = config.optimizer.summary
        prov["seed"] = "\(config.seed)"
        if config.augment { prov["augment_sampler"] = config.resolvedAugmentSampler.rawValue }
        prov["created"] = ISO8601DateFormatter().string(from: Date())
        var model = ModelFile(spec: spec, classNames: classNames, weights: try net.weights(), provenance: prov)
        if calibrate, interrupted == nil {
            guard let validation, let c = try TemperatureScaling.calibrate(network: net, validation: validation) else {
                throw CytoError.invalidArgument(
                    "--calibrate: no validation images with finite outputs to fit a temperature on; no model written")
            }
            note(c.summary)
            // At a bound of the search the NLL was still falling: a validation set classified
            // perfectly (T -> 0 keeps lowering its NLL) or entirely wrongly. That is no evidence
            // for a temperature, so the model keeps T = 1 rather than an extreme one.
            let r = ModelFile.temperatureRange
            if c.temperature <= r.lowerBound * 1.01 || c.temperature >= r.upperBound / 1.01 {
                note(
                    "warning: --calibrate: the fitted temperature is at the limit of \(r.lowerBound)...\(r.upperBound) (the validation set gives no finite optimum, e.g. every image classified correctly); the model keeps temperature 1"
                )
            } else {
                model.temperature = c.temperature
                model.provenance["calibration"] = c.summary
            }
        }
        try model.write(to: modelURL)
        try writeAtomically(Data(result.historyCSV.utf8), to: historyURL)
        if let stopped = interrupted {
            throw CytoError.interrupted(
                signal: stopped.signal,
                "training \(result.stopReason): wrote the best model so far, epoch \(result.bestEpoch) of the \(stopped.epoch - 1) completed "
                    + "(monitored loss \(String(format: "%.5f", result.bestLoss))\(calibrate ? ", not calibrated" : "")), to \(modelURL.path); "
                    + "--init-from it to train on")
        }
        return (net, result)
    }
}

extension EpochRecord {
    /// The epoch's figures for a progress display: `loss 0.4123 acc 0.812 val_loss 0.5012`.
    public var progressDetail: String {
        var detail = String(format: "loss %.4f acc %.3f", loss, accuracy)
        if let vl = validationLoss { detail += String(format: " val_loss %.4f", vl) }
        return detail
    }
}
