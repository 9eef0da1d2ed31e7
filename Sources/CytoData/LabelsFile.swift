import CytoSupport
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
public enum LabelsFile {
    /// One row of a labels file as written: a data row (`path,label`, more fields
    /// allowed), or a row that is not one (the header, a `#` comment, a blank row),
    /// kept so that a program rewriting the file (`cytocl label`) keeps them too.
    public struct Row: Sendable, Equatable {
        /// 1-based line of the row in the file (0 for a row not read from a file).
        public var line: Int
        /// The fields, trimmed of spaces.
        public var fields: [String]
        /// A `path,label` row (`fields[0]` and `fields[1]` non-empty).
        public var isData: Bool
        /// The header row (`path,label`, `file,class`, ...).
        public var isHeader: Bool

        public init(line: Int, fields: [String], isData: Bool, isHeader: Bool = false) {
            self.line = line; self.fields = fields; self.isData = isData; self.isHeader = isHeader
        }
    }

    /// The rows of a labels file's text; a row that is neither a data row, a header, a
    /// comment nor blank, and text the CSV reader cannot parse, are errors naming
    /// `labelsFile` and the line.
    public static func rows(text: String, labelsFile: String) throws -> [Row] {
        let rows: [CSVReader.Row]
        do { rows = try CSVReader.parse(text) } catch let e as CSVReader.Failure {
            switch e {
            case .unterminatedQuote(let l): throw DataError.badManifest(path: labelsFile, line: l, reason: "a quoted field is never closed")
            case .textAfterQuote(let l):
                throw DataError.badManifest(path: labelsFile, line: l, reason: "text after the closing quote of a field")
            }
        }
        var out: [Row] = []
        var firstRow = true
        for row in rows {
            let fields = row.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.allSatisfy(\.isEmpty) || fields[0].hasPrefix("#") {
                out.append(Row(line: row.line, fields: fields, isData: false))
                continue
            }
            guard fields.count >= 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DataError.badManifest(
                    path: labelsFile, line: row.line, reason: "expected 'path,label', found '\(row.fields.joined(separator: ","))'")
            }
            if firstRow {
                firstRow = false
                if ["path", "file", "filename", "image"].contains(fields[0].lowercased())
                    || ["label", "class", "classname"].contains(fields[1].lowercased())
                {
                    out.append(Row(line: row.line, fields: fields, isData: false, isHeader: true))
                    continue
                }
            }
            out.append(Row(line: row.line, fields: fields, isData: true))
        }
        return out
    }

    /// The text of the labels file at `path` as every reader of labels files takes it:
    /// UTF-8 with or without a byte-order mark, a pipe (`--labels <(grep ...)`) read to
    /// its end; errors name the file and say why (missing, a folder, not UTF-8).
    public static func text(of path: String) throws -> String { try FileBytes.readText(path) }

    /// The text of a labels file holding `rows` (blank rows as empty lines, fields
    /// quoted where CSV needs it).
    public static func render(_ rows: [Row]) -> String {
        rows.map { $0.fields.allSatisfy(\.isEmpty) ? "\n" : CSVWriter.line($0.fields) }.joined()
    }

    /// Relabels `groups` ((class, paths) in layout order); returns the new groups, sorted
    /// by label, and the number of images left out.
    static func overlay(_ groups: [(String, [String])], labelsFile: String, root: String) throws -> ([(String, [String])], Int) {
        // One reader for every text file (`TextFile` via `FileBytes.readText`) and the
        // project's CSV reader: LF, CRLF, a bare CR, a byte-order mark and a missing final
        // line break all read the same (a CRLF file used to be read as one line).
        let rows = try LabelsFile.rows(text: try FileBytes.readText(labelsFile), labelsFile: labelsFile)
        var known: [String: String] = [:]  // standardized path -> path as listed by the layout
        for (_, paths) in groups { for p in paths { known[standard(p)] = p } }
        var isDir: ObjCBool = false
        let rootFolder =
            FileManager.default.fileExists(atPath: root, isDirectory: &isDir) && !isDir.boolValue
            ? (root as NSString).deletingLastPathComponent : root
        let fileFolder = (labelsFile as NSString).deletingLastPathComponent
        var labelOf: [String: (label: String, line: Int)] = [:]
        var folded: [String: [String]]?  // lower-cased standardized path -> paths, built on the first miss
        var spellings: [String: (label: String, line: Int)] = [:]
        for row in rows where row.isData {
            let fields = row.fields
            let rel = fields[0]
            try requireOneSpelling(fields[1], line: row.line, seen: &spellings, file: labelsFile)
            let tries = ([rel] + (slashed(rel).map { [$0] } ?? [])).flatMap { p in
                p.hasPrefix("/") ? [p] : [rootFolder + "/" + p, (fileFolder.isEmpty ? "." : fileFolder) + "/" + p]
            }
            guard let match = tries.lazy.compactMap({ known[standard($0)] }).first else {
                // A labels file typed on Windows, where names ignore case (`BLAST\IM001.JPG`).
                if folded == nil { folded = Dictionary(known.values.map { (standard($0).lowercased(), [$0]) }, uniquingKeysWith: +) }
                let alike = tries.lazy.compactMap { folded?[standard($0).lowercased()] }.first ?? []
                let hint =
                    alike.count == 1
                    ? " (\(FileSystemPath.display(relativeTo(rootFolder, alike[0]))) differs only in case: file names are case-sensitive here, unlike on Windows)"
                    : ""
                throw DataError.badManifest(
                    path: labelsFile, line: row.line,
                    reason: "'\(rel)' is not an image of the data set at \(rootFolder)" + hint)
            }
            if let previous = labelOf[match], previous.label != fields[1] {
                throw DataError.badManifest(
                    path: labelsFile, line: row.line,
                    reason: "'\(rel)' is labelled '\(previous.label)' on line \(previous.line) and '\(fields[1])' here")
            }
            labelOf[match] = (fields[1], row.line)
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

    /// Refuses class names `classes` (`cytocl label --classes`) spelt in another case than
    /// a label of `rows` (`Blast` for the file's `blast`), or than one another: the page
    /// wrote both spellings into one file, which `train --labels` then refused.
    public static func requireSpellings(of classes: [String], option: String, in rows: [Row], file: String) throws {
        var first: [String: String] = [:]
        for c in classes {
            if let other = first[c.lowercased()], other != c {
                throw DataError.invalidOption("\(option): '\(other)' and '\(c)' differ only in case: one class spelt two ways")
            }
            first[c.lowercased()] = c
        }
        for row in rows where row.isData {
            let label = row.fields[1]
            if let c = first[label.lowercased()], c != label {
                throw DataError.badManifest(
                    path: file, line: row.line,
                    reason: "the label '\(label)' is spelt '\(c)' in \(option): give \(option) with the file's spelling (one class spelt two ways is two classes to train)")
            }
        }
    }

    /// `path` with Windows's `\` separators as `/` (`basophil\BA_1.jpg`, as a labels
    /// file made on Windows lists it), or nil when it has none. Tried only after the
    /// path as written names no image: `\` is a valid character of a Linux file name.
    public static func slashed(_ path: String) -> String? {
        path.contains("\\") ? path.replacingOccurrences(of: "\\", with: "/") : nil
    }

    /// Refuses a label that differs from one seen earlier in the file only in case
    /// (`Basophil` and `basophil`: Excel's autocorrect capitalises the first letter of a
    /// cell). They were two classes, and the model learnt to tell apart two spellings of
    /// one cell type without a word. `seen`: lower-cased label -> first spelling and line.
    public static func requireOneSpelling(
        _ label: String, line: Int, seen: inout [String: (label: String, line: Int)], file: String
    ) throws {
        let key = label.lowercased()
        if let first = seen[key] {
            guard first.label == label else {
                throw DataError.badManifest(
                    path: file, line: line,
                    reason: "the labels '\(label)' and '\(first.label)' (line \(first.line)) differ only in case: one class spelt two ways; use one spelling")
            }
        } else {
            seen[key] = (label, line)
        }
    }

    /// The absolute, lexically normalised form of `path` (`.`, `..` and repeated `/`
    /// resolved; relative paths taken from the working directory), so that a layout
    /// path from a relative `--data` and an absolute or `../` path in the labels file
    /// compare equal. `NSString.standardizingPath` leaves a relative path relative and
    /// keeps its leading `..`, so those never matched. Bytes of names that are not
    /// UTF-8 are kept (`FileSystemPath`).
    public static func standard(_ path: String) -> String { FileSystemPath.lexical(path) }

    /// `path` relative to `root` when it lies inside it, else `path`.
    static func relativeTo(_ root: String, _ path: String) -> String {
        let r = standard(root), p = standard(path)
        return p.hasPrefix(r + "/") ? String(p.dropFirst(r.count + 1)) : path
    }
}
