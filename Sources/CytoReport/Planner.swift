import CytoCore
import CytoData
import CytoSweep
import CytoTrain
import Foundation
import Synchronization

// `cytocl plan`: before spending hours on a full sweep, run the smallest sweep that can be
// extrapolated (a few small training sizes, a few folds), forecast how many labelled images
// reach the target (LearningCurve.swift), and estimate how long the full sweep would take on
// each device from a short timed calibration of it (`PlanTiming`).
//
// The forecast is the learning curve's (power law of the error, fold bootstrap, band widened
// by the factors measured by simulation); its interval was measured to cover 90-92% at 2x-10x
// the largest fitted size (docs/learning-curves.md). A plan fits sizes up to a few tens of
// images, so a forecast of thousands lies beyond 10x, where coverage was not measured: the
// sentence says so.

/// What a plan sweep runs: the full sweep's protocol (its training settings are the plan's,
/// so the plan's curve is the full sweep's curve at small sizes), and the plan's own sizes
/// and folds.
public struct PlanSettings: Sendable {
    /// The full sweep's protocol: training settings, metric, test and validation sets; its
    /// sizes and folds are what the time estimate is for.
    public var sweepProtocol: SweepProtocol
    /// The network (nil: the paper's at the images' size).
    public var spec: ModelSpec?
    /// Training sizes of the plan sweep (nil: `Planner.planSizes`).
    public var sizes: [Int]?
    /// Folds of the plan sweep: at least 3 (the interval resamples folds).
    public var folds: Int
    /// Seed of the fold assignment and the cells.
    public var seed: UInt64
    /// Target of the metric (nil: 0.95 ROC-AUC, 0.90 weighted F1).
    public var target: Double?
    /// Where the plan sweep's cells go (nil: a temporary folder, removed afterwards). A kept
    /// folder is an ordinary sweep: `cytocl report DIR` shows it.
    public var directory: URL?

    public init(
        sweepProtocol: SweepProtocol, spec: ModelSpec? = nil, sizes: [Int]? = nil, folds: Int = Planner.defaultFolds,
        seed: UInt64 = 1, target: Double? = nil, directory: URL? = nil
    ) {
        self.sweepProtocol = sweepProtocol; self.spec = spec; self.sizes = sizes; self.folds = folds; self.seed = seed
        self.target = target; self.directory = directory
    }
}

/// Progress of a plan: cells done of all, and a line for stderr.
public struct PlanProgress: Sendable {
    public var done: Int
    public var total: Int
    public var message: String
}

/// The forecast of a plan. Sizes are training-set sizes in the protocol's unit (images, or
/// images per class for `balancePerClass` protocols); `labelsNeeded` converts the training
/// size into labelled images of a data set whose folds train on that many (test and
/// validation images held out as the protocol holds them out).
public struct PlanForecast: Sendable, Codable, Equatable {
    /// `roc_auc` or `f1_weighted`.
    public var metric: String
    public var target: Double
    /// Labelled images the plan had.
    public var labelled: Int
    /// `images` or `images per class`.
    public var sizeUnit: String
    public var planSizes: [Int]
    public var planFolds: Int
    /// Mean metric over the plan's folds per plan size (nil where no cell finished).
    public var measuredMeans: [Double?]
    /// Forecast training size reaching the target, and its 90% interval (upper nil: the
    /// pessimistic edge does not reach it within 1000x the largest plan size).
    public var trainingSize: Int?
    public var trainingSizeLower: Int?
    public var trainingSizeUpper: Int?
    /// The same as labelled images a data set needs.
    public var labelsNeeded: Int?
    public var lower: Int?
    public var upper: Int?
    /// Labels to add to the `labelled` ones (0 when the data already holds enough).
    public var moreLabels: Int?
    /// Whether a size reaching the target was forecast (false when the fitted curve's asymptote
    /// is below the target, when it reaches it only beyond 1000x the largest plan size, or when
    /// there is no forecast; then `labelsNeeded` is nil).
    public var reachable: Bool
    /// The metric the fitted curve levels off at (1 - a).
    public var asymptote: Double?
    /// Why there is no forecast (then every size above is nil).
    public var failure: String?
    /// The forecast lies beyond 10x the largest plan size, where the interval's coverage was not measured.
    public var beyondMeasuredRange: Bool
    /// One sentence for people.
    public var sentence: String
}

/// How long one training step and one image's inference take on a device, measured by
/// `Planner.timeDevice`, and how many cells the sweep runs on it at once.
public struct DeviceTiming: Sendable, Codable, Equatable {
    /// The backend selector (`cpu`, `opencl:P.D`).
    public var selector: String
    public var device: String
    /// Seconds of one training step at the protocol's batch size (batch gathered, augmented
    /// when the protocol augments, forward, backward, optimizer).
    public var stepSeconds: Double
    /// Seconds of inference per image (batches of 32: validation and test).
    public var forwardSecondsPerImage: Double
    /// Cells the sweep runs at once (the CPU backend: one per core, `SweepDevices`).
    public var concurrentCells: Int
    /// Steps timed.
    public var steps: Int

    public init(selector: String, device: String, stepSeconds: Double, forwardSecondsPerImage: Double, concurrentCells: Int, steps: Int) {
        self.selector = selector; self.device = device; self.stepSeconds = stepSeconds
        self.forwardSecondsPerImage = forwardSecondsPerImage; self.concurrentCells = concurrentCells; self.steps = steps
    }
}

/// The work of a sweep, counted in what a device was timed on.
public struct SweepWork: Sendable, Codable, Equatable {
    public var cells: Int
    /// Training steps over all cells.
    public var trainingSteps: Double
    /// Images run forward over all cells: validation every epoch, test once.
    public var forwardImages: Double
    /// Mean epochs per cell assumed.
    public var meanEpochs: Double
}

/// The time of a full sweep on one device.
public struct SweepTimeEstimate: Sendable, Codable, Equatable {
    public var timing: DeviceTiming
    /// Epochs as in the plan's cells (early stopping as observed there).
    public var expected: SweepWork
    public var expectedSeconds: Double
    /// Every cell running the protocol's maximum epochs.
    public var atMost: SweepWork
    public var atMostSeconds: Double
    /// On the device the plan sweep ran on: the plan's cells' own seconds (`wallSeconds`, so a
    /// resumed plan counts too) scaled by the ratio of the full sweep's modelled time to the
    /// plan's, over the cells run at once (the pace this machine actually kept, with its load
    /// and the cells' data copying); nil on the other devices.
    public var pacedSeconds: Double?
}

/// Everything `cytocl plan` prints.
public struct PlanResult: Sendable, Codable, Equatable {
    public var forecast: PlanForecast
    /// The full sweep the times are for.
    public var sweepSizes: [Int]
    public var sweepFolds: Int
    public var maxEpochs: Int
    public var estimates: [SweepTimeEstimate]
    /// Devices that could not be timed, with why.
    public var untimed: [String: String]
    /// What the time estimate assumes.
    public var assumptions: [String]
    /// Seconds the plan sweep itself took.
    public var planSeconds: Double
    /// Plan cells found finished in a kept folder (not run again).
    public var resumedCells: Int

    public init(
        forecast: PlanForecast, sweepSizes: [Int], sweepFolds: Int, maxEpochs: Int, estimates: [SweepTimeEstimate],
        untimed: [String: String], assumptions: [String], planSeconds: Double, resumedCells: Int = 0
    ) {
        self.resumedCells = resumedCells
        self.forecast = forecast; self.sweepSizes = sweepSizes; self.sweepFolds = sweepFolds; self.maxEpochs = maxEpochs
        self.estimates = estimates; self.untimed = untimed; self.assumptions = assumptions; self.planSeconds = planSeconds
    }
}

public enum Planner {
    /// Folds of a plan: 5 (the smaller of the two designs whose coverage was measured).
    public static let defaultFolds = 5
    /// Plan sizes: doubling from the smallest size up to 8x it.
    public static let defaultSpan = 8

    /// The protocol a plan uses for data without one: `custom`, with ROC-AUC for two classes
    /// and weighted F1 otherwise.
    public static func defaultProtocol(classCount: Int) -> SweepProtocol {
        var p = SweepProtocol.custom
        if classCount != 2 { p.metric = "f1_weighted" }
        return p
    }

    /// The plan's training sizes: s0, 2 s0, 4 s0, 8 s0 (s0 the protocol's smallest size, at
    /// most 10), those that the smallest fold's training pool holds (per class for
    /// `balancePerClass` protocols, which repeat images, so any size fits); when fewer than
    /// four fit, four sizes spread evenly in log size from s0 to the pool. Throws when the
    /// pool is too small for three sizes.
    public static func planSizes(protocol p: SweepProtocol, smallestPool: Int) throws -> [Int] {
        let s0 = max(2, min(p.concreteSizes.min() ?? 10, 10))
        let doubling = (0..<4).map { s0 << $0 }
        if p.balancePerClass { return doubling }
        let fit = doubling.filter { $0 <= smallestPool }
        if fit.count == 4 { return fit }
        let spread = Set((0..<4).map { k in Int((Double(s0) * pow(Double(smallestPool) / Double(s0), Double(k) / 3)).rounded(.down)) })
            .filter { $0 >= s0 && $0 <= smallestPool }.sorted()
        guard spread.count >= 3 else {
            throw CytoError.invalidArgument(
                "too few labelled images for a plan: a fold's training pool holds \(smallestPool) images, and a forecast needs "
                    + "three training sizes from \(s0) up (label more images, or use fewer --folds)")
        }
        return spread
    }

    /// The labelled images a data set needs so that protocol `p` with `folds` folds trains on
    /// `size` (protocol units) in every fold: the training images plus the held-out test and
    /// validation images (a test block of 1/folds of the data unless `testPerFold` is set; the
    /// validation set is the next fold's block unless `valPerFold` is set).
    public static func labelsNeeded(trainingSize size: Double, protocol p: SweepProtocol, folds k: Int, classCount: Int) -> Double {
        let n = p.balancePerClass ? size * Double(classCount) : size
        let kk = Double(max(k, 3))
        switch (p.testPerFold, p.valPerFold) {
        case (nil, nil): return n * kk / (kk - 2)
        case (nil, let v?): return (n + Double(v)) * kk / (kk - 1)
        case (let t?, nil): return n + 2 * Double(t)
        case (let t?, let v?): return n + Double(t) + Double(v)
        }
    }

    /// Forecasts the labels needed to reach `target` from labelled images: runs the plan sweep
    /// on `backend` (a temporary folder) and fits its learning curve. The entry point for
    /// callers that hold decoded images (the labelling page).
    /// - Parameters:
    ///   - images: the labelled images, decoded at the model input size; `paths` are their ids.
    ///   - metric: nil: ROC-AUC for two classes, weighted F1 otherwise.
    public static func forecast(
        images: LabeledImages, classNames: [String], target: Double? = nil, metric: String? = nil, backend: any Backend,
        seed: UInt64 = 1, progress: @escaping @Sendable (PlanProgress) -> Void = { _ in }
    ) throws -> PlanForecast {
        var p = defaultProtocol(classCount: classNames.count)
        if let m = metric { p.metric = m }
        let data = SweepData(images: images, ids: images.paths, classNames: classNames, path: "labelled images")
        let settings = PlanSettings(sweepProtocol: p, seed: seed, target: target)
        return try runPlanSweep(data: data, settings: settings, backends: [backend], progress: progress).forecast
    }

    /// What the plan sweep gave: the forecast, its records (for the epochs the time estimate
    /// assumes) and how long it took.
    public struct PlanSweep: Sendable {
        public var forecast: PlanForecast
        public var records: [SweepRecord]
        public var manifest: SweepManifest
        public var seconds: Double
        /// Cells found finished in a kept plan folder (not run again).
        public var resumedCells: Int = 0
    }

    /// Runs the plan sweep on `backends` (cells at once, one per backend) and forecasts.
    public static func runPlanSweep(
        data: SweepData, settings s: PlanSettings, backends: [any Backend],
        progress: @escaping @Sendable (PlanProgress) -> Void = { _ in }
    ) throws -> PlanSweep {
        precondition(!backends.isEmpty)
        let k = data.classNames.count
        let target = s.target ?? LearningCurveReport.defaultTarget(metric: s.sweepProtocol.metric)
        guard target > 0 && target < 1 else {
            throw CytoError.invalidArgument("the target must be between 0 and 1 (exclusive), got \(target)")
        }
        guard s.folds >= 3 else {
            throw CytoError.invalidArgument("a plan needs at least 3 folds (the forecast's interval resamples folds), got \(s.folds)")
        }
        var p = s.sweepProtocol
        p.folds = s.folds
        try p.validate(classCount: k)
        // The pools of this data under the plan's folds decide which sizes fit.
        var probe = p
        probe.sizes = [1]
        let assignment = try Folds.assign(
            labels: data.labels, ids: data.ids, classNames: data.classNames, protocol: probe, seed: s.seed, groups: data.foldGroups)
        let pools = (0..<assignment.folds).map { f in assignment.poolCounts?[f] ?? assignment.trainingOrder[f].map(\.count) }
        let smallestPool = pools.map { p.balancePerClass ? ($0.min() ?? 0) : $0.reduce(0, +) }.min() ?? 0
        p.sizes = try s.sizes ?? planSizes(protocol: p, smallestPool: smallestPool)
        let spec = s.spec ?? ModelSpec.paper(height: data.geometry.height, width: data.geometry.width, classes: k)
        let keep = s.directory != nil
        let dir =
            s.directory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-plan-\(getpid())-\(UUID().uuidString)")
        if !keep { InterruptCleanup.register(dir) }
        defer {
            if !keep {
                try? FileManager.default.removeItem(at: dir)
                InterruptCleanup.unregister(dir)
            }
        }
        let runner = try SweepRunner(directory: dir, protocol: p, data: data, spec: spec, seed: s.seed)
        let total = runner.cells.count
        let done = Mutex(0)
        let start = Date()
        let outcome = try runner.run(backends: backends) { _, event in
            switch event {
            case .cellFinished(let r):
                let n = done.withLock { $0 += 1; return $0 }
                progress(
                    PlanProgress(
                        done: n, total: total,
                        message: "plan: fold \(r.fold) size \(r.size): \(SweepReport.metricLabel(r.metric)) "
                            + String(format: "%.3f, %d epochs, %.1f s", r.value, r.epochsRun, r.wallSeconds)))
            case .cellSkipped(let c, let why):
                let n = done.withLock { $0 += 1; return $0 }
                progress(PlanProgress(done: n, total: total, message: "plan: \(c) \(why)"))
            case .cellFailed(let c, let m):
                let n = done.withLock { $0 += 1; return $0 }
                progress(PlanProgress(done: n, total: total, message: "plan: \(c) FAILED: \(m)"))
            case .cellStarted, .epoch: break
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let records = try scanSweepRecords(dir, manifest: runner.manifest).records
        if records.isEmpty, let f = outcome.failed.first {
            throw CytoError.invalidArgument("every plan cell failed (\(f.cell): \(f.message))")
        }
        let f = forecast(manifest: runner.manifest, records: records, target: target, labelled: data.count)
        return PlanSweep(
            forecast: f, records: records, manifest: runner.manifest, seconds: seconds, resumedCells: outcome.finished.count)
    }

    /// The forecast of a (plan) sweep's records.
    public static func forecast(manifest: SweepManifest, records: [SweepRecord], target: Double, labelled: Int) -> PlanForecast {
        let p = manifest.protocolSettings
        let k = manifest.classNames.count
        // The learning curve alone: the report's back-test is not needed here (it is half the time).
        let sizes = manifest.sizes.sorted()
        let values = LearningCurveReport.matrix(records, folds: manifest.folds, sizes: sizes)
        let means = sizes.indices.map { j -> Double? in
            let v = values.map { $0[j] }.filter(\.isFinite)
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
        let curve = LearningCurve.forecast(sizes: LearningCurveReport.trainedSizes(sizes, records: records), values: values)
        let unit = p.balancePerClass ? "images per class" : "images"
        var out = PlanForecast(
            metric: p.metric, target: target, labelled: labelled, sizeUnit: unit, planSizes: sizes,
            planFolds: manifest.folds, measuredMeans: means, trainingSize: nil,
            trainingSizeLower: nil, trainingSizeUpper: nil, labelsNeeded: nil, lower: nil, upper: nil, moreLabels: nil,
            reachable: false, asymptote: nil, failure: nil, beyondMeasuredRange: false, sentence: "")
        let m = SweepReport.metricLabel(p.metric), t = String(format: "%.2f", target)
        func labels(_ n: Double) -> Int { Int(labelsNeeded(trainingSize: n, protocol: p, folds: manifest.folds, classCount: k).rounded(.up)) }
        switch curve {
        case .failure(let e):
            out.failure = e.reason
            out.sentence = "\(m) \(t): \(e.description)."
        case .success(let fc):
            let r = fc.sizeReaching(target)
            out.asymptote = 1 - fc.fit.a
            out.trainingSizeLower = r.lower.map { Int($0.rounded(.up)) }
            out.trainingSizeUpper = r.upper.map { Int($0.rounded(.up)) }
            out.lower = r.lower.map(labels)
            out.upper = r.upper.map(labels)
            let hi = out.upper.map { formatThousands($0) } ?? "more than \(formatThousands(labels(r.horizon)))"
            if let n = r.size, n > r.horizon {
                out.sentence =
                    "\(m) \(t) is forecast beyond \(formatThousands(labels(r.horizon))) labelled images (1000x the largest plan size): "
                    + "too far to extrapolate from \(formatThousands(labelled)); the plan's curve levels off at \(m) "
                    + String(format: "%.3f.", 1 - fc.fit.a)
            } else if let n = r.size, let smallest = sizes.first, n < Double(smallest), let m0 = means.first ?? nil, m0 >= target {
                // Reached already at the smallest size measured: no extrapolation downwards.
                out.reachable = true
                out.trainingSize = smallest
                out.labelsNeeded = labels(Double(smallest))
                out.moreLabels = max(0, out.labelsNeeded! - labelled)
                out.lower = nil  // below the smallest size measured the curve is not extrapolated
                out.upper = r.upper.map { labels(max($0, Double(smallest))) }
                out.sentence =
                    "\(m) \(t) is reached already at the plan's smallest size (\(smallest) \(unit) per fold, mean "
                    + String(format: "%.3f", m0) + "): about \(formatThousands(out.labelsNeeded!)) labelled images suffice; "
                    + "\(formatThousands(labelled)) are labelled."
            } else if let n = r.size {
                out.reachable = true
                out.trainingSize = Int(n.rounded(.up))
                let need = labels(n)
                out.labelsNeeded = need
                out.moreLabels = max(0, need - labelled)
                out.beyondMeasuredRange = n > 10 * Double(fc.largestSize)
                out.sentence =
                    "\(m) \(t) is forecast at about \(formatThousands(need)) labelled images (90%: "
                    + "\(out.lower.map { formatThousands($0) } ?? "–")-\(hi)), training on \(formatThousands(Int(n.rounded(.up)))) "
                    + "\(unit) per fold; \(formatThousands(labelled)) are labelled"
                    + (need > labelled ? ", so about \(formatThousands(need - labelled)) more." : ", which is enough.")
                if out.beyondMeasuredRange {
                    out.sentence +=
                        " That is beyond 10x the largest plan size (\(fc.largestSize)), where the interval's coverage was not measured."
                }
            } else {
                out.sentence =
                    "The plan's curve levels off at \(m) \(String(format: "%.3f", 1 - fc.fit.a)): it is not forecast to reach \(t) "
                    + "with more labels of this kind" + (out.lower.map { " (the optimistic edge of its 90% band reaches it at about \(formatThousands($0)) labelled images)." } ?? ", nor is its 90% band.")
            }
        }
        return out
    }

    // MARK: time

    /// Times training steps (after two warm-up steps) for about `seconds` (at least 3 steps, at
    /// most `steps`) and the inference of 64 images on `backend`, with the network and training
    /// settings of the sweep, on random pixels. A longer timing is steadier on a shared machine.
    public static func timeDevice(
        backend: any Backend, selector: String, spec: ModelSpec, training: TrainingConfig, concurrentCells: Int,
        steps: Int = 10_000, seconds: Double = 2
    ) throws -> DeviceTiming {
        let batch = training.batchSize
        let load = try SyntheticTrainingLoad(spec: spec, backend: backend, maxBatch: max(batch, 32), seed: 2021)
        let net = load.network
        let set = load.images
        var rng = SeededGenerator(seed: 7)
        func step() throws {
            let transforms =
                training.augment
                ? (0..<batch).map { _ in AugmentTransform.random(using: &rng, sampler: training.resolvedAugmentSampler) } : nil
            try load.trainStep(batch: batch, optimizer: training.optimizer, transforms: transforms)
        }
        for _ in 0..<2 { try step() }
        _ = try net.takeMetrics()
        try backend.checkErrors()
        let t0 = Date()
        var n = 0
        while n < max(3, steps) {
            try step()
            n += 1
            if n >= 3 && n % 3 == 0 {
                _ = try net.takeMetrics()
                if Date().timeIntervalSince(t0) > seconds { break }
            }
        }
        _ = try net.takeMetrics()
        try backend.checkErrors()
        let stepSeconds = Date().timeIntervalSince(t0) / Double(n)
        let predictor = Predictor(network: net)
        _ = try predictor.probabilities(set.subset(Array(0..<min(8, set.count))))
        let f0 = Date()
        _ = try predictor.probabilities(set)
        let forward = Date().timeIntervalSince(f0) / Double(set.count)
        try backend.checkErrors()
        return DeviceTiming(
            selector: selector, device: backend.deviceDescription, stepSeconds: stepSeconds, forwardSecondsPerImage: forward,
            concurrentCells: max(1, concurrentCells), steps: n)
    }

    /// The work of a sweep of `sizes` x `folds` cells on a data set of `labelled` images
    /// under protocol `p`: per cell, `epochs(size)` epochs of ceil(training images / batch)
    /// steps and a validation pass, and one test pass. Training images are the size (times the
    /// classes for `balancePerClass`), capped at the fold's pool (`pool`, images); the test and
    /// validation sets are the protocol's (a 1/folds block of the data when not set).
    public static func work(
        protocol p: SweepProtocol, sizes: [Int], folds: Int, labelled: Int, classCount: Int, pool: Int,
        epochs: (Int) -> Double
    ) -> SweepWork {
        let (test, validation) = heldOut(protocol: p, folds: folds, labelled: labelled)
        var steps = 0.0, forward = 0.0, epochSum = 0.0
        for s in sizes {
            let train = p.balancePerClass ? s * classCount : min(s, pool)
            let e = epochs(s)
            epochSum += e
            steps += Double(folds) * e * (Double(train) / Double(max(1, p.training.batchSize))).rounded(.up)
            forward += Double(folds) * (e * validation + test)
        }
        return SweepWork(
            cells: sizes.count * folds, trainingSteps: steps, forwardImages: forward,
            meanEpochs: sizes.isEmpty ? 0 : epochSum / Double(sizes.count))
    }

    /// Test and validation images per fold: the protocol's, or a 1/folds block of the data
    /// each (the validation set is the next fold's test block).
    public static func heldOut(protocol p: SweepProtocol, folds: Int, labelled: Int) -> (test: Double, validation: Double) {
        let block = Double(labelled) / Double(max(folds, 1))
        let test = p.testPerFold.map(Double.init) ?? block
        return (test, p.valPerFold.map(Double.init) ?? test)
    }

    /// Seconds of `work` on a device: steps x step time + images x inference time, divided
    /// over the cells it runs at once.
    public static func seconds(_ work: SweepWork, timing t: DeviceTiming) -> Double {
        (work.trainingSteps * t.stepSeconds + work.forwardImages * t.forwardSecondsPerImage) / Double(max(1, t.concurrentCells))
    }

    /// Epochs per size as the plan's cells ran them: the mean over folds at the largest plan
    /// size not above `size` (the smallest plan size below it), at most `maxEpochs`; nil when
    /// no plan cell finished.
    public static func observedEpochs(_ records: [SweepRecord], maxEpochs: Int) -> ((Int) -> Double)? {
        let sizes = Array(Set(records.map(\.size))).sorted()
        guard !sizes.isEmpty else { return nil }
        var mean: [Int: Double] = [:]
        for s in sizes {
            let e = records.filter { $0.size == s }.map { Double($0.epochsRun) }
            mean[s] = e.reduce(0, +) / Double(e.count)
        }
        return { size in
            let s = sizes.last { $0 <= size } ?? sizes[0]
            return min(Double(maxEpochs), mean[s]!)
        }
    }

    /// The time estimates of the full sweep (`sweepProtocol`'s sizes and folds) on each timed device.
    /// - Parameter planDevice: the selector of the backend the plan sweep ran on (its timing
    ///   also gets the estimate paced by the plan's own wall time).
    public static func estimates(
        plan: PlanSweep, sweepProtocol p: SweepProtocol, labelled: Int, timings: [DeviceTiming], planDevice: String? = nil
    ) -> (estimates: [SweepTimeEstimate], assumptions: [String]) {
        let k = plan.manifest.classNames.count
        // The full sweep's pool: the data less a fold's test and validation sets.
        let held = heldOut(protocol: p, folds: p.folds, labelled: labelled)
        let pool = max(1, Int((Double(labelled) - held.test - held.validation).rounded(.down)))
        let maxE = p.training.maxEpochs
        let observed = observedEpochs(plan.records, maxEpochs: maxE) ?? { _ in Double(maxE) }
        let expected = work(protocol: p, sizes: p.concreteSizes, folds: p.folds, labelled: labelled, classCount: k, pool: pool, epochs: observed)
        let atMost = work(protocol: p, sizes: p.concreteSizes, folds: p.folds, labelled: labelled, classCount: k, pool: pool) { _ in Double(maxE) }
        // The plan sweep's own work, with the epochs its cells ran.
        let pp = plan.manifest.protocolSettings
        let planHeld = heldOut(protocol: pp, folds: pp.folds, labelled: labelled)
        let planWork = work(
            protocol: pp, sizes: pp.concreteSizes, folds: pp.folds, labelled: labelled, classCount: k,
            pool: max(1, Int(Double(labelled) - planHeld.test - planHeld.validation)), epochs: observed)
        let list = timings.map { t -> SweepTimeEstimate in
            let full = seconds(expected, timing: t), mine = seconds(planWork, timing: t)
            // The cells' own seconds (a resumed plan's too), at the full sweep's cells at once.
            let cellSeconds = plan.records.map(\.wallSeconds).reduce(0, +)
            let paced = t.selector == planDevice && mine > 0 && cellSeconds > 0 ? cellSeconds * full / mine / Double(t.concurrentCells) : nil
            return SweepTimeEstimate(
                timing: t, expected: expected, expectedSeconds: full, atMost: atMost, atMostSeconds: seconds(atMost, timing: t),
                pacedSeconds: paced)
        }
        let largestPlan = plan.records.map(\.size).max() ?? 0
        let assumptions = [
            "work: \(p.folds) folds x \(p.concreteSizes.count) sizes = \(expected.cells) cells; per cell, epochs x ceil(training images / batch \(p.training.batchSize)) steps, a validation pass per epoch and one test pass",
            String(
                format: "expected: epochs as the plan's cells stopped early (%.0f per cell on average; sizes above %d take the epochs of %d); at most: every cell runs all %d epochs",
                expected.meanEpochs, largestPlan, largestPlan, maxE),
            "step and inference times from a short timing on random images; the CPU backend runs one cell per core at once and is assumed to scale linearly over cores (it does not when other programs share them); data loading and start-up are not counted",
            "at the plan's pace: the plan's cells' own seconds x (full sweep / plan sweep, both modelled as above), divided over the cells run at once, on the device the plan ran on: it carries this machine's load while the plan ran and the cells' overheads",
        ]
        return (list, assumptions)
    }

    /// Text for stdout: the forecast, then one line per device.
    public static func text(_ r: PlanResult) -> String {
        var lines = [r.forecast.sentence]
        let f = r.forecast
        let measured = zip(f.planSizes, f.measuredMeans).map { s, m in "\(s): " + (m.map { String(format: "%.3f", $0) } ?? "–") }
        lines.append(
            "plan sweep: \(f.planFolds) folds x sizes \(f.planSizes.map(String.init).joined(separator: ",")) (\(f.sizeUnit)), "
                + "mean \(SweepReport.metricLabel(f.metric)) \(measured.joined(separator: ", ")); took \(formatSeconds(r.planSeconds))"
                + (r.resumedCells > 0 ? " (\(r.resumedCells) cells kept from an earlier run)" : ""))
        if !r.estimates.isEmpty || !r.untimed.isEmpty {
            lines.append(
                "full sweep (\(r.sweepFolds) folds x sizes \(r.sweepSizes.map(String.init).joined(separator: ",")), up to \(r.maxEpochs) epochs):")
            for e in r.estimates {
                lines.append(
                    "  \(e.timing.selector) (\(e.timing.device)): about \(formatSeconds(e.expectedSeconds)), at most \(formatSeconds(e.atMostSeconds))"
                        + (e.pacedSeconds.map { ", at the plan's pace \(formatSeconds($0))" } ?? "")
                        + String(format: " [step %.1f ms, inference %.2f ms/image", e.timing.stepSeconds * 1000, e.timing.forwardSecondsPerImage * 1000)
                        + (e.timing.concurrentCells > 1 ? ", \(e.timing.concurrentCells) cells at once]" : "]"))
            }
            for (d, why) in r.untimed.sorted(by: { $0.key < $1.key }) { lines.append("  \(d): not timed (\(why))") }
            lines += r.assumptions.map { "  assumes \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    /// 42 s, 12 min, 3.4 h, 2.1 days.
    public static func formatSeconds(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 90 { return String(format: "%.0f s", s) }
        if s < 90 * 60 { return String(format: "%.0f min", s / 60) }
        if s < 48 * 3600 { return String(format: "%.1f h", s / 3600) }
        return String(format: "%.1f days", s / 86400)
    }
}
