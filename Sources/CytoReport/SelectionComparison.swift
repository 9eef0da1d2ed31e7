import CytoCore
import CytoData
import CytoSweep
import CytoTrain
import Foundation

/// `report SWEEP --compare OTHER...`: learning curves of sweeps that differ only in how
/// their training sets were chosen (`sweep --selection`), overlaid, with the difference
/// per size paired by fold (same test images, so the fold-to-fold spread of the test
/// sets cancels out of the difference).
public enum SelectionComparison {
    /// One sweep against the base at one size, over the folds both finished.
    public struct Row: Sendable, Equatable {
        public var sweep: String
        public var selection: String
        public var size: Int
        public var folds: Int
        public var mean: Double
        public var baseMean: Double
        /// Mean over folds of (this sweep's metric − the base's), and its sample s.d.
        public var difference: Double
        public var differenceSD: Double
        /// Folds where this sweep is better / worse than the base.
        public var better: Int
        public var worse: Int
    }

    public struct Result: Sendable {
        public var metric: String
        public var baseSelection: String
        public var rows: [Row]
        /// Mean metric per size of each sweep (base first), for the overlay.
        public var curves: [(name: String, sizes: [Int], means: [Double])]
    }

    /// Compares `others` with `base`; refuses (naming every difference) a sweep that differs
    /// in anything but its selection: only then is a difference the selection's doing.
    public static func compare(base: URL, others: [URL]) throws -> Result {
        let m0 = try loadSweepManifest(base)
        let r0 = try scanSweepRecords(base, manifest: m0).records
        var rows: [Row] = []
        var curves: [(name: String, sizes: [Int], means: [Double])] = [curve(base, m0, r0)]
        // The same folder twice (or the base itself) would be compared with itself: a
        // difference of exactly 0 that looks like a measurement.
        var seen = [FileSystemPath.lexical(base.path): base.path]
        for other in others {
            let key = FileSystemPath.lexical(other.path)
            if let first = seen[key] {
                throw CytoError.invalidArgument(
                    "--compare \(other.path): the same sweep as \(first)\(first == base.path ? " (the sweep the others are compared with)" : ""); give each sweep once")
            }
            seen[key] = other.path
        }
        for other in others {
            let m = try loadSweepManifest(other)
            let diff = m0.differences(from: m, ignoringSelection: true)
            guard diff.isEmpty else {
                throw CytoError.invalidArgument(
                    "\(other.path) differs from \(base.path) in more than its selection, so their curves cannot be compared: "
                        + diff.map { $0.replacingOccurrences(of: "the directory has", with: "\(base.lastPathComponent) has")
                            .replacingOccurrences(of: "this run has", with: "\(other.lastPathComponent) has") }
                        .joined(separator: "; "))
            }
            let rs = try scanSweepRecords(other, manifest: m).records
            curves.append(curve(other, m, rs))
            var baseValue: [SweepCell: Double] = [:]
            for r in r0 where r.value.isFinite { baseValue[SweepCell(fold: r.fold, size: r.size)] = r.value }
            let before = rows.count
            for size in m.sizes.sorted() {
                let pairs = rs.filter { $0.size == size && $0.value.isFinite }.compactMap { r -> (Double, Double)? in
                    baseValue[SweepCell(fold: r.fold, size: size)].map { (r.value, $0) }
                }
                guard !pairs.isEmpty else { continue }
                let d = pairs.map { $0.0 - $0.1 }
                let md = Metrics.meanSD(d)
                rows.append(
                    Row(
                        sweep: other.path, selection: m.selectionName, size: size, folds: pairs.count,
                        mean: Metrics.mean(pairs.map(\.0)), baseMean: Metrics.mean(pairs.map(\.1)), difference: md.mean,
                        differenceSD: md.sd, better: d.filter { $0 > 0 }.count, worse: d.filter { $0 < 0 }.count))
            }
            // Exit 0 with the sweep missing from compare.csv read as "compared, no rows".
            guard rows.count > before else {
                throw CytoError.invalidArgument(
                    "--compare \(other.path): no cell of it (\(rs.count) of \(m.cells.count) finished) shares a finished fold and size with \(base.path) (\(r0.count) of \(m0.cells.count) finished), so there is nothing to compare yet")
            }
        }
        return Result(metric: m0.protocolSettings.metric, baseSelection: m0.selectionName, rows: rows, curves: curves)
    }

    static func curve(_ url: URL, _ m: SweepManifest, _ records: [SweepRecord]) -> (name: String, sizes: [Int], means: [Double]) {
        let rows = SweepReport.summary(records, metric: m.protocolSettings.metric)
        return ("\(url.lastPathComponent): \(m.selectionName)", rows.map(\.size), rows.map(\.mean))
    }

    /// `compare.csv`: one row per compared sweep and size.
    public static func csv(_ r: Result) -> String {
        var w = CSVWriter(header: [
            "sweep", "selection", "size", "folds", "metric", "mean", "base_mean", "difference_mean", "difference_sd", "better_folds",
            "worse_folds",
        ])
        for row in r.rows {
            w.append([
                row.sweep, row.selection, "\(row.size)", "\(row.folds)", r.metric, CSVWriter.number(row.mean),
                CSVWriter.number(row.baseMean), CSVWriter.number(row.difference), CSVWriter.number(row.differenceSD),
                "\(row.better)", "\(row.worse)",
            ])
        }
        return w.text
    }

    /// Writes `compare.html` (overlay plot and table) and `compare.csv` into `dir`.
    public static func write(_ r: Result, base: URL, to dir: URL) throws -> (html: URL, csv: URL) {
        var page = HTMLPage(title: "Selection strategies compared", subtitle: "base: \(base.path), \(r.baseSelection)")
        page.section("Learning curves")
        let series = r.curves.map { c in LineSeries(name: c.name, x: c.sizes.map(Double.init), y: c.means) }
        page.svg(
            Plots.lines(
                series, options: PlotOptions(title: "Mean \(r.metric) over folds", xLabel: "training images", yLabel: r.metric,
                                             legend: .bottomRight)),
            caption: "Each sweep's mean over its finished folds; the sweeps share their folds' test and validation images.")
        page.section("Difference from the base, paired by fold")
        page.table(
            header: ["sweep", "selection", "size", "folds", "mean", "base mean", "difference", "s.d. over folds", "better / worse folds"],
            rows: r.rows.map {
                [
                    $0.sweep, $0.selection, "\($0.size)", "\($0.folds)", String(format: "%.4f", $0.mean), String(format: "%.4f", $0.baseMean),
                    String(format: "%+.4f", $0.difference), String(format: "%.4f", $0.differenceSD), "\($0.better) / \($0.worse)",
                ]
            })
        let html = dir.appendingPathComponent("compare.html"), csvURL = dir.appendingPathComponent("compare.csv")
        try page.write(to: html)
        try writeAtomically(Data(csv(r).utf8), to: csvURL)
        return (html, csvURL)
    }
}
