import ArgumentParser
import CytoBackends
import CytoCore
import CytoData
import CytoReport
import CytoSweep
import CytoTrain
import Foundation

/// `cytocl plan --data DIR [--target X]`: a small sweep, the forecast of the labels needed,
/// and the time of the full sweep on every device, before the hours are spent.
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Forecast the labelled images needed to reach a target, and the time of a full sweep on each device.",
        discussion: """
            Runs the smallest useful sweep (default: 5 folds, training sizes 10, 20, 40, 80 or what the data holds), fits its
            learning curve (docs/learning-curves.md) and prints the labelled images forecast to reach --target with a 90%
            interval. Then times a few training steps on every device (the CPU backend and each OpenCL device, or --devices)
            and prints how long the full sweep (--protocol's sizes and folds, or --sweep-sizes/--sweep-folds) would take.
            Progress on stderr; the forecast and the times on stdout (text, or --json). --keep DIR keeps the plan sweep
            (then `cytocl report DIR`).
            """)

    @Option(name: .long, help: "Data set folder (any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, parsing: .unconditional, help: "Metric to reach, in (0, 1) (default: 0.95 for ROC-AUC, 0.90 for weighted F1).")
    var target: Double?

    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false

    @Option(name: .long, help: "The full sweep's protocol: all-idb-binary | aml-binary | multiclass | custom (default: custom).")
    var `protocol`: String = "custom"

    @Option(name: .long, help: "Training sizes of the plan sweep (default: 10,20,40,80, or four sizes the data holds).")
    var sizes: String?

    @Option(name: .long, parsing: .unconditional, help: "Folds of the plan sweep, at least 3 (default: 5).")
    var folds: Int = Planner.defaultFolds

    @Option(name: .long, help: "Training sizes of the full sweep to time (default: the protocol's).")
    var sweepSizes: String?

    @Option(name: .long, parsing: .unconditional, help: "Folds of the full sweep to time (default: the protocol's).")
    var sweepFolds: Int?

    @OptionGroup var holdOut: HoldOutOptions

    @OptionGroup var network: NetworkOptions

    @Option(name: .long, parsing: .unconditional, help: "Maximum epochs per cell (default: the protocol's, 500).")
    var epochs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Early-stopping patience (default: the protocol's, 50).")
    var patience: Int?

    @Option(name: .long, parsing: .unconditional, help: "Seed of the plan's folds and cells.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Keep the plan sweep in this folder (default: a temporary folder, removed).")
    var keep: String?

    @Option(name: .long, help: "Devices to time, comma-separated selectors (default: cpu and every OpenCL device); `none` skips timing.")
    var devices: String?

    @Option(name: .long, parsing: .unconditional, help: "Seconds of training steps timed per device (default 2; longer is steadier on a busy machine).")
    var timingSeconds: Double = 2

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        if let target, !(target > 0 && target < 1) { throw ValidationError("--target must be a number between 0 and 1 (exclusive), got \(target)") }
        guard folds >= 3 else { throw ValidationError("--folds must be at least 3 (the forecast's interval resamples folds), got \(folds)") }
        if let f = sweepFolds, f < 2 { throw ValidationError("--sweep-folds must be at least 2") }
        if let e = epochs, e < 1 { throw ValidationError("--epochs must be positive") }
        guard timingSeconds > 0 && timingSeconds <= 3600 else { throw ValidationError("--timing-seconds must be in (0, 3600]") }
        if let p = patience, p < 1 { throw ValidationError("--patience must be positive") }
        let p = try makeProtocol(classCount: 2)
        _ = try planSizes()
        // Checked before the data is decoded and the plan sweep run, not minutes later.
        _ = try timedSelectors()
        _ = try network.spec(p, classes: 2)
    }

    /// The network of the plan: the paper's at the input size, with --conv/--dense.
    func planSizes() throws -> [Int]? {
        do { return try sizes.map(parseSizes).map { $0.filter { $0 > 0 } } } catch { throw sizesError(error, "--sizes") }
    }

    /// `parseSizes`'s message names `--sizes` already: say it once, and name the option given.
    func sizesError(_ error: Error, _ flag: String) -> ValidationError {
        let text = "\(error)"
        return ValidationError(text.hasPrefix("--sizes") ? flag + text.dropFirst("--sizes".count) : "\(flag): \(text)")
    }

    /// The full sweep's protocol with the command's overrides (metric by class count for `custom`).
    func makeProtocol(classCount: Int) throws -> SweepProtocol {
        var p: SweepProtocol
        do { p = try SweepProtocol.named(`protocol`) } catch { throw ValidationError("\(error)") }
        if `protocol` == "custom" { p = Planner.defaultProtocol(classCount: classCount) }
        do { if let s = sweepSizes { p.sizes = try parseSizes(s).filter { $0 > 0 } } } catch { throw sizesError(error, "--sweep-sizes") }
        if let f = sweepFolds { p.folds = f }
        holdOut.apply(to: &p)
        if let e = epochs { p.training.maxEpochs = e }
        if let pa = patience { p.training.patience = pa }
        return p
    }

    func run() throws {
        if let keep { try SweepLayout(URL(fileURLWithPath: keep)).requireSweepOrEmpty(option: "--keep") }
        let p0 = try makeProtocol(classCount: 2)
        let (h, w) = try network.inputSize(p0)
        var dataOpts = dataOptions
        if dataOpts.positive == nil, let pos = p0.positiveClasses { dataOpts.positive = pos.joined(separator: ",") }
        if dataOpts.minPerClass == nil, let m = p0.minPerClass { dataOpts.minPerClass = m }
        let loaded = try dataOpts.loadHandlingNearDuplicates(data, height: h, width: w, excluding: keep.map { [$0] } ?? [])
        let classNames = loaded.index.classNames
        var sweepData = SweepData(
            images: loaded.images, ids: DatasetIndex.relativeIDs(loaded.images.paths, root: loaded.index.root), classNames: classNames,
            path: loaded.index.root)
        sweepData.nearDuplicates = loaded.nearDuplicates
        let p = try makeProtocol(classCount: classNames.count)
        let spec = try network.spec(p0, classes: classNames.count)
        let settings = PlanSettings(
            sweepProtocol: p, spec: spec, sizes: try planSizes(), folds: folds, seed: seed, target: target,
            directory: keep.map { URL(fileURLWithPath: $0) })
        // The plan sweep runs its cells as `sweep` does: several at once on the CPU backend.
        let backends = try backendOptions.cellBackends(pending: folds * 4)
        note("plan: \(folds) folds, \(backends.count) cell\(backends.count == 1 ? "" : "s") at a time")
        let plan: Planner.PlanSweep
        do {
            plan = try Planner.runPlanSweep(data: sweepData, settings: settings, backends: backends) { note("[\($0.done)/\($0.total)] \($0.message)") }
        } catch let e as TooSmallError { throw RunError(e.description) }
        note(plan.forecast.sentence)
        var timings: [DeviceTiming] = [], untimed: [String: String] = [:]
        for selector in try timedSelectors() {
            note("timing \(selector) ...")
            do {
                let cpu = selector == .cpu
                let cores = backendOptions.threads ?? ProcessInfo.processInfo.activeProcessorCount
                // The sweep's CPU default: one cell per core, one thread each (SweepDevices).
                let choice = try BackendSelection.make(selector, options: .init(threads: cpu ? SweepDevices.defaultThreadsPerCell : nil))
                timings.append(
                    try Planner.timeDevice(
                        backend: choice.backend, selector: selector.description, spec: spec, training: p.training,
                        concurrentCells: cpu ? SweepDevices.defaultCPUCells(cores: cores) : 1, seconds: timingSeconds))
            } catch {
                untimed[selector.description] = failureMessage(error)
            }
        }
        let (estimates, assumptions) = Planner.estimates(
            plan: plan, sweepProtocol: p, labelled: sweepData.count, timings: timings,
            planDevice: backends.first.map { $0.kind == .cpu ? "cpu" : backendOptions.backend?.description ?? "" })
        let result = PlanResult(
            forecast: plan.forecast, sweepSizes: p.concreteSizes, sweepFolds: p.folds, maxEpochs: p.training.maxEpochs,
            estimates: estimates, untimed: untimed, assumptions: assumptions, planSeconds: plan.seconds,
            resumedCells: plan.resumedCells)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(result), as: UTF8.self))
        } else {
            print(Planner.text(result))
        }
    }

    func timedSelectors() throws -> [BackendSelector] {
        guard let d = devices else { return BackendSelection.available().map(\.selector) }
        if d.lowercased() == "none" { return [] }
        // Each device once (`cpu,cpu` timed the CPU twice and listed it twice).
        do {
            var seen = Set<String>()
            return try BackendWorkers.parseList(d).map(\.selector).filter { seen.insert($0.description).inserted }
        } catch { throw ValidationError("\(error)") }
    }
}
