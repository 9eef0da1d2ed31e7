import ArgumentParser
import CytoCore
import CytoData
import CytoSweep
import CytoTrain
import Foundation

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

    @Option(name: .long, help: "Convolution filters, e.g. 4,8,8 (default: the paper's 4,8,8,8,16,16; not with --init-from).")
    var conv: String?

    @Option(name: .long, help: "Hidden dense units, e.g. 16 (default: 32; not with --init-from).")
    var dense: String?

    @Option(name: .long, help: "Start from this model's weights (fine-tuning).")
    var initFrom: String?

    func validate() throws {
        if let c = conv { _ = try NetworkOptions.positiveList(c, "--conv") }
        if let d = dense { _ = try NetworkOptions.positiveList(d, "--dense") }
        if initFrom != nil, conv != nil || dense != nil {
            throw ValidationError("--conv and --dense are the --init-from model's; give them only to train a new network")
        }
    }

    /// The paper's network at the input size with --conv and --dense (a new network).
    func newSpec(height h: Int, width w: Int, classes: Int) throws -> ModelSpec {
        try NetworkOptions.spec(height: h, width: w, classes: classes, conv: conv, dense: dense)
    }

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
        try (initModel?.spec ?? newSpec(height: h, width: w, classes: 2)).validate()
        // Every output location is checked before the data is decoded and the first
        // epoch runs, not found unwritable after the last.
        let runFolder = TrainingRun(URL(fileURLWithPath: out))
        // Data refused after the preflight (a bad image, too few classes) leaves no empty run
        // folder behind (the lock below is released first: defers run in reverse).
        let created = OSPath.missingFolders(runFolder.directory)
        defer { OSPath.removeEmptyFolders(created) }
        try AtomicFile.preflight(runFolder.outputs)
        let lock = try CellClaim.lockRunFolder(URL(fileURLWithPath: out))
        defer { CellClaim.release(at: lock) }
        // A trained model is not replaced by accident (a reused --out): only on request.
        try outputs.check([runFolder.modelURL])
        let backend = try backendOptions.make()
        // The network's memory is known before the data: refuse now rather than after decoding.
        let sizingSpec = try initModel?.spec ?? newSpec(height: h, width: w, classes: 2)
        try requireNetworkMemory(sizingSpec, maxBatch: max(config.batchSize, 32), backend: backend)
        // A full disk is found now, not when the model is written after the last epoch
        // (weights, plus 1 MiB for the provenance, the history and the file system).
        try AtomicFile.requireFreeSpace(
            Int64(sizingSpec.parameterCount) * 4 + (1 << 20), in: runFolder.directory, for: "the model and its history")
        // The run folder (created by the preflight above) is never read as data.
        let (index, all, nearDuplicates) = try dataOptions.loadHandlingNearDuplicates(data, height: h, width: w, excluding: [out])
        var trainSet = all, valSet: LabeledImages
        if let v = val {
            let (vIndex, vImages) = try dataOptions.load(v, height: h, width: w, title: "decoding validation", excluding: [out])
            guard vIndex.classNames == index.classNames else {
                throw RunError(
                    "--val \(FileSystemPath.visible(v)): its classes \(vIndex.classNames.joined(separator: ", ")) are not the training classes \(index.classNames.joined(separator: ", ")) (the same class folders are needed)"
                )
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
            var split = ValidationSplit.stratified(labels: all.labels, fraction: valFraction, seed: config.seed)
            if let nd = nearDuplicates, nd.policy == .group, !nd.groups.isEmpty {
                split = ValidationSplit.keepingGroupsTogether(
                    split, groups: nd.groups, ids: DatasetIndex.relativeIDs(all.paths, root: index.root))
            }
            trainSet = all.subset(split.train); valSet = all.subset(split.validation)
            guard trainSet.count > 0 else {
                // Was "the training set is empty", after "training on 0 images".
                throw RunError(
                    "--val-fraction \(valFraction) holds out all \(all.count) images of \(FileSystemPath.visible(data)) for validation: none is left to train on; give a smaller fraction")
            }
            guard valSet.count > 0 else {
                // Every class down to one image (near-duplicates dropped): training ran with
                // no validation image and stopped as "diverged ... try a lower --lr".
                throw RunError(
                    "--val-fraction \(valFraction) holds out no image of \(FileSystemPath.visible(data)): no class has two different images to split"
                        + (nearDuplicates.map { $0.policy == .drop && !$0.groups.isEmpty ? " once near-duplicates are dropped" : "" } ?? "")
                        + ", and early stopping needs validation images; give --val DIR or more images")
            }
        }
        // The paper's network is built only for a new one: it validates itself, and
        // refused every --init-from model whose input is too small for six conv blocks.
        let spec: ModelSpec
        if let m = initModel {
            // Said in one line with both class lists (a ValidationError printed the usage
            // after it, though the command line was right and the data was the problem).
            guard m.spec.classes == index.classNames.count else {
                throw CytoError.invalidArgument(
                    "--init-from \(initFrom ?? "") has \(m.spec.classes) classes (\(m.classNames.joined(separator: ", "))) but the data has "
                        + "\(index.classNames.count) (\(index.classNames.joined(separator: ", "))); fine-tune on data of as many classes")
            }
            spec = m.spec
            if (h, w) != (m.spec.inputHeight, m.spec.inputWidth) {
                throw ValidationError(
                    "--input \(w)x\(h) differs from the --init-from model's input \(m.spec.inputWidth)x\(m.spec.inputHeight)")
            }
        } else {
            spec = try newSpec(height: h, width: w, classes: index.classNames.count)
        }
        try spec.validate()
        note("training on \(trainSet.count) images, validating on \(valSet.count); \(spec.parameterCount) parameters")
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
                try writeAtomically(Data((nd.listing + "\n").utf8), to: runFolder.nearDuplicatesURL)
            }
        }
        // From here a SIGTERM (a cluster's time limit) or Ctrl-C stops after the current
        // batch and the best model so far is written (exit 128 + signal); before, there is
        // nothing to keep and the default action ends the process.
        StopRequest.install()
        let bar = ProgressBar(title: "training", total: config.maxEpochs)
        let (_, result) = try runFolder.train(
            backend: backend, spec: spec, classNames: index.classNames, train: trainSet, validation: valSet, config: config,
            initFrom: initModel, provenance: provenance, calibrate: calibrate, note: note,
            onEpoch: { r in
                CellClaim.touch(lock)  // the heartbeat that keeps the lock live for other hosts
                bar.update(r.epoch, r.progressDetail)
            }, interruption: { StopRequest.caught })
        backendOptions.finish(backend)
        let best = result.history[max(0, result.bestEpoch - 1)]
        print("model: \(runFolder.modelURL.path)")
        print("history: \(runFolder.historyURL.path)")
        print(
            String(
                format: "best epoch %d of %d: loss %.4f, accuracy %.3f, val_loss %.4f, val_accuracy %.3f",
                result.bestEpoch, result.history.count, best.loss, best.accuracy,
                best.validationLoss ?? .nan, best.validationAccuracy ?? .nan))
    }
}
