import ArgumentParser
import CytoCore
import CytoSweep
import Foundation

/// `cytocl sweep status SWEEP_DIR`
struct SweepStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a sweep's cells: done, running (host, start), stale, failed (error) and missing.")

    @Argument(help: "The sweep directory.")
    var sweep: String

    @Option(name: .long, parsing: .unconditional, help: "A claim from another host without a heartbeat for this many seconds is stale.")
    var staleAfter: Double = 900

    func run() throws {
        let st = try SweepStatus.scan(URL(fileURLWithPath: sweep), staleAfter: staleAfter, jobIsAlive: Slurm.jobIsAlive)
        print(st.text)
    }
}

/// `cytocl sweep retry SWEEP_DIR [--slurm]`
struct SweepRetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run again only the failed, missing and stale cells of a sweep, here or (--slurm) as a new job array.")

    @Argument(help: "The sweep directory.")
    var sweep: String

    @Flag(name: .long, help: "Submit the retry to Slurm as a job array.")
    var slurm = false

    @Option(name: .long, help: "Options passed to sbatch.")
    var slurmArgs: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of Slurm array tasks (default: one per cell).")
    var tasks: Int?

    @Flag(name: .long, help: "With --slurm: write the script but do not submit it.")
    var dryRun = false

    @Option(name: .long, parsing: .unconditional, help: "A claim from another host without a heartbeat for this many seconds is stale.")
    var staleAfter: Double = 900

    func run() throws {
        let dir = URL(fileURLWithPath: sweep)
        let st = try SweepStatus.scan(dir, staleAfter: staleAfter, jobIsAlive: Slurm.jobIsAlive)
        let inv = try SweepInvocation.read(dir)
        let runDirectory = try inv.runDirectory(for: dir)
        let cells = st.toRetry
        guard !cells.isEmpty else {
            print("\(sweep): nothing to retry (\(st.cells(.done).count) done, \(st.cells(.running).count) running)")
            return
        }
        // Stale claims are removed so the retry does not wait for their heartbeat to age.
        for e in st.entries {
            if case .stale = e.state {
                try? FileManager.default.removeItem(at: SweepLayout(dir).claimURL(e.cell))
            }
        }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let slurmDir = SweepLayout(dir).slurmDirectory
        try FileManager.default.createDirectory(at: slurmDir, withIntermediateDirectories: true)
        let list = slurmDir.appendingPathComponent("retry-\(stamp).cells")
        try writeAtomically(Data(CellList.text(cells).utf8), to: list)
        note(
            "retrying \(cells.count) cells (\(st.cells(.failed).count) failed, \(st.cells(.diverged).count) diverged, "
                + "\(st.cells(.corrupt).count) corrupt, \(st.cells(.missing).count) missing, \(st.cells(.stale).count) stale); list in \(list.path)"
        )
        if slurm {
            try submitToSlurm(
                invocation: inv, sweep: dir, pending: cells.count, units: st.manifest.workUnits(cells), cellsFile: list.path,
                slurmArgs: slurmArgs,
                tasks: tasks, dryRun: dryRun, name: "retry-\(stamp).sbatch")
            return
        }
        // The directory named here, not the one the sweep was started in (it may have
        // been moved or copied since).
        let p = Process()
        var executable = inv.executable
        if !FileManager.default.isExecutableFile(atPath: executable) {
            executable = SweepInvocation.currentExecutable
            note("\(inv.executable) (the sweep's cytocl) is gone; running \(executable)")
        }
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = inv.arguments(for: dir) + ["--cells-file", list.path]
        p.currentDirectoryURL = URL(fileURLWithPath: runDirectory)
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
    }
}
