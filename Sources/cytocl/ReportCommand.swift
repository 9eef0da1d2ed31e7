import ArgumentParser
import CytoCore
import CytoReport
import Foundation

/// `cytocl report`: the HTML page, SVG figures and CSV tables of a sweep directory.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write SWEEP_DIR/report/index.html (inline SVG figures), summary.csv and cells.csv for a sweep.")

    @Argument(help: "A directory made by `cytocl sweep` (may still be running).")
    var sweepDir: String

    @Option(name: .long, help: "Output directory (default: SWEEP_DIR/report).")
    var out: String?

    func run() throws {
        let written: SweepReport.Written
        do {
            written = try SweepReport.write(sweep: URL(fileURLWithPath: sweepDir), to: out.map { URL(fileURLWithPath: $0) })
        } catch let e as CytoError { throw ValidationError(e.description) }
        note("\(written.cells) of \(written.totalCells) cells finished")
        print(written.html.path)
        print(written.summaryCSV.path)
    }
}
