import CytoCore
import CytoTrain
import CytoSweep
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
