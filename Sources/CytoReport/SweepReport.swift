import CytoCore
import CytoSweep
import CytoTrain
import Foundation

/// One row of `summary.csv`: the metric's mean and sample s.d. over the finished folds of one size.
public struct SweepSummaryRow: Sendable, Equatable {
    public var size: Int
    public var folds: Int
    public var metric: String
    public var mean: Double
    public var sd: Double
}

/// The report of a sweep directory: one self-contained `index.html` (inline SVG) with
/// the paper's figures, `summary.csv` (`size,folds,metric,mean,sd`) and `cells.csv`
/// (one row per finished cell). Works on a sweep that is still running (finished cells only).
public enum SweepReport {
    /// The paper's reported values (mean, s.d.) per size, for the protocols it ran.
    public static func paperValues(protocolName: String) -> [(size: Int, mean: Double, sd: Double)] {
        switch protocolName {
        case "all-idb-binary": return [(200, 0.97, 0.02)]
        case "aml-binary": return [(50, 0.91, 0.04), (200, 0.93, 0.02)]
        case "multiclass": return [(150, 0.81, 0.09)]
        default: return []
        }
    }

    /// Mean and s.d. of each size's metric over the folds finished so far (NaN values skipped).
    public static func summary(_ records: [SweepRecord], metric: String) -> [SweepSummaryRow] {
        let sizes = Array(Set(records.map(\.size))).sorted()
        return sizes.map { s in
            let v = records.filter { $0.size == s }.map(\.value).filter { $0.isFinite }
            let m = Metrics.meanSD(v)
            return SweepSummaryRow(size: s, folds: v.count, metric: metric, mean: m.mean, sd: m.sd)
        }
    }

    /// Per size whose finished cells are not all balanced: a line saying in how many
    /// folds and by how much per class (`TrainingBalance.note`), from the records'
    /// training class counts (derived from the fold assignment for older records).
    public static func balanceNotes(manifest: SweepManifest, records: [SweepRecord]) -> [String] {
        let p = manifest.protocolSettings
        guard !p.balancePerClass else { return [] }
        let k = manifest.classNames.count
        return Array(Set(records.map(\.size))).sorted().compactMap { s in
            let counts = records.filter { $0.size == s }.compactMap { $0.classCounts(manifest: manifest) }
            return TrainingBalance.note(
                size: p.sizeLabel(s), classNames: manifest.classNames,
                target: (0..<k).map { p.trainingShare(size: s, classIndex: $0, classCount: k) }, perFold: counts)
        }
    }

    /// Per size with a collapsed cell (`SweepRecord.collapseReason`): size, collapsed of
    /// finished, the metric's mean ± s.d. over all cells and over the others. Empty when
    /// no cell collapsed.
    public static func collapseRows(_ records: [SweepRecord]) -> [[String]] {
        Array(Set(records.map(\.size))).sorted().compactMap { s in
            let rs = records.filter { $0.size == s }
            let dead = rs.filter { $0.collapseReason != nil }
            guard !dead.isEmpty else { return nil }
            func ms(_ rows: [SweepRecord]) -> String {
                let v = rows.map(\.value).filter(\.isFinite)
                guard !v.isEmpty else { return "–" }
                let m = Metrics.meanSD(v)
                return Metrics.MeanSD(mean: m.mean, sd: m.sd, count: v.count).formatted() + " (\(v.count))"
            }
            return ["\(s)", "\(dead.count) of \(rs.count)", ms(rs), ms(rs.filter { $0.collapseReason == nil })]
        }
    }

    /// The metrics every record holds, in table order (`roc_auc` only with two classes;
    /// `ece`, the expected calibration error, is computed from the stored test probabilities;
    /// `ece_calibrated` is the test ECE after the temperature fitted on the cell's validation
    /// images, in records that have it, `CellCalibration`).
    public static let metricNames = ["roc_auc", "accuracy", "f1_weighted", "f1_macro", "ece", "ece_calibrated"]

    /// A record's value of `metric` (nil when it has none, e.g. ROC-AUC with more than two classes).
    public static func value(_ r: SweepRecord, metric: String) -> Double? {
        switch metric {
        case r.metric: return r.value
        case "roc_auc": return r.rocAUC
        case "accuracy": return r.accuracy
        case "f1_weighted": return r.f1Weighted
        case "f1_macro": return r.f1Macro
        case "ece": return Metrics.expectedCalibrationError(Metrics.reliability(probabilities: r.testProbabilities, labels: r.testLabels))
        case "ece_calibrated": return r.calibration?.testECEAfter
        default: return nil
        }
    }

    /// Mean and s.d. per size of every metric the records hold (Table S2): per size, the
    /// protocol's metric first, then the others in `metricNames` order.
    public static func summaryAllMetrics(_ records: [SweepRecord], primary: String) -> [SweepSummaryRow] {
        let sizes = Array(Set(records.map(\.size))).sorted()
        let metrics = [primary] + metricNames.filter { $0 != primary }
        var out: [SweepSummaryRow] = []
        for s in sizes {
            let rs = records.filter { $0.size == s }
            for m in metrics {
                let v = rs.compactMap { value($0, metric: m) }.filter { $0.isFinite }
                guard !v.isEmpty || m == primary else { continue }
                let ms = Metrics.meanSD(v)
                out.append(SweepSummaryRow(size: s, folds: v.count, metric: m, mean: ms.mean, sd: ms.sd))
            }
        }
        return out
    }

    public static func summaryCSV(_ rows: [SweepSummaryRow]) -> String {
        var w = CSVWriter(header: ["size", "folds", "metric", "mean", "sd"])
        // The s.d. of fewer than two folds is undefined: an empty field, not NaN or 0.
        for r in rows {
            w.append([
                "\(r.size)", "\(r.folds)", r.metric, r.mean.isFinite ? CSVWriter.number(r.mean) : "",
                r.sd.isFinite && r.folds >= 2 ? CSVWriter.number(r.sd) : "",
            ])
        }
        return w.text
    }

    public static func cellsCSV(_ records: [SweepRecord]) -> String {
        var w = CSVWriter(header: [
            "fold", "size", "metric", "value", "accuracy", "f1_weighted", "epochs", "best_epoch",
            "train_images", "val_images", "test_images", "wall_seconds", "backend",
        ])
        for r in records {
            w.append([
                "\(r.fold)", "\(r.size)", r.metric, CSVWriter.number(r.value), CSVWriter.number(r.accuracy),
                CSVWriter.number(r.f1Weighted), "\(r.epochsRun)", "\(r.bestEpoch)", "\(r.trainIDs.count)",
                "\(r.validationIDs.count)", "\(r.testIDs.count)", String(format: "%.3f", r.wallSeconds), r.backend,
            ])
        }
        return w.text
    }

    public struct Written: Sendable {
        public var html: URL
        public var summaryCSV: URL
        public var cellsCSV: URL
        public var cells: Int
        public var totalCells: Int
        /// Cell files left out of every figure and table: damaged, or diverged training.
        public var rejected: [RejectedRecord] = []
        /// `learning-curve.csv` and the forecast sentence (LearningCurveReport).
        public var learningCurveCSV: URL? = nil
        public var forecastSentence: String? = nil
    }

    /// Writes the report of `sweep` into `out` (default `sweep/report`).
    /// - Parameter extra: adds sections to the page before it is written (the command
    ///   uses it for the saliency and t-SNE panels of saved models).
    @discardableResult
    public static func write(
        sweep: URL, to out: URL? = nil, forecast: LearningCurveReport.Options = .init(),
        extra: ((inout HTMLPage) throws -> Void)? = nil
    ) throws -> Written {
        let manifest = try loadSweepManifest(sweep)
        let scanned = try scanSweepRecords(sweep, manifest: manifest)
        let records = scanned.records
        let dir = out ?? sweep.appendingPathComponent("report")
        let rows = summary(records, metric: manifest.protocolSettings.metric)
        var page = self.page(manifest: manifest, records: records, rows: rows, sweepPath: sweep.path, rejected: scanned.rejected)
        let curve = LearningCurveReport(manifest: manifest, records: records, options: forecast)
        curve.add(to: &page)
        CalibrationReport.add(to: &page, manifest: manifest, records: records)
        try extra?(&page)
        Fidelity.add(to: &page, manifest: manifest, records: records)
        let html = dir.appendingPathComponent("index.html")
        let csv = dir.appendingPathComponent("summary.csv")
        let cells = dir.appendingPathComponent("cells.csv")
        try writeAtomically(Data(summaryCSV(summaryAllMetrics(records, primary: manifest.protocolSettings.metric)).utf8), to: csv)
        try writeAtomically(Data(cellsCSV(records).utf8), to: cells)
        let curveCSV = dir.appendingPathComponent("learning-curve.csv")
        try writeAtomically(Data(curve.csv.utf8), to: curveCSV)
        try page.write(to: html)
        return Written(
            html: html, summaryCSV: csv, cellsCSV: cells, cells: records.count,
            totalCells: manifest.folds * manifest.sizes.count, rejected: scanned.rejected,
            learningCurveCSV: curveCSV, forecastSentence: curve.sentence)
    }

    /// A log10 x axis when the sizes span two decades or more (e.g. 10 ... all), linear otherwise.
    public static func xScale(sizes: [Double]) -> AxisScale {
        guard let lo = sizes.filter({ $0 > 0 }).min(), let hi = sizes.max() else { return .linear }
        return hi / lo >= 100 ? .log10 : .linear
    }

    public static func metricLabel(_ m: String) -> String {
        switch m {
        case "roc_auc": return "ROC-AUC"
        case "f1_weighted": return "weighted F1"
        case "f1_macro": return "macro F1"
        case "ece": return "ECE"
        case "ece_calibrated": return "ECE after temperature scaling"
        default: return m
        }
    }

    /// The HTML page.
    public static func page(
        manifest: SweepManifest, records: [SweepRecord], rows: [SweepSummaryRow],
        sweepPath: String, rejected: [RejectedRecord] = []
    ) -> HTMLPage {
        let p = manifest.protocolSettings
        let total = manifest.folds * manifest.sizes.count
        let metric = metricLabel(p.metric)
        var page = HTMLPage(
            title: "CytoCL sweep: \(p.name)",
            subtitle: "\(sweepPath) — report written \(ISO8601DateFormatter().string(from: Date()))")
        page.section("Run")
        if records.count < total {
            page.note("\(records.count) of \(total) cells are finished; this report shows those (the sweep may still be running).")
        }
        let backends = Array(Set(records.map(\.backend))).sorted()
        let wall = records.reduce(0) { $0 + $1.wallSeconds }
        let spec = manifest.spec
        page.keyValues([
            ("protocol", p.name),
            (
                "data",
                "\(manifest.dataPath) — \(manifest.imageCount) images; "
                    + zip(manifest.classNames, manifest.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")
            ),
            ("folds", "\(p.folds)" + (p.testPerFold.map { ", \($0) test images per fold" } ?? ", every image tested once")),
            ("validation", p.valPerFold.map { "\($0) images from the next fold's test block" } ?? "the next fold's test block"),
            (
                "training sizes",
                p.sizes.map(String.init).joined(separator: ", ")
                    + (p.balancePerClass
                        ? " per class (balanced)"
                        : balanceNotes(manifest: manifest, records: records).isEmpty
                            ? " (balanced, nested)" : " (nested; balanced where the folds' pools allow: see the note below the size table)")
            ),
            (
                "training",
                "\(p.training.optimizer.summary), batch \(p.training.batchSize), "
                    + "at most \(p.training.maxEpochs) epochs, patience \(p.training.patience), augmentation \(p.training.augment ? "on (\(p.training.resolvedAugmentSampler.rawValue) sampling)" : "off")"
            ),
            (
                "model",
                "input \(spec.inputWidth)x\(spec.inputHeight), conv \(spec.convFilters.map(String.init).joined(separator: ",")), "
                    + "dense \(spec.denseUnits.map(String.init).joined(separator: ",")), \(spec.classes) classes, \(formatThousands(spec.parameterCount)) parameters"
            ),
            ("seed", "\(manifest.seed)"),
            ("training sets", manifest.selection.map { "chosen by \($0), each size extending the last (docs/selection.md)" } ?? "the protocol's random draw"),
            (
                "near-duplicates",
                manifest.nearDuplicates.map { nd in
                    nd.text + (nd.dropped.isEmpty ? "" : ": " + nd.dropped.joined(separator: ", "))
                } ?? "not looked for"
            ),
            ("cells finished", "\(records.count) of \(total)"),
            ("backend / device", backends.isEmpty ? "–" : backends.joined(separator: "; ")),
            ("wall time (sum over cells)", formatSeconds(wall)),
        ])
        for n in p.notes { page.note(n) }
        if !rejected.isEmpty {
            page.note(
                "\(rejected.count) cell file\(rejected.count == 1 ? " is" : "s are") left out of every figure and table "
                    + "(`cytocl sweep retry` redoes them): "
                    + rejected.map { "\($0.url.lastPathComponent): " + "\($0.kind == .diverged ? "training diverged, " : "")\($0.reason)" }
                    .joined(separator: "; "))
        }

        // Metric against size (Fig. 4a / 6).
        page.section("\(metric) against training-set size")
        let paper = paperValues(protocolName: p.name)
        if records.isEmpty {
            page.paragraph("No cell is finished yet.")
        } else {
            let groups = rows.map { r in
                BoxGroup(
                    position: Double(r.size),
                    values: records.filter { $0.size == r.size }.map(\.value).filter { $0.isFinite })
            }
            .filter { !$0.values.isEmpty }
            let refs = paper.map { ReferencePoint(x: Double($0.size), y: $0.mean, sd: $0.sd) }
            if !groups.isEmpty {
                let yLo = min(0.5, (groups.flatMap(\.values).min() ?? 0.5) - 0.02)
                let scale = xScale(sizes: groups.map(\.position))
                page.svg(
                    Plots.boxes(
                        groups, references: refs, referenceLabel: "paper", seriesLabel: "this run",
                        options: PlotOptions(
                            title: "\(metric) per training-set size",
                            xLabel: p.balancePerClass ? "training images per class" : "training images",
                            yLabel: metric, width: 720, height: 420, xScale: scale,
                            yRange: max(0, yLo)...1, legend: .bottomRight)),
                    caption: "Box plots over folds: median, quartiles, whiskers at 1.5 IQR, outliers as dots (cf. the paper's Fig. 4a / 6)"
                        + (scale == .log10 ? "; log x axis, as the sizes span decades." : ".")
                        + (p.allTrainingSize.map { " Size \($0) is `all`: every training image of a fold." } ?? ""))
            }
        }
        var tableRows: [[String]] = []
        for r in rows {
            let rs = records.filter { $0.size == r.size }
            let ref = paper.first { $0.size == r.size }
            tableRows.append([
                p.sizeLabel(r.size) + (rs.contains { ($0.sampling ?? "balanced") != "balanced" } ? " (not balanced)" : ""),
                "\(r.folds)",
                Metrics.MeanSD(mean: r.mean, sd: r.sd, count: r.folds).formatted(),
                ref.map { String(format: "%.2f ± %.2f", $0.mean, $0.sd) } ?? "",
                String(format: "%.1f", Metrics.mean(rs.map { Double($0.epochsRun) })),
                String(format: "%.1f", Metrics.mean(rs.map { Double($0.bestEpoch) })),
                formatSeconds(Metrics.mean(rs.map(\.wallSeconds))),
            ])
        }
        page.table(
            header: ["size", "folds", "\(metric) mean ± s.d.", "paper", "epochs run", "best epoch", "wall time per cell"],
            rows: tableRows, caption: "Mean ± sample s.d. over finished folds (also in summary.csv).")
        let collapsedRows = collapseRows(records)
        if !collapsedRows.isEmpty {
            let n = records.filter { $0.collapseReason != nil }.count
            page.section("Cells whose network never learned")
            page.table(
                header: ["size", "collapsed cells", "\(metric) mean ± s.d., all cells", "without the collapsed cells"],
                rows: collapsedRows,
                caption:
                    "\(n) cell\(n == 1 ? "" : "s") gave the same output for every test image or kept the training loss at chance "
                    + "(ln classes ± \(Collapse.lossTolerance)) in every epoch: a network dead from its initialisation. "
                    + "The paper's protocol has no restarts, so they are kept in every other figure and table; "
                    + ((p.restarts ?? 0) > 0
                        ? "this sweep re-initialised such cells up to \(p.restarts!) time\(p.restarts! == 1 ? "" : "s") (`--restarts`), and these stayed dead. "
                        : "`sweep --restarts N` re-initialises such cells. ")
                    + records.filter { $0.collapseReason != nil }.map { "fold \($0.fold) size \($0.size): \($0.collapseReason!)" }
                    .joined(separator: "; ") + ".")
        }
        let unbalanced = balanceNotes(manifest: manifest, records: records)
        if !unbalanced.isEmpty {
            page.note(
                "Training sets not balanced (a class's pool in the fold held fewer than half the size: it gave all it has and "
                    + "the other class filled the rest; a size above the whole pool used the pool): " + unbalanced.joined(separator: "; ")
                    + ".")
        }

        // Every metric per size (the paper's Table S2).
        let all = summaryAllMetrics(records, primary: p.metric)
        let shown = metricNames.filter { m in all.contains { $0.metric == m } }
        if !all.isEmpty {
            page.section("Table S2: every metric per training-set size")
            let tableS2 = rows.map { r -> [String] in
                [p.sizeLabel(r.size)]
                    + shown.map { m in
                        all.first { $0.size == r.size && $0.metric == m }.map {
                            Metrics.MeanSD(mean: $0.mean, sd: $0.sd, count: $0.folds).formatted()
                        } ?? "–"
                    }
            }
            page.table(
                header: ["size"] + shown.map(metricLabel), rows: tableS2,
                caption: "Mean ± sample s.d. over the finished folds (rows of summary.csv: size, folds, metric, mean, sd).")
        }

        let largest = rows.last?.size
        let atLargest = records.filter { $0.size == largest }
        // Mean ROC (Fig. 3b).
        if manifest.classNames.count == 2, let largest, !atLargest.isEmpty {
            page.section("Mean ROC curve at \(largest) training images")
            let curves = atLargest.map { r in Metrics.rocCurve(scores: r.testProbabilities.map { Double($0[1]) }, labels: r.testLabels) }
            let mean = Metrics.meanROC(curves)
            page.svg(
                Plots.roc(mean, folds: curves),
                caption: "Mean ROC over \(mean.folds) fold\(mean.folds == 1 ? "" : "s"), AUC \(mean.auc.meanWithSD())"
                    + (mean.folds < 2 ? " (the s.d. needs at least two folds)" : "") + " (cf. Fig. 3b).")
        }
        // Loss curves (Fig. 3a).
        if let r = atLargest.first {
            page.section("Loss curves (fold \(r.fold), \(r.size) training images)")
            let x = r.history.map { Double($0.epoch) }
            var series = [LineSeries(name: "training loss", x: x, y: r.history.map(\.loss))]
            let vl = r.history.map { $0.validationLoss ?? .nan }
            if vl.contains(where: { $0.isFinite }) { series.append(LineSeries(name: "validation loss", x: x, y: vl)) }
            page.svg(
                Plots.lines(series, options: PlotOptions(title: "loss per epoch", xLabel: "epoch", yLabel: "cross-entropy")),
                caption: "Best epoch \(r.bestEpoch) of \(r.epochsRun) (its weights were tested); \(r.stopReason) (cf. Fig. 3a).")
        }
        // Confusion matrix (Fig. 7b).
        if manifest.classNames.count > 2, let largest, !atLargest.isEmpty {
            page.section("Confusion matrix at \(largest) training images per class")
            let k = manifest.classNames.count
            var m = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
            for r in atLargest { for i in 0..<k { for j in 0..<k { m[i][j] += r.confusion[i][j] } } }
            let f1 = Metrics.meanSD(atLargest.map(\.f1Weighted))
            page.svg(
                Plots.confusion(m, classNames: manifest.classNames),
                caption: "Row-normalised, summed over \(atLargest.count) test folds; weighted F1 \(f1.formatted()) (cf. Fig. 7b).")
        }
        return page
    }

    static func formatSeconds(_ s: Double) -> String {
        guard s.isFinite else { return "–" }
        if s < 60 { return String(format: "%.1f s", s) }
        if s < 3600 { return String(format: "%d min %02d s", Int(s) / 60, Int(s) % 60) }
        return String(format: "%d h %02d min", Int(s) / 3600, (Int(s) % 3600) / 60)
    }
}
