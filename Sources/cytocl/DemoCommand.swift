import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "The embedded default: draw a small synthetic blast/other data set, train the paper's network on it and print test metrics.")

    @Option(name: .long, help: "Working directory, new or empty (default: a new temporary folder).")
    var dir: String?

    @Option(name: .long, parsing: .unconditional, help: "Training + validation images.")
    var count: Int = 120

    @Option(name: .long, parsing: .unconditional, help: "Maximum epochs.")
    var epochs: Int = 30

    @Option(name: .long, parsing: .unconditional, help: "Random seed.")
    var seed: UInt64 = 1

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
        if let d = dir { try requireEmptyOutputFolder(d, option: "--dir") }
    }

    func run() throws {
        let root = URL(fileURLWithPath: dir ?? NSTemporaryDirectory() + "cytocl-demo-\(getpid())")
        let trainDir = root.appendingPathComponent("train"), testDir = root.appendingPathComponent("test")
        note("drawing \(count) + 60 synthetic ALL-IDB-style cells (257x257) into \(root.path)")
        try SyntheticCells.generate(into: trainDir, layout: .allIDB, count: count, seed: seed)
        try SyntheticCells.generate(into: testDir, layout: .allIDB, count: 60, seed: seed + 1000)
        let backend = try backendOptions.make()
        let data = DataOptions.defaults
        let (index, all) = try data.load(trainDir.path, height: 257, width: 257)
        let split = ValidationSplit.stratified(labels: all.labels, fraction: 0.25, seed: seed)
        var config = TrainingConfig()
        config.maxEpochs = epochs; config.patience = 10; config.seed = seed; config.augment = true
        let spec = ModelSpec.paper(classes: index.classNames.count)
        let start = Date()
        let run = TrainingRun(root.appendingPathComponent("run"))
        let bar = ProgressBar(title: "training", total: config.maxEpochs)
        let (net, result) = try run.train(
            backend: backend, spec: spec, classNames: index.classNames,
            train: all.subset(split.train), validation: all.subset(split.validation),
            config: config, provenance: ["data": "synthetic all-idb, seed \(seed)"], note: note,
            onEpoch: { bar.update($0.epoch, $0.progressDetail) })
        let seconds = Date().timeIntervalSince(start)
        let (_, test) = try data.load(testDir.path, height: 257, width: 257, title: "decoding test")
        let probs = try Predictor(network: net).probabilities(test)
        let summary = ClassificationReport(probabilities: probs, labels: test.labels, classNames: index.classNames)
        print(
            "trained \(result.history.count) epochs in \(String(format: "%.1f", seconds)) s on \(backend.deviceDescription); best epoch \(result.bestEpoch)"
        )
        print("model: \(run.modelURL.path)")
        print("test set: \(test.count) synthetic images")
        print(summary.text, terminator: "")
        backendOptions.finish(backend)
    }
}

extension DataOptions {
    static var defaults: DataOptions { try! DataOptions.parse([]) }
}
