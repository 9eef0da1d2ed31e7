import ArgumentParser
import CytoBackends
import CytoCPU
import CytoCore
import CytoData
import CytoOpenCL
import CytoTrain
import Foundation
import Synchronization

/// Everything that is not machine-readable output goes to stderr, so stdout stays
/// clean for CSV and JSON.
func note(_ text: String) {
    FileHandle.standardError.write((text + "\n").data(using: .utf8)!)
}

let stderrIsTerminal = isatty(2) != 0

/// A progress bar on stderr, redrawn in place on a terminal and printed every 10 s
/// otherwise. Decoding reports from worker threads, so the redraw bookkeeping is
/// behind a `Mutex` and one update draws at a time.
final class ProgressBar: Sendable {
    let total: Int
    let title: String
    let start = Date()
    private struct Marks { var lastPlain = Date.distantPast; var lastDraw = Date.distantPast }
    private let marks = Mutex(Marks())

    init(title: String, total: Int) { self.title = title; self.total = max(1, total) }

    func update(_ done: Int, _ detail: String = "") {
        marks.withLock { marks in
            let now = Date()
            let elapsed = now.timeIntervalSince(start)
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let fraction = min(1, Double(done) / Double(total))
            if stderrIsTerminal {
                guard now.timeIntervalSince(marks.lastDraw) > 0.1 || done >= total else { return }
                marks.lastDraw = now
                let width = 24
                let filled = Int(fraction * Double(width))
                let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
                let line = "\r\(title) \(bar) \(done)/\(total) \(detail) ETA \(formatDuration(eta))\u{1B}[K"
                FileHandle.standardError.write(Data(line.utf8))
                if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
            } else if now.timeIntervalSince(marks.lastPlain) > 10 || done >= total || done == 1 {
                marks.lastPlain = now
                note("\(title) \(done)/\(total) \(detail) elapsed \(formatDuration(elapsed)) ETA \(formatDuration(eta))")
            }
        }
    }
}

func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    if s < 60 { return String(format: "%.0fs", s) }
    if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
}

/// `--backend`, `--profile` and friends, shared by every command that runs a model.
struct BackendOptions: ParsableArguments {
    @Option(name: .long, help: "auto | cpu | opencl | opencl:P.D (default: $CYTOCL_BACKEND or auto).")
    var backend: String?

    @Flag(name: .long, help: "Print a per-kernel time table (OpenCL) after the run.")
    var profile = false

    @Flag(name: .long, help: "Compile OpenCL kernels with -cl-fast-relaxed-math.")
    var fastMath = false

    @Option(name: .long, parsing: .unconditional, help: "CPU backend threads (default: $CYTOCL_THREADS or all cores).")
    var threads: Int?

    func make() throws -> any Backend {
        if let t = threads, !(1...4096).contains(t) { throw ValidationError("--threads must be between 1 and 4096") }
        let choice = try BackendSelection.make(backend, options: .init(profile: profile, fastMath: fastMath, threads: threads))
        note(choice.note)
        return choice.backend
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
        let index = try DatasetIndex.load(path: path, options: datasetOptions(dedupe: dedupe, strict: strict, excluding: excluding))
        if let d = index.dedup, !d.dropped.isEmpty { note(d.summary) }
        try requireImageMemory(count: index.items.count, height: height, width: width, what: "decoding \(path)")
        if index.unlabelled > 0, let l = labels { note("\(l): \(index.unlabelled) images of \(path) are not listed and were left out") }
        if let w = index.unnamedNote { note(w) }
        let bar = ProgressBar(title: title, total: index.items.count)
        let fit = try fitPolicy()
        var loaded = try offeringSkipBadImages {
            try ImageLoader.load(
                index.items, height: height, width: width, fit: fit,
                skipBad: skipBadImages, progress: { done, _ in bar.update(done) })
        }
        var summary: NearDuplicateSummary?
        if nearDuplicates != .off {
            let params = try nearDuplicateParameters()
            let pairs = NearDuplicates.pairs(
                pixels: loaded.pixels, count: loaded.count, height: height, width: width, parameters: params,
                warning: { note("warning: " + $0) })
            let ids = DatasetIndex.relativeIDs(loaded.items.map(\.path), root: index.root)
            let (keep, s) = NearDuplicates.apply(policy: nearDuplicates, parameters: params, pairs: pairs, items: loaded.items, ids: ids)
            if keep.count < loaded.count {
                let per = height * width * 3
                var px: [UInt8] = []
                px.reserveCapacity(keep.count * per)
                for i in keep { px += loaded.pixels[(i * per)..<((i + 1) * per)] }
                loaded.pixels = px
                loaded.items = keep.map { loaded.items[$0] }
                loaded.count = keep.count
            }
            note(s.groups.isEmpty ? s.text : s.listing)
            summary = s
        }
        let labels = loaded.labels
        let counts = index.classNames.indices.map { k in labels.filter { $0 == k }.count }
        note(
            "\(FileSystemPath.visible(path)): \(index.layout.rawValue) layout, \(loaded.count) images, classes "
                + zip(index.classNames, counts).map { "\(FileSystemPath.visible($0)) \($1)" }.joined(separator: ", "))
        note(loaded.report.summary)
        noteWarnings(loaded.report)
        let images = LabeledImages(
            geometry: ImageGeometry(height: height, width: width), pixels: loaded.pixels,
            labels: loaded.labels, paths: loaded.items.map(\.path))
        return (index, images, summary)
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
    var need = MemoryNeed(what: "\(what): \(formatThousands(count)) images at \(width)x\(height)")
    need.add("decoded images", count: checkedProduct(count, height, width, 3), elementBytes: 1)
    try need.check(against: MemoryLimit.host())
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
