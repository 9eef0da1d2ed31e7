import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

/// `cytocl sweep`: the paper's cross-validated training-set-size study.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run every (fold, training size) cell of a cross-validation protocol; resumable and shardable.",
        discussion: """
        Protocols: all-idb-binary, aml-binary, multiclass, custom (see PROTOCOL.md).
        Each finished cell is written atomically to OUT/cells/fold<F>-size<S>.json; re-running the same
        command resumes (finished cells are skipped, interrupted ones redone). --shard I/N runs every N-th
        cell starting at I (0-based), so N processes can share one directory. Then: cytocl report OUT.
        """)

    @Option(name: .long, help: "all-idb-binary | aml-binary | multiclass | custom.")
    var `protocol`: String

    @Option(name: .long, help: "Data set folder (any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, help: "Sweep directory (created, or resumed).")
    var out: String

    @Option(name: .long, help: "Training sizes: a list 30,200 or a range 10:200:10 (default: the protocol's).")
    var sizes: String?

    @Option(name: .long, help: "Number of cross-validation folds (default: the protocol's, 10).")
    var folds: Int?

    @Option(name: .long, help: "Balanced test images per fold (default: the protocol's; all-idb/multiclass partition the data).")
    var testPerFold: Int?

    @Option(name: .long, help: "Validation images per fold, drawn from the next fold's test block (default: the protocol's).")
    var valPerFold: Int?

    @Option(name: .long, help: "Run only every N-th cell starting at I (0-based): I/N.")
    var shard: String?

    @Flag(name: .long, help: "Also save each cell's model (cells/fold<F>-size<S>.safetensors).")
    var saveModels = false

    @Option(name: .long, help: "Model input WxH (default: 257x257, 400x400 for aml-binary).")
    var input: String?

    @Option(name: .long, help: "Override the convolution filters, e.g. 4,8,8 (default: the paper's 4,8,8,8,16,16).")
    var conv: String?

    @Option(name: .long, help: "Override the hidden dense units, e.g. 16 (default: 32).")
    var dense: String?

    @Option(name: .long, help: "Maximum epochs per cell (default 500).")
    var epochs: Int?

    @Option(name: .long, help: "Early-stopping patience (default 50).")
    var patience: Int?

    @Option(name: .long, help: "Mini-batch size (default 5).")
    var batch: Int?

    @Option(name: .long, help: "rmsprop | adam | sgd (default: the protocol's).")
    var optimizer: String?

    @Option(name: .long, help: "Learning rate (default: the protocol's).")
    var lr: Float?

    @Flag(inversion: .prefixedNo, help: "Random rotation and flips on training batches (default: the protocol's).")
    var augment: Bool?

    @Option(name: .long, help: "Seed of the fold assignment and of every cell.")
    var seed: UInt64 = 1

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    func intList(_ s: String, _ flag: String) throws -> [Int] {
        let v = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("\(flag) should be positive integers like 4,8,8") }
        return v.map { $0! }
    }

    func makeProtocol() throws -> SweepProtocol {
        var p: SweepProtocol
        do { p = try SweepProtocol.named(`protocol`) } catch { throw ValidationError("\(error)") }
        do {
            if let s = sizes { p.sizes = try parseSizes(s) }
            if let f = folds { p.folds = f }
            if let t = testPerFold { p.testPerFold = t }
            if let v = valPerFold { p.valPerFold = v }
            if let e = epochs { guard e > 0 else { throw ValidationError("--epochs must be positive") }; p.training.maxEpochs = e }
            if let pa = patience { guard pa > 0 else { throw ValidationError("--patience must be positive") }; p.training.patience = pa }
            if let b = batch { guard b > 0 else { throw ValidationError("--batch must be positive") }; p.training.batchSize = b }
            if let o = optimizer {
                guard let kind = OptimizerConfig.Kind(rawValue: o.lowercased()) else {
                    throw ValidationError("unknown optimizer '\(o)': use rmsprop, adam or sgd")
                }
                p.training.optimizer = OptimizerConfig(kind: kind, learningRate: lr)
            } else if let lr {
                p.training.optimizer.learningRate = lr
            }
            if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
            if let a = augment { p.training.augment = a }
        } catch let e as CytoError { throw ValidationError("\(e)") }
        return p
    }

    func run() throws {
        let p = try makeProtocol()
        let shardValue: (index: Int, count: Int)?
        do { shardValue = try shard.map(parseShard) } catch { throw ValidationError("\(error)") }
        var (h, w) = (p.inputSize, p.inputSize)
        if let i = input { (h, w) = try parseSize(i) }
        var dataOpts = dataOptions
        if dataOpts.positive == nil, let pos = p.positiveClasses { dataOpts.positive = pos.joined(separator: ",") }
        if dataOpts.minPerClass == nil, let m = p.minPerClass { dataOpts.minPerClass = m }
        let (index, images) = try dataOpts.load(data, height: h, width: w)
        var spec = ModelSpec.paper(height: h, width: w, classes: index.classNames.count)
        if let c = conv { spec.convFilters = try intList(c, "--conv") }
        if let d = dense { spec.denseUnits = try intList(d, "--dense") }
        do { try spec.validate() } catch { throw ValidationError("\(error)") }
        let sweepData = SweepData(images: images, ids: SweepData.relativeIDs(images.paths, root: index.root),
                                  classNames: index.classNames, path: index.root)
        let runner: SweepRunner
        do {
            runner = try SweepRunner(directory: URL(fileURLWithPath: out), protocol: p, data: sweepData, spec: spec, seed: seed)
        } catch let e as TooSmallError {
            throw ValidationError(e.description)
        } catch let e as CytoError {
            throw ValidationError(e.description)
        }
        runner.saveModels = saveModels
        let backend = try backendOptions.make()
        let mine = runner.cells(shard: shardValue)
        let already = mine.filter(runner.isFinished).count
        note("sweep \(p.name): \(p.folds) folds x \(p.sizes.count) sizes = \(runner.cells.count) cells" +
             (shardValue.map { ", shard \($0.index)/\($0.count): \(mine.count) cells" } ?? "") +
             ", \(already) finished already; \(formatThousands(spec.parameterCount)) parameters")
        let bar = ProgressBar(title: "sweep", total: mine.count)
        var done = already
        let start = Date()
        let outcome = try runner.run(backend: backend, shard: shardValue) { event in
            switch event {
            case .cellStarted: break
            case .epoch(let cell, let r, let maxEpochs):
                var detail = "\(cell): epoch \(r.epoch)/\(maxEpochs) loss \(String(format: "%.3f", r.loss))"
                if let v = r.validationLoss { detail += String(format: " val %.3f", v) }
                bar.update(done, detail)
            case .cellFinished(let rec):
                done += 1
                bar.update(done, "fold \(rec.fold) size \(rec.size): \(rec.metric) \(String(format: "%.3f", rec.value))")
            case .cellSkipped: break
            }
        }
        backendOptions.finish(backend)
        note("ran \(outcome.ran.count) cells in \(formatDuration(Date().timeIntervalSince(start))), \(outcome.finished.count) were finished already" +
             (outcome.busy.isEmpty ? "" : ", \(outcome.busy.count) are running in another process (\(outcome.busy.map(\.description).joined(separator: ", ")))"))
        let total = runner.cells.filter(runner.isFinished).count
        print("\(out): \(total) of \(runner.cells.count) cells finished")
    }
}
