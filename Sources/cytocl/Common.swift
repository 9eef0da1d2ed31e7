import ArgumentParser
import CytoBackends
import CytoSweep
import CytoCore
import CytoData
import CytoTrain
import Foundation

/// Everything that is not machine-readable output goes to stderr, so stdout stays
/// clean for CSV and JSON.
func note(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

/// `--backend`, `--profile` and friends, shared by every command that runs a model.
struct BackendOptions: ParsableArguments {
    @Option(name: .long, help: "auto | cpu | opencl | opencl:N | opencl:P.D (default: $CYTOCL_BACKEND or auto).")
    var backend: BackendSelector?

    @Flag(name: .long, help: "Print a per-kernel time table (OpenCL) after the run.")
    var profile = false

    @Flag(name: .long, help: "Compile OpenCL kernels with -cl-fast-relaxed-math.")
    var fastMath = false

    @Option(name: .long, parsing: .unconditional, help: "CPU backend threads (default: $CYTOCL_THREADS or all cores).")
    var threads: Int?

    func make() throws -> any Backend { try makeChoice().backend }

    /// The backend `--backend` names (noted on stderr), and what was chosen.
    func makeChoice() throws -> BackendSelection.Choice {
        let choice = try BackendSelection.make(backend, options: selectionOptions(threads: threads))
        note(choice.note)
        return choice
    }

    /// The backends that run `pending` cells (of a sweep or a plan) when nothing else says
    /// how: on the CPU backend several cells at once with fewer threads each (measured
    /// faster than one cell on every core at the paper's batch 5; see `SweepDevices`),
    /// unless `--threads` or `$CYTOCL_THREADS` fixes the threads; otherwise the one backend.
    /// `hint` ends the note that says so.
    func cellBackends(pending: Int, hint: String = "") throws -> [any Backend] {
        let one = try makeChoice()
        if let cpuThreads = one.cpuThreads, threads == nil, ProcessInfo.processInfo.environment["CYTOCL_THREADS"] == nil {
            let cells = min(SweepDevices.defaultCPUCells(cores: cpuThreads), max(1, pending))
            if cells > 1 {
                let each = max(1, cpuThreads / cells)
                note("running \(cells) cells at a time on the CPU backend, \(each) thread\(each == 1 ? "" : "s") each" + hint)
                return try (0..<cells).map { _ in try BackendSelection.make(.cpu, options: selectionOptions(threads: each)).backend }
            }
        }
        return [one.backend]
    }

    /// The selection options of these flags, with `threads` CPU threads.
    func selectionOptions(threads: Int?) -> BackendSelection.Options {
        .init(profile: profile, fastMath: fastMath, threads: threads)
    }

    func validate() throws {
        if let t = threads, !(1...4096).contains(t) { throw ValidationError("--threads must be between 1 and 4096") }
    }

    func finish(_ backend: any Backend) {
        guard profile else { return }
        note(backend.profileReport())
    }
}

/// How to read a data set (the data stage's options).
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "Dataset layout (default: detected).")
    var layout: DatasetLayout?

    @Option(name: .long, help: "Map classes to blast (positive) vs other, e.g. MYO,MOB.")
    var positive: String?

    @Option(name: .long, help: "Select and order a subset of classes, e.g. LYT,MON,NGS.")
    var classes: String?

    @Option(name: .long, parsing: .unconditional, help: "Drop classes with fewer images.")
    var minPerClass: Int?

    @Option(name: .long, help: "Size policy for images of another size.")
    var fit: FitPolicy = .pad

    @Flag(name: .long, help: "Continue without unreadable images (reports how many).")
    var skipBadImages = false

    @Flag(
        name: .long, inversion: .prefixedNo,
        help: "Keep one of each set of byte-identical images (by content hash) so none is both in training and test.")
    var dedupe = true

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Near-duplicate images (the same cell photographed twice): drop keeps one of each group (as the paper did), group keeps all and puts each group in one fold (or one side of the validation split), off does not look.",
            valueName: "drop|group|off"))
    var nearDuplicates: NearDuplicatePolicy = .drop

    // `.unconditional`: `-1` is read as the value (then refused with the allowed range),
    // not as an unknown option followed by "Missing value".
    @Option(
        name: .long, parsing: .unconditional,
        help: "Similarity (normalised cross-correlation, above 0, at most 1) from which two images are near-duplicates.")
    var nearDuplicateThreshold: Double = NearDuplicateParameters().threshold

    @Option(name: .long, help: "A path,label CSV whose labels replace the layout's (e.g. a re-annotation); unlisted images are left out.")
    var labels: String?

    func nearDuplicateParameters() throws -> NearDuplicateParameters {
        guard nearDuplicateThreshold > 0 && nearDuplicateThreshold <= 1 else {
            throw ValidationError("--near-duplicate-threshold must be in (0, 1], got \(nearDuplicateThreshold)")
        }
        var p = NearDuplicateParameters()
        p.threshold = nearDuplicateThreshold
        return p
    }

    /// - Parameter strict: whether an empty class or a class of one image is an error
    ///   (it is for training and sweeps, which split every class; not for `evaluate`,
    ///   where one test image is a test set).
    ///   `excluding`: the command's own output folders, never read as data (`FolderSkip`).
    func datasetOptions(dedupe: Bool, strict: Bool = true, excluding: [String] = []) throws -> DatasetOptions {
        var o = DatasetOptions(
            layout: layout, positive: try list(positive, option: "--positive"), classes: try list(classes, option: "--classes"),
            minPerClass: minPerClass, dedupe: dedupe && self.dedupe)
        o.labelsFile = labels
        o.excludedFolders = excluding
        o.strict = strict
        return o
    }

    func fitPolicy() throws -> FitPolicy { fit }

    func list(_ s: String?, option: String) throws -> [String]? { try s.map { try parseNameList($0, option: option) } }

    /// Indexes and decodes a data set at the model input size.
    func load(
        _ path: String, height: Int, width: Int, dedupe: Bool = true, strict: Bool = true, title: String = "decoding",
        excluding: [String] = []
    )
        throws -> (index: DatasetIndex, images: LabeledImages)
    {
        let r = try loadHandlingNearDuplicates(
            path, height: height, width: width, dedupe: dedupe, strict: strict, title: title, excluding: excluding)
        return (r.index, r.images)
    }

    /// `load`, and what near-duplicate handling did (nil with `--near-duplicates off`).
    func loadHandlingNearDuplicates(
        _ path: String, height: Int, width: Int, dedupe: Bool = true, strict: Bool = true, title: String = "decoding",
        excluding: [String] = []
    )
        throws -> (index: DatasetIndex, images: LabeledImages, nearDuplicates: NearDuplicateSummary?)
    {
        let loading = try loading(path, height: height, width: width, dedupe: dedupe, strict: strict, excluding: excluding)
        let loaded = try read(loading, title: title)
        let images = LabeledImages(
            geometry: ImageGeometry(height: height, width: width), pixels: loaded.pixels, labels: loaded.labels, paths: loaded.paths)
        return (loaded.index, images, loaded.nearDuplicates)
    }

    /// What these options ask of `DatasetLoading` (in memory; a sweep sets its cache).
    func loading(
        _ path: String, height: Int, width: Int, dedupe: Bool = true, strict: Bool = true, excluding: [String] = []
    ) throws -> DatasetLoading {
        var l = DatasetLoading(
            path: path, options: try datasetOptions(dedupe: dedupe, strict: strict, excluding: excluding), height: height, width: width)
        l.fit = try fitPolicy()
        l.skipBadImages = skipBadImages
        l.nearDuplicates = nearDuplicates
        l.nearDuplicateParameters = try nearDuplicateParameters()
        return l
    }

    /// Runs `loading` with a progress bar, offering `--skip-bad-images` when images are unreadable.
    func read(_ loading: DatasetLoading, title: String) throws -> DatasetLoading.Loaded {
        let bar = ProgressBar(title: title, total: 1)
        return try offeringSkipBadImages {
            try loading.load(note: note, progress: { done, total in bar.update(done, of: total) })
        }
    }
}

extension NearDuplicatePolicy: ExpressibleByArgument {}

/// Prints the load report's per-file caveats (e.g. a multi-page TIFF read at page 1).
func noteWarnings(_ report: LoadReport) {
    for w in report.warnings { note("warning: \(FileSystemPath.visible(w))") }
}

/// Parses `257x257` or `257`, each side at most `ModelSpec.maxInputSide`.
func parseSize(_ s: String) throws -> (Int, Int) {
    let parts = s.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    guard (1...2).contains(parts.count), parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
        throw ValidationError("size '\(s)' should look like 257x257")
    }
    let sides = parts.map { $0! }
    guard sides.allSatisfy({ $0 <= ModelSpec.maxInputSide }) else {
        throw ValidationError("size '\(s)': each side must be at most \(ModelSpec.maxInputSide) pixels")
    }
    return sides.count == 1 ? (sides[0], sides[0]) : (sides[1], sides[0])  // WxH -> (height, width)
}

/// Refuses, before decoding, a set of images whose decoded pixels cannot fit in host memory.
func requireImageMemory(count: Int, height: Int, width: Int, what: String) throws {
    try DatasetLoading.requireImageMemory(count: count, height: height, width: width, what: what)
}

/// Refuses, before anything is allocated or decoded, a network that cannot fit on the backend.
func requireNetworkMemory(_ spec: ModelSpec, maxBatch: Int, backend: any Backend) throws {
    try spec.validate()
    try spec.networkMemory(maxBatch: maxBatch).check(against: backend.memoryLimit())
}

/// Builds a network on a backend from a model file.
func loadModel(_ path: String, backend: any Backend, maxBatch: Int) throws -> (ModelFile, Network) {
    let file = try ModelFile.read(from: URL(fileURLWithPath: path))
    let net = try Network(spec: file.spec, backend: backend, maxBatch: maxBatch)
    try net.setWeights(file.weights)
    return (file, net)
}

/// A comma-separated list of names (`--classes a,b,c`). An empty name (`a,,b`, a
/// trailing comma) is refused, naming its position: dropping it silently made
/// `--classes a,,b` "name 2 classes".
func parseNameList(_ text: String, option: String) throws -> [String] {
    let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    if let i = names.firstIndex(where: \.isEmpty) {
        throw ValidationError("\(option) '\(text)': name \(i + 1) of \(names.count) is empty (names are separated by single commas)")
    }
    return names
}
