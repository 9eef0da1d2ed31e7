import CytoCore
import CytoTrain
import Foundation

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
        let logs = SweepLayout(sweep).slurmDirectory.path
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
        let dir = SweepLayout(sweep).slurmDirectory
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
