import ArgumentParser
import CytoBackends
import CytoCore
import CytoData
import CytoSelect
import CytoSweep
import CytoTrain
import Foundation

/// `sweep run`'s steps: read the data, make the backends, check memory, run the cells.
extension SweepRunCommand {
    func run() throws {
        let p = try makeProtocol()
        let shardValue = try shardValue()
        let only = try listedCells()
        let (h, w) = try inputSize(p)
        // The sweep directory must be writable before the data is indexed and cached.
        let layout = SweepLayout(URL(fileURLWithPath: out))
        try layout.requireSweepOrEmpty(option: "--out")
        let created = layout.missingFolders()
        defer { layout.removeEmptyLeftovers(created) }
        try AtomicFile.preflight([layout.manifestURL, layout.recordURL(SweepCell(fold: 0, size: 1))])
        // A folder where a cell's file goes fails now, not after the data is cached and trained on.
        try SweepRunner.preflightCellFiles(
            directory: layout.directory,
            cells: (0..<p.folds).flatMap { f in p.sizes.map { SweepCell(fold: f, size: $0) } }
                .filter { only?.contains($0) ?? true }, saveModels: saveModels)
        if selection == .random, let e = selectionEmbedding {
            // Kept a note, not an error: the same arguments are often shared by the sweeps a --compare sets side by side.
            note("--selection-embedding \(e.rawValue) is ignored with --selection random (the protocol's draw uses no embedding)")
        }
        if selection != .active, let c = selectionColdStart {
            note("--selection-cold-start \(c.rawValue) is ignored with --selection \(selection.rawValue) (only active has a separate first set)")
        }
        if selection != .active, let r = selectionRounds {
            note("--selection-rounds \(r.rawValue) is ignored with --selection \(selection.rawValue) (only active has separate later rounds)")
        }
        if selection == .random, let b = selectionClassBalance {
            note("--selection-class-balance \(b.rawValue) is ignored with --selection random (the protocol's draw is balanced)")
        }
        let sweepData = try loadData(height: h, width: w, protocol: p)
        let spec = try spec(p, classes: sweepData.classNames.count)
        // A new directory's sweep.json is written only once the backends are made and the
        // memory is checked: a run refused here leaves nothing that refuses the corrected one.
        let runner: SweepRunner
        do {
            runner = try SweepRunner(
                directory: layout.directory, protocol: p, data: sweepData, spec: spec, seed: training.seed, creating: false,
                selection: selection == .random
                    ? nil
                    : SweepSelection(
                        strategy: selection, embedding: selectionEmbedding ?? .stain,
                        classBalance: selectionClassBalance ?? .oversample, coldStart: selectionColdStart,
                        rounds: selectionRounds ?? ActiveOptions().rounds))
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
                invocation: invocation, sweep: runner.directory, pending: pending.count,
                units: runner.manifest.workUnits(pending), cellsFile: cellsFile,
                slurmArgs: slurmArgs, tasks: tasks, dryRun: dryRun)
            return
        }
        let backends = try makeBackends(pending: runner.cells(shard: shardValue, only: only).filter { !runner.isFinished($0) }.count)
        // Every cell builds the same network: refuse now if it cannot fit.
        try SweepMemoryPlan(
            spec: spec, trainingBatch: p.training.batchSize, sizes: runner.manifest.sizes, balancePerClass: p.balancePerClass,
            classes: sweepData.classNames.count, validation: p.valPerFold ?? 0
        ).check(backends: backends, note: note)
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
        let display = SweepProgress(devices: backends.map(\.deviceDescription), total: mine.count, done: already)
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

    /// Indexes the data set and opens (building when needed) its decoded-image cache;
    /// the protocol's class mapping applies unless --positive / --min-per-class say otherwise.
    func loadData(height h: Int, width w: Int, protocol p: SweepProtocol) throws -> SweepData {
        var dataOpts = dataOptions
        if dataOpts.positive == nil, let pos = p.positiveClasses { dataOpts.positive = pos.joined(separator: ",") }
        if dataOpts.minPerClass == nil, let m = p.minPerClass { dataOpts.minPerClass = m }
        var loading = try dataOpts.loading(data, height: h, width: w, excluding: [out])
        loading.storage = .cache(directory: cacheDir.map { URL(fileURLWithPath: $0) }, rebuild: rebuildCache)
        loading.checkIndex = { index in try p.validate(classCount: index.classNames.count) }
        return SweepData(try dataOpts.read(loading, title: "caching"))
    }

    /// The backends cells run on: --devices, --jobs, or the one --backend. Every
    /// entry is its own backend (own OpenCL context and queue, or own CPU thread
    /// share), so `opencl:0.0*4` runs four cells on one device at once.
    /// - Parameter pending: cells left to run here; the CPU default never starts more
    ///   cells than that, so a shard of one cell (a Slurm task) still uses every core.
    func makeBackends(pending: Int) throws -> [any Backend] {
        let cores = backendOptions.threads ?? ProcessInfo.processInfo.activeProcessorCount
        if let entries = try workers() {
            let cpuCells = entries.filter { $0.selector == .cpu }.reduce(0) { $0 + $1.cells }
            var result: [any Backend] = []
            for e in entries {
                let threads = e.selector == .cpu ? max(1, cores / max(1, cpuCells)) : backendOptions.threads
                for _ in 0..<e.cells {
                    let choice = try BackendSelection.make(e.selector, options: backendOptions.selectionOptions(threads: threads))
                    if result.isEmpty || e.cells == 1 { note(choice.note) }
                    result.append(choice.backend)
                }
                if e.cells > 1 { note("  \(e.cells) cells at a time on \(e.selector)") }
            }
            return result
        }
        if let j = jobs {
            let threads = max(1, cores / j)
            note("running \(j) cells at a time on the CPU backend, \(threads) thread\(threads == 1 ? "" : "s") each")
            return try (0..<j).map { _ in try cpuBackend(threads: threads) }
        }
        return try backendOptions.cellBackends(pending: pending, hint: " (--jobs 1 for one cell on all cores)")
    }

    /// One CPU backend for a cell, with the command's profiling choice.
    func cpuBackend(threads: Int) throws -> any Backend {
        try BackendSelection.make(.cpu, options: backendOptions.selectionOptions(threads: threads)).backend
    }
}
