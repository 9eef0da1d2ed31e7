import CytoCore
import CytoTrain
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
        let layout = SweepLayout(directory)
        let cellsDir = layout.cellsDirectory
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: cellsDir.path)) ?? []
        try refuseNonCanonicalRecords(cellsDir, names: listed)
        let names = Set(listed)
        var entries: [Entry] = []
        for c in manifest.cells {
            let state: State
            var checked: RecordCheck? = nil
            if names.contains(SweepLayout.fileName(c, .record)) {
                checked = SweepRecord.check(layout.recordURL(c), cell: c, manifest: manifest)
            }
            if case .valid = checked {
                state = .done
            } else if names.contains(SweepLayout.fileName(c, .claim)) {
                let url = layout.claimURL(c)
                let claim = CellClaim.read(url)
                let age = CellClaim.modificationAge(url)
                var live = CellClaim.isLive(at: url, staleAfter: staleAfter)
                if live, let job = claim?.job, let alive = jobIsAlive(job) { live = alive }
                state = live ? .running(claim, heartbeatAge: age) : .stale(claim, heartbeatAge: age)
            } else if names.contains(SweepLayout.fileName(c, .error)), let f = CellFailure.read(layout.errorURL(c))
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
                + (manifest.selection.map { ", training sets chosen by \($0)" } ?? "")
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
