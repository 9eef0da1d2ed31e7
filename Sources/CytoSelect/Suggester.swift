import CytoCore
import CytoData
import CytoTrain
import Foundation

/// One image to label next: `cytocl suggest` prints these, the labelling page shows them.
public struct Suggestion: Sendable, Equatable, Codable {
    /// Path relative to the pool folder.
    public var path: String
    public var score: Double
    public var reason: String
    public init(path: String, score: Double, reason: String) { self.path = path; self.score = score; self.reason = reason }
}

/// The unlabelled images a person labels from: every image file under a folder (class
/// sub-folders or not), decoded once at one size, with its near-duplicate groups and a
/// label-free embedding, so that repeated suggestions (the labelling page asks after
/// every few labels) decode and embed nothing again.
public final class SuggestionPool: @unchecked Sendable {
    public let root: String
    /// Paths relative to `root`, sorted.
    public let ids: [String]
    public let height: Int
    public let width: Int
    let pixels: [UInt8]
    /// Unreadable image files left out (with `skipBad`).
    public let skipped: Int
    /// Near-duplicate group of each image (its smallest member's index).
    public let groupOf: [Int]
    let indexOf: [String: Int]
    private let lock = NSLock()
    private var embeddings: [EmbeddingKind: [[Float]]] = [:]

    /// Lists and decodes the pool. `height`/`width`: the size images are fitted to (a
    /// model given later must have this input size; `Suggester.next` picks it).
    public init(
        root: String, height: Int = 64, width: Int = 64, fit: FitPolicy = .pad, excluding: [String] = [],
        skipBad: Bool = false, progress: ProgressHandler? = nil
    ) throws {
        var files = try Self.imageFiles(root, skip: FolderSkip(excluding))
        guard !files.isEmpty else { throw DataError.layout(path: root, reason: "the pool holds no image files") }
        self.root = root; self.height = height; self.width = width
        let items = files.map { DatasetItem(path: root + "/" + $0, label: 0, className: "pool") }
        // `skipBad`: a pool of thousands of crops is not refused for one unreadable file
        // (`suggest --skip-bad-images`); the images left out are never suggested.
        let loaded = try ImageLoader.load(items, height: height, width: width, fit: fit, skipBad: skipBad, progress: progress)
        if loaded.items.count < files.count {
            let kept = Set(loaded.items.map(\.path))
            files = files.filter { kept.contains(root + "/" + $0) }
            guard !files.isEmpty else { throw DataError.layout(path: root, reason: "the pool holds no readable image") }
        }
        skipped = items.count - files.count
        ids = files
        indexOf = Dictionary(uniqueKeysWithValues: files.enumerated().map { ($1, $0) })
        pixels = loaded.pixels
        let params = NearDuplicateParameters()
        let pairs = NearDuplicates.pairs(pixels: pixels, count: files.count, height: height, width: width, parameters: params)
        var group = Array(0..<files.count)
        for c in NearDuplicates.components(pairs, count: files.count, threshold: params.threshold) {
            let first = c.members.min()!
            for m in c.members { group[m] = first }
        }
        groupOf = group
    }

    /// Image files under `folder`, relative paths, sorted; hidden entries and CytoCL
    /// output folders (`FolderSkip`) left out.
    static func imageFiles(_ folder: String, skip: FolderSkip, prefix: String = "") throws -> [String] {
        var out: [String] = []
        for e in try FileSystemPath.entries(folder).sorted(by: { $0.name < $1.name }) where !DatasetLayout.isHiddenEntry(e.name) {
            let path = folder + "/" + e.name
            if e.isDirectory {
                if try !skip.skips(path) { out += try imageFiles(path, skip: skip, prefix: prefix + e.name + "/") }
            } else if DatasetLayout.imageExtensions.contains((e.name as NSString).pathExtension.lowercased()) {
                out.append(prefix + e.name)
            }
        }
        return out
    }

    public var count: Int { ids.count }

    /// The embedding of every image (computed once per kind).
    public func embedding(_ kind: EmbeddingKind, backend: any Backend) throws -> [[Float]] {
        lock.lock()
        defer { lock.unlock() }
        return try cachedEmbedding(kind, backend: backend)
    }

    private func cachedEmbedding(_ kind: EmbeddingKind, backend: any Backend) throws -> [[Float]] {
        if let e = embeddings[kind] { return e }
        let e =
            kind == .combined
            ? Embedding.concatenated([try cachedEmbedding(.stain, backend: backend), try cachedEmbedding(.randomNetwork, backend: backend)])
            : try Embedding.compute(kind, pixels: pixels, count: count, height: height, width: width, backend: backend)
        embeddings[kind] = e
        return e
    }

    /// The images as a labelled set (labels 0), for prediction.
    func images() -> LabeledImages {
        LabeledImages(
            geometry: ImageGeometry(height: height, width: width), pixels: pixels,
            labels: [Int](repeating: 0, count: count), paths: ids.map { root + "/" + $0 })
    }

    /// The index of a labelled image's path (relative to the pool, or absolute under it).
    /// Both sides are made absolute and lexically normalised first (`FileSystemPath.lexical`),
    /// so `./a.png`, `x/../a.png` and an absolute path match whether `--data` was given
    /// relative or absolute (an absolute labels path with a relative `--data` never matched).
    public func index(of path: String) -> Int? {
        if let i = indexOf[path] { return i }
        let base = FileSystemPath.lexical(root)
        let prefix = base == "/" ? "/" : base + "/"
        let full = FileSystemPath.lexical(path.hasPrefix("/") ? path : prefix + path)
        let rel = full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : nil
        // A name that is not UTF-8 is printed (`suggest`'s CSV) with its bad bytes as
        // `\xE9` (`FileSystemPath.display`); that spelling, pasted into a labels file, names it.
        if let rel, let i = indexOf[rel] ?? (rel.contains("\\x") ? ids.firstIndex { FileSystemPath.display($0) == rel } : nil) {
            return i
        }
        // `sub\a.png` from a file made on Windows (as `train --labels` reads it).
        return LabelsFile.slashed(path).flatMap { index(of: $0) }
    }

    /// The next `count` images to label. `labelled`: path (relative to the pool) →
    /// class name. A labelled image, and every near-duplicate of one, is never suggested.
    /// With a model, its class probabilities feed the strategy's second rounds; the
    /// model's input size must be this pool's.
    public func suggest(
        labelled: [String: String], model: ModelFile? = nil, strategy: SelectionStrategy = .active,
        embedding kind: EmbeddingKind = .stain, count: Int, seed: UInt64 = 0, backend: any Backend
    ) throws -> [Suggestion] {
        guard count > 0 else { throw CytoError.invalidArgument("the number of suggestions must be positive, got \(count)") }
        var picked: [Int] = [], names: [String] = []
        for path in labelled.keys.sorted() {
            guard let i = index(of: path) else {
                throw CytoError.invalidArgument("labelled image '\(FileSystemPath.visible(path))' is not an image of the pool at \(FileSystemPath.visible(root))")
            }
            picked.append(i); names.append(labelled[path]!)
        }
        // Class indices: the model's classes first (so its probabilities line up), then
        // any other label in name order.
        var classes = model?.classNames ?? []
        for n in Set(names).sorted() where !classes.contains(n) { classes.append(n) }
        let labels = names.map { classes.firstIndex(of: $0)! }
        var probabilities: [[Float]]? = nil
        if let model {
            guard model.spec.inputHeight == height && model.spec.inputWidth == width else {
                throw CytoError.invalidArgument(
                    "the model's input is \(model.spec.inputWidth)x\(model.spec.inputHeight), the pool was decoded at \(width)x\(height)")
            }
            let net = try Network(spec: model.spec, backend: backend, maxBatch: 32)
            try net.setWeights(model.weights)
            probabilities = try Predictor(network: net, temperature: model.temperature).probabilities(images())
        }
        let state = SelectionState(
            embeddings: try embedding(kind, backend: backend), picked: picked, pickedLabels: labels,
            probabilities: probabilities, groupOf: groupOf, classNames: classes)
        return Selector.select(strategy, state: state, count: count, seed: seed).map {
            Suggestion(path: ids[$0.index], score: $0.score, reason: $0.reason)
        }
    }

    /// Reads a `path,label` CSV of images already labelled with the reader of `train
    /// --labels` (`LabelsFile`: LF, CRLF or CR lines, an optional header, `;` or tabs as
    /// Excel saves them, a pipe); paths relative to the pool or to the labels file's
    /// folder, or absolute (`index(of:)`).
    /// A path that is not an image of the pool, a row without both fields, an image
    /// listed twice with different labels, or one label spelt in two cases (`Blast`,
    /// `blast`) is an error naming the file and line. The file is read once: a pipe
    /// can be read only once.
    public func readLabels(_ file: String) throws -> [String: String] {
        let rows = try LabelsFile.rows(text: try LabelsFile.text(of: file), labelsFile: file)
        var out: [String: String] = [:], lineOf: [String: Int] = [:]
        let folder = (file as NSString).deletingLastPathComponent
        let fileFolder = folder.isEmpty ? "." : folder
        var spellings: [String: (label: String, line: Int)] = [:]
        for row in rows where row.isData {
            let f = row.fields
            try LabelsFile.requireOneSpelling(f[1], line: row.line, seen: &spellings, file: file)
            // Relative to the pool, else (as `--labels` of train and sweep) relative to the
            // labels file's folder: `pool/a.png` in a file beside the pool folder.
            let besideFile = f[0].hasPrefix("/") ? nil : index(of: FileSystemPath.lexical(fileFolder + "/" + f[0]))
            guard let i = index(of: f[0]) ?? besideFile else {
                // As `train --labels` says it: a labels file typed on Windows (`IM001_1.TIF`).
                let folded = FileSystemPath.lexical(f[0]).lowercased()
                let twin = ids.filter { FileSystemPath.lexical($0).lowercased() == folded }
                let hint =
                    twin.count == 1
                    ? " (\(FileSystemPath.visible(twin[0])) differs only in case: file names are case-sensitive here, unlike on Windows)" : ""
                throw DataError.badManifest(
                    path: file, line: row.line, reason: "'\(f[0])' is not an image of the pool at \(FileSystemPath.visible(root))" + hint)
            }
            let id = ids[i]
            if let old = out[id], old != f[1] {
                throw DataError.badManifest(
                    path: file, line: row.line, reason: "'\(id)' is labelled '\(old)' on line \(lineOf[id]!) and '\(f[1])' here")
            }
            out[id] = f[1]; lineOf[id] = row.line
        }
        return out
    }
}

/// The one call for a caller that does not keep a pool between suggestions.
public enum Suggester {
    /// Decodes the pool at the model's input size (64x64 without a model) and suggests.
    public static func next(
        poolRoot: String, labelled: [String: String], model: ModelFile? = nil, strategy: SelectionStrategy = .active,
        count: Int, seed: UInt64 = 0, backend: any Backend
    ) throws -> [Suggestion] {
        let pool = try SuggestionPool(
            root: poolRoot, height: model?.spec.inputHeight ?? 64, width: model?.spec.inputWidth ?? 64)
        return try pool.suggest(labelled: labelled, model: model, strategy: strategy, count: count, seed: seed, backend: backend)
    }
}
