import CytoCore
import Foundation

/// A `path,label` CSV overlaid on any layout: its labels replace the ones the layout
/// gives (folder names, ALL-IDB's `_0`/`_1`), so a re-annotation (the paper's
/// Supplementary Table S1 for ALL-IDB2's six-class protocol) needs no copying or
/// renaming of the data set.
///
/// A path is matched relative to the data root, then relative to the labels file's
/// folder, then as an absolute path. Listed files that are not images of the data set,
/// a file listed twice with different labels, and rows that cannot be parsed are errors
/// naming the labels file and line; images of the data set that the file does not list
/// are left out (and counted).
enum LabelsFile {
    /// Relabels `groups` ((class, paths) in layout order); returns the new groups, sorted
    /// by label, and the number of images left out.
    static func overlay(_ groups: [(String, [String])], labelsFile: String, root: String) throws -> ([(String, [String])], Int) {
        let text: String
        do { text = try String(contentsOfFile: labelsFile, encoding: .utf8) } catch {
            if !FileManager.default.fileExists(atPath: labelsFile) { throw DataError.missing(path: labelsFile) }
            throw DataError.unreadable(path: labelsFile, reason: "not readable as UTF-8 text")
        }
        var known: [String: String] = [:]  // standardized path -> path as listed by the layout
        for (_, paths) in groups { for p in paths { known[standard(p)] = p } }
        var isDir: ObjCBool = false
        let rootFolder =
            FileManager.default.fileExists(atPath: root, isDirectory: &isDir) && !isDir.boolValue
            ? (root as NSString).deletingLastPathComponent : root
        let fileFolder = (labelsFile as NSString).deletingLastPathComponent
        var labelOf: [String: (label: String, line: Int)] = [:]
        var firstRow = true
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = (try? CSVReader.rows(line))?.first ?? []
            guard fields.count >= 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DataError.badManifest(path: labelsFile, line: i + 1, reason: "expected 'path,label', found '\(line)'")
            }
            if firstRow {
                firstRow = false
                if ["path", "file", "filename", "image"].contains(fields[0].lowercased())
                    || ["label", "class", "classname"].contains(fields[1].lowercased())
                {
                    continue
                }
            }
            let rel = fields[0]
            let tries = rel.hasPrefix("/") ? [rel] : [rootFolder + "/" + rel, (fileFolder.isEmpty ? "." : fileFolder) + "/" + rel]
            guard let match = tries.lazy.compactMap({ known[standard($0)] }).first else {
                throw DataError.badManifest(
                    path: labelsFile, line: i + 1,
                    reason: "'\(rel)' is not an image of the data set at \(rootFolder)")
            }
            if let previous = labelOf[match], previous.label != fields[1] {
                throw DataError.badManifest(
                    path: labelsFile, line: i + 1,
                    reason: "'\(rel)' is labelled '\(previous.label)' on line \(previous.line) and '\(fields[1])' here")
            }
            labelOf[match] = (fields[1], i + 1)
        }
        if labelOf.isEmpty { throw DataError.badManifest(path: labelsFile, line: 1, reason: "the labels file has no rows") }
        var byLabel: [String: [String]] = [:]
        var left = 0
        for (_, paths) in groups {
            for p in paths {
                if let l = labelOf[p] { byLabel[l.label, default: []].append(p) } else { left += 1 }
            }
        }
        return (byLabel.keys.sorted().map { ($0, byLabel[$0]!.sorted()) }, left)
    }

    static func standard(_ path: String) -> String { (path as NSString).standardizingPath }
}
