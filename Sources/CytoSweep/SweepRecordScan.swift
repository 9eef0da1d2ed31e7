import CytoCore
import CytoData
import CytoTrain
import Foundation

/// The cell files of a sweep directory, validated: records to count, and the files
/// left out with the reason (named by `report` and `sweep status`).
public struct SweepRecords: Sendable {
    /// Valid records, sorted by size then fold.
    public var records: [SweepRecord]
    public var rejected: [RejectedRecord]
}

/// Reads and validates every `cells/fold<F>-size<S>.json` of a sweep directory.
public func scanSweepRecords(_ dir: URL, manifest: SweepManifest? = nil) throws -> SweepRecords {
    let cells = SweepLayout(dir).cellsDirectory
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: cells.path, isDirectory: &isDir) else { return SweepRecords(records: [], rejected: []) }
    let names: [String]
    do { names = try FileManager.default.contentsOfDirectory(atPath: cells.path) } catch {
        throw CytoError.io(path: cells.path, reason: "cannot list the sweep's cells folder (\(describeFileError(error)))")
    }
    try refuseNonCanonicalRecords(cells, names: names)
    var out = SweepRecords(records: [], rejected: [])
    var seen: [SweepCell: String] = [:]
    for n in names.sorted() {
        guard let cell = SweepLayout.cell(fromRecordName: n) else { continue }
        // Unreachable while names are canonical (one name per cell), kept so that a
        // future second spelling can never count a cell twice.
        if let first = seen[cell] {
            throw CytoError.io(
                path: cells.appendingPathComponent(n).path,
                reason: "a second record of \(cell) (the first is \(first)); remove the copy")
        }
        seen[cell] = n
        switch SweepRecord.check(cells.appendingPathComponent(n), cell: cell, manifest: manifest) {
        case .valid(let r): out.records.append(r)
        case .rejected(let r): out.rejected.append(r)
        }
    }
    out.records.sort { ($0.size, $0.fold) < ($1.size, $1.fold) }
    return out
}

/// Throws, naming the first such file, when the cells folder holds a `fold*.json` file
/// that is not the canonical record name of a cell (`fold01-size8.json`,
/// `fold+0-size4.json`, a copy): it is a copy or an edit of a record, and a report or
/// status that skipped it silently could hide a second result for one cell.
public func refuseNonCanonicalRecords(_ cells: URL, names: [String]) throws {
    guard let n = names.sorted().first(where: SweepLayout.isNonCanonicalRecordName) else { return }
    throw CytoError.io(
        path: cells.appendingPathComponent(n).path,
        reason: "not a record name the sweep writes (\(SweepLayout.recordNamePattern), no padding or sign): a copy of a cell's record? "
            + "Move it out of the cells folder")
}

/// The valid records of a sweep directory (finished cells only), sorted by size then
/// fold; damaged and diverged cell files are left out (see `scanSweepRecords`).
public func loadSweepRecords(_ dir: URL) throws -> [SweepRecord] {
    try scanSweepRecords(dir, manifest: try? loadSweepManifest(dir)).records
}

/// Reads `sweep.json`.
public func loadSweepManifest(_ dir: URL) throws -> SweepManifest {
    let url = SweepLayout(dir).manifestURL
    guard FileManager.default.fileExists(atPath: url.path) else {
        throw CytoError.io(path: url.path, reason: "no sweep.json: \(dir.path) is not a sweep directory (made by `cytocl sweep`)")
    }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw CytoError.io(path: url.path, reason: "cannot read the sweep manifest (\(describeFileError(error)))")
    }
    do { return try SweepManifest.decode(data) } catch {
        throw CytoError.io(
            path: url.path, reason: "damaged sweep manifest: \(data.isEmpty ? "the file is empty" : "not a valid sweep.json")")
    }
}

/// What a `DecodingError` says about a field, in words (`the field 'metrics.accuracy' is
/// missing`), or nil when the text itself is not JSON (then the caller says so).
func describeDecodingProblem(_ error: Error) -> String? {
    guard let e = error as? DecodingError else { return nil }
    func path(_ keys: [CodingKey], _ last: CodingKey? = nil) -> String {
        let all = keys + (last.map { [$0] } ?? [])
        return all.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }
    switch e {
    case .keyNotFound(let key, let c): return "the field '\(path(c.codingPath, key))' is missing"
    case .valueNotFound(_, let c): return "the field '\(path(c.codingPath))' is null"
    case .typeMismatch(let t, let c): return "the field '\(path(c.codingPath))' is not \(t == String.self ? "a string" : "a \(t)")"
    case .dataCorrupted(let c) where !c.codingPath.isEmpty: return "the field '\(path(c.codingPath))' holds an invalid value"
    default: return nil
    }
}
