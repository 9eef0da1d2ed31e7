import CytoCore
import CytoSweep
import CytoTrain
import Foundation

/// The report's forecast section ("How many images reach the target?") and
/// `learning-curve.csv`, from a sweep's records (see LearningCurve.swift for the maths).
public struct LearningCurveReport: Sendable {
    /// What the user asked: the target metric (nil = the paper's 0.95 for ROC-AUC, 0.90
    /// for weighted F1) and the largest size fitted (nil = all).
    public struct Options: Sendable, Equatable {
        public var target: Double?
        public var fitSizes: Int?
        public init(target: Double? = nil, fitSizes: Int? = nil) { self.target = target; self.fitSizes = fitSizes }
    }

    /// One comparison of a forecast with a measured mean.
    public struct BackTestRow: Sendable, Equatable {
        public var size: Int
        public var observed: Double
        public var predicted: Double
        public var lower: Double
        public var upper: Double
        public var inside: Bool { observed >= lower && observed <= upper }
        public var error: Double { predicted - observed }
    }

    public var metric: String
    public var target: Double
    public var sizes: [Int]
    /// Per-size mean over finished folds (NaN where none).
    public var observedMeans: [Double]
    public var forecast: Result<LearningCurveForecast, ForecastFailure>
    /// The back-test: the largest size fitted, and the forecasts of the measured sizes above it.
    public var backTest: Result<(fittedUpTo: Int, rows: [BackTestRow]), ForecastFailure>
    /// Whether sizes count images per class.
    public var perClass: Bool

    /// The paper's target for a metric: 0.95 ROC-AUC, 0.90 weighted F1.
    public static func defaultTarget(metric: String) -> Double { metric == "roc_auc" ? 0.95 : 0.90 }

    /// `values[fold][size]` of the protocol's metric, NaN where a cell has no finite value.
    public static func matrix(_ records: [SweepRecord], folds: Int, sizes: [Int]) -> [[Double]] {
        var v = [[Double]](repeating: [Double](repeating: .nan, count: sizes.count), count: folds)
        for r in records where r.fold >= 0 && r.fold < folds {
            if let j = sizes.firstIndex(of: r.size), r.value.isFinite { v[r.fold][j] = r.value }
        }
        return v
    }

    /// The training size of each of `sizes` (sorted) as its cells trained: the size
    /// itself, or, for a size capped at the folds' whole training pools (`sampling`
    /// `capped`), the mean number of distinct images its cells trained on. `--sizes
    /// 4,8,16,1000` on a 60-image set trained the last size on 40 images, and the curve
    /// was fitted, drawn and forecast with that point at 1,000. The sizes as given when
    /// the capped ones would not stay in increasing order.
    public static func trainedSizes(_ sizes: [Int], records: [SweepRecord]) -> [Int] {
        let trained = sizes.map { s -> Int in
            let cells = records.filter { $0.size == s }
            // A strategy's sets (`selected`) are capped the same way when the pool runs out.
            let capped = cells.contains {
                $0.sampling == "capped" || ($0.sampling == SweepSelection.sampling && Set($0.trainIDs).count < s)
            }
            guard capped else { return s }
            let counts = cells.map { Double(Set($0.trainIDs).count) }
            return Int((counts.reduce(0, +) / Double(counts.count)).rounded())
        }
        return zip(trained, trained.dropFirst()).allSatisfy { $0 < $1 } ? trained : sizes
    }

    public init(manifest: SweepManifest, records: [SweepRecord], options: Options = Options()) {
        let p = manifest.protocolSettings
        metric = p.metric
        target = options.target ?? Self.defaultTarget(metric: p.metric)
        perClass = p.balancePerClass
        let asked = manifest.sizes.sorted()
        let values = Self.matrix(records, folds: manifest.folds, sizes: asked)
        let sizes = Self.trainedSizes(asked, records: records)
        let means = sizes.indices.map { j -> Double in
            let v = values.map { $0[j] }.filter(\.isFinite)
            return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
        }
        self.sizes = sizes
        observedMeans = means
        forecast = LearningCurve.forecast(sizes: sizes, values: values, maxSize: options.fitSizes)
        // The back-test fits the sizes up to --fit-sizes when there are measured sizes above
        // it; otherwise up to half the largest measured size (so the forecast is checked at
        // 2x or more, where it is used), or, when that leaves fewer than three sizes, all
        // but the largest.
        let measured = sizes.indices.filter { means[$0].isFinite }.map { sizes[$0] }
        var cut: Int? = nil
        if let m = options.fitSizes, measured.contains(where: { $0 > m }) {
            cut = m
        } else if let largest = measured.last {
            let half = measured.filter { $0 * 2 <= largest }
            cut = half.count >= 3 ? half.last : measured.dropLast().last
        }
        if let cut {
            backTest = LearningCurve.forecast(sizes: sizes, values: values, maxSize: cut).map { f in
                let rows = sizes.indices.filter { sizes[$0] > cut && means[$0].isFinite }.map { j -> BackTestRow in
                    let b = f.band(at: Double(sizes[j]))
                    return BackTestRow(
                        size: sizes[j], observed: means[j], predicted: f.predicted(at: Double(sizes[j])), lower: b.lower,
                        upper: b.upper)
                }
                return (cut, rows)
            }
        } else {
            backTest = .failure(ForecastFailure("no size is finished"))
        }
    }

    var unit: String { perClass ? "images per class" : "images" }

    /// A size rounded up to whole images (a forecast of 37.2 images needs 38).
    static func formatSize(_ n: Double) -> String { n < 1e12 ? formatThousands(Int(n.rounded(.up))) : String(format: "%.2g", n) }

    /// The forecast sentence: "ROC-AUC 0.95 is forecast at 38 images (90%: 24-71)", or
    /// why there is none.
    public var sentence: String {
        let m = SweepReport.metricLabel(metric)
        let t = String(format: "%.2f", target)
        switch forecast {
        case .failure(let e): return "\(m) \(t): \(e.description)."
        case .success(let f):
            let r = f.sizeReaching(target)
            let lo = r.lower.map(Self.formatSize) ?? "–"
            let hi = r.upper.map(Self.formatSize) ?? "more than \(Self.formatSize(r.horizon))"
            guard let n = r.size else {
                return "The fitted curve levels off at \(m) \(String(format: "%.3f", 1 - f.fit.a)): it does not reach \(t) at any size"
                    + (r.lower != nil ? " (the optimistic edge of the 90% band reaches it at \(lo) \(unit))." : ", nor does its 90% band.")
            }
            if n > r.horizon {
                // Past the band's search (1000x the largest size): neither edge was found, and
                // the sentence read "forecast at 6.8e+30 images (90%: –-more than 20,000)".
                // Said as `plan` says it.
                return "\(m) \(t) is forecast beyond \(Self.formatSize(r.horizon)) \(unit) (1000x the largest size fitted, "
                    + "\(f.largestSize)): too far to extrapolate; the fitted curve levels off at \(m) \(String(format: "%.3f", 1 - f.fit.a))."
            }
            var s = "\(m) \(t) is forecast at \(Self.formatSize(n)) \(unit) (90%: \(lo)-\(hi))."
            if n > 10 * Double(f.largestSize) {
                s += " That is beyond 10x the largest size fitted (\(f.largestSize)), where the interval's coverage was not measured."
            }
            return s
        }
    }

    /// `learning-curve.csv`: the measured sizes and 1.25x-10x the largest fitted size.
    public var csv: String {
        var w = CSVWriter(header: ["size", "observed_mean", "predicted", "lower", "upper"])
        var rows = Set(sizes)
        if case .success(let f) = forecast {
            for k in [1.25, 1.5, 2, 3, 4, 5, 6, 8, 10] { rows.insert(Int((Double(f.largestSize) * k).rounded())) }
        }
        for n in rows.sorted() {
            let obs = sizes.firstIndex(of: n).map { observedMeans[$0] } ?? .nan
            var fields = ["\(n)", obs.isFinite ? CSVWriter.number(obs) : ""]
            if case .success(let f) = forecast {
                let b = f.band(at: Double(n))
                fields += [CSVWriter.number(f.predicted(at: Double(n))), CSVWriter.number(b.lower), CSVWriter.number(b.upper)]
            } else {
                fields += ["", "", ""]
            }
            w.append(fields)
        }
        return w.text
    }

    /// Adds the section to the page.
    public func add(to page: inout HTMLPage) {
        let m = SweepReport.metricLabel(metric)
        page.section("Forecast: how many images reach \(m) \(String(format: "%.2f", target))?")
        page.paragraph(sentence)
        if case .success(let f) = forecast {
            page.svg(
                plot(f),
                caption:
                    "Measured mean over folds (dots; open: not fitted), the fitted law 1 - (a + b n^-c) and its 90% band out to 10x the largest "
                    + "fitted size (\(f.largestSize)), log x axis. Fitted on \(f.sizes.count) sizes and \(f.folds) folds: "
                    + String(format: "a = %.4f (asymptote %@ %.3f), b = %.4g, c = %.3f", f.fit.a, m, 1 - f.fit.a, f.fit.b, f.fit.c)
                    + "; weighted least squares, weights = folds / fold variance per size; band from \(f.replicatesUsed) fold-bootstrap "
                    + "refits" + (f.inflation != .none ? ", widened by the factors measured by simulation" : "")
                    + " (docs/learning-curves.md).")
        }
        switch backTest {
        case .failure(let e):
            page.note("Back-test: \(e.description).")
        case .success(let bt):
            if bt.rows.isEmpty {
                page.note("Back-test: no measured size above \(bt.fittedUpTo).")
            } else {
                let inside = bt.rows.filter(\.inside).count
                let worst = bt.rows.map { abs($0.error) }.max() ?? 0
                page.paragraph(
                    "Back-test: fitted on the sizes up to \(bt.fittedUpTo), the forecast of the largest measured size (\(bt.rows.last!.size)) "
                        + String(format: "is off by %+.3f", bt.rows.last!.error)
                        + " and \(bt.rows.last!.inside ? "inside" : "outside") its 90% interval; over the \(bt.rows.count) measured size"
                        + "\(bt.rows.count == 1 ? "" : "s") above \(bt.fittedUpTo), \(inside) inside, largest error "
                        + String(format: "%.3f.", worst))
                page.table(
                    header: ["size", "measured mean", "forecast", "90% interval", "error", "inside"],
                    rows: bt.rows.map {
                        [
                            "\($0.size)", String(format: "%.3f", $0.observed), String(format: "%.3f", $0.predicted),
                            String(format: "%.3f-%.3f", $0.lower, $0.upper), String(format: "%+.3f", $0.error), $0.inside ? "yes" : "no",
                        ]
                    },
                    caption: "Forecasts from the sizes up to \(bt.fittedUpTo) against what was measured (mean over finished folds).")
            }
        }
    }

    /// Log-x plot: band, fitted line, measured means, target line.
    func plot(_ f: LearningCurveForecast) -> String {
        let m = SweepReport.metricLabel(metric)
        let lo = Double(max(1, min(sizes.first ?? 1, f.sizes.first ?? 1))), hi = Double(f.largestSize) * 10
        let grid = (0...120).map { lo * pow(hi / lo, Double($0) / 120) }
        let bands = grid.map { f.band(at: $0) }
        let line = grid.map { f.predicted(at: $0) }
        let measured = sizes.indices.filter { observedMeans[$0].isFinite }
        let ys = bands.flatMap { [$0.lower, $0.upper] } + measured.map { observedMeans[$0] } + [target]
        let yLo = max(0, (ys.min() ?? 0.5) - 0.02)
        let o = PlotOptions(
            title: "\(m) forecast", xLabel: "training \(unit) (log)", yLabel: m, width: 720, height: 420, xScale: .log10,
            xRange: lo / 1.15...hi, yRange: yLo...1, legend: .bottomRight)
        let xAxis = Axis.make([], scale: .log10, fixed: o.xRange)
        let yAxis = Axis.make([], scale: .linear, fixed: o.yRange)
        let blue = Palette.color(0), orange = Palette.color(1), grey = "#555"
        let legend = Legend(
            entries: [
                ("measured mean (fitted)", .marker(.circle, color: blue)),
                ("fit", .line(color: blue, dashed: false, width: 2)),
                ("90% band", .patch(color: blue, opacity: 0.2)),
                ("target \(String(format: "%.2f", target))", .line(color: orange, dashed: true, width: 1.5)),
            ], fontSize: o.fontSize - 1)
        let fr = Frame.layout(options: o, x: xAxis, y: yAxis)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title)
        fr.draw(on: &c, options: o)
        func Y(_ v: Double) -> Double { fr.py(Plots.clampY(v, fr)) }
        let up = zip(grid, bands).map { (fr.px($0), Y($1.upper)) }
        let down = zip(grid, bands).map { (fr.px($0), Y($1.lower)) }.reversed()
        c.polygon(up + down, fill: blue, opacity: 0.2)
        c.polyline(zip(grid, line).map { (fr.px($0), Y($1)) }, stroke: blue, width: 2)
        c.line(fr.left, Y(target), fr.right, Y(target), stroke: orange, width: 1.5, dash: "6 4")
        let largestX = fr.px(Double(f.largestSize))
        c.line(largestX, fr.top, largestX, fr.bottom, stroke: grey, width: 1, dash: "2 3")
        for j in measured {
            let fitted = f.sizes.contains(sizes[j])
            c.circle(
                fr.px(Double(sizes[j])), Y(observedMeans[j]), r: 4, fill: fitted ? blue : "#fff", stroke: fitted ? nil : blue)
        }
        legend.draw(on: &c, frame: fr, position: o.legend)
        return c.svg
    }
}
