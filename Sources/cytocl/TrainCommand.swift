import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

/// Options of the training loop, shared by `train`, `demo` and (later) `sweep`.
struct TrainingOptions: ParsableArguments {
    @Option(name: .long, help: "rmsprop | adam | sgd.")
    var optimizer: String = "rmsprop"

    @Option(name: .long, help: "Learning rate (default: 0.001 rmsprop, 0.0001 adam, 0.01 sgd).")
    var lr: Float?

    @Option(name: .long, help: "Mini-batch size.")
    var batch: Int = 5

    @Option(name: .long, help: "Maximum number of epochs.")
    var epochs: Int = 500

    @Option(name: .long, help: "Early stopping: epochs without a lower validation loss.")
    var patience: Int = 50

    @Option(name: .long, help: "Random seed (initialisation, shuffling, augmentation, splits).")
    var seed: UInt64 = 1

    @Flag(name: .long, help: "Random rotation (0..359 degrees, nearest edge fill) and flips on every batch.")
    var augment = false

    @Option(name: .long, help: "Resampling of augmented images: nearest (Keras 2.0.8, the paper's) or bilinear.")
    var augmentSampler: String = AugmentSampler.paper.rawValue

    func config() throws -> TrainingConfig {
        guard let kind = OptimizerConfig.Kind(rawValue: optimizer.lowercased()) else {
            throw ValidationError("unknown optimizer '\(optimizer)': use rmsprop, adam or sgd")
        }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard epochs > 0 else { throw ValidationError("--epochs must be positive") }
        guard patience > 0 else { throw ValidationError("--patience must be positive") }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
        var c = TrainingConfig()
        c.optimizer = OptimizerConfig(kind: kind, learningRate: lr)
        c.batchSize = batch; c.maxEpochs = epochs; c.patience = patience; c.seed = seed; c.augment = augment
        c.augmentSampler = try parseAugmentSampler(augmentSampler)
        return c
    }
}

/// The value of `--augment-sampler`.
func parseAugmentSampler(_ text: String) throws -> AugmentSampler {
    guard let s = AugmentSampler(rawValue: text.lowercased()) else {
        throw ValidationError("--augment-sampler: unknown sampler '\(text)': use nearest or bilinear")
    }
    return s
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

/// Trains a network and writes the run directory; shared by `train` and `demo`.
func runTraining(backend: any Backend, spec: ModelSpec, classNames: [String], train: LabeledImages,
                 validation: LabeledImages?, config: TrainingConfig, initFrom: ModelFile?, outDir: URL,
                 provenance: [String: String]) throws -> (Network, TrainingResult) {
    let net = try Network(spec: spec, backend: backend, maxBatch: max(config.batchSize, 32))
    if let m = initFrom { try net.setWeights(m.weights) } else { net.initialize(seed: config.seed) }
    let trainer = try Trainer(network: net, config: config)
    let bar = ProgressBar(title: "training", total: config.maxEpochs)
    let result = try trainer.fit(train: train, validation: validation) { r in
        var detail = String(format: "loss %.4f acc %.3f", r.loss, r.accuracy)
        if let vl = r.validationLoss { detail += String(format: " val_loss %.4f", vl) }
        bar.update(r.epoch, detail)
    }
    if stderrIsTerminal && result.history.count < config.maxEpochs { FileHandle.standardError.write("\n".data(using: .utf8)!) }
    note("\(result.stopReason); best epoch \(result.bestEpoch) (monitored loss \(String(format: "%.5f", result.bestLoss)))")
    var prov = provenance
    prov["epochs_run"] = "\(result.history.count)"
    prov["best_epoch"] = "\(result.bestEpoch)"
    prov["stop_reason"] = "\(result.stopReason)"
    prov["backend"] = backend.deviceDescription
    prov["optimizer"] = "\(config.optimizer.kind.rawValue) lr=\(config.optimizer.learningRate)"
    prov["seed"] = "\(config.seed)"
    if config.augment { prov["augment_sampler"] = config.resolvedAugmentSampler.rawValue }
    prov["created"] = ISO8601DateFormatter().string(from: Date())
    let model = ModelFile(spec: spec, classNames: classNames, weights: net.weights(), provenance: prov)
    try model.write(to: outDir.appendingPathComponent("model.safetensors"))
    try writeAtomically(Data(result.historyCSV.utf8), to: outDir.appendingPathComponent("history.csv"))
    if case .nonFinite = result.stopReason {
        throw CytoError.invalidArgument("training diverged: \(result.stopReason). The best model so far is in \(outDir.path)/model.safetensors; try a lower --lr.")
    }
    return (net, result)
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the network on a data set and write RUN_DIR/model.safetensors and history.csv.")

    @Option(name: .long, help: "Training data (one sub-folder per class, or any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, help: "Run directory for model.safetensors and history.csv.")
    var out: String

    @Option(name: .long, help: "Validation data set (otherwise --val-fraction of the training data).")
    var val: String?

    @Option(name: .long, help: "Fraction of each class held out for validation when --val is not given.")
    var valFraction: Double = 0.2

    @Option(name: .long, help: "Model input WxH (default 257x257, or the --init-from model's).")
    var input: String?

    @Option(name: .long, help: "Start from this model's weights (fine-tuning).")
    var initFrom: String?

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
        let backend = try backendOptions.make()
        let (index, all) = try dataOptions.load(data, height: h, width: w)
        var trainSet = all, valSet: LabeledImages
        if let v = val {
            let (vIndex, vImages) = try dataOptions.load(v, height: h, width: w, title: "decoding validation")
            guard vIndex.classNames == index.classNames else {
                throw ValidationError("validation classes \(vIndex.classNames) differ from training classes \(index.classNames)")
            }
            valSet = vImages
        } else {
            let split = stratifiedSplit(labels: all.labels, fraction: valFraction, seed: config.seed)
            trainSet = all.subset(split.train); valSet = all.subset(split.validation)
        }
        var spec = ModelSpec.paper(height: h, width: w, classes: index.classNames.count)
        if let m = initModel {
            guard m.spec.classes == index.classNames.count else {
                throw ValidationError("--init-from model has \(m.spec.classes) classes but the data has \(index.classNames.count)")
            }
            spec = m.spec
            if (h, w) != (m.spec.inputHeight, m.spec.inputWidth) {
                throw ValidationError("--input \(w)x\(h) differs from the --init-from model's input \(m.spec.inputWidth)x\(m.spec.inputHeight)")
            }
        }
        try spec.validate()
        note("training on \(trainSet.count) images, validating on \(valSet.count); \(spec.parameterCount) parameters")
        let outDir = URL(fileURLWithPath: out)
        let (_, result) = try runTraining(backend: backend, spec: spec, classNames: index.classNames, train: trainSet,
                                          validation: valSet, config: config, initFrom: initModel, outDir: outDir,
                                          provenance: ["data": data, "train_images": "\(trainSet.count)",
                                                       "validation_images": "\(valSet.count)"])
        backendOptions.finish(backend)
        let best = result.history[max(0, result.bestEpoch - 1)]
        print("model: \(outDir.appendingPathComponent("model.safetensors").path)")
        print("history: \(outDir.appendingPathComponent("history.csv").path)")
        print(String(format: "best epoch %d of %d: loss %.4f, accuracy %.3f, val_loss %.4f, val_accuracy %.3f",
                     result.bestEpoch, result.history.count, best.loss, best.accuracy,
                     best.validationLoss ?? .nan, best.validationAccuracy ?? .nan))
    }
}
