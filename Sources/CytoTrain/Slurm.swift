import CytoCore
import Foundation

/// Where each cell of a sweep directory stands, read from the files alone (no data
/// needed): `cells/*.json` (done), `*.claim` (running, or stale when its process is
/// gone or its heartbeat is old), `*.error.json` (failed), or nothing (missing).
public struct SweepStatus: Sendable {
    public enum State: Sendable, Equatable {
        case done
        /// Claimed by a process that is (probably) alive.
        case running(CellClaim?, heartbeatAge: Double?)
        /// Claimed by a process that is gone (killed, node failure, time limit): redone by the next run.
        case stale(CellClaim?, heartbeatAge: Double?)
        case failed(CellFailure)
        /// The record file is damaged (truncated, garbage, inconsistent): redone by a retry.
        case corrupt(RejectedRecord)
        /// The record's training loss stopped being finite: shown as failed, redone by a retry.
        case diverged(RejectedRecord)
        case missing

        public var name: String {
            switch self {
            case .done: return "done"
            case .running: return "running"
            case .stale: return "stale"
            case .failed: return "failed"
            case .corrupt: return "corrupt"
            case .diverged: return "diverged"
            case .missing: return "missing"
            }
        }
    }

    public struct Entry: Sendable {
        public var cell: SweepCell
        public var state: State
    }

    public var directory: URL
    public var manifest: SweepManifest
    public var entries: [Entry]

    public func cells(_ name: String) -> [SweepCell] { entries.filter { $0.state.name == name }.map(\.cell) }
    /// Cells a retry redoes: failed, diverged, corrupt, missing and stale.
    public var toRetry: [SweepCell] {
        entries.filter { ["failed", "diverged", "corrupt", "missing", "stale"].contains($0.state.name) }.map(\.cell)
    }

    /// Scans `directory`. `jobIsAlive` answers for claims made by Slurm jobs (nil: unknown).
    public static func scan(
        _ directory: URL, staleAfter: TimeInterval = 900,
        jobIsAlive: (String) -> Bool? = { _ in nil }
    ) throws -> SweepStatus {
        let manifest = try loadSweepManifest(directory)
        let cellsDir = directory.appendingPathComponent("cells")
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: cellsDir.path)) ?? []
        try refuseNonCanonicalRecords(cellsDir, names: listed)
        let names = Set(listed)
        var entries: [Entry] = []
        for c in manifest.cells {
            let state: State
            let recordFile = SweepRecord.fileName(fold: c.fold, size: c.size)
            var checked: RecordCheck? = nil
            if names.contains(recordFile) {
                checked = SweepRecord.check(cellsDir.appendingPathComponent(recordFile), cell: c, manifest: manifest)
            }
            if case .valid = checked {
                state = .done
            } else if names.contains(CellClaim.fileName(fold: c.fold, size: c.size)) {
                let url = cellsDir.appendingPathComponent(CellClaim.fileName(fold: c.fold, size: c.size))
                let claim = CellClaim.read(url)
                let age = CellClaim.modificationAge(url)
                var live = CellClaim.isLive(at: url, staleAfter: staleAfter)
                if live, let job = claim?.job, let alive = jobIsAlive(job) { live = alive }
                state = live ? .running(claim, heartbeatAge: age) : .stale(claim, heartbeatAge: age)
            } else if names.contains(CellFailure.fileName(fold: c.fold, size: c.size)),
                let f = CellFailure.read(cellsDir.appendingPathComponent(CellFailure.fileName(fold: c.fold, size: c.size)))
            {
                state = .failed(f)
            } else if case .rejected(let r) = checked {
                state = r.kind == .diverged ? .diverged(r) : .corrupt(r)
            } else {
                state = .missing
            }
            entries.append(Entry(cell: c, state: state))
        }
        return SweepStatus(directory: directory, manifest: manifest, entries: entries)
    }

    /// The human-readable status: counts, then one line per cell that is not done.
    public var text: String {
        let total = entries.count
        var lines = [
            "\(directory.path): protocol \(manifest.protocolSettings.name), \(manifest.folds) folds x \(manifest.sizes.count) sizes = \(total) cells"
        ]
        let counts = ["done", "running", "stale", "failed", "diverged", "corrupt", "missing"].map { n in
            (n, entries.filter { $0.state.name == n }.count)
        }
        lines.append(counts.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        func age(_ a: Double?) -> String { a.map { String(format: "heartbeat %.0f s ago", $0) } ?? "no heartbeat" }
        for e in entries {
            switch e.state {
            case .done: continue
            case .running(let c, let a):
                lines.append(
                    "running  \(e.cell): host \(c?.host ?? "?") pid \(c.map { "\($0.pid)" } ?? "?")" + (c?.job.map { " job \($0)" } ?? "")
                        + ", started \(c?.started ?? "?"), \(age(a))")
            case .stale(let c, let a):
                lines.append(
                    "stale    \(e.cell): claimed by host \(c?.host ?? "?") pid \(c.map { "\($0.pid)" } ?? "?")"
                        + (c?.job.map { " job \($0)" } ?? "")
                        + ", started \(c?.started ?? "?"), \(age(a)); the process is gone, retry redoes it")
            case .failed(let f):
                let first = TextFile.lines(f.message).first?.text ?? f.message
                lines.append("failed   \(e.cell): on \(f.host)" + (f.job.map { " job \($0)" } ?? "") + " at \(f.failed): \(first)")
            case .diverged(let r):
                lines.append("failed   \(e.cell): training diverged (\(r.reason)); left out of the report, retry redoes it")
            case .corrupt(let r):
                lines.append("corrupt  \(e.cell): \(r.url.path): \(r.reason); left out of the report, retry redoes it")
            case .missing:
                lines.append("missing  \(e.cell)")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The command line a sweep was started with (`SWEEP_DIR/invocation.json`), so that
/// `cytocl sweep retry` can run the same sweep again.
///
/// The sweep directory itself is not recorded (`--out` is left out): a retry works on
/// the directory it is given (`arguments(for:)`), wherever it is now. A recorded path
/// sent a retry of a moved sweep back to the old place (recreated with one cell) and a
/// retry of a copy to the original. Files of older versions that hold `--out` are read
/// the same way: their `--out` is ignored.
public struct SweepInvocation: Sendable, Codable, Equatable {
    /// Arguments after the executable, without --out, --shard, --cells-file and the Slurm options.
    public var arguments: [String]
    public var workingDirectory: String
    public var executable: String

    public init(arguments: [String], workingDirectory: String, executable: String) {
        self.arguments = arguments; self.workingDirectory = workingDirectory; self.executable = executable
    }

    public static func url(_ sweep: URL) -> URL { sweep.appendingPathComponent("invocation.json") }

    /// The arguments that run this sweep in `sweep`: the recorded ones (any `--out`
    /// dropped) with `--out` set to `sweep`, the directory named now.
    public func arguments(for sweep: URL) -> [String] {
        Self.removing(["--out"], flags: [], from: arguments) + ["--out", sweep.standardizedFileURL.path]
    }

    /// The options whose values are input paths, relative to `workingDirectory` unless absolute.
    static let pathOptions = ["--data", "--labels", "--cache-dir"]

    /// Where a retry of `sweep` runs: the recorded working directory (its options' relative
    /// paths are relative to it), or, when that is gone and no option needs it, the sweep
    /// directory. Throws, naming the option, when a relative path cannot be resolved.
    public func runDirectory(for sweep: URL) throws -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: workingDirectory, isDirectory: &isDir), isDir.boolValue { return workingDirectory }
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            if Self.pathOptions.contains(parts[0]) {
                let value = parts.count == 2 ? parts[1] : (i + 1 < arguments.count ? arguments[i + 1] : "")
                if !value.hasPrefix("/") {
                    throw CytoError.io(
                        path: Self.url(sweep).path,
                        reason: "the sweep was started in \(workingDirectory), which is gone, and \(parts[0]) \(value) is relative to it; "
                            + "run `cytocl sweep run` with the original options, that path and --out \(sweep.path) to resume")
                }
            }
            i += 1
        }
        return sweep.standardizedFileURL.path
    }

    /// `arguments` for the record: without the scheduling options and without --out.
    public static func recorded(_ args: [String]) -> [String] {
        removing(["--out"], flags: [], from: strippingScheduling(args))
    }

    public func write(to sweep: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try writeAtomically(e.encode(self), to: SweepInvocation.url(sweep))
    }

    public static func read(_ sweep: URL) throws -> SweepInvocation {
        let url = SweepInvocation.url(sweep)
        guard let data = try? Data(contentsOf: url) else {
            throw CytoError.io(path: url.path, reason: "no invocation.json: run the sweep once with `cytocl sweep --protocol ...` first")
        }
        do { return try JSONDecoder().decode(SweepInvocation.self, from: data) } catch {
            throw CytoError.io(
                path: url.path,
                reason: "damaged invocation.json (\(data.isEmpty ? "empty" : "not the JSON `cytocl sweep` writes")); "
                    + "run the sweep once more with its original command to rewrite it")
        }
    }

    /// The path of the running executable (absolute).
    public static var currentExecutable: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let a = CommandLine.arguments[0]
        if a.hasPrefix("/") { return a }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(a).standardized.path
    }

    /// `args` without the options that select where and which cells run (they are
    /// added again per submission): --shard, --cells-file, --slurm, --slurm-args,
    /// --dry-run, --tasks. Handles `--opt value` and `--opt=value`.
    public static func strippingScheduling(_ args: [String]) -> [String] {
        removing(["--shard", "--cells-file", "--slurm-args", "--tasks"], flags: ["--slurm", "--dry-run"], from: args)
    }

    /// `args` without the options `withValue` (as `--opt value` or `--opt=value`) and `flags`.
    static func removing(_ withValue: Set<String>, flags: Set<String>, from args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if flags.contains(a) { i += 1; continue }
            if withValue.contains(name) { i += a.contains("=") ? 1 : 2; continue }
            out.append(a); i += 1
        }
        return out
    }
}

/// Reading and writing lists of cells (`fold size` per line), for retries.
public enum CellList {
    public static func text(_ cells: [SweepCell]) -> String {
        cells.map { "\($0.fold) \($0.size)\n" }.joined()
    }

    public static func parse(_ text: String) throws -> [SweepCell] {
        var out: [SweepCell] = []
        // `TextFile.lines`: LF, CRLF, CR, a byte-order mark and no final line break alike.
        for (n, line) in TextFile.lines(text) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            let f = t.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { Int($0) }
            guard f.count == 2, let fold = f[0], let size = f[1] else {
                throw CytoError.invalidArgument("cell list line \(n) '\(t)' should be 'FOLD SIZE'")
            }
            out.append(SweepCell(fold: fold, size: size))
        }
        return out
    }
}

/// Slurm job arrays: the sbatch script of a sweep and its submission.
public enum Slurm {
    /// Quotes for a POSIX shell.
    public static func shellQuote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Splits `--slurm-args` like a shell would (spaces; single and double quotes; backslash).
    public static func splitArguments(_ s: String) throws -> [String] {
        var out: [String] = [], cur = "", inWord = false
        var quote: Character? = nil
        var it = s.makeIterator()
        while let ch = it.next() {
            if let q = quote {
                if ch == q { quote = nil } else if ch == "\\" && q == "\"", let n = it.next() { cur.append(n) } else { cur.append(ch) }
            } else if ch == "'" || ch == "\"" {
                quote = ch; inWord = true
            } else if ch == "\\" {
                if let n = it.next() { cur.append(n) }; inWord = true
            } else if ch == " " || ch == "\t" || ch == "\n" {
                if inWord { out.append(cur); cur = ""; inWord = false }
            } else {
                cur.append(ch); inWord = true
            }
        }
        guard quote == nil else { throw CytoError.invalidArgument("--slurm-args: unbalanced quote in '\(s)'") }
        if inWord { out.append(cur) }
        return out
    }

    /// The sbatch script of a job array of `tasks` tasks; task I runs
    /// `executable arguments... --shard I/tasks` (and `--cells-file` for a retry).
    public static func script(
        executable: String, arguments: [String], tasks: Int, sweep: URL, workingDirectory: String,
        jobName: String = "cytocl-sweep", cellsFile: String? = nil, slurmArguments: [String] = []
    ) -> String {
        let logs = sweep.appendingPathComponent("slurm").path
        var lines = [
            "#!/bin/bash",
            "#SBATCH --job-name=\(jobName)",
            "#SBATCH --array=0-\(tasks - 1)",
            "#SBATCH --output=\(logs)/%A_%a.out",
            "#SBATCH --chdir=\(workingDirectory)",
            "# Written by `cytocl sweep --slurm` on \(ISO8601DateFormatter().string(from: Date())).",
            "# Each array task runs every \(tasks)-th cell (--shard TASK/\(tasks)); finished cells are skipped and",
            "# claims keep two tasks off one cell, so tasks are safe to rerun. Status: cytocl sweep status \(shellQuote(sweep.path))",
        ]
        if !slurmArguments.isEmpty {
            lines.append("# Submitted with: sbatch " + slurmArguments.map(shellQuote).joined(separator: " "))
        }
        lines += ["set -u", "echo \"cytocl sweep task ${SLURM_ARRAY_TASK_ID}/\(tasks) on $(hostname) at $(date -Is)\" >&2"]
        var cmd = ([executable] + arguments).map(shellQuote).joined(separator: " ")
        if let c = cellsFile { cmd += " --cells-file " + shellQuote(c) }
        cmd += " --shard \"${SLURM_ARRAY_TASK_ID}/\(tasks)\""
        lines.append("exec " + cmd)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the script to `SWEEP/slurm/<name>.sbatch` (and creates the log folder).
    public static func writeScript(_ text: String, sweep: URL, name: String) throws -> URL {
        let dir = sweep.appendingPathComponent("slurm")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try writeAtomically(Data(text.utf8), to: url)
        chmod(url.path, 0o755)
        return url
    }

    /// Runs a program found on PATH; returns (status, stdout, stderr).
    public static func runTool(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let o = Pipe(), e = Pipe()
        p.standardOutput = o; p.standardError = e
        do { try p.run() } catch {
            throw CytoError.invalidArgument("cannot run \(tool): \(error)")
        }
        let od = o.fileHandleForReading.readDataToEndOfFile()
        let ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    /// `sbatch --parsable ARGS SCRIPT`; returns the job id.
    public static func submit(script: URL, slurmArguments: [String]) throws -> String {
        let r = try runTool("sbatch", ["--parsable"] + slurmArguments + [script.path])
        guard r.status == 0 else {
            let why = r.err.trimmingCharacters(in: .whitespacesAndNewlines)
            throw CytoError.invalidArgument(
                "sbatch failed (exit \(r.status)): \(why.isEmpty ? "no message" : why)"
                    + (r.status == 127 ? " (is Slurm installed and sbatch on PATH?)" : ""))
        }
        let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty else { throw CytoError.invalidArgument("sbatch printed no job id") }
        return id
    }

    /// Whether a Slurm job (`JOBID_TASK` or `JOBID`) is still pending or running,
    /// by `squeue`; nil when squeue is not available or fails.
    public static func jobIsAlive(_ job: String) -> Bool? {
        guard let r = try? runTool("squeue", ["-h", "-o", "%T", "-j", job]) else { return nil }
        if r.status != 0 { return r.err.contains("Invalid job id") ? false : nil }
        let states = TextFile.lines(r.out).map(\.text).map { $0.trimmingCharacters(in: .whitespaces) }
        return states.contains { ["RUNNING", "PENDING", "CONFIGURING", "COMPLETING", "SUSPENDED"].contains($0) }
    }
}
