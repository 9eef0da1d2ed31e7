import CytoSupport
import Foundation

/// One labelled image file.
public struct DatasetItem: Equatable, Hashable, Sendable {
    /// Absolute or root-relative path as found (absolute when the root was absolute).
    public var path: String
    /// Index into `DatasetIndex.classNames`.
    public var label: Int
    /// `classNames[label]`.
    public var className: String
    /// The class the file had in its layout before `positive` mapping (e.g. "MYO" for a "blast").
    public var sourceClass: String

    public init(path: String, label: Int, className: String, sourceClass: String? = nil) {
        self.path = path; self.label = label; self.className = className; self.sourceClass = sourceClass ?? className
    }
}

/// Choices that shape an index.
public struct DatasetOptions: Sendable {
    /// nil: detect.
    public var layout: DatasetLayout?
    /// Map a multi-class layout to ["other", "blast"]: these classes become "blast" (label 1).
    public var positive: [String]?
    /// Keep only these classes, in this order (applied before `positive`).
    public var classes: [String]?
    /// Drop classes with fewer images (the paper kept classes with at least 5). When
    /// nil, an empty class folder or a class with one image is an error.
    public var minPerClass: Int?
    /// Keep one file of each set of byte-identical files.
    public var dedupe: Bool
    /// When false, empty classes and classes with one image are kept instead of
    /// being errors (for `dataset inspect`, which reports rather than trains).
    public var strict: Bool = true
    /// A `path,label` CSV whose labels replace the layout's (e.g. the paper's re-annotation
    /// of ALL-IDB2, Supplementary Table S1). Paths are relative to the data root or to the
    /// labels file, or absolute; images of the layout that it does not list are left out.
    public var labelsFile: String?
    /// Folders never read as data: the command's own output folders (`train --data D
    /// --out D/run`). Folders holding CytoCL outputs are skipped whatever this says.
    public var excludedFolders: [String] = []

    public init(
        layout: DatasetLayout? = nil, positive: [String]? = nil, classes: [String]? = nil,
        minPerClass: Int? = nil, dedupe: Bool = false
    ) {
        self.layout = layout; self.positive = positive; self.classes = classes
        self.minPerClass = minPerClass; self.dedupe = dedupe
    }
}

/// Files with identical bytes.
public struct DuplicateGroup: Equatable, Sendable {
    /// Paths, sorted; the first is the one kept by deduplication.
    public var paths: [String]
    /// Class names of the paths (different classes mean a labelling conflict).
    public var classes: [String]
    public var sha256: String
    public var crossesClasses: Bool { Set(classes).count > 1 }
}

/// What deduplication did.
public struct DedupReport: Equatable, Sendable {
    public var groups: [DuplicateGroup] = []
    /// Paths removed (every file of a group but the first).
    public var dropped: [String] = []
    public var summary: String {
        if groups.isEmpty { return "no duplicate files" }
        var s = "\(groups.count) set(s) of byte-identical files; \(dropped.count) file(s) dropped:"
        for g in groups {
            let v = FileSystemPath.visible
            s += "\n  keep \(v(g.paths[0])), drop " + g.paths.dropFirst().map(v).joined(separator: ", ")
            if g.crossesClasses { s += "  [classes differ: \(g.classes.map(v).joined(separator: "/"))]" }
        }
        return s
    }
}

/// The labelled file list of a data set.
public struct DatasetIndex: Sendable {
    /// The folder (or manifest) the files were read from.
    public var root: String
    public var layout: DatasetLayout
    public var classNames: [String]
    public var items: [DatasetItem]
    /// Classes dropped by `minPerClass`, with their counts.
    public var droppedClasses: [(String, Int)] = []
    /// Filled when loaded with `dedupe: true`.
    public var dedup: DedupReport?
    /// With a labels file: how many images of the layout it did not list (left out).
    public var unlabelled: Int = 0
    /// Image files of an all-idb folder not named `ImNNN_L` (no label can be read from
    /// them, so they are left out): a renamed or copied file ("Im010_1 (2).tif") would
    /// otherwise vanish from the data set without a word.
    public var unnamed: [String] = []

    /// A warning that the detected layout left other images of the folder aside (a
    /// manifest read instead of the class folders beside it), or nil.
    public var layoutNote: String?

    /// One warning line naming the files `unnamed` left out, or nil.
    public var unnamedNote: String? {
        guard !unnamed.isEmpty else { return nil }
        let v = FileSystemPath.visible
        let shown = unnamed.prefix(3).map { v(($0 as NSString).lastPathComponent) }.joined(separator: ", ")
        let more = unnamed.count > 3 ? " and \(unnamed.count - 3) more" : ""
        return "warning: \(v(root)): \(unnamed.count) image file(s) not named ImNNN_0/ImNNN_1 (ALL-IDB) were left out: \(shown)\(more)"
    }

    public init(root: String, layout: DatasetLayout, classNames: [String], items: [DatasetItem]) {
        self.root = root; self.layout = layout; self.classNames = classNames; self.items = items
    }

    /// Images per class, in `classNames` order.
    public var counts: [Int] {
        var c = [Int](repeating: 0, count: classNames.count)
        for it in items { c[it.label] += 1 }
        return c
    }

    /// Reads the data set at `path` (a folder, or a .csv manifest).
    public static func load(path: String, options: DatasetOptions = DatasetOptions()) throws -> DatasetIndex {
        try requireDistinct(options.classes, option: "--classes")
        try requireDistinct(options.positive, option: "--positive")
        let skip = FolderSkip(options.excludedFolders)
        let (layout, root) = try resolve(
            path: path, layout: options.layout, skip: skip, labelsFile: options.labelsFile)
        // 1. raw (class name, path) pairs per class, in the layout's class order
        var groups: [(String, [String])]
        var unnamed: [String] = []
        var classFolders: [String: String] = [:]
        switch layout {
        case .allIDB:
            let scan = try FolderScan(root, skip: skip)
            var other: [String] = [], blast: [String] = []
            for n in scan.imageFiles {
                guard let l = DatasetLayout.allIDBLabel(n) else { unnamed.append(root + "/" + n); continue }
                if l == 1 { blast.append(root + "/" + n) } else { other.append(root + "/" + n) }
            }
            groups = [("other", other), ("blast", blast)]
            if other.isEmpty && blast.isEmpty {
                throw DataError.layout(path: root, reason: "no files named ImNNN_0/ImNNN_1 (ALL-IDB)")
            }
        case .aml, .folders:
            let scan = try FolderScan(root, skip: skip)
            if scan.subfolders.isEmpty { throw DataError.layout(path: root, reason: "no class folders") }
            var names = scan.subfolders
            if layout == .aml {
                let unknown = names.filter { !DatasetLayout.amlClasses.contains($0) }
                if !unknown.isEmpty {
                    throw DataError.layout(
                        path: root,
                        reason:
                            "not AML-Cytomorphology class folders: \(unknown.joined(separator: ", ")) (expected \(DatasetLayout.amlClasses.joined(separator: " ")))"
                    )
                }
                names = DatasetLayout.amlClasses.filter { names.contains($0) }
            }
            if layout == .folders && options.labelsFile == nil, let reason = try splitFoldersReason(root: root, names: names, skip: skip) {
                throw DataError.layout(path: root, reason: reason)
            }
            groups = []
            for n in names {
                let folder = root + "/" + n
                classFolders[n] = folder
                let files = try imageFilesRecursive(folder, skip: skip)
                groups.append((n, files.map { folder + "/" + $0 }))
            }
        case .csv:
            groups = try readManifest(root)
        case .pool:
            guard options.labelsFile != nil else {
                throw DataError.layout(path: root, reason: "--layout pool needs --labels FILE: the classes come from it")
            }
            let files = try imageFilesRecursive(root, skip: skip)
            if files.isEmpty { throw DataError.layout(path: root, reason: "the folder holds no images") }
            groups = [("", files.map { root + "/" + $0 })]
        }

        // 1b. labels file overlay
        var unlabelled = 0
        if let file = options.labelsFile {
            (groups, unlabelled) = try LabelsFile.overlay(groups, labelsFile: file, root: root)
        }

        // 2. select and order classes
        if let wanted = options.classes {
            var picked: [(String, [String])] = []
            for w in wanted {
                guard let g = groups.first(where: { $0.0 == w }) else {
                    throw DataError.invalidOption(
                        "--classes: no class '\(w)' in \(root); classes found: \(groups.map { $0.0 }.joined(separator: ", "))")
                }
                picked.append(g)
            }
            groups = picked
        }

        // 3. rare classes
        var droppedClasses: [(String, Int)] = []
        if let m = options.minPerClass {
            droppedClasses = groups.filter { $0.1.count < m }.map { ($0.0, $0.1.count) }
            groups = groups.filter { $0.1.count >= m }
        }
        for (name, files) in groups where options.strict {
            if files.isEmpty {
                let folder = classFolders[name] ?? root
                // An iPhone's HEIC photographs or a scanner's BMPs: "no image files" sent the
                // user looking for a copying error.
                if let other = DatasetLayout.unreadImageFormats(in: folder) {
                    throw DataError.layout(path: folder, reason: "class '\(name)' has no image files CytoCL reads: \(other)")
                }
                throw DataError.emptyClass(path: folder, className: name)
            }
            if files.count == 1 { throw DataError.singleImageClass(path: files[0], className: name) }
        }
        if groups.isEmpty || groups.allSatisfy({ $0.1.isEmpty }) {
            let unread = options.minPerClass == nil ? DatasetLayout.unreadImageFormats(in: root).map { ": " + $0 } ?? "" : ""
            throw DataError.layout(path: root, reason: options.minPerClass == nil ? "no images found" + unread : "no class has enough images")
        }

        // 4. binary mapping
        var classNames = groups.map { $0.0 }
        var items: [DatasetItem] = []
        if let pos = options.positive {
            for p in pos where !classNames.contains(p) {
                throw DataError.invalidOption(
                    "--positive: no class '\(p)' in \(root); classes found: \(classNames.joined(separator: ", "))")
            }
            let posSet = Set(pos)
            for (name, files) in groups {
                let label = posSet.contains(name) ? 1 : 0
                for f in files {
                    items.append(DatasetItem(path: f, label: label, className: DatasetLayout.binaryClasses[label], sourceClass: name))
                }
            }
            classNames = DatasetLayout.binaryClasses
            if !items.contains(where: { $0.label == 0 }) {
                throw DataError.invalidOption("--positive: every class is positive; nothing is left for 'other'")
            }
        } else {
            for (label, (name, files)) in groups.enumerated() {
                for f in files { items.append(DatasetItem(path: f, label: label, className: name)) }
            }
        }
        var index = DatasetIndex(root: root, layout: layout, classNames: classNames, items: items)
        index.droppedClasses = droppedClasses
        index.unlabelled = unlabelled
        index.unnamed = unnamed
        if options.layout == nil, layout == .csv, OSPath.isDirectory(path) == true {
            // The manifest wins detection over class folders beside it, which is what a
            // manifest is for, but a `labels.csv` left at the top of a class-folder set
            // (the one `cytocl label --data SET --labels SET/labels.csv` writes) turned
            // its thousands of images into the few listed without a word.
            let folder = (root as NSString).deletingLastPathComponent
            let classFolders = (try? FolderScan(folder.isEmpty ? "." : folder, skip: skip).subfolders) ?? []
            if classFolders.count >= 2 {
                let v = FileSystemPath.visible
                let shown = classFolders.prefix(3).map(v).joined(separator: ", ") + (classFolders.count > 3 ? ", ..." : "")
                index.layoutNote =
                    "warning: \(v(path)): read as the manifest \(v((root as NSString).lastPathComponent)) (\(items.count) images), not as the class folders beside it (\(shown)); --layout folders reads those"
            }
        }
        if options.dedupe { try index.deduplicate(strict: options.strict) }
        return index
    }

    /// Refuses a class named twice in a class list: `--classes blast,monocyte,blast`
    /// would otherwise load the repeated class's images twice and count them twice.
    public static func requireDistinct(_ names: [String]?, option: String) throws {
        guard let names else { return }
        var seen = Set<String>()
        for n in names where !seen.insert(n).inserted {
            throw DataError.invalidOption("\(option): class '\(n)' is listed more than once")
        }
    }

    /// Finds the layout and the folder it applies to.
    /// With a labels file and no `--layout`, a folder no layout describes is a pool (its
    /// classes come from the labels file).
    static func resolve(
        path: String, layout: DatasetLayout?, skip: FolderSkip = FolderSkip(), labelsFile: String? = nil
    ) throws -> (DatasetLayout, String) {
        // stat on the path's own bytes: FileManager misses a non-UTF-8 name.
        guard let isFolder = OSPath.isDirectory(path) else { throw DataError.missingFolder(path: path) }
        let isDir = ObjCBool(isFolder)
        let clean = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let wanted = layout else {
            do { return try DatasetLayout.detect(path: clean, skip: skip) } catch DataError.layout(_, _) where labelsFile != nil && isFolder {
                return (.pool, clean)
            }
        }
        if wanted == .csv {
            if !isDir.boolValue { return (.csv, clean) }
            let scan = try FolderScan(clean, skip: skip)
            if let m = scan.csvFiles.first(where: { DatasetLayout.manifestNames.contains($0.lowercased()) }) ?? scan.csvFiles.first {
                return (.csv, clean + "/" + m)
            }
            throw DataError.layout(path: clean, reason: "--layout csv: no .csv manifest in the folder" + scan.textManifestHint(clean))
        }
        guard isDir.boolValue else { throw DataError.missingFolder(path: clean) }
        // Accept the wrapper folders of the distributions when the detected layout agrees.
        if let (d, root) = try? DatasetLayout.detect(path: clean, skip: skip), d == wanted { return (wanted, root) }
        return (wanted, clean)
    }

    /// Folder names that are the splits of a data set, not classes of cells.
    static let splitFolderNames: Set<String> = [
        "train", "training", "test", "testing", "val", "valid", "validation", "dev", "eval", "test_simple", "holdout",
    ]

    /// Why the class folders of `root` are the splits of a data set (`TRAIN`, `TEST`, each
    /// holding the class folders, as the Kaggle "Blood Cell Images" set is distributed), or
    /// nil. Read as classes, every image of `TRAIN` was one class and every image of `TEST`
    /// the other: a model of which split a cell came from, trained without a word.
    static func splitFoldersReason(root: String, names: [String], skip: FolderSkip) throws -> String? {
        guard names.count >= 2, names.allSatisfy({ splitFolderNames.contains($0.lowercased()) }) else { return nil }
        let inner = try FolderScan(root + "/" + names[0], skip: skip).subfolders
        guard !inner.isEmpty else { return nil }
        let v = FileSystemPath.visible
        let first = names.first { $0.lowercased().hasPrefix("train") } ?? names[0]
        return "the class folders \(names.map(v).joined(separator: ", ")) are the splits of a data set, not classes "
            + "(\(v(names[0])) holds \(inner.prefix(4).map(v).joined(separator: ", "))\(inner.count > 4 ? ", ..." : "")): "
            + "point --data at one of them, e.g. \(v(root))/\(v(first))"
    }

    /// Image files under a class folder (sub-folders included), relative, sorted.
    /// Names that are not UTF-8 are kept (`FileSystemPath`); a sub-folder that cannot
    /// be listed stops the load with its path instead of being skipped silently.
    static func imageFilesRecursive(_ folder: String, skip: FolderSkip = FolderSkip()) throws -> [String] {
        guard OSPath.isDirectory(folder) == true else { throw DataError.missingFolder(path: folder) }
        var out: [String] = []
        // The folders being walked, by device and inode: a symbolic link back to one of
        // them (`ln -s . self`) would otherwise be followed until the kernel's ELOOP
        // limit, counting every image ~40 times with no error.
        var ancestors: [(id: OSPath.Identity, path: String)] = []
        func walk(_ rel: String) throws {
            let path = rel.isEmpty ? folder : folder + "/" + rel
            if let id = OSPath.identity(path) {
                if let loop = ancestors.first(where: { $0.id == id }) {
                    throw DataError.layout(path: path, reason: "a symbolic link back to \(loop.path) (a folder loop); remove the link")
                }
                ancestors.append((id, path))
            }
            defer { if ancestors.last?.path == path { ancestors.removeLast() } }
            for e in try FileSystemPath.entries(path) {
                if DatasetLayout.isHiddenEntry(e.name) { continue }
                let r = rel.isEmpty ? e.name : rel + "/" + e.name
                if e.isDirectory { if try !skip.skips(folder + "/" + r) { try walk(r) } } else if DatasetLayout.isImageName(e.name) { out.append(r) }
            }
        }
        try walk("")
        return out.sorted()
    }

    /// Parses a `path,label` manifest with the project's RFC 4180 reader (optional header
    /// row; `#` comments; quoted fields, which may hold commas, quotes and line breaks).
    static func readManifest(_ manifest: String) throws -> [(String, [String])] {
        let text = try FileBytes.readText(manifest)  // LF, CRLF, CR, a byte-order mark alike
        // Rows resolve against the manifest's folder; a bare file name (`manifest.csv`)
        // has the empty string as its folder, which made `a.tif` the absolute `/a.tif`.
        let folder = (manifest as NSString).deletingLastPathComponent
        let base = folder.isEmpty ? "." : folder
        var byClass: [String: [String]] = [:]
        var order: [String] = []
        var missing: [DataError] = []
        // Each file once, keyed by its resolved path (`./a.tif`, `x/../a.tif` and a
        // symbolic link to a.tif are one file): a file listed twice would be counted
        // twice, or under two labels.
        var listed: [String: (line: Int, label: String, path: String)] = [:]
        var spellings: [String: (label: String, line: Int)] = [:]
        var firstRow = true
        let rows: [CSVReader.Row]
        do { rows = try CSVReader.parse(text) } catch let e as CSVReader.Failure {
            switch e {
            case .unterminatedQuote(let l): throw DataError.badManifest(path: manifest, line: l, reason: "a quoted field is never closed")
            case .textAfterQuote(let l):
                throw DataError.badManifest(path: manifest, line: l, reason: "text after the closing quote of a field")
            }
        }
        for row in rows {
            let fields = row.fields.map { $0.trimmingCharacters(in: .whitespaces) }
            if fields.allSatisfy(\.isEmpty) || fields[0].hasPrefix("#") { continue }
            guard fields.count >= 2, !fields[0].isEmpty, !fields[1].isEmpty else {
                throw DataError.badManifest(
                    path: manifest, line: row.line,
                    reason: "expected 'path,label', found '\(row.fields.joined(separator: ","))'")
            }
            if firstRow {
                firstRow = false
                if ["path", "file", "filename", "image"].contains(fields[0].lowercased())
                    || ["label", "class", "classname"].contains(fields[1].lowercased())
                {
                    continue
                }  // header
            }
            var rel = fields[0]
            let label = fields[1]
            try LabelsFile.requireOneSpelling(label, line: row.line, seen: &spellings, file: manifest)
            if rel.contains("\\"), !FileManager.default.fileExists(atPath: rel.hasPrefix("/") ? rel : base + "/" + rel),
                let slashed = LabelsFile.slashed(rel)
            {
                rel = slashed
            }
            let full = rel.hasPrefix("/") ? rel : base + "/" + rel
            if !FileManager.default.fileExists(atPath: full) {
                missing.append(.manifestMissingFile(manifest: manifest, line: row.line, path: full))
                continue
            }
            let key = (full as NSString).resolvingSymlinksInPath
            if let previous = listed[key] {
                let reason =
                    previous.label == label
                    ? "'\(rel)' is the file already listed on line \(previous.line) ('\(previous.path)'); list each file once"
                    : "'\(rel)' is labelled '\(previous.label)' on line \(previous.line) and '\(label)' here"
                throw DataError.badManifest(path: manifest, line: row.line, reason: reason)
            }
            listed[key] = (row.line, label, rel)
            if byClass[label] == nil { order.append(label); byClass[label] = [] }
            byClass[label]!.append(full)
        }
        if missing.count == 1 { throw missing[0] }
        if missing.count > 1 { throw DataError.badImages(missing) }
        if order.isEmpty { throw DataError.badManifest(path: manifest, line: 1, reason: "the manifest has no rows") }
        return order.sorted().map { ($0, byClass[$0]!) }
    }

    // MARK: - Duplicates

    /// Groups of byte-identical files among `items` (only files whose sizes collide are
    /// read, and only those whose 64-bit checksums then collide are hashed with SHA-256).
    ///
    /// Uncompressed TIFFs of one size all have one byte count (every file of the
    /// AML-Cytomorphology set): the size filter passed all 18,365, and SHA-256 of the
    /// 8.3 GB took about 40 CPU seconds at every sweep start. The checksum (`ImageCache`'s,
    /// near memory speed) tells different files apart first; equal checksums are confirmed
    /// by SHA-256 as before, so the groups (and their digests) are the same.
    public static func findDuplicates(_ items: [DatasetItem]) -> [DuplicateGroup] {
        var bySize: [Int64: [Int]] = [:]
        for (i, it) in items.enumerated() {
            guard let st = FileBytes.stamp(it.path) else { continue }
            bySize[st.size, default: []].append(i)
        }
        let sameSize = bySize.values.filter { $0.count > 1 }.flatMap { $0 }.sorted()
        let quick = Parallel.map(sameSize.count) { k -> UInt64? in
            guard let bytes = try? FileBytes.read(items[sameSize[k]].path) else { return nil }
            return bytes.withUnsafeBytes { ImageCache.contentChecksum($0) }
        }
        var byQuick: [UInt64: [Int]] = [:]
        for (k, q) in quick.enumerated() { if let q { byQuick[q, default: []].append(sameSize[k]) } }
        let candidates = byQuick.values.filter { $0.count > 1 }.flatMap { $0 }.sorted()
        let digests = Parallel.map(candidates.count) { k -> String? in
            guard let bytes = try? FileBytes.read(items[candidates[k]].path) else { return nil }
            return SHA256.hex(SHA256.hash(bytes))
        }
        var byHash: [String: [Int]] = [:]
        for (k, d) in digests.enumerated() { if let d { byHash[d, default: []].append(candidates[k]) } }
        return byHash.filter { $0.value.count > 1 }.map { (h, idx) -> DuplicateGroup in
            let sorted = idx.sorted { items[$0].path < items[$1].path }
            return DuplicateGroup(paths: sorted.map { items[$0].path }, classes: sorted.map { items[$0].className }, sha256: h)
        }.sorted { $0.paths[0] < $1.paths[0] }
    }

    /// Keeps the first file (by path) of every set of byte-identical files, so that
    /// no image can be both in training and in test; fills `dedup`.
    public mutating func deduplicate(strict: Bool = true) throws {
        let groups = DatasetIndex.findDuplicates(items)
        let drop = Set(groups.flatMap { $0.paths.dropFirst() })
        let droppedPerClass = Dictionary(grouping: items.filter { drop.contains($0.path) }, by: \.label).mapValues(\.count)
        items.removeAll { drop.contains($0.path) }
        dedup = DedupReport(groups: groups, dropped: groups.flatMap { $0.paths.dropFirst() })
        for (label, n) in counts.enumerated() where n < 2 && strict {
            // A class of five byte copies of one photograph was "a class with only one
            // image", which the user, seeing five files, could not make sense of.
            if let copies = droppedPerClass[label], copies > 0 {
                throw DataError.layout(
                    path: root,
                    reason:
                        "class '\(classNames[label])' has \(n == 1 ? "only one image" : "no image") left once \(copies) byte-identical cop\(copies == 1 ? "y is" : "ies are") dropped (the same photograph twice is one cell); a class needs at least two different images to appear in both training and test"
                )
            }
            throw DataError.singleImageClass(path: root, className: classNames[label])
        }
    }

    /// Drops the items whose paths are in `paths` (e.g. bad files skipped by the loader).
    public func removing(paths: Set<String>) -> DatasetIndex {
        var copy = self
        copy.items.removeAll { paths.contains($0.path) }
        return copy
    }
}
