import CytoCore
import CytoSweep
import CytoTrain
import Foundation

/// The report's calibration section: a reliability diagram of the largest training size,
/// pooled over its folds' test images, with the ECE and Brier score beside it.
public enum CalibrationReport {
    public static func add(to page: inout HTMLPage, manifest: SweepManifest, records: [SweepRecord]) {
        guard let largest = records.map(\.size).max() else { return }
        let rs = records.filter { $0.size == largest }
        let probs = rs.flatMap(\.testProbabilities), labels = rs.flatMap(\.testLabels)
        guard !probs.isEmpty, probs.count == labels.count else { return }
        let bins = Metrics.reliability(probabilities: probs, labels: labels)
        let ece = Metrics.expectedCalibrationError(bins), brier = Metrics.brierScore(probabilities: probs, labels: labels)
        guard ece.isFinite, brier.isFinite else { return }
        let unit = manifest.protocolSettings.balancePerClass ? "training images per class" : "training images"
        page.section("Calibration at \(largest) \(unit)")
        page.svg(
            diagram(bins),
            caption: "Reliability diagram of the \(probs.count) test images of \(rs.count) fold\(rs.count == 1 ? "" : "s") (pooled): "
                + "accuracy against the predicted class's probability in 15 equal-width bins (bars; a bin's count in its tooltip), "
                + "the diagonal is perfect calibration; bars below it are over-confident. "
                + String(format: "ECE %.3f, Brier %.3f (Brier's multi-class form, 0 best, 2 worst).", ece, brier)
                + " Table S2 and summary.csv give the ECE per size (mean over folds).")
        addTemperatureScaling(to: &page, records: records)
    }

    /// One row per training size of the cells that fitted a temperature on their validation
    /// images (`CellCalibration`): the median temperature and its range over the folds whose fit found an optimum, how many
    /// fits hit a bound, and the mean ECE before -> after on the validation images (where it
    /// was fitted) and on the test images (which it never saw).
    public static func temperatureRows(_ records: [SweepRecord]) -> [[String]] {
        let sizes = Array(Set(records.filter { $0.calibration != nil }.map(\.size))).sorted()
        return sizes.map { s in
            let cs = records.filter { $0.size == s }.compactMap(\.calibration)
            // A fit at a bound found no optimum and is applied as T = 1: its bound value
            // (20) is not an estimate, and in the median it read as "T is about 11".
            let t = cs.filter { !$0.atBound }.map(\.temperature).sorted()
            func mean(_ k: KeyPath<CellCalibration, Double>) -> Double { Metrics.mean(cs.map { $0[keyPath: k] }) }
            let vImages = Set(cs.map(\.validationImages)).sorted().map(String.init).joined(separator: "/")
            return [
                "\(s)", "\(cs.count)", vImages,
                t.isEmpty ? "none (all at a bound)" : String(format: "%.2f (%.2f-%.2f)", BoxStats.quantile(t, 0.5), t[0], t[t.count - 1]),
                "\(cs.filter(\.atBound).count)",
                String(format: "%.3f → %.3f", mean(\.validationECEBefore), mean(\.validationECEAfter)),
                String(format: "%.3f → %.3f", mean(\.testECEBefore), mean(\.testECEAfter)),
            ]
        }
    }

    static func addTemperatureScaling(to page: inout HTMLPage, records: [SweepRecord]) {
        let rows = temperatureRows(records)
        guard !rows.isEmpty else { return }
        page.table(
            header: ["size", "folds", "validation images", "temperature: median (range), fits not at a bound", "at a bound", "validation ECE before → after", "test ECE before → after"],
            rows: rows,
            caption: "Temperature scaling per training size: T fitted on each cell's validation images (NLL, as `train --calibrate`), "
                + "the ECE (15 bins, mean over folds) before and after it on those images and on the cell's test images. The test "
                + "column is the honest one; the validation column is fitted on its own data. Fits at a bound found no optimum "
                + "(e.g. every validation image right) and keep T = 1, as `train --calibrate` does. The metric columns above use the uncalibrated probabilities (T does not "
                + "change ROC-AUC or F1).")
    }

    /// Bars of accuracy per confidence bin over the diagonal.
    static func diagram(_ bins: [Metrics.ReliabilityBin]) -> String {
        let o = PlotOptions(
            title: "reliability (top label)", xLabel: "confidence (largest probability)", yLabel: "accuracy", width: 460, height: 420,
            xRange: 0...1, yRange: 0...1, legend: .topLeft)
        let xAxis = Axis.make([], scale: .linear, fixed: o.xRange), yAxis = Axis.make([], scale: .linear, fixed: o.yRange)
        let legend = Legend(
            entries: [
                ("accuracy per bin", .patch(color: Palette.color(0), opacity: 0.6)),
                ("perfect calibration", .line(color: "#555", dashed: true, width: 1.5)),
            ],
            fontSize: o.fontSize - 1)
        let f = Frame.layout(options: o, x: xAxis, y: yAxis)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title)
        f.draw(on: &c, options: o)
        for b in bins where b.count > 0 {
            let x0 = f.px(b.lower), x1 = f.px(b.upper), y = f.py(b.accuracy)
            c.rect(
                x0 + 1, y, x1 - x0 - 2, f.bottom - y, fill: Palette.color(0), stroke: Palette.color(0), opacity: 0.6,
                tooltip: String(
                    format: "confidence %.2f-%.2f: %d images, mean confidence %.3f, accuracy %.3f", b.lower, b.upper, b.count,
                    b.meanConfidence, b.accuracy))
            c.line(x0 + 1, f.py(b.meanConfidence), x1 - 1, f.py(b.meanConfidence), stroke: Palette.color(5), width: 2)
        }
        c.line(f.px(0), f.py(0), f.px(1), f.py(1), stroke: "#555", width: 1.5, dash: "6 4")
        legend.draw(on: &c, frame: f, position: o.legend)
        return c.svg
    }
}
