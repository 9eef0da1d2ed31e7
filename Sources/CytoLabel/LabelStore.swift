import CytoCore
import CytoData
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The labels file of a labelling session, and its only writer.
///
/// Every change reads the file as it is on disk now, applies the one change (a label
/// set, replaced or taken back) and writes the result atomically (`AtomicFile`: a
/// temporary file, fsync, rename), so:
/// - a crash, a `kill -9` or a closed tab loses nothing that was answered as saved, and
///   never leaves a torn file (the file is the old one or the new one);
/// - rows that someone added or changed in an editor while the page runs are kept
///   (they are in the file the change is applied to); a file that no longer reads as
///   a labels file is never overwritten: every change is refused, naming the line,
///   until it is fixed;
/// - two tabs (or two servers on one file: the lock file) each change one image, so
///   both tabs' labels land.
///
/// The file is the one `cytocl train --labels` reads (`LabelsFile`): `path,label` rows,
/// paths relative to the pool folder.
public final class LabelStore: Sendable {
    public let file: URL
    public let pool: LabelPool
    /// The file's bytes as this store last read or wrote them, to tell an outside edit.
    private let known = Mutex<Data?>(nil)

    /// The labels now in the file.
    public struct Snapshot: Sendable, Equatable {
        /// Label of every pool image the file lists (by id).
        public var labels: [String: String]
        /// Rows naming files that are not images of the pool (kept in the file).
        public var outsidePool: [String]
        /// Set when the file changed outside this store since it last looked.
        public var outsideEdit: String?
    }

    /// What a change did.
    public struct Change: Sendable, Equatable {
        /// The image's label before the change (nil: it had none).
        public var previous: String?
        public var snapshot: Snapshot
    }

    public init(file: URL, pool: LabelPool) throws {
        self.file = file; self.pool = pool
        // Temporaries of a writer killed mid-write (`kill -9`) are removed; the file itself
        // is whole either way.
        AtomicFile.removeStaleTemporaries(in: file.deletingLastPathComponent())
        _ = try read()
    }

    /// Reads the file (no file: no labels).
    public func read() throws -> Snapshot {
        try locked { try load().snapshot }
    }

    /// Sets the label of `id` (nil: removes it). With `expecting`, the change is made
    /// only if the image is still labelled so: an undo must not take back a label that
    /// another tab (or an editor) set meanwhile.
    @discardableResult
    public func set(_ id: String, to label: String?, expecting: String? = nil) throws -> Change {
        _ = try pool.resolve(id)
        return try locked {
            var current = try load()
            let previous = current.snapshot.labels[id]
            if let wanted = expecting, wanted != previous {
                throw LabelFileConflict(
                    "'\(id)' is now labelled \(previous.map { "'\($0)'" } ?? "nothing") in \(file.path), not '\(wanted)' (changed in another tab or in the file); left as it is"
                )
            }
            var rows = current.rows
            // Every row of this image is replaced by one row (or none): the file never
            // lists an image twice.
            let first = rows.firstIndex { $0.isData && poolID(ofListed: $0.fields[0]) == id }
            rows.removeAll { $0.isData && poolID(ofListed: $0.fields[0]) == id }
            if let label {
                let row = LabelsFile.Row(line: 0, fields: [id, label], isData: true)
                if let first { rows.insert(row, at: min(first, rows.count)) } else { rows.append(row) }
            }
            if !rows.contains(where: { !$0.isData && $0.isHeader }) {
                rows.insert(LabelsFile.Row(line: 0, fields: ["path", "label"], isData: false, isHeader: true), at: 0)
            }
            // A byte-order mark the file had is kept: Excel reads a UTF-8 file without
            // one as its ANSI code page, so `ç` in a path would come back as `Ã§`. A UTF-16
            // file (Excel's "Unicode Text") is rewritten as UTF-8 with the mark, with commas
            // like every rewritten file: Excel reads that back with every character, and
            // one encoding of output keeps the writer simple.
            let data = Data((current.byteOrderMark ? "\u{FEFF}" : "").utf8) + Data(LabelsFile.render(rows).utf8)
            try writeAtomically(data, to: file)
            known.withLock { $0 = data }
            current.snapshot.labels[id] = label
            return Change(previous: previous, snapshot: current.snapshot)
        }
    }

    /// The pool image a row of this file names (its path relative to the pool, to this
    /// file's folder, or absolute), as `cytocl train --labels` reads it.
    func poolID(ofListed listed: String) -> String? {
        pool.id(forListed: listed, labelsFolder: file.deletingLastPathComponent().path)
    }

    private struct Loaded {
        var rows: [LabelsFile.Row]
        var snapshot: Snapshot
        /// The file starts with a byte-order mark: UTF-8 (as Excel's "CSV UTF-8" saves it)
        /// or UTF-16 (Excel's "Unicode Text").
        var byteOrderMark = false
    }

    /// The file as it is now, checked as `cytocl train --labels` would check it.
    private func load() throws -> Loaded {
        guard FileManager.default.fileExists(atPath: file.path) else {
            known.withLock { $0 = nil }
            return Loaded(rows: [], snapshot: Snapshot(labels: [:], outsidePool: [], outsideEdit: nil))
        }
        // Foundation calls reading a folder "I/O error 256".
        if OSPath.isDirectory(file.path) == true {
            throw LabelFileConflict("\(file.path): is a folder now, not a labels file; the page saves nothing until it is a file again")
        }
        // Foundation calls a named pipe or a device "permission denied"; the page rewrites
        // the file after every label, so only a file will do.
        var st = stat()
        if stat(file.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            let kind = (st.st_mode & S_IFMT) == S_IFIFO ? "a named pipe (FIFO)" : "a device or another special file"
            throw LabelFileConflict("\(file.path): is \(kind), not a labels file; the page rewrites its labels file after every label, so give a file")
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw LabelFileConflict("\(file.path): cannot read: \(describeFileError(error))")
        }
        // The text as `cytocl train --labels` reads it (`TextFile`): the byte-order mark is
        // not part of the first path, and bytes that are neither UTF-8 nor UTF-16 with a
        // byte-order mark stop the page. Decoded leniently, a BOM made the first row of a
        // file without a header name no image (the page then listed that image a second
        // time, under the header it inserted above the mark), and a Latin-1 `é` was
        // rewritten as U+FFFD, losing the label.
        let text: String
        do { text = try TextFile.decode(data) } catch let e as TextFile.Failure {
            throw LabelFileConflict("\(file.path): \(e); fix the file: the page saves nothing until then")
        }
        let rows: [LabelsFile.Row]
        do { rows = try LabelsFile.rows(text: text, labelsFile: file.path) } catch {
            throw LabelFileConflict("\(error); fix the file: the page saves nothing until then")
        }
        var labels: [String: String] = [:], lineOf: [String: Int] = [:], outside: [String] = []
        for row in rows where row.isData {
            guard let id = poolID(ofListed: row.fields[0]) else { outside.append(row.fields[0]); continue }
            if let l = labels[id], l != row.fields[1] {
                throw LabelFileConflict(
                    "\(file.path):\(row.line): '\(row.fields[0])' is labelled '\(l)' on line \(lineOf[id]!) and '\(row.fields[1])' here; fix the file: the page saves nothing until then"
                )
            }
            labels[id] = row.fields[1]; lineOf[id] = row.line
        }
        let edit = known.withLock { k -> String? in
            defer { k = data }
            guard let k, k != data else { return nil }
            return "\(file.lastPathComponent) was changed outside the page; its rows are kept"
        }
        return Loaded(
            rows: rows, snapshot: Snapshot(labels: labels, outsidePool: outside, outsideEdit: edit),
            byteOrderMark: [[0xEF, 0xBB, 0xBF], [0xFF, 0xFE], [0xFE, 0xFF]].contains { data.starts(with: $0) })
    }

    /// Runs `body` holding this store's lock and an exclusive `flock` on a lock file
    /// beside the labels file (so two servers on one file take turns too).
    private func locked<T>(_ body: () throws -> T) throws -> T {
        let dir = file.deletingLastPathComponent()
        try OSPath.createDirectories(dir.path)
        let lockPath = dir.appendingPathComponent(".\(file.lastPathComponent).lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CytoError.io(path: lockPath, reason: "cannot create the lock file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw CytoError.io(path: lockPath, reason: "cannot lock: \(String(cString: strerror(errno)))") }
        }
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }
}

/// A change the labels file cannot take now (it no longer parses, or the image was
/// relabelled meanwhile): one line for the page (HTTP 409).
public struct LabelFileConflict: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
