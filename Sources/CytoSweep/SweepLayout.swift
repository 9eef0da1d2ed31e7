import CytoSupport
import Foundation

/// The files of a sweep directory, and the one place their names are spelled:
///
///     SWEEP/sweep.json                      the manifest (`SweepManifest`)
///     SWEEP/invocation.json                 the command line, for retries (`SweepInvocation`)
///     SWEEP/cells/fold<F>-size<S>.json      a finished cell (`SweepRecord`)
///     SWEEP/cells/fold<F>-size<S>.claim     a running cell (`CellClaim`)
///     SWEEP/cells/fold<F>-size<S>.error.json  a failed cell (`CellFailure`)
///     SWEEP/cells/fold<F>-size<S>.safetensors a cell's model (`--save-models`)
///     SWEEP/slurm/                          job-array scripts, logs and retry lists
///
/// The runner writes these names and the status, retry, report and record scan read
/// them back; spelled in several modules they could drift apart, and a record written
/// under one spelling would be invisible (or counted twice) under another.
public struct SweepLayout: Sendable, Equatable {
    /// The sweep directory.
    public var directory: URL

    public init(_ directory: URL) { self.directory = directory }

    /// The files a cell can have, each `cellName` plus its suffix.
    public enum CellFile: String, CaseIterable, Sendable {
        case record = ".json"
        case claim = ".claim"
        case error = ".error.json"
        case model = ".safetensors"

        /// What the file is, for messages ("a folder is in the place of the cell's claim").
        public var role: String {
            switch self {
            case .record: return "record"
            case .claim: return "claim"
            case .error: return "error file"
            case .model: return "model"
            }
        }
    }

    public var manifestURL: URL { directory.appendingPathComponent(Self.manifestName) }
    public var invocationURL: URL { directory.appendingPathComponent("invocation.json") }
    public var cellsDirectory: URL { directory.appendingPathComponent("cells") }
    public var slurmDirectory: URL { directory.appendingPathComponent("slurm") }

    public func url(_ cell: SweepCell, _ file: CellFile) -> URL {
        cellsDirectory.appendingPathComponent(Self.fileName(cell, file))
    }
    public func recordURL(_ cell: SweepCell) -> URL { url(cell, .record) }
    public func claimURL(_ cell: SweepCell) -> URL { url(cell, .claim) }
    public func errorURL(_ cell: SweepCell) -> URL { url(cell, .error) }
    public func modelURL(_ cell: SweepCell) -> URL { url(cell, .model) }

    /// Throws when `directory` exists, holds no `sweep.json` and holds anything but the
    /// sweep's own `cells/`, `slurm/`, `invocation.json` and temporary files (what a
    /// refused, damaged or concurrent run can leave): `sweep --out ~/Documents` (or `plan --keep` on a data folder)
    /// used to write `sweep.json` and `cells/` among the user's files, and a later
    /// `rm -r` of the "sweep" took them too. `option` names the option that gave the
    /// folder, for the message.
    public func requireSweepOrEmpty(option: String) throws {
        let path = directory.path
        guard OSPath.isDirectory(path) == true, OSPath.isDirectory(manifestURL.path) == nil else { return }
        let own: Set<String> = [
            cellsDirectory.lastPathComponent, slurmDirectory.lastPathComponent, invocationURL.lastPathComponent,
        ]
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        // A write in progress: another run creating this sweep at this moment.
        let foreign = entries.filter { !own.contains($0) && !AtomicFile.isTemporaryName($0) }
        guard !foreign.isEmpty else { return }
        let shown = foreign.prefix(3).joined(separator: ", ") + (foreign.count > 3 ? ", ..." : "")
        throw CytoError.invalidArgument(
            "\(option) \(path): not a sweep folder (no \(Self.manifestName)) and not empty (\(foreign.count) "
                + "entr\(foreign.count == 1 ? "y" : "ies"): \(shown)); give a new or empty folder, or a sweep's folder to resume it")
    }

    /// The folders a first run would create, deepest first: `cells/`, the sweep folder and
    /// its missing ancestors. A run refused before its `sweep.json` is written removes
    /// those that are still empty (`removeEmptyLeftovers`): the output preflight created
    /// them, and an empty `OUT/cells/` left inside a class-folder data set read as an
    /// empty class on the next run.
    public func missingFolders() -> [URL] {
        var result: [URL] = []
        if OSPath.isDirectory(cellsDirectory.path) == nil { result.append(cellsDirectory) }
        var d = directory.standardizedFileURL
        while OSPath.isDirectory(d.path) == nil, d.path != "/" {
            result.append(d)
            d = d.deletingLastPathComponent()
        }
        return result
    }

    /// Removes `folders` (from `missingFolders`) that are empty, when no `sweep.json` was
    /// written; never a folder with anything in it.
    public func removeEmptyLeftovers(_ folders: [URL]) {
        guard OSPath.isDirectory(manifestURL.path) == nil else { return }
        for f in folders { _ = OSPath.withCString(f.path) { rmdir($0) } }
    }

    /// `sweep.json`; also a marker that a folder is a sweep, not data (`DatasetLayout`).
    public static let manifestName = "sweep.json"

    /// The stem every file of a cell shares: `fold3-size200`.
    public static func cellName(fold: Int, size: Int) -> String { "fold\(fold)-size\(size)" }

    /// A cell's file name: `fold3-size200.json`, `.claim`, `.error.json`, `.safetensors`.
    public static func fileName(_ cell: SweepCell, _ file: CellFile) -> String {
        cellName(fold: cell.fold, size: cell.size) + file.rawValue
    }

    /// How the names look, for messages.
    public static let recordNamePattern = "fold<F>-size<N>.json"

    /// `fold<F>-size<S>.json` -> (F, S), or nil for other names. Only the exact name
    /// `fileName(_:.record)` writes counts: `fold01-size8.json`, `fold+0-size4.json`
    /// or `fold0-size004.json` would otherwise be a second copy of a cell, counted twice.
    public static func cell(fromRecordName name: String) -> SweepCell? {
        guard name.hasPrefix("fold"), name.hasSuffix(CellFile.record.rawValue), !name.hasSuffix(CellFile.error.rawValue) else {
            return nil
        }
        let core = name.dropFirst(4).dropLast(CellFile.record.rawValue.count)
        let parts = core.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].hasPrefix("size"), let f = Int(parts[0]), let s = Int(parts[1].dropFirst(4)),
            f >= 0, s > 0
        else { return nil }
        let cell = SweepCell(fold: f, size: s)
        return fileName(cell, .record) == name ? cell : nil
    }

    /// Whether `name` looks like a record file (`fold*.json`, not an error file) but is
    /// not the canonical name of any cell: such a file is a copy or an edit, never a
    /// record the sweep wrote, and is refused rather than silently skipped or counted.
    public static func isNonCanonicalRecordName(_ name: String) -> Bool {
        name.hasPrefix("fold") && name.hasSuffix(CellFile.record.rawValue) && !name.hasSuffix(CellFile.error.rawValue)
            && cell(fromRecordName: name) == nil
    }
}
