import CytoSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a data set is arranged on disk, as its authors distribute it.
public enum DatasetLayout: String, Sendable, CaseIterable, Codable {
    /// ALL-IDB2: files `ImNNN_L.tif`, L = 1 blast, 0 other; classes ["other", "blast"].
    case allIDB = "all-idb"
    /// AML-Cytomorphology_LMU: one folder per class abbreviation with `.tiff` files.
    case aml
    /// Any tree with one sub-folder per class (PBC and most public sets).
    case folders
    /// A manifest of `path,label` rows, paths relative to the manifest.
    case csv
    /// A folder of images (sub-folders included) whose classes come only from a labels
    /// file (`--labels`): the unlabelled crops `cytocl suggest` and `cytocl label` work
    /// on. Chosen by itself when a labels file is given and the folder has no other layout.
    case pool

    /// The 15 class folders of AML-Cytomorphology_LMU, in the order used for labels.
    public static let amlClasses = [
        "BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MMZ", "MOB", "MON", "MYB",
        "MYO", "NGB", "NGS", "PMB", "PMO",
    ]
    /// Image counts per AML class in the distributed set (18,365 in all).
    public static let amlCounts: [String: Int] = [
        "BAS": 79, "EBO": 78, "EOS": 424, "KSC": 15, "LYA": 11, "LYT": 3937, "MMZ": 15, "MOB": 26,
        "MON": 1789, "MYB": 42, "MYO": 3268, "NGB": 109, "NGS": 8484, "PMB": 18, "PMO": 70,
    ]
    /// The AML classes that are blasts for the paper's binary task (myeloblasts, monoblasts).
    public static let amlBlastClasses = ["MYO", "MOB"]
    /// Class names of the binary tasks: index 0 "other", index 1 "blast".
    public static let binaryClasses = ["other", "blast"]

    /// File extensions decoded (compared lower-cased); the format itself comes from the bytes.
    public static let imageExtensions: Set<String> = ["png", "tif", "tiff", "jpg", "jpeg"]

    /// Names of manifests recognised when a folder holds one.
    public static let manifestNames = ["labels.csv", "manifest.csv", "dataset.csv"]

    /// Parses `ImNNN_L.ext` (ALL-IDB): the label digit, or nil.
    static func allIDBLabel(_ name: String) -> Int? {
        let base = (name as NSString).deletingPathExtension
        guard base.hasPrefix("Im"), let us = base.lastIndex(of: "_") else { return nil }
        let num = base[base.index(base.startIndex, offsetBy: 2)..<us]
        let lab = base[base.index(after: us)...]
        guard !num.isEmpty, num.allSatisfy(\.isNumber), lab == "0" || lab == "1" else { return nil }
        return lab == "1" ? 1 : 0
    }

    /// Image formats CytoCL does not decode but a lab meets (phones, scanners, slide
    /// scanners, DICOM), by lower-cased extension.
    static let unreadImageExtensions: Set<String> = [
        "heic", "heif", "avif", "bmp", "gif", "webp", "jp2", "j2k", "jxl", "dcm", "svs", "ndpi", "czi", "nd2", "raw", "dng",
    ]

    /// "it holds 12 .heic files, a format CytoCL does not read (...)" for a folder (walked
    /// recursively, hidden entries skipped) holding image files of formats that are not
    /// read, or nil.
    static func unreadImageFormats(in folder: String) -> String? {
        var counts: [String: Int] = [:]
        var pending = [folder]
        var visited = 0
        while let dir = pending.popLast(), visited < 10_000 {
            visited += 1
            guard let entries = try? FileSystemPath.entries(dir) else { continue }
            for e in entries where !isHiddenEntry(e.name) {
                if e.isDirectory { pending.append(dir + "/" + e.name); continue }
                let ext = (e.name as NSString).pathExtension.lowercased()
                if unreadImageExtensions.contains(ext) { counts[ext, default: 0] += 1 }
            }
        }
        guard !counts.isEmpty else { return nil }
        let listed = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
            .map { "\($0.value) .\($0.key) file\($0.value == 1 ? "" : "s")" }.joined(separator: ", ")
        let kind = counts.count == 1 ? "a format" : "formats"
        return "it holds \(listed), \(kind) CytoCL does not read (PNG, TIFF and JPEG only): convert them, e.g. to PNG"
    }

    static func isImageName(_ name: String) -> Bool {
        !name.hasPrefix(".") && imageExtensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// Entries a data set never includes: hidden ones (`.DS_Store`, macOS's `._NAME`
    /// AppleDouble files, the decode cache) and `__MACOSX`, the folder of AppleDouble
    /// files that unzipping an archive made on a Mac leaves beside the data. Read as a
    /// class, it stopped every run of a class-folder set ("class '__MACOSX' has no image
    /// files") and hid the AML layout (a 16th folder that is no AML class).
    public static func isHiddenEntry(_ name: String) -> Bool {
        name.hasPrefix(".") || name == "__MACOSX"
    }
}

/// What is in a folder, as far as layout detection needs to know.
/// Folders a data set never includes: CytoCL's own outputs. `train --data D --out D/run`
/// creates `D/run` before reading `D`, which was then read as a class "run" with no
/// images; a later run found the earlier run's folder the same way. Skipped are the
/// folders named (the command's resolved output folders, matched by device and inode
/// so any spelling of the path matches) and every folder holding a file only CytoCL
/// writes there (`model.safetensors`, `history.csv`, `sweep.json`, `embed`'s `tsne.json`,
/// `report`'s `learning-curve.csv`, `explain`'s `<stem>.<method>.npy` and `<stem>.panel.png`).
///
/// `explain --out D/heatmaps D/blast/*.png` wrote PNG heatmaps, overlays and panels into
/// the data: the next `train --data D` took them as a class "heatmaps" without a word. A
/// folder of CytoCL outputs holding images is now an error naming it.
public struct FolderSkip: Sendable {
    static let markers = ["model.safetensors", "history.csv", "sweep.json", "tsne.json", "learning-curve.csv"]
    /// Endings of the names of files only `cytocl explain` writes.
    static let markerEndings = [".panel.png", ".saliency.npy", ".lrp-epsilon.npy", ".lrp-z.npy"]
    private var named: Set<OSPath.Identity> = []

    /// Skips `folders` (those that exist now) and CytoCL output folders.
    public init(_ folders: [String] = []) {
        named = Set(folders.compactMap(OSPath.identity))
    }

    /// Whether the folder at `path` is left out of a data set. A folder to skip that
    /// holds images itself (`--out D/blast`, a class folder) is an error: skipping it
    /// would drop a class without a word, reading it would read the outputs.
    public func skips(_ path: String) throws -> Bool {
        let named = !self.named.isEmpty && OSPath.identity(path).map(self.named.contains) == true
        let entries = (try? FileSystemPath.entries(path)) ?? []
        guard
            named || FolderSkip.markers.contains(where: { m in FileSystemPath.withCString(path + "/" + m) { access($0, F_OK) } == 0 })
                || entries.contains(where: { e in !e.isDirectory && FolderSkip.markerEndings.contains { e.name.hasSuffix($0) } })
        else { return try holdsOnlySkippedFolders(path) }
        if let image = entries.first(where: { !$0.isDirectory && DatasetLayout.isImageName($0.name) }) {
            throw DataError.layout(
                path: path,
                reason:
                    "\(named ? "the command's output folder" : "a folder holding CytoCL outputs") is inside the data and holds images (\(image.name)); write outputs outside the data folder"
            )
        }
        return true
    }

    /// A folder with nothing in it but folders that are skipped: `--out D/sweeps/one`
    /// made `D/sweeps`, which then read as a class without images ("class 'sweeps' has
    /// no image files") and refused the very run that made it. Hidden entries (the
    /// decode cache, `.DS_Store`) do not count.
    private func holdsOnlySkippedFolders(_ path: String) throws -> Bool {
        guard let entries = try? FileSystemPath.entries(path) else { return false }
        let visible = entries.filter { !DatasetLayout.isHiddenEntry($0.name) }
        guard !visible.isEmpty, visible.allSatisfy(\.isDirectory) else { return false }
        for e in visible where try !skips(path + "/" + e.name) { return false }
        return true
    }
}

struct FolderScan {
    var imageFiles: [String] = []  // names, sorted
    var subfolders: [String] = []  // names, sorted, hidden ones (`isHiddenEntry`) and CytoCL outputs (`FolderSkip`) excluded
    var csvFiles: [String] = []
    /// `.tsv` and `.txt` files: manifests only when named as `--data` (a folder's manifest
    /// is a `.csv`), named in a refusal so that Excel's "Unicode Text" `labels.txt` beside
    /// the images is not left unmentioned.
    var textFiles: [String] = []

    init(_ path: String, skip: FolderSkip = FolderSkip()) throws {
        guard OSPath.isDirectory(path) == true else { throw DataError.missingFolder(path: path) }
        // Listed with every name's bytes kept (`FileSystemPath.entries`): FileManager
        // returns a non-UTF-8 name altered, so a class folder named so failed its
        // is-a-folder check and its images vanished from the data set without a word.
        for e in try FileSystemPath.entries(path).sorted(by: { $0.name < $1.name }) where !DatasetLayout.isHiddenEntry(e.name) {
            let n = e.name
            if e.isDirectory {
                if try !skip.skips(path + "/" + n) { subfolders.append(n) }
            } else if DatasetLayout.isImageName(n) {
                imageFiles.append(n)
            } else if n.lowercased().hasSuffix(".csv") {
                csvFiles.append(n)
            } else if [".tsv", ".txt"].contains(where: { n.lowercased().hasSuffix($0) }) {
                textFiles.append(n)
            }
        }
    }

    /// "; labels.txt is a manifest only when named: give --data FOLDER/labels.txt", or "".
    func textManifestHint(_ folder: String) -> String {
        // Only names a manifest goes by (labels.txt) or a .tsv: a README.txt is no manifest.
        guard
            let t = textFiles.first(where: {
                DatasetLayout.manifestNames.contains(($0.dropLast(4) + ".csv").lowercased()) || $0.lowercased().hasSuffix(".tsv")
            })
        else { return "" }
        return "; \(t) is read as a manifest only when named: give --data \(folder)/\(t)"
    }
}

extension DatasetLayout {
    /// Detects the layout of `path` and the folder (or manifest) it applies to.
    /// A folder that only wraps one sub-folder (`ALL_IDB2/img`, `AML-Cytomorphology_LMU/AML-Cytomorphology`)
    /// is descended into, so users can point at the folder they unpacked.
    public static func detect(path: String, skip: FolderSkip = FolderSkip()) throws -> (layout: DatasetLayout, root: String) {
        guard let isDir = OSPath.isDirectory(path) else { throw DataError.missingFolder(path: path) }
        if !isDir {
            // A manifest named on the command line may be a `.txt` or `.tsv`: Excel's "Unicode
            // Text" and "Text (Tab delimited)" save under `.txt`, and the manifest reader takes
            // UTF-16 and tabs. (In a folder, only `.csv` files are taken for a manifest: a
            // README.txt beside the images is not one.)
            if [".csv", ".tsv", ".txt"].contains(where: { path.lowercased().hasSuffix($0) }) { return (.csv, path) }
            throw DataError.layout(path: path, reason: "expected a data folder or a manifest (.csv, .tsv or .txt)")
        }
        var current = path
        for _ in 0..<3 {
            let scan = try FolderScan(current, skip: skip)
            let idb = scan.imageFiles.filter { allIDBLabel($0) != nil }.count
            if idb > 0 && idb * 2 >= scan.imageFiles.count { return (.allIDB, current) }
            if !scan.subfolders.isEmpty {
                let known = scan.subfolders.filter { amlClasses.contains($0) }.count
                if known >= 3 && known == scan.subfolders.count { return (.aml, current) }
            }
            if scan.imageFiles.isEmpty,
                let m = scan.csvFiles.first(where: { manifestNames.contains($0.lowercased()) })
                    ?? (scan.csvFiles.count == 1 && scan.subfolders.isEmpty ? scan.csvFiles.first : nil)
            {
                return (.csv, current + "/" + m)
            }
            if scan.subfolders.count == 1 && scan.imageFiles.isEmpty {
                current += "/" + scan.subfolders[0]
                continue
            }
            if scan.subfolders.count >= 2 { return (.folders, current) }
            if let m = scan.csvFiles.first { return (.csv, current + "/" + m) }
            if scan.imageFiles.isEmpty && scan.subfolders.isEmpty {
                throw DataError.layout(path: path, reason: "the folder holds no images, class folders or manifest" + scan.textManifestHint(current))
            }
            throw DataError.layout(
                path: path,
                reason:
                    "cannot tell the layout: \(scan.imageFiles.count) image files not named ImNNN_L (ALL-IDB) and \(scan.subfolders.count) sub-folder(s); arrange one folder per class, or give a manifest with --layout csv"
                    + scan.textManifestHint(current)
            )
        }
        throw DataError.layout(path: path, reason: "cannot tell the layout (nested single folders)")
    }
}
