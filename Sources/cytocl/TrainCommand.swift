import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import CytoSweep
import Foundation

/// Options of the training loop, shared by `train`, `demo` and (later) `sweep`.
struct TrainingOptions: ParsableArguments {
    @Option(name: .long, help: "The optimizer.")
    var optimizer: OptimizerConfig.Kind = .rmsprop

    @Option(name: .long, parsing: .unconditional, help: "Learning rate (default: 0.001 rmsprop, 0.0001 adam, 0.01 sgd).")
    var lr: Float?

    @Option(
        name: .long,
        help:
            "Optimizer formulas: keras2 (Keras 2.0.8, the paper's: RMSprop epsilon 1e-8 outside the square root, Adam epsilon 1e-8) or keras3 (epsilon 1e-7, inside the root for RMSprop)."
    )
    var optimizerForm: OptimizerConfig.Form = .keras2

    @Option(name: .long, parsing: .unconditional, help: "Mini-batch size.")
    var batch: Int = 5

    @Option(name: .long, parsing: .unconditional, help: "Maximum number of epochs.")
    var epochs: Int = 500

    @Option(name: .long, parsing: .unconditional, help: "Early stopping: epochs without a lower validation loss.")
    var patience: Int = 50

    @Option(name: .long, parsing: .unconditional, help: "Random seed (initialisation, shuffling, augmentation, splits).")
    var seed: UInt64 = 1

    @Flag(name: .long, help: "Random rotation (0..359 degrees, nearest edge fill) and flips on every batch.")
    var augment = false

    @Option(name: .long, help: "Resampling of augmented images: nearest (Keras 2.0.8, the paper's) or bilinear.")
    var augmentSampler: AugmentSampler = .paper

    func config() throws -> TrainingConfig {
        let kind = optimizer
        guard (1...1_000_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 1000000") }
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 1000000") }
        guard (1...1_000_000).contains(patience) else { throw ValidationError("--patience must be between 1 and 1000000") }
        if let lr, lr.isInfinite, lr > 0 {
            throw ValidationError("--lr is too large: it must be a finite 32-bit float, at most \(Float.greatestFiniteMagnitude)")
        }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
        var c = TrainingConfig()
        c.optimizer = OptimizerConfig(kind: kind, learningRate: lr, form: optimizerForm)
        c.batchSize = batch; c.maxEpochs = epochs; c.patience = patience; c.seed = seed; c.augment = augment
        c.augmentSampler = augmentSampler
        return c
    }
}

/// Splits indices per class, seeded: `fraction` of each class goes to validation.
func stratifiedSplit(labels: [Int], fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
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

/// The files `runTraining` writes into a run directory.
func runOutputs(_ outDir: URL) -> [URL] {
    [outDir.appendingPathComponent("model.safetensors"), outDir.appendingPathComponent("history.csv")]
}

/// Trains a network and writes the run directory; shared by `train` and `demo`.
/// Moves every near-duplicate group that the split cut in two wholly into validation, so
/// that no cell is both trained on and validated on (`--near-duplicates group`).
func keepingGroupsTogether(
    _ split: (train: [Int], validation: [Int]), groups: [NearDuplicateGroup],
    ids: [String]
) -> (train: [Int], validation: [Int]) {
    var groupOf: [String: Int] = [:]
    for (g, group) in groups.enumerated() { for m in group.members { groupOf[m] = g } }
    let inValidation = Set(split.validation.compactMap { groupOf[ids[$0]] })
    let moving = split.train.filter { groupOf[ids[$0]].map(inValidation.contains) ?? false }
    return (split.train.filter { !moving.contains($0) }, split.validation + moving)
}

func runTraining(
    backend: any Backend, spec: ModelSpec, classNames: [String], train: LabeledImages,
    validation: LabeledImages?, config: TrainingConfig, initFrom: ModelFile?, outDir: URL,
    provenance: [String: String], lock: URL? = nil, calibrate: Bool = false
) throws -> (Network, TrainingResult) {
    let net = try Network(spec: spec, backend: backend, maxBatch: max(config.batchSize, 32))
    if let m = initFrom { try net.setWeights(m.weights) } else { net.initialize(seed: config.seed) }
    let trainer = try Trainer(network: net, config: config)
    let bar = ProgressBar(title: "training", total: config.maxEpochs)
    let result = try trainer.fit(train: train, validation: validation) { r in
        if let lock { CellClaim.touch(lock) }  // the heartbeat that keeps the lock live for other hosts
        var detail = String(format: "loss %.4f acc %.3f", r.loss, r.accuracy)
        if let vl = r.validationLoss { detail += String(format: " val_loss %.4f", vl) }
        bar.update(r.epoch, detail)
    }
    if stderrIsTerminal && result.history.count < config.maxEpochs { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    let historyURL = outDir.appendingPathComponent("history.csv")
    if result.divergedWithoutModel {
        // Nothing usable was learnt: write the loss history (to see what happened), never a model.
        try writeAtomically(Data(result.historyCSV.utf8), to: historyURL)
        throw CytoError.invalidArgument("\(result.divergenceSummary!); no model written (history in \(historyURL.path)); try a lower --lr")
    }
    if let d = result.divergenceSummary {
        note("warning: \(d). The model is that epoch's; try a lower --lr to train further.")
    } else {
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
    if calibrate {
        guard let validation, let c = try TemperatureScaling.calibrate(network: net, validation: validation) else {
            throw RunError("--calibrate: no validation images with finite outputs to fit a temperature on; no model written")
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
    try model.write(to: outDir.appendingPathComponent("model.safetensors"))
    try writeAtomically(Data(result.historyCSV.utf8), to: historyURL)
    return (net, result)
}

/// Locks a run folder for one `train` run (`RUN/train.lock`: host, pid, start; its
/// time refreshed every epoch), the way a sweep claims a cell. Two runs into one folder
/// used to both exit 0, the last writer's model silently replacing the first's; the
/// second is now refused, naming the lock and its holder. A lock whose process is gone
/// (killed; or on another host, no heartbeat for 15 minutes) is taken over.
func lockRunFolder(_ outDir: URL) throws -> URL {
    let lock = outDir.appendingPathComponent("train.lock")
    switch try CellClaim.acquire(at: lock, staleAfter: 900) {
    case .taken: return lock
    case .heldBy(let c):
        let holder =
            c.map { "host \($0.host) pid \($0.pid)" + ($0.job.map { " job \($0)" } ?? "") + ", started \($0.started)" }
            ?? "a run that is starting"
        throw RunError(
            "\(lock.path): the run folder is in use by another `cytocl train` (\(holder)); wait for it to finish or give another --out (if that run is gone, remove the lock)"
        )
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the network on a data set and write RUN_DIR/model.safetensors and history.csv.")

    @Option(name: .long, help: "Training data (one sub-folder per class, or any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, help: "Run directory for model.safetensors and history.csv (one without a model, unless --overwrite).")
    var out: String

    /// `--overwrite`: replace the model and history of a run directory that already holds a model.
    @OptionGroup var outputs: OverwriteOption

    @Option(name: .long, help: "Validation data set (otherwise --val-fraction of the training data).")
    var val: String?

    @Flag(
        name: .long,
        help: "Go on when --val images are also training images (byte copies, re-encoded copies, near-duplicates); refused otherwise.")
    var allowOverlap = false

    @Option(name: .long, parsing: .unconditional, help: "Fraction of each class held out for validation when --val is not given.")
    var valFraction: Double = 0.2

    @Option(name: .long, help: "Model input WxH (default 257x257, or the --init-from model's).")
    var input: String?

    @Option(name: .long, help: "Start from this model's weights (fine-tuning).")
    var initFrom: String?

    @Flag(
        name: .long,
        help:
            "After training, fit a softmax temperature on the validation images (Guo et al. 2017) and store it in the model: predict, evaluate, export and the Python loader then give softmax(logits / T). Prints the validation ECE before and after."
    )
    var calibrate = false

    @OptionGroup var training: TrainingOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let config = try training.config()
        guard valFraction > 0 && valFraction < 1 else { throw ValidationError("--val-fraction must be between 0 and 1") }
        let initModel = try initFrom.map { try ModelFile.read(from: URL(fileURLWithPath: $0)) }
        var (h, w) = (257, 257)
        if let m = initModel { (h, w) = (m.spec.inputHeight, m.spec.inputWidth) }
        if let i = input { (h, w) = try parseSize(i) }
        // A network the input cannot carry is refused before anything is written (the
        // preflight below creates the run folder).
        try (initModel?.spec ?? ModelSpec.paper(height: h, width: w, classes: 2)).validate()
        // Every output location is checked before the data is decoded and the first
        // epoch runs, not found unwritable after the last.
        try AtomicFile.preflight(runOutputs(URL(fileURLWithPath: out)))
        let lock = try lockRunFolder(URL(fileURLWithPath: out))
        defer { CellClaim.release(at: lock) }
        // A trained model is not replaced by accident (a reused --out): only on request.
        try outputs.check([URL(fileURLWithPath: out).appendingPathComponent("model.safetensors")])
        let backend = try backendOptions.make()
        // The network's memory is known before the data: refuse now rather than after decoding.
        try requireNetworkMemory(
            initModel?.spec ?? ModelSpec.paper(height: h, width: w, classes: 2),
            maxBatch: max(config.batchSize, 32), backend: backend)
        // The run folder (created by the preflight above) is never read as data.
        let (index, all, nearDuplicates) = try dataOptions.loadHandlingNearDuplicates(data, height: h, width: w, excluding: [out])
        var trainSet = all, valSet: LabeledImages
        if let v = val {
            let (vIndex, vImages) = try dataOptions.load(v, height: h, width: w, title: "decoding validation", excluding: [out])
            guard vIndex.classNames == index.classNames else {
                throw ValidationError("validation classes \(vIndex.classNames) differ from training classes \(index.classNames)")
            }
            // Early stopping and the saved "best validated" weights are chosen on the
            // validation images: ones the network also trains on make both meaningless.
            let overlaps = SetOverlaps.find(
                trainingPaths: all.paths, trainingPixels: all.pixels, checkedPaths: vImages.paths, checkedPixels: vImages.pixels,
                height: h, width: w, nearDuplicates: dataOptions.nearDuplicates == .off ? nil : try dataOptions.nearDuplicateParameters())
            if !overlaps.isEmpty {
                let line = "\(overlaps.count) of \(vImages.count) validation images are also training images: \(SetOverlaps.summary(overlaps))"
                if !allowOverlap { throw RunError("--val \(FileSystemPath.visible(v)): \(line); give --allow-overlap to go on") }
                note("warning: --val \(FileSystemPath.visible(v)): \(line)")
            }
            valSet = vImages
        } else {
            var split = stratifiedSplit(labels: all.labels, fraction: valFraction, seed: config.seed)
            if let nd = nearDuplicates, nd.policy == .group, !nd.groups.isEmpty {
                split = keepingGroupsTogether(split, groups: nd.groups, ids: DatasetIndex.relativeIDs(all.paths, root: index.root))
            }
            trainSet = all.subset(split.train); valSet = all.subset(split.validation)
        }
        var spec = ModelSpec.paper(height: h, width: w, classes: index.classNames.count)
        if let m = initModel {
            guard m.spec.classes == index.classNames.count else {
                throw ValidationError("--init-from model has \(m.spec.classes) classes but the data has \(index.classNames.count)")
            }
            spec = m.spec
            if (h, w) != (m.spec.inputHeight, m.spec.inputWidth) {
                throw ValidationError(
                    "--input \(w)x\(h) differs from the --init-from model's input \(m.spec.inputWidth)x\(m.spec.inputHeight)")
            }
        }
        try spec.validate()
        note("training on \(trainSet.count) images, validating on \(valSet.count); \(spec.parameterCount) parameters")
        let outDir = URL(fileURLWithPath: out)
        var provenance = ["data": data, "train_images": "\(trainSet.count)", "validation_images": "\(valSet.count)"]
        // One 16-hex digest of each training image's decoded pixels, so `evaluate` can
        // tell test images the model was trained on (`SetOverlaps.pixelDigests`).
        provenance["training_pixel_digests"] = SetOverlaps.pixelDigests(
            pixels: trainSet.pixels, count: trainSet.count, imageBytes: h * w * 3
        ).joined(separator: ",")
        provenance["training_fit"] = dataOptions.fit.rawValue
        if let nd = nearDuplicates {
            provenance["near_duplicates"] = nd.text
            if !nd.groups.isEmpty {
                try writeAtomically(Data((nd.listing + "\n").utf8), to: outDir.appendingPathComponent("near-duplicates.txt"))
            }
        }
        let (_, result) = try runTraining(
            backend: backend, spec: spec, classNames: index.classNames, train: trainSet,
            validation: valSet, config: config, initFrom: initModel, outDir: outDir,
            provenance: provenance, lock: lock, calibrate: calibrate)
        backendOptions.finish(backend)
        let best = result.history[max(0, result.bestEpoch - 1)]
        print("model: \(outDir.appendingPathComponent("model.safetensors").path)")
        print("history: \(outDir.appendingPathComponent("history.csv").path)")
        print(
            String(
                format: "best epoch %d of %d: loss %.4f, accuracy %.3f, val_loss %.4f, val_accuracy %.3f",
                result.bestEpoch, result.history.count, best.loss, best.accuracy,
                best.validationLoss ?? .nan, best.validationAccuracy ?? .nan))
    }
}
