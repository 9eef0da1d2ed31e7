import CytoCore
import CytoReport
import CytoSweep
import CytoTrain

/// The page's forecast line from CytoReport's planner: a small cross-validated sweep over
/// the labels so far (5 folds, four training sizes), its learning curve fitted, and the
/// labels it needs to reach the target read off it with the 90% interval.
///
/// The plan's cells train as the page's retraining does (`training`, the network
/// `spec`), not with the paper's 500 epochs: a forecast every batch must take seconds
/// to minutes, not an hour. So it forecasts the page's model; `cytocl plan` gives the
/// full protocol's.
public struct PlanForecaster: LabelForecaster {
    public var spec: ModelSpec
    public var training: TrainingConfig
    /// nil: 0.95 for ROC-AUC (two classes), 0.90 weighted F1 otherwise.
    public var target: Double?
    public var seed: UInt64
    /// Folds of the plan sweep (at least 3).
    public var folds = Planner.defaultFolds

    public init(spec: ModelSpec, training: TrainingConfig, target: Double? = nil, seed: UInt64 = 1) {
        self.spec = spec; self.training = training; self.target = target; self.seed = seed
    }

    public func forecast(images: LabeledImages, classNames: [String], backend: any Backend) throws -> String {
        var p = Planner.defaultProtocol(classCount: classNames.count)
        p.training = training
        let data = SweepData(images: images, ids: images.paths, classNames: classNames, path: "labelled images")
        let plan: Planner.PlanSweep
        do {
            plan = try Planner.runPlanSweep(
                data: data, settings: PlanSettings(sweepProtocol: p, spec: spec, folds: folds, seed: seed, target: target),
                backends: [backend])
        } catch CytoError.invalidArgument(let why) {
            // Too few labels for three plan sizes.
            return "not enough labels yet to forecast (\(images.count) labelled: \(why))"
        } catch let e as TooSmallError {
            // Too few labels of a class for a test block in every fold.
            return "not enough labels yet to forecast (\(images.count) labelled: \(e))"
        }
        return Self.line(plan.forecast)
    }

    /// "about N more labels to reach ROC-AUC 0.95 (90%: a-b)", or why there is none.
    static func line(_ f: PlanForecast) -> String {
        let goal = "\(SweepReport.metricLabel(f.metric)) \(String(format: "%.2f", f.target))"
        if let failure = f.failure { return "no forecast of \(goal) yet: \(failure)" }
        func more(_ total: Int?) -> String? { total.map { formatThousands(max(0, $0 - f.labelled)) } }
        guard f.reachable, let n = f.moreLabels else {
            if let a = f.asymptote, a >= f.target {
                // The planner's "beyond the horizon" case: the curve does reach the target,
                // only past 1000x the largest plan size. "Not forecast to be reached: levels
                // off at 1.000" contradicted itself.
                let largest = f.planSizes.max().map { " (\(formatThousands($0 * 1000)) \(f.sizeUnit) per fold)" } ?? ""
                return "\(goal) is forecast only beyond 1000x the largest plan size\(largest): too far to extrapolate from "
                    + "\(formatThousands(f.labelled)) labels (the curve so far levels off at " + String(format: "%.3f", a) + ")"
            }
            return "\(goal) is not forecast to be reached: the curve so far levels off at "
                + (f.asymptote.map { String(format: "%.3f", $0) } ?? "?")
        }
        let interval = "90%: \(more(f.lower) ?? "–")-\(more(f.upper) ?? "more than 1000x the largest plan size")"
        if n == 0 { return "the \(formatThousands(f.labelled)) labels so far are forecast to reach \(goal) (\(interval) more)" }
        return "about \(formatThousands(n)) more labels to reach \(goal) (\(interval))"
    }
}
