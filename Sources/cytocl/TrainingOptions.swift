import ArgumentParser
import CytoCore
import CytoTrain

/// Options of the training loop, one group for `train` and `sweep`. Each is optional:
/// what is not given keeps the base configuration's value (`train`: the defaults below;
/// `sweep`: the protocol's), so the two commands accept and check the same values.
struct TrainingOptions: ParsableArguments {
    @Option(name: .long, help: "The optimizer (default: rmsprop; sweep: the protocol's).")
    var optimizer: OptimizerConfig.Kind?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Learning rate (default: 0.001 rmsprop, 0.0001 adam, 0.01 sgd; sweep: the protocol's).")
    var lr: Float?

    @Option(
        name: .long,
        help:
            "Optimizer formulas: keras2 (Keras 2.0.8, the paper's: RMSprop epsilon 1e-8 outside the square root, Adam epsilon 1e-8) or keras3 (epsilon 1e-7, inside the root for RMSprop) (default: keras2; sweep: the protocol's)."
    )
    var optimizerForm: OptimizerConfig.Form?

    @Option(name: .long, parsing: .unconditional, help: "Mini-batch size (default: 5; sweep: the protocol's).")
    var batch: Int?

    @Option(name: .long, parsing: .unconditional, help: "Maximum number of epochs (default: 500; sweep: the protocol's).")
    var epochs: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Early stopping: epochs without a lower validation loss (default: 50; sweep: the protocol's).")
    var patience: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Random seed (initialisation, shuffling, augmentation, splits; a sweep's fold assignment and every cell).")
    var seed: UInt64 = 1

    @Flag(
        inversion: .prefixedNo,
        help: "Random rotation (0..359 degrees, nearest edge fill) and flips on every batch (default: off; sweep: the protocol's).")
    var augment: Bool?

    @Option(name: .long, help: "Resampling of augmented images: nearest (Keras 2.0.8, the paper's default) or bilinear.")
    var augmentSampler: AugmentSampler?

    func validate() throws {
        if let batch, !(1...1_000_000).contains(batch) { throw ValidationError("--batch must be between 1 and 1000000") }
        if let epochs, !(1...1_000_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 1000000") }
        if let patience, !(1...1_000_000).contains(patience) { throw ValidationError("--patience must be between 1 and 1000000") }
        if let lr, lr.isInfinite, lr > 0 {
            throw ValidationError("--lr is too large: it must be a finite 32-bit float, at most \(Float.greatestFiniteMagnitude)")
        }
        if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
    }

    /// `base` with the options given. The seed is set only with `applyingSeed`: a
    /// sweep's cells draw their own seeds from it, and its protocol keeps its own.
    func config(base: TrainingConfig = TrainingConfig(), applyingSeed: Bool = true) throws -> TrainingConfig {
        try validate()
        var c = base
        if let optimizer {
            c.optimizer = OptimizerConfig(kind: optimizer, learningRate: lr)
        } else if let lr {
            c.optimizer.learningRate = lr
        }
        if let optimizerForm { c.optimizer.form = optimizerForm }
        if let batch { c.batchSize = batch }
        if let epochs { c.maxEpochs = epochs }
        if let patience { c.patience = patience }
        if let augment { c.augment = augment }
        if let augmentSampler { c.augmentSampler = augmentSampler }
        if applyingSeed { c.seed = seed }
        return c
    }
}
