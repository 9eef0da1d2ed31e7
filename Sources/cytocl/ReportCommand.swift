import ArgumentParser
import CytoCore
import CytoData
import CytoExplain
import CytoReport
import CytoSweep
import CytoTrain
import Foundation

/// `cytocl report`: the HTML page, SVG figures and CSV tables of a sweep directory.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write SWEEP_DIR/report/index.html (inline SVG figures), summary.csv and cells.csv for a sweep.",
        discussion: """
            When the sweep saved its models (--save-models), the page also shows, for the fold with
            the most saved models, the paper's Fig. 4b (saliency and LRP-epsilon maps of the networks
            trained on the sizes nearest 10, 50, 100 and 200, for one test image per class or the
            --explain-images) and Fig. 5 (t-SNE of dense1 for the sizes nearest 10, 50 and 100, over
            the test images plus the images that size left out of training). --no-explain leaves them out.

            The page forecasts the training size at which the protocol's metric reaches --target (a
            weighted power-law fit with a fold-bootstrap 90% interval, docs/learning-curves.md), with a
            back-test of the larger measured sizes (--fit-sizes MAX fits only the sizes up to MAX), and
            writes learning-curve.csv (size,observed_mean,predicted,lower,upper).
            """)

    @Argument(help: "A directory made by `cytocl sweep` (may still be running).")
    var sweepDir: String

    @Option(name: .long, help: "Output directory (default: SWEEP_DIR/report).")
    var out: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Saliency and t-SNE panels of saved models.")
    var explain = true

    @Option(
        name: .long,
        help:
            "Images for the saliency/LRP figure, comma-separated ids (paths relative to the data set) (default: one test image per class).")
    var explainImages: String?

    @Option(
        name: .long,
        help: "Class index whose score the saliency/LRP maps explain (default: each image's true class; the authors' scripts used 0).")
    var explainClass: Int?

    @Option(name: .long, help: "At most this many points per t-SNE panel (a seeded sample beyond it).")
    var tsnePoints: Int = 1000

    @Option(name: .long, help: "Metric the forecast aims for, in (0, 1) (default: 0.95 for ROC-AUC, 0.90 for weighted F1).")
    var target: Double?

    @Option(name: .customLong("fit-sizes"), help: "Fit the learning curve only on sizes up to MAX (a back-test of the larger ones).")
    var fitSizes: Int?

    @Option(
        name: .long, parsing: .upToNextOption,
        help:
            "Other sweeps that differ from SWEEP_DIR only in --selection: writes compare.html (the curves overlaid) and compare.csv (the mean difference per size and its s.d. over folds) instead of the report.")
    var compare: [String] = []

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard tsnePoints >= 4 else { throw ValidationError("--tsne-points must be at least 4") }
        if let target, !(target > 0 && target < 1) { throw ValidationError("--target must be a number between 0 and 1 (exclusive)") }
        if let fitSizes, fitSizes < 1 { throw ValidationError("--fit-sizes must be a positive training size") }
    }

    /// The manifest of the sweep at `dir`, after refusing a damaged record, or one whose
    /// stored metrics are not the ones its own test probabilities give (e.g. a hand-edited
    /// ROC-AUC), before anything is written: a report or comparison without it would be
    /// exit 0 beside a file that cannot be trusted. (A diverged cell is a failed training,
    /// not damage: it is left out and named.)
    @discardableResult
    func refuseCorruptRecords(_ dir: String) throws -> SweepManifest {
        let url = URL(fileURLWithPath: dir)
        let manifest = try loadSweepManifest(url)  // "not a sweep directory" before anything is created
        if let bad = try scanSweepRecords(url, manifest: manifest).rejected.first(where: { $0.kind == .corrupt }) {
            throw RunError("\(bad.description) (`cytocl sweep retry \(dir)` redoes the cell)")
        }
        return manifest
    }

    func run() throws {
        let sweep = URL(fileURLWithPath: sweepDir)
        let reportDir = out.map { URL(fileURLWithPath: $0) } ?? sweep.appendingPathComponent("report")
        if !compare.isEmpty {
            // A damaged record is refused here as in the report: the comparison used to leave
            // that fold out without a word ("over 2 folds" of 3) and exit 0.
            for dir in [sweepDir] + compare { try refuseCorruptRecords(dir) }
            try AtomicFile.preflight(["compare.html", "compare.csv"].map { reportDir.appendingPathComponent($0) })
            let result = try SelectionComparison.compare(base: sweep, others: compare.map { URL(fileURLWithPath: $0) })
            for r in result.rows {
                note(
                    "\(r.selection) size \(r.size): \(result.metric) "
                        + String(
                            format: "%.4f vs %.4f, difference %+.4f (s.d. %.4f over %d folds)", r.mean, r.baseMean, r.difference,
                            r.differenceSD, r.folds))
            }
            let written = try SelectionComparison.write(result, base: sweep, to: reportDir)
            print(written.html.path)
            print(written.csv.path)
            return
        }
        let manifest = try refuseCorruptRecords(sweepDir)
        try AtomicFile.preflight(["index.html", "summary.csv", "cells.csv", "learning-curve.csv"].map { reportDir.appendingPathComponent($0) })
        let written: SweepReport.Written
        var panelWarning: String?
        do {
            written = try SweepReport.write(
                sweep: sweep, to: out.map { URL(fileURLWithPath: $0) },
                forecast: LearningCurveReport.Options(target: target, fitSizes: fitSizes)
            ) { page in
                guard explain else { return }
                var options = ModelPanels.Options()
                options.explainImages = explainImages.map {
                    $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                }
                options.explainClass = explainClass
                options.maxTSNEPoints = tsnePoints
                let panels = ModelPanels(
                    sweep: sweep, manifest: try loadSweepManifest(sweep), records: try loadSweepRecords(sweep),
                    options: options
                ) { try backendOptions.make() }
                panelWarning = try panels.add(to: &page)
            }
        }
        if let w = panelWarning { note("warning: " + w) }
        for r in written.rejected { note("left out \(r.description)") }
        note(
            "\(written.cells) of \(written.totalCells) cells finished"
                + (written.rejected.isEmpty
                    ? "" : "; \(written.rejected.count) cell files left out (`cytocl sweep retry \(sweepDir)` redoes them)"))
        if let s = written.forecastSentence { note(s) }
        print(written.html.path)
        print(written.summaryCSV.path)
    }
}
