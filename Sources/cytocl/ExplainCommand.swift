import ArgumentParser
import CytoCore
import CytoData
import CytoExplain
import Foundation

/// The explanation methods of `cytocl explain`.
enum ExplainMethod: String, CaseIterable {
    case saliency
    case lrpEpsilon = "lrp-epsilon"
    case lrpZ = "lrp-z"

    var colormap: Colormap { self == .saliency ? .sequential : .diverging }

    static func parse(_ s: String) throws -> [ExplainMethod] {
        var out: [ExplainMethod] = []
        for part in s.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !part.isEmpty {
            if part == "all" { out += allCases; continue }
            if part == "lrp" { out.append(.lrpEpsilon); continue }
            guard let m = ExplainMethod(rawValue: part) else {
                throw ValidationError("unknown --method '\(part)': use saliency, lrp-epsilon, lrp-z or all")
            }
            out.append(m)
        }
        var seen = Set<ExplainMethod>()
        out = out.filter { seen.insert($0).inserted }
        guard !out.isEmpty else { throw ValidationError("--method is empty") }
        return out
    }
}

/// Parses `--model`/`--models` into a list of model paths.
func modelPaths(model: String?, models: String?) throws -> [String] {
    var paths: [String] = []
    if let m = model { paths.append(m) }
    if let ms = models {
        paths += ms.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    guard !paths.isEmpty else { throw ValidationError("give --model FILE or --models A,B,C") }
    return paths
}

/// Short, unique, file-name-safe tags for several model files (their stems).
func modelTags(_ paths: [String]) -> [String] {
    var used: [String: Int] = [:]
    return paths.map { p in
        var stem = URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent
        stem = String(stem.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let n = used[stem, default: 0]
        used[stem] = n + 1
        return n == 0 ? stem : "\(stem)-\(n + 1)"
    }
}

func writePNG(_ p: RGBPixels, to url: URL) throws {
    try ImageCodec.writePNG(RGBImage(width: p.width, height: p.height, pixels: p.pixels), to: url)
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Saliency and LRP heatmaps for images: .npy maps, PNG heatmaps, overlays and a panel per image.",
        discussion: """
            Saliency: |d score / d x| of the chosen class's pre-softmax score with respect to the \
            1/255-scaled pixels, maximum over the colour channels (run on the backend). LRP: \
            layer-wise relevance propagation of that score with the epsilon rule (--epsilon, \
            paper: 1) or the z-rule, winner-take-all through max-pooling, summed over colour \
            channels (run on the host). Writes <stem>.<method>.npy (float32 [H, W]), \
            <stem>.<method>.png, <stem>.<method>.overlay.png and <stem>.panel.png \
            (input | maps, one row per model) into --out; with several models the per-map \
            files are named <stem>.<model>.<method>.*. A CSV summary goes to stdout.
            """)

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String?

    @Option(name: .long, help: "Several model files, comma-separated: their maps side by side (one panel row each).")
    var models: String?

    @Option(name: .long, help: "One method, all, or a comma-separated list.")
    var method = ExplainMethodList([.saliency, .lrpEpsilon])

    @Option(name: .long, parsing: .unconditional, help: "Stabiliser of the LRP epsilon rule.")
    var epsilon: Double = 1

    @Option(name: .customLong("class"), help: "Class to explain: predicted | true (the image's folder name) | a class name or index.")
    var classChoice: String = "predicted"

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, help: "Size policy for images of another size.")
    var fit: FitPolicy = .pad

    @Flag(name: .long, help: "Do not write the panel PNG.")
    var noPanel = false

    @Argument(help: "Image files (PNG, TIFF, JPEG).")
    var images: [String]

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var outputs: OverwriteOption

    /// Every file the run writes into `outDir`, in the names the loop below uses.
    func outputFiles(_ outDir: URL, stems: [String], tags: [String], methods: [ExplainMethod]) -> [URL] {
        var files: [URL] = []
        for stem in stems {
            for tag in tags {
                for m in methods {
                    let base = "\(stem)\(tags.count > 1 ? ".\(tag)" : "").\(m.rawValue)"
                    files += [".npy", ".png", ".overlay.png"].map { outDir.appendingPathComponent(base + $0) }
                }
            }
            if !noPanel { files.append(outDir.appendingPathComponent("\(stem).panel.png")) }
        }
        return files
    }

    /// Resolves --class for one image given the model's class names.
    func classIndex(for path: String, logits: [Float], classNames: [String]) throws -> Int {
        switch classChoice.lowercased() {
        case "predicted": return logits.argmaxIndex
        case "true":
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent
            guard let k = classNames.firstIndex(where: { $0.caseInsensitiveCompare(folder) == .orderedSame }) else {
                throw ValidationError(
                    "--class true: the folder of \(path) ('\(folder)') is not one of the model's classes \(classNames.joined(separator: ", "))"
                )
            }
            return k
        default:
            if let k = classNames.firstIndex(where: { $0.caseInsensitiveCompare(classChoice) == .orderedSame }) { return k }
            if let k = Int(classChoice), k >= 0, k < classNames.count { return k }
            throw ValidationError("--class '\(classChoice)' is not predicted, true, or one of \(classNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        guard !images.isEmpty else { throw ValidationError("no images given") }
        let policy = fit
        guard epsilon >= 0 else { throw ValidationError("--epsilon must be >= 0") }
        let methods = method.methods
        let paths = try modelPaths(model: model, models: models)
        let tags = modelTags(paths)
        let outDir = URL(fileURLWithPath: out)
        // A refusal after the preflight (a bad image, an unknown --class) leaves no empty --out behind.
        let created = OSPath.missingFolders(outDir)
        defer { OSPath.removeEmptyFolders(created) }
        try AtomicFile.preflight([outDir.appendingPathComponent("panel.png")])  // writable before any work

        // Unique output stems per image.
        var stems: [String] = []
        var used: [String: Int] = [:]
        for p in images {
            let s = URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent
            let n = used[s, default: 0]; used[s] = n + 1
            stems.append(n == 0 ? s : "\(s)-\(n + 1)")
        }
        // Heatmaps of an earlier run in the same --out are not replaced by accident.
        try outputs.check(outputFiles(outDir, stems: stems, tags: tags, methods: methods))

        let backend = try backendOptions.make()
        // panels[image][model] = [input, map per method]
        var panels = [[[RGBPixels?]]](repeating: [], count: images.count)
        // The header goes out with the first row: a refusal found while the images are
        // read (`--class true` for an image outside a class folder) left a header-only
        // CSV on stdout, which `> summary.csv` kept as if nothing were wrong.
        var header: String? = "path,model,method,class,score,min,max,sum,npy"
        for (mi, path) in paths.enumerated() {
            let (file, net) = try loadModel(path, backend: backend, maxBatch: min(8, images.count))
            let spec = file.spec
            let h = spec.inputHeight, w = spec.inputWidth, c = spec.inputChannels
            guard c == 3 else { throw RunError("\(path): explain supports RGB models only") }
            let items = images.map { DatasetItem(path: $0, label: 0, className: "") }
            let loaded = try ImageLoader.load(items, height: h, width: w, fit: policy)
            noteWarnings(loaded.report)
            let changed = loaded.report.resized + loaded.report.padded + loaded.report.cropped
            if changed > 0 { note("\(changed) of \(loaded.count) images fitted to \(w)x\(h) (\(policy.rawValue))") }
            let per = h * w * c
            let inputs = (0..<images.count).map {
                ExplainInput.chw(hwc: loaded.pixels[$0 * per..<($0 + 1) * per], height: h, width: w, channels: c)
            }
            // The class for every image, from the backend's logits.
            var resolveError: Error?
            let needSaliency = methods.contains(.saliency)
            var saliency: Saliency.Result?
            var classes: [Int] = []
            var logits: [[Float]] = []
            let start = Date()
            let sal = try Saliency.compute(network: net, inputs: inputs) { i, l in
                do { return try classIndex(for: images[i], logits: l, classNames: file.classNames) } catch {
                    resolveError = error; return 0
                }
            }
            if let e = resolveError { throw e }
            classes = sal.classes; logits = sal.logits
            if needSaliency { saliency = sal }
            let lrp = try LRP(spec: spec, weights: file.weights)
            let tag = paths.count > 1 ? ".\(tags[mi])" : ""
            var seconds: [ExplainMethod: Double] = [:]
            if needSaliency { seconds[.saliency] = Date().timeIntervalSince(start) }
            for i in 0..<images.count {
                let original = RGBPixels(width: w, height: h, pixels: Array(loaded.pixels[i * per..<(i + 1) * per]))
                var row: [RGBPixels?] = [original]
                for m in methods {
                    let map: [Float]
                    var score = Double(logits[i][classes[i]])
                    let t0 = Date()
                    switch m {
                    case .saliency: map = saliency!.maps[i]
                    case .lrpEpsilon, .lrpZ:
                        let r = lrp.explain(
                            input: inputs[i], classIndex: classes[i],
                            rule: m == .lrpZ ? .z : .epsilon(epsilon))
                        map = r.map; score = r.score
                        seconds[m, default: 0] += Date().timeIntervalSince(t0)
                    }
                    let base = "\(stems[i])\(tag).\(m.rawValue)"
                    let npy = outDir.appendingPathComponent(base + ".npy")
                    try NPY.write(map, shape: [h, w], to: npy)
                    let heat = Heatmap.colorize(map, width: w, height: h, colormap: m.colormap)
                    try writePNG(heat, to: outDir.appendingPathComponent(base + ".png"))
                    try writePNG(
                        Heatmap.overlay(map, on: original, colormap: m.colormap),
                        to: outDir.appendingPathComponent(base + ".overlay.png"))
                    row.append(heat)
                    let lo = map.min() ?? 0, hi = map.max() ?? 0, sum = map.reduce(0.0) { $0 + Double($1) }
                    if let h = header { print(h); header = nil }
                    print(
                        [
                            csvField(images[i]), csvField(tags[mi]), m.rawValue, csvField(file.classNames[classes[i]]),
                            String(format: "%.6g", score), String(format: "%.6g", lo), String(format: "%.6g", hi),
                            String(format: "%.6g", sum), csvField(npy.path),
                        ].joined(separator: ","))
                }
                panels[i].append(row)
            }
            let timing = methods.map { "\($0.rawValue) \(String(format: "%.3f", (seconds[$0] ?? 0) / Double(images.count))) s/image" }
            note("\(tags[mi]): \(images.count) images explained on \(backend.kind) (\(timing.joined(separator: ", ")))")
        }
        if !noPanel {
            for i in images.indices {
                try writePNG(Heatmap.panel(panels[i]), to: outDir.appendingPathComponent("\(stems[i]).panel.png"))
            }
        }
        note("wrote \(images.count * paths.count * methods.count * 3 + (noPanel ? 0 : images.count)) files to \(outDir.path)")
        backendOptions.finish(backend)
    }
}
