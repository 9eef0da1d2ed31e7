import ArgumentParser
import CytoCore
import CytoSweep
import Foundation

extension SweepRunCommand {
    /// The last line of a sweep with failed cells. Where a cell's error file could not be
    /// written (a full disk) it says so, with the error that failed the cell and the one
    /// that kept it from being recorded, instead of pointing at files that do not exist.
    static func failureSummary(_ outcome: SweepRunner.Outcome, out: String) -> String {
        let failed = outcome.failed, unrecorded = outcome.unrecorded
        let one = failed.count == 1
        let retry = "`cytocl sweep retry \(out)` redoes \(one ? "it" : "them")"
        let cells = "\(failed.count) cell\(one ? "" : "s") failed"
        guard let first = unrecorded.first else { return "\(cells) (errors in \(out)/cells/*.error.json); \(retry)" }
        let message = failed.first { $0.cell == first.cell }?.message ?? "?"
        if unrecorded.count < failed.count {
            return "\(cells) (errors in \(out)/cells/*.error.json, except \(unrecorded.map(\.cell.description).joined(separator: ", ")), "
                + "whose error file\(unrecorded.count == 1 ? "" : "s") could not be written (\(first.reason)): "
                + "\(first.cell): \(message)); \(retry)"
        }
        return "\(cells) (\(first.cell): \(message)); "
            + (one ? "its error file could not be written either" : "none of their error files could be written")
            + " (\(first.reason)), so the FAILED line\(one ? "" : "s") above \(one ? "is" : "are") the only record and "
            + "`sweep status` shows \(one ? "the cell" : "them") as missing; \(retry)"
    }
}

/// Writes the job-array script and, unless `dryRun`, submits it; prints the job id.
func submitToSlurm(
    invocation: SweepInvocation, sweep: URL, pending: Int, units: Int? = nil, cellsFile: String?, slurmArgs: String?,
    tasks: Int?, dryRun: Bool, name: String = "sweep.sbatch"
) throws {
    // `units`: how many tasks the cells can keep busy (`SweepManifest.workUnits`).
    let units = units ?? pending
    let extra: [String]
    do { extra = try Slurm.splitArguments(slurmArgs ?? "") } catch { throw ValidationError("\(error)") }
    guard pending > 0 || dryRun else {
        print("\(sweep.path): no cell to run (all finished); nothing submitted")
        return
    }
    let n = max(1, min(tasks ?? min(units, 1000), max(1, units)))
    if let t = tasks, t < 1 { throw ValidationError("--tasks must be at least 1") }
    let cells = cellsFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
    let text = Slurm.script(
        executable: invocation.executable, arguments: invocation.arguments(for: sweep), tasks: n, sweep: sweep.standardizedFileURL,
        workingDirectory: try invocation.runDirectory(for: sweep), cellsFile: cells, slurmArguments: extra)
    let script = try Slurm.writeScript(text, sweep: sweep, name: name)
    if dryRun {
        note("wrote \(script.path) (\(n) array tasks for \(pending) cells\(units < pending ? " in \(units) folds" : "")); not submitted (--dry-run)")
        print(script.path)
        return
    }
    let id: String
    do { id = try Slurm.submit(script: script, slurmArguments: extra) } catch { throw RunError("\(error)") }
    note(
        "submitted \(script.path): job array \(id), \(n) tasks for \(pending) cells; logs in \(sweep.path)/slurm/; "
            + "follow with: cytocl sweep status \(sweep.path)")
    print(id)
}
