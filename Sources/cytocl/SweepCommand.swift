import ArgumentParser
import CytoBackends
import CytoCPU
import CytoCore
import CytoData
import CytoOpenCL
import CytoTrain
import CytoSelect
import CytoSweep
import Foundation
import Synchronization

/// `cytocl sweep`: the paper's cross-validated training-set-size study. A command group
/// whose default subcommand runs the sweep, so `cytocl sweep --protocol ...` works as before.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a cross-validation sweep (default), or show its status, or retry its failed and missing cells.",
        subcommands: [SweepRunCommand.self, SweepStatusCommand.self, SweepRetryCommand.self],
        defaultSubcommand: SweepRunCommand.self)
}

/// `cytocl sweep [run] --protocol P --data DIR --out SWEEP_DIR ...`
struct SweepRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every (fold, training size) cell of a cross-validation protocol; resumable and shardable.",
        discussion: """
            Protocols: all-idb-binary, aml-binary, multiclass, custom (see docs/protocol.md).
            Each finished cell is written atomically to OUT/cells/fold<F>-size<S>.json; re-running the same
            command resumes (finished cells are skipped, interrupted ones redone). --shard I/N runs every N-th
            cell starting at I (0-based), so N processes can share one directory. Then: cytocl report OUT.
            Images are decoded once into a checksummed cache (DATA/.cytocl-cache, or --cache-dir; when DATA is not
            writable, $XDG_CACHE_HOME/cytocl/datasets/<folder>-<hash>, default ~/.cache); each cell
            copies out only its training and validation images and streams its test images.
            --sizes accepts `all` (every training image of a fold), e.g. 10:100:10,200,500,1000,all: balanced
            where the classes allow; otherwise the smaller class gives all it has and the larger fills the rest,
            and a size above a fold's whole training pool takes that pool (stated before training and in the report).
            --slurm writes OUT/slurm/sweep.sbatch (a job array, one task per shard) and submits it with sbatch;
            --slurm-args="--partition=gpu --time=4:00:00 --gres=gpu:1" passes options to sbatch; --dry-run only
            writes the script. --devices opencl:0.0*4,cpu or --jobs N runs cells concurrently (N per device with *N);
            without them the CPU backend runs one cell per core.
            See also: cytocl sweep status OUT, cytocl sweep retry OUT [--slurm].
            """)

    @Option(name: .long, help: "all-idb-binary | aml-binary | multiclass | custom.")
    var `protocol`: String

    @Option(name: .long, help: "Data set folder (any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, help: "Sweep directory (created, or resumed).")
    var out: String

    @Option(
        name: .long,
        help: "Training sizes: a list 30,200, a range 10:200:10, `all`, or a mix 10:100:10,200,1000,all (default: the protocol's).")
    var sizes: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of cross-validation folds (default: the protocol's, 10).")
    var folds: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Balanced test images per fold (default: the protocol's; all-idb/multiclass partition the data).")
    var testPerFold: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Validation images per fold, drawn from the next fold's test block (default: the protocol's).")
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

    @Option(name: .long, parsing: .unconditional, help: "Maximum epochs per cell (default 500).")
    var epochs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Early-stopping patience (default 50).")
    var patience: Int?

    @Option(name: .long, parsing: .unconditional, help: "Mini-batch size (default 5).")
    var batch: Int?

    @Option(name: .long, help: "The optimizer (default: the protocol's).")
    var optimizer: OptimizerConfig.Kind?

    @Option(name: .long, parsing: .unconditional, help: "Learning rate (default: the protocol's).")
    var lr: Float?

    @Option(
        name: .long,
        help:
            "Optimizer formulas: keras2 (Keras 2.0.8, the paper's: RMSprop epsilon 1e-8 outside the square root) or keras3 (default: the protocol's, keras2 for every protocol)."
    )
    var optimizerForm: OptimizerConfig.Form?

    @Flag(inversion: .prefixedNo, help: "Random rotation and flips on training batches (default: the protocol's).")
    var augment: Bool?

    @Option(name: .long, help: "Resampling of augmented images: nearest (Keras 2.0.8, the paper's default) or bilinear.")
    var augmentSampler: AugmentSampler?

    @Option(name: .long, parsing: .unconditional, help: "Seed of the fold assignment and of every cell.")
    var seed: UInt64 = 1

    @Option(
        name: .long, parsing: .unconditional,
        help:
            "Re-initialise a cell with the next seed when its training loss is still at chance (ln classes ± 0.02) after 10 epochs, at most N times (default 0: off, as the paper)."
    )
    var restarts: Int?

    @Option(
        name: .long,
        help:
            "Folder of the decoded-image cache (default: DATA/.cytocl-cache, or $XDG_CACHE_HOME/cytocl/datasets/... when DATA is read-only)."
    )
    var cacheDir: String?

    @Flag(name: .long, help: "Rebuild the decoded-image cache even when it is current.")
    var rebuildCache = false

    @Option(name: .long, help: "Run only the cells listed in this file ('FOLD SIZE' per line; written by `sweep retry`).")
    var cellsFile: String?

    @Flag(name: .long, help: "Submit the sweep to Slurm as a job array (one task per shard) instead of running it here.")
    var slurm = false

    @Option(
        name: .long, parsing: .unconditional,
        help: "Options passed to sbatch, e.g. --slurm-args \"--partition=gpu --time=4:00:00 --gres=gpu:1\".")
    var slurmArgs: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of Slurm array tasks (default: one per cell to run, at most 1000).")
    var tasks: Int?

    @Flag(name: .long, help: "With --slurm: write the sbatch script but do not submit it.")
    var dryRun = false

    @Option(
        name: .long,
        help:
            "Run cells concurrently on these devices, SELECTOR or SELECTOR*N for N cells at once on one device: e.g. opencl:0.0*4,opencl:0.1,cpu*2."
    )
    var devices: String?

    @Option(
        name: .long, parsing: .unconditional,
        help:
            "Run N cells concurrently on the CPU backend, threads split between them (default: one cell per core; 1: one cell on all cores)."
    )
    var jobs: Int?

    @Option(
        name: .long,
        help:
            "How training sets are chosen: random (the protocol's draw), or a strategy that picks each fold's sets from its whole training pool, each size extending the last (docs/selection.md)."
    )
    var selection: SelectionStrategy = .random

    @Option(name: .long, help: "The label-free description a --selection strategy measures distances in.")
    var selectionEmbedding: EmbeddingKind = .stain

    @Option(name: .long, help: "The metric of every cell: roc_auc (two classes) or f1_weighted (default: the protocol's).")
    var metric: SweepMetric?

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
            if let b = batch {
                guard (1...1_000_000).contains(b) else { throw ValidationError("--batch must be between 1 and 1000000") };
                p.training.batchSize = b
            }
            if let kind = optimizer {
                p.training.optimizer = OptimizerConfig(kind: kind, learningRate: lr)
            } else if let lr {
                p.training.optimizer.learningRate = lr
            }
            if let f = optimizerForm { p.training.optimizer.form = f }
            if let lr, !(lr > 0 && lr.isFinite) { throw ValidationError("--lr must be a positive number") }
            if let m = metric { p.metric = m.rawValue }
            if let a = augment { p.training.augment = a }
            if let s = augmentSampler { p.training.augmentSampler = s }
            if let r = restarts {
                guard (0...100).contains(r) else { throw ValidationError("--restarts must be between 0 and 100") }
                p.restarts = r > 0 ? r : nil
            }
        } catch let e as CytoError { throw ValidationError("\(e)") }
        return p
    }

    /// Indexes the data set and opens (building when needed) its decoded-image cache.
    func loadData(height h: Int, width w: Int, protocol p: SweepProtocol) throws -> SweepData {
        var dataOpts = dataOptions
        if dataOpts.positive == nil, let pos = p.positiveClasses { dataOpts.positive = pos.joined(separator: ",") }
        if dataOpts.minPerClass == nil, let m = p.minPerClass { dataOpts.minPerClass = m }
        let index = try DatasetIndex.load(path: data, options: dataOpts.datasetOptions(dedupe: true, excluding: [out]))
        if let d = index.dedup, !d.dropped.isEmpty { note(d.summary) }
        let bar = ProgressBar(title: "caching", total: index.items.count)
        let t0 = Date()
        let fit = try dataOpts.fitPolicy()
        let cache = try offeringSkipBadImages {
            try ImageCache.open(
                index: index, height: h, width: w, fit: fit,
                directory: cacheDir.map { URL(fileURLWithPath: $0) }, skipBad: dataOpts.skipBadImages,
                rebuild: rebuildCache, progress: { done, _ in bar.update(done) })
        }
        if index.unlabelled > 0, let l = dataOpts.labels {
            note("\(l): \(index.unlabelled) images of \(data) are not listed and were left out")
        }
        if let w = index.unnamedNote { note(w) }
        var keep = cache.available.indices.filter { cache.available[$0] }
        let unreadable = index.items.count - keep.count
        var nearDuplicates: NearDuplicateSummary?
        if dataOpts.nearDuplicates != .off {
            let params = try dataOpts.nearDuplicateParameters()
            let (scan, computed) = try NearDuplicateScan.scan(cache: cache, parameters: params) { note($0) }
            if computed {
                note(
                    String(
                        format: "near-duplicate scan of %d images: %.1f s, %d candidate pairs compared (stored beside the cache)",
                        cache.count, scan.seconds, scan.compared ?? 0))
            }
            // Pairs among the available images, re-indexed to positions in `keep`.
            var position: [Int: Int] = [:]
            for (k, i) in keep.enumerated() { position[i] = k }
            let pairs = scan.pairs.compactMap { p -> NearDuplicatePair? in
                guard let a = position[p.a], let b = position[p.b] else { return nil }
                // Keep how b matched a: the listing and sweep.json name the transform.
                return NearDuplicatePair(a: a, b: b, similarity: p.similarity, orientation: p.orientation, shifted: p.shifted)
            }
            let available = keep.map { index.items[$0] }
            let (kept, summary) = NearDuplicates.apply(
                policy: dataOpts.nearDuplicates, parameters: params, pairs: pairs, items: available,
                ids: DatasetIndex.relativeIDs(available.map(\.path), root: index.root))
            keep = kept.map { keep[$0] }
            note(summary.groups.isEmpty ? summary.text : summary.listing)
            nearDuplicates = summary
        }
        let items = keep.map { index.items[$0] }
        let counts = index.classNames.indices.map { k in items.lazy.filter { $0.label == k }.count }
        note(
            "\(data): \(index.layout.rawValue) layout, \(items.count) images, classes "
                + zip(index.classNames, counts).map { "\($0) \($1)" }.joined(separator: ", "))
        if let n = cache.locationNote { note(n) }
        if let r = cache.rebuildReason { note("rebuilt the cache: \(r)") }
        note(
            (cache.wasBuilt
                ? "decoded into the cache in \(formatDuration(Date().timeIntervalSince(t0)))" : "cache is current (every image checked)")
                + ": \(cache.url.path)" + (unreadable > 0 ? "; \(unreadable) unreadable images skipped" : ""))
        if let r = cache.report { note(r.summary); noteWarnings(r) }
        let paths = items.map(\.path)
        var sweepData = SweepData(
            cache: cache, cacheIndices: keep, labels: items.map(\.label), paths: paths,
            ids: DatasetIndex.relativeIDs(paths, root: index.root), classNames: index.classNames, path: index.root)
        sweepData.nearDuplicates = nearDuplicates
        return sweepData
    }

    /// The backends cells run on: --devices, --jobs, or the one --backend. Every
    /// entry is its own backend (own OpenCL context and queue, or own CPU thread
    /// share), so `opencl:0.0*4` runs four cells on one device at once.
    /// - Parameter pending: cells left to run here; the CPU default never starts more
    ///   cells than that, so a shard of one cell (a Slurm task) still uses every core.
    func makeBackends(pending: Int) throws -> [any Backend] {
        let cores = backendOptions.threads ?? ProcessInfo.processInfo.activeProcessorCount
        if let d = devices {
            guard jobs == nil else { throw ValidationError("use either --devices or --jobs") }
            let entries: [SweepDevices.Entry]
            do { entries = try SweepDevices.parse(d) } catch { throw ValidationError("\(error)") }
            let cpuCells = entries.filter { $0.selector == "cpu" }.reduce(0) { $0 + $1.cells }
            var result: [any Backend] = []
            for e in entries {
                let threads = e.selector == "cpu" ? max(1, cores / max(1, cpuCells)) : backendOptions.threads
                for _ in 0..<e.cells {
                    let choice = try BackendSelection.make(
                        e.selector,
                        options: .init(
                            profile: backendOptions.profile,
                            fastMath: backendOptions.fastMath, threads: threads))
                    if result.isEmpty || e.cells == 1 { note(choice.note) }
                    result.append(choice.backend)
                }
                if e.cells > 1 { note("  \(e.cells) cells at a time on \(e.selector)") }
            }
            return result
        }
        if let j = jobs {
            guard j >= 1 else { throw ValidationError("--jobs must be at least 1") }
            let threads = max(1, cores / j)
            note("running \(j) cells at a time on the CPU backend, \(threads) thread\(threads == 1 ? "" : "s") each")
            return (0..<j).map { _ in cpuBackend(threads: threads) }
        }
        let one = try backendOptions.make()
        // The CPU backend's default: several cells with fewer threads each (measured
        // faster than one cell on every core at the paper's batch 5; see SweepDevices).
        if let cpu = one as? CPUBackend, backendOptions.threads == nil,
            ProcessInfo.processInfo.environment["CYTOCL_THREADS"] == nil
        {
            let cells = min(SweepDevices.defaultCPUCells(cores: cpu.threads), max(1, pending))
            if cells > 1 {
                let threads = max(1, cpu.threads / cells)
                note(
                    "running \(cells) cells at a time on the CPU backend, \(threads) thread\(threads == 1 ? "" : "s") each "
                        + "(--jobs 1 for one cell on all cores)")
                return (0..<cells).map { _ in cpuBackend(threads: threads) }
            }
        }
        return [one]
    }

    /// One CPU backend for a cell, with the command's profiling choice.
    func cpuBackend(threads: Int) -> any Backend {
        let b = CPUBackend(threads: threads)
        b.profiling = backendOptions.profile
        return b
    }

    /// Every option is checked here, before anything is written: a bad value found after
    /// `sweep.json` was written (a bad --devices, --jobs 0, an unbalanced --slurm-args)
    /// used to leave the directory behind, and the corrected rerun was then refused as
    /// "made with other settings" or retried with the bad value from invocation.json.
    func validate() throws {
        let p = try makeProtocol()
        _ = try shardValue()
        if slurm && shard != nil { throw ValidationError("--slurm makes its own shards; leave out --shard") }
        if (dryRun || slurmArgs != nil || tasks != nil) && !slurm {
            throw ValidationError("--dry-run, --slurm-args and --tasks go with --slurm")
        }
        if let t = tasks, t < 1 { throw ValidationError("--tasks must be at least 1") }
        if let a = slurmArgs {
            do { _ = try Slurm.splitArguments(a) } catch { throw ValidationError("\(error)") }
        }
        if let d = devices {
            guard jobs == nil else { throw ValidationError("use either --devices or --jobs") }
            do { _ = try SweepDevices.parse(d) } catch { throw ValidationError("\(error)") }
        }
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be at least 1") }
        if let t = backendOptions.threads, !(1...4096).contains(t) { throw ValidationError("--threads must be between 1 and 4096") }
        _ = try dataOptions.nearDuplicateParameters()
        // The network's shape does not depend on the class count: check it before the data is read.
        let (h, w) = try inputSize(p)
        var spec = ModelSpec.paper(height: h, width: w, classes: 2)
        if let c = conv { spec.convFilters = try intList(c, "--conv") }
        if let d = dense { spec.denseUnits = try intList(d, "--dense") }
        do { try spec.validate() } catch { throw ValidationError("\(error)") }
    }

    func shardValue() throws -> (index: Int, count: Int)? {
        do { return try shard.map(parseShard) } catch { throw ValidationError("\(error)") }
    }

    /// The model input (height, width): --input, or the protocol's.
    func inputSize(_ p: SweepProtocol) throws -> (Int, Int) {
        if let i = input { return try parseSize(i) }
        return (p.inputSize, p.inputSize)
    }

    func run() throws {
        let p = try makeProtocol()
        let shardValue = try shardValue()
        var only: Set<SweepCell>?
        if let f = cellsFile {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: f)) } catch {
                throw RunError("--cells-file: \(describeFileError(error))")
            }
            let text: String
            do { text = try TextFile.decode(data) } catch { throw RunError("--cells-file \(f): \(error)") }
            do { only = Set(try CellList.parse(text)) } catch { throw ValidationError("--cells-file \(f): \(error)") }
        }
        let (h, w) = try inputSize(p)
        // The sweep directory must be writable before the data is indexed and cached.
        let outURL = URL(fileURLWithPath: out)
        let layout = SweepLayout(outURL)
        try AtomicFile.preflight([layout.manifestURL, layout.recordURL(SweepCell(fold: 0, size: 1))])
        // A folder where a cell's file goes fails now, not after the data is cached and trained on.
        try SweepRunner.preflightCellFiles(
            directory: outURL, cells: (0..<p.folds).flatMap { f in p.sizes.map { SweepCell(fold: f, size: $0) } }
                .filter { only?.contains($0) ?? true }, saveModels: saveModels)
        let sweepData = try loadData(height: h, width: w, protocol: p)
        var spec = ModelSpec.paper(height: h, width: w, classes: sweepData.classNames.count)
        if let c = conv { spec.convFilters = try intList(c, "--conv") }
        if let d = dense { spec.denseUnits = try intList(d, "--dense") }
        do { try spec.validate() } catch { throw ValidationError("\(error)") }
        // A new directory's sweep.json is written only once the backends are made and the
        // memory is checked: a run refused here leaves nothing that refuses the corrected one.
        let runner: SweepRunner
        do {
            runner = try SweepRunner(
                directory: URL(fileURLWithPath: out), protocol: p, data: sweepData, spec: spec, seed: seed, creating: false,
                selection: selection == .random ? nil : SweepSelection(strategy: selection, embedding: selectionEmbedding))
        } catch let e as TooSmallError {
            // The data, not the arguments, decide this: one line, exit 1, no usage block.
            throw RunError(e.description)
        }
        runner.saveModels = saveModels
        let invocation = SweepInvocation(
            arguments: SweepInvocation.recorded(Array(CommandLine.arguments.dropFirst())),
            workingDirectory: FileManager.default.currentDirectoryPath,
            executable: SweepInvocation.currentExecutable)
        if slurm {
            try runner.create()
            if shardValue == nil && cellsFile == nil { try? invocation.write(to: runner.directory) }
            let pending = runner.cells(shard: nil, only: only).filter { !runner.isFinished($0) }
            try submitToSlurm(
                invocation: invocation, sweep: runner.directory, pending: pending.count, cellsFile: cellsFile,
                slurmArgs: slurmArgs, tasks: tasks, dryRun: dryRun)
            return
        }
        let backends = try makeBackends(pending: runner.cells(shard: shardValue, only: only).filter { !runner.isFinished($0) }.count)
        // Every cell builds the same network: refuse now if it cannot fit (CPU backends share host memory).
        let cpuBackends = backends.filter { $0.kind == "cpu" }.count
        let cellBatch = max(p.training.batchSize, 32)
        // Device memory per cell: the network plus the largest training and validation
        // sets as uint8. Cells sharing one device (SEL*N) must fit together.
        var perCell = spec.networkMemory(maxBatch: cellBatch)
        let largestSet =
            (runner.manifest.sizes.max() ?? 0) * (p.balancePerClass ? max(1, sweepData.classNames.count) : 1)
            + (p.valPerFold ?? 0)
        perCell.add(
            "training and validation images", count: checkedProduct(largestSet, spec.inputChannels, spec.inputHeight, spec.inputWidth),
            elementBytes: 1)
        var perDevice: [String: Int] = [:]
        for b in backends where b.kind != "cpu" { perDevice[b.deviceDescription, default: 0] += 1 }
        for (device, cells) in perDevice.sorted(by: { $0.key < $1.key }) {
            var need = spec.networkMemory(maxBatch: cellBatch)
            if cells > 1 {
                need.what = "\(cells) concurrent cells on \(device), each with \(need.what),"
                need.bytes = need.bytes.flatMap { checkedProduct($0, cells) }
            }
            if let b = backends.first(where: { $0.deviceDescription == device }) { try need.check(against: b.memoryLimit()) }
            if let bytes = perCell.bytes {
                note(
                    String(
                        format:
                            "device memory per cell on %@: about %.1f MB (network at batch %d and up to %d images); %d cell%@ at a time",
                        device as NSString, Double(bytes) / 1_048_576, cellBatch, largestSet, cells, (cells == 1 ? "" : "s") as NSString))
            }
        }
        if cpuBackends > 0 {
            var need = spec.networkMemory(maxBatch: cellBatch)
            if cpuBackends > 1 {
                need.what = "\(cpuBackends) concurrent cells, each with \(need.what),"
                need.bytes = need.bytes.flatMap { checkedProduct($0, cpuBackends) }
            }
            try need.check(against: MemoryLimit.host())
        }
        try runner.create()
        if shardValue == nil && cellsFile == nil { try? invocation.write(to: runner.directory) }
        let mine = runner.cells(shard: shardValue, only: only)
        let already = mine.filter(runner.isFinished).count
        let sizesText = runner.manifest.sizes.map { runner.manifest.protocolSettings.sizeLabel($0) }.joined(separator: ",")
        note(
            "sweep \(p.name): \(p.folds) folds x \(runner.manifest.sizes.count) sizes (\(sizesText)) = \(runner.cells.count) cells"
                + (shardValue.map { ", shard \($0.index)/\($0.count): \(mine.count) cells" } ?? "")
                + (only.map { ", \($0.count) listed cells" } ?? "")
                + ", \(already) finished already; \(formatThousands(spec.parameterCount)) parameters"
                + (backends.count > 1 ? "; \(backends.count) cells at a time" : ""))
        for line in runner.manifest.assignment.balanceNotes(protocol: runner.manifest.protocolSettings) { note(line) }
        let display = DeviceProgress(devices: backends.map(\.deviceDescription), total: mine.count, done: already)
        let start = Date()
        let outcome = try runner.run(backends: backends, shard: shardValue, only: only) { w, event in
            display.handle(worker: w, event: event)
        }
        display.finish()
        for b in backends { backendOptions.finish(b) }
        note(
            "ran \(outcome.ran.count) cells in \(formatDuration(Date().timeIntervalSince(start))), \(outcome.finished.count) were finished already"
                + (outcome.busy.isEmpty
                    ? ""
                    : ", \(outcome.busy.count) are running in another process (\(outcome.busy.map(\.description).joined(separator: ", ")))")
        )
        for f in outcome.failed { note("FAILED \(f.cell): \(f.message)") }
        for d in outcome.failedDevices { note("device failed, no further cells run on it: \(d.device): \(d.message)") }
        let total = runner.cells.filter(runner.isFinished).count
        print("\(out): \(total) of \(runner.cells.count) cells finished")
        if !outcome.failed.isEmpty {
            note(SweepRunCommand.failureSummary(outcome, out: out))
            throw ExitCode(1)
        }
    }
}

extension SweepRunCommand {
    /// The last line of a sweep with failed cells. Where a cell's error file could not be
    /// written (a full disk) it says so, with the error that failed the cell and the one
    /// that kept it from being recorded, instead of pointing at files that do not exist.
    static func failureSummary(_ outcome: SweepRunner.Outcome, out: String) -> String {
        let failed = outcome.failed, unrecorded = outcome.unrecorded
        let one = failed.count == 1
        let retry = "`cytocl sweep retry \(out)` redoes \(one ? "it" : "them")"
        let cells = "\(failed.count) cell\(one ? "" : "s") failed"
        guard let first = unrecorded.first else { return "\(cells) (errors in \(out)/cells/*.error.json); \(retry)" }
        let message = failed.first { $0.cell == first.cell }?.message ?? "?"
        if unrecorded.count < failed.count {
            return "\(cells) (errors in \(out)/cells/*.error.json, except \(unrecorded.map(\.cell.description).joined(separator: ", ")), "
                + "whose error file\(unrecorded.count == 1 ? "" : "s") could not be written (\(first.reason)): "
                + "\(first.cell): \(message)); \(retry)"
        }
        return "\(cells) (\(first.cell): \(message)); "
            + (one ? "its error file could not be written either" : "none of their error files could be written")
            + " (\(first.reason)), so the FAILED line\(one ? "" : "s") above \(one ? "is" : "are") the only record and "
            + "`sweep status` shows \(one ? "the cell" : "them") as missing; \(retry)"
    }
}

/// Writes the job-array script and, unless `dryRun`, submits it; prints the job id.
func submitToSlurm(
    invocation: SweepInvocation, sweep: URL, pending: Int, cellsFile: String?, slurmArgs: String?,
    tasks: Int?, dryRun: Bool, name: String = "sweep.sbatch"
) throws {
    let extra: [String]
    do { extra = try Slurm.splitArguments(slurmArgs ?? "") } catch { throw ValidationError("\(error)") }
    guard pending > 0 || dryRun else {
        print("\(sweep.path): no cell to run (all finished); nothing submitted")
        return
    }
    let n = max(1, min(tasks ?? min(pending, 1000), max(1, pending)))
    if let t = tasks, t < 1 { throw ValidationError("--tasks must be at least 1") }
    let cells = cellsFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    let text = Slurm.script(
        executable: invocation.executable, arguments: invocation.arguments(for: sweep), tasks: n, sweep: sweep.standardizedFileURL,
        workingDirectory: try invocation.runDirectory(for: sweep), cellsFile: cells, slurmArguments: extra)
    let script = try Slurm.writeScript(text, sweep: sweep, name: name)
    if dryRun {
        note("wrote \(script.path) (\(n) array tasks for \(pending) cells); not submitted (--dry-run)")
        print(script.path)
        return
    }
    let id: String
    do { id = try Slurm.submit(script: script, slurmArguments: extra) } catch { throw RunError("\(error)") }
    note(
        "submitted \(script.path): job array \(id), \(n) tasks for \(pending) cells; logs in \(sweep.path)/slurm/; "
            + "follow with: cytocl sweep status \(sweep.path)")
    print(id)
}

/// The progress display of a sweep: one line per device with its current cell and
/// epoch, and a total line with cells done and the ETA. Redrawn in place on a terminal;
/// plain lines every 10 s otherwise. Workers report from their own threads, so the
/// state lives behind a `Mutex`.
final class DeviceProgress: Sendable {
    private let state: Mutex<DeviceProgressState>
    init(devices: [String], total: Int, done: Int) {
        state = Mutex(DeviceProgressState(devices: devices, total: total, done: done))
    }
    func handle(worker w: Int, event: SweepEvent) { state.withLock { $0.handle(worker: w, event: event) } }
    func finish() { state.withLock { $0.finish() } }
}

struct DeviceProgressState {
    let devices: [String]
    let total: Int
    var done: Int
    let startDone: Int
    var current: [String]
    let start = Date()
    var lastDraw = Date.distantPast
    var lastPlain = Date.distantPast
    var drawnLines = 0

    init(devices: [String], total: Int, done: Int) {
        self.devices = devices; self.total = max(1, total); self.done = done; startDone = done
        current = devices.map { _ in "idle" }
    }

    mutating func handle(worker w: Int, event: SweepEvent) {
        switch event {
        case .cellStarted(let c, _, _): current[w] = "\(c): starting"
        case .epoch(let c, let r, let maxEpochs):
            var d = "\(c): epoch \(r.epoch)/\(maxEpochs) loss \(String(format: "%.3f", r.loss))"
            if let v = r.validationLoss { d += String(format: " val %.3f", v) }
            current[w] = d
        case .cellFinished(let rec):
            done += 1
            current[w] = "fold \(rec.fold) size \(rec.size) done: \(rec.metric) \(String(format: "%.3f", rec.value))"
        case .cellFailed(let c, let m):
            current[w] = "\(c) FAILED: \(m.prefix(60))"
            if !stderrIsTerminal { note("\(devices[w]): \(c) failed: \(m)") }
        case .cellSkipped: return
        }
        draw(
            force: {
                if case .cellFinished = event { return true }; return false
            }())
    }

    var summary: String {
        let elapsed = Date().timeIntervalSince(start)
        let ran = done - startDone
        let eta = ran > 0 ? elapsed / Double(ran) * Double(total - done) : .nan
        return "sweep \(done)/\(total) cells, elapsed \(formatDuration(elapsed)), ETA \(ran > 0 ? formatDuration(eta) : "?")"
    }

    mutating func draw(force: Bool = false) {
        let now = Date()
        if stderrIsTerminal {
            guard force || now.timeIntervalSince(lastDraw) > 0.2 else { return }
            lastDraw = now
            var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
            let lines = [summary] + zip(devices, current).map { "  [\($0.0)] \($0.1)" }
            for l in lines { text += "\r" + l + "\u{1B}[K\n" }
            drawnLines = lines.count
            FileHandle.standardError.write(Data(text.utf8))
        } else if force || now.timeIntervalSince(lastPlain) > 10 {
            lastPlain = now
            note(([summary] + zip(devices, current).map { "  [\($0.0)] \($0.1)" }).joined(separator: "\n"))
        }
    }

    mutating func finish() { draw(force: true) }
}

/// `cytocl sweep status SWEEP_DIR`
struct SweepStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a sweep's cells: done, running (host, start), stale, failed (error) and missing.")

    @Argument(help: "The sweep directory.")
    var sweep: String

    @Option(name: .long, parsing: .unconditional, help: "A claim from another host without a heartbeat for this many seconds is stale.")
    var staleAfter: Double = 900

    func run() throws {
        let st = try SweepStatus.scan(URL(fileURLWithPath: sweep), staleAfter: staleAfter, jobIsAlive: Slurm.jobIsAlive)
        print(st.text)
    }
}

/// `cytocl sweep retry SWEEP_DIR [--slurm]`
struct SweepRetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run again only the failed, missing and stale cells of a sweep, here or (--slurm) as a new job array.")

    @Argument(help: "The sweep directory.")
    var sweep: String

    @Flag(name: .long, help: "Submit the retry to Slurm as a job array.")
    var slurm = false

    @Option(name: .long, help: "Options passed to sbatch.")
    var slurmArgs: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of Slurm array tasks (default: one per cell).")
    var tasks: Int?

    @Flag(name: .long, help: "With --slurm: write the script but do not submit it.")
    var dryRun = false

    @Option(name: .long, parsing: .unconditional, help: "A claim from another host without a heartbeat for this many seconds is stale.")
    var staleAfter: Double = 900

    func run() throws {
        let dir = URL(fileURLWithPath: sweep)
        let st = try SweepStatus.scan(dir, staleAfter: staleAfter, jobIsAlive: Slurm.jobIsAlive)
        let inv = try SweepInvocation.read(dir)
        let runDirectory = try inv.runDirectory(for: dir)
        let cells = st.toRetry
        guard !cells.isEmpty else {
            print("\(sweep): nothing to retry (\(st.cells("done").count) done, \(st.cells("running").count) running)")
            return
        }
        // Stale claims are removed so the retry does not wait for their heartbeat to age.
        for e in st.entries {
            if case .stale = e.state {
                try? FileManager.default.removeItem(at: SweepLayout(dir).claimURL(e.cell))
            }
        }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let slurmDir = SweepLayout(dir).slurmDirectory
        try FileManager.default.createDirectory(at: slurmDir, withIntermediateDirectories: true)
        let list = slurmDir.appendingPathComponent("retry-\(stamp).cells")
        try writeAtomically(Data(CellList.text(cells).utf8), to: list)
        note(
            "retrying \(cells.count) cells (\(st.cells("failed").count) failed, \(st.cells("diverged").count) diverged, "
                + "\(st.cells("corrupt").count) corrupt, \(st.cells("missing").count) missing, \(st.cells("stale").count) stale); list in \(list.path)"
        )
        if slurm {
            try submitToSlurm(
                invocation: inv, sweep: dir, pending: cells.count, cellsFile: list.path, slurmArgs: slurmArgs,
                tasks: tasks, dryRun: dryRun, name: "retry-\(stamp).sbatch")
            return
        }
        // The directory named here, not the one the sweep was started in (it may have
        // been moved or copied since).
        let p = Process()
        var executable = inv.executable
        if !FileManager.default.isExecutableFile(atPath: executable) {
            executable = SweepInvocation.currentExecutable
            note("\(inv.executable) (the sweep's cytocl) is gone; running \(executable)")
        }
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = inv.arguments(for: dir) + ["--cells-file", list.path]
        p.currentDirectoryURL = URL(fileURLWithPath: runDirectory)
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
    }
}
