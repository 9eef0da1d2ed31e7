import CytoCore
import CytoData
import CytoExplain
import CytoTrain
import CytoSweep
import Foundation

/// The report's figures that need the sweep's saved models (`sweep --save-models`):
/// the paper's Fig. 4b (saliency and LRP-epsilon maps of networks trained on 10, 50,
/// 100 and 200 images) and Fig. 5 (t-SNE of dense1 for networks trained on 10, 50 and
/// 100 images). Built here rather than in the CLI so that any caller of `SweepReport`
/// gets the same figures; the caller only supplies the backend to run the models on.
public struct ModelPanels {
    /// What to show.
    public struct Options: Sendable {
        /// Training sizes for Fig. 4b; the nearest sizes the sweep ran are used.
        public var explainSizes = [10, 50, 100, 200]
        /// Training sizes for Fig. 5.
        public var tsneSizes = [10, 50, 100]
        /// Images to explain (ids relative to the data root, or paths); nil: one test
        /// image of each class from the fold shown.
        public var explainImages: [String]?
        /// The class whose score is explained; nil: each image's true class. The authors'
        /// scripts explained class 0 (non-blast) for every image.
        public var explainClass: Int?
        /// LRP epsilon (the paper: 1).
        public var lrpEpsilon = 1.0
        /// At most this many points per t-SNE (a seeded sample beyond it).
        public var maxTSNEPoints = 1000
        public var seed: UInt64 = 0
        public init() {}
    }

    public let sweep: URL
    public let manifest: SweepManifest
    public let records: [SweepRecord]
    /// Makes the backend the models run on; called only when there are models to run.
    let makeBackend: () throws -> any Backend
    public var options: Options

    public init(
        sweep: URL, manifest: SweepManifest, records: [SweepRecord], options: Options = Options(),
        backend makeBackend: @escaping () throws -> any Backend
    ) {
        self.sweep = sweep; self.manifest = manifest; self.records = records; self.options = options
        self.makeBackend = makeBackend
    }

    func modelURL(_ r: SweepRecord) -> URL {
        SweepLayout(sweep).modelURL(SweepCell(fold: r.fold, size: r.size))
    }

    /// The fold shown: the first with a saved model for the most target sizes.
    func chooseFold() -> (fold: Int, withModels: [SweepRecord])? {
        let withModels = records.filter { FileManager.default.fileExists(atPath: modelURL($0).path) }
        let folds = Set(withModels.map(\.fold)).sorted()
        guard
            let best = folds.max(by: { a, b in
                let na = Set(withModels.filter { $0.fold == a }.map(\.size)).count
                let nb = Set(withModels.filter { $0.fold == b }.map(\.size)).count
                return na != nb ? na < nb : a > b
            })
        else { return nil }
        return (best, withModels.filter { $0.fold == best }.sorted { $0.size < $1.size })
    }

    /// For each target, the record of the nearest size run (each record at most once, in target order).
    static func nearest(_ targets: [Int], in records: [SweepRecord]) -> [(target: Int, record: SweepRecord)] {
        var out: [(Int, SweepRecord)] = []
        var used = Set<Int>()
        for t in targets {
            guard
                let r = records.filter({ !used.contains($0.size) })
                    .min(by: { (abs($0.size - t), $0.size) < (abs($1.size - t), $1.size) })
            else { continue }
            used.insert(r.size)
            out.append((t, r))
        }
        return out
    }

    /// The image of `id` (relative to the data root, or a path) at the model's input size.
    func loadImages(_ ids: [String], labels: [Int]) throws -> LoadedImages {
        let spec = manifest.spec
        let root = URL(fileURLWithPath: manifest.dataPath)
        let items = zip(ids, labels).map { id, label -> DatasetItem in
            let path = id.hasPrefix("/") ? id : root.appendingPathComponent(id).path
            return DatasetItem(path: path, label: label, className: manifest.classNames[label])
        }
        return try ImageLoader.load(items, height: spec.inputHeight, width: spec.inputWidth, skipBad: true)
    }

    func network(_ r: SweepRecord, on backend: any Backend) throws -> (Network, ModelFile) {
        let file = try ModelFile.read(from: modelURL(r))
        let net = try Network(spec: file.spec, backend: backend, maxBatch: 32)
        try net.setWeights(file.weights)
        return (net, file)
    }

    /// Adds the sections to `page`; nothing when no model was saved. Returns a warning
    /// for the caller to print when the figures could not be drawn: the images are read
    /// again from the sweep's data folder, and a moved or removed folder left both
    /// figures out without a word (exit 0, `--save-models` seemingly ignored).
    @discardableResult
    public func add(to page: inout HTMLPage) throws -> String? {
        guard let (fold, withModels) = chooseFold() else { return nil }
        guard OSPath.isDirectory(manifest.dataPath) == true else {
            let text =
                "Fig. 4b and Fig. 5 are not drawn: they read the test images again from the sweep's data folder "
                + "\(FileSystemPath.visible(manifest.dataPath)), which is not there (moved or removed); put it back to draw them."
            page.note(text)
            return text
        }
        let backend = try makeBackend()
        try addExplanations(fold: fold, records: withModels, backend: backend, page: &page)
        try addTSNE(fold: fold, records: withModels, backend: backend, page: &page)
        return nil
    }

    // MARK: Fig. 4b

    func addExplanations(fold: Int, records fr: [SweepRecord], backend: any Backend, page: inout HTMLPage) throws {
        // Columns in training-size order (numeric), whatever the targets' nearest sizes.
        let chosen = ModelPanels.nearest(options.explainSizes, in: fr).sorted { $0.record.size < $1.record.size }
        guard let first = chosen.first?.record else { return }
        let spec = manifest.spec
        // The images: named ones, or the first test image of each class.
        var ids: [String] = [], labels: [Int] = []
        if let named = options.explainImages {
            var labelOf: [String: Int] = [:]
            for r in records { for (id, l) in zip(r.testIDs, r.testLabels) { labelOf[id] = l } }
            for pools in manifest.assignment.trainingOrder {
                for (c, ids) in pools.enumerated() { for id in ids where labelOf[id] == nil { labelOf[id] = c } }
            }
            for n in named {
                let rel = n.hasPrefix(manifest.dataPath + "/") ? String(n.dropFirst(manifest.dataPath.count + 1)) : n
                guard let l = labelOf[rel] else {
                    throw CytoError.invalidArgument(
                        "--explain-images: '\(n)' is not an image of the sweep's data set (\(manifest.dataPath)) with a known class")
                }
                ids.append(rel); labels.append(l)
            }
        } else {
            for c in manifest.classNames.indices {
                if let i = first.testLabels.firstIndex(of: c) { ids.append(first.testIDs[i]); labels.append(c) }
            }
        }
        let loaded = try loadImages(ids, labels: labels)
        guard loaded.count > 0 else { return }
        let per = spec.inputHeight * spec.inputWidth * spec.inputChannels
        let inputs = (0..<loaded.count).map { i in
            ExplainInput.chw(
                hwc: loaded.pixels[i * per..<(i + 1) * per], height: spec.inputHeight, width: spec.inputWidth,
                channels: spec.inputChannels)
        }
        if let c = options.explainClass, !(0..<manifest.classNames.count).contains(c) {
            throw CytoError.invalidArgument(
                "--explain-class \(c): the sweep's classes are numbered 0 to \(manifest.classNames.count - 1) (\(manifest.classNames.enumerated().map { "\($0) \($1)" }.joined(separator: ", ")))")
        }
        let explained = loaded.labels.map { options.explainClass ?? $0 }
        // rows[image] = (saliency row, LRP row), one map per size.
        var saliencyRows = [[RGBPixels?]](repeating: [], count: loaded.count)
        var lrpRows = [[RGBPixels?]](repeating: [], count: loaded.count)
        for i in 0..<loaded.count {
            saliencyRows[i].append(
                RGBPixels(
                    width: spec.inputWidth, height: spec.inputHeight,
                    pixels: Array(loaded.pixels[i * per..<(i + 1) * per])))
            lrpRows[i].append(nil)
        }
        for (_, r) in chosen {
            let (net, file) = try network(r, on: backend)
            let s = try Saliency.compute(network: net, inputs: inputs) { i, _ in explained[i] }
            let lrp = try LRP(spec: file.spec, weights: file.weights)
            for i in 0..<loaded.count {
                saliencyRows[i].append(Heatmap.colorize(s.maps[i], width: spec.inputWidth, height: spec.inputHeight, colormap: .sequential))
                let e = lrp.explain(input: inputs[i], classIndex: explained[i], rule: .epsilon(options.lrpEpsilon))
                lrpRows[i].append(Heatmap.colorize(e.map, width: spec.inputWidth, height: spec.inputHeight, colormap: .diverging))
            }
        }
        let sizes = chosen.map { String($0.record.size) }.joined(separator: ", ")
        page.section("Fig. 4b: saliency and LRP maps (fold \(fold))")
        let unit = manifest.protocolSettings.balancePerClass ? " per class" : ""
        page.paragraph(
            "Columns: the input, then the networks trained on \(sizes) images\(unit) (the sizes run nearest to "
                + "the paper's \(options.explainSizes.map(String.init).joined(separator: ", "))). Upper row of each image: "
                + "saliency |d score / d input| (maximum over colour channels); lower row: LRP-epsilon (epsilon "
                + "\(formatNumber(options.lrpEpsilon))) on the network without its softmax, red positive, blue negative relevance.")
        for i in 0..<loaded.count {
            let panel = Heatmap.panel([saliencyRows[i], lrpRows[i]])
            let png = try ImageCodec.encodePNG(RGBImage(width: panel.width, height: panel.height, pixels: panel.pixels))
            let id = DatasetIndex.relativeIDs([loaded.items[i].path], root: manifest.dataPath)[0]
            page.png(
                Data(png), alt: "saliency and LRP maps of \(id)",
                caption: "\(id) (true class \(manifest.classNames[loaded.labels[i]])); class explained: "
                    + "\(manifest.classNames[explained[i]]) (score before softmax)"
                    + (options.explainClass == nil ? ", the image's true class." : ", fixed by --explain-class."))
        }
    }

    // MARK: Fig. 5

    func addTSNE(fold: Int, records fr: [SweepRecord], backend: any Backend, page: inout HTMLPage) throws {
        guard !manifest.spec.denseUnits.isEmpty else { return }
        let chosen = ModelPanels.nearest(options.tsneSizes, in: fr).sorted { $0.record.size < $1.record.size }
        guard !chosen.isEmpty else { return }
        let spec = manifest.spec
        let pools = manifest.assignment.trainingOrder.indices.contains(fold) ? manifest.assignment.trainingOrder[fold] : []
        var scatters: [String] = []
        var counts: [String] = [], failed: [String] = []
        for (_, r) in chosen {
            // The test images plus the fold's training pool images this size left out.
            let trained = Set(r.trainIDs).union(r.validationIDs)
            var ids = r.testIDs, labels = r.testLabels
            let testCount = ids.count
            for (c, pool) in pools.enumerated() {
                for id in pool where !trained.contains(id) { ids.append(id); labels.append(c) }
            }
            let leftOut = ids.count - testCount
            var order = Array(ids.indices)
            if order.count > options.maxTSNEPoints {
                var rng = SeededGenerator.stream(seed: options.seed, "tsne-sample-\(r.size)")
                order.shuffle(using: &rng)
                order = Array(order.prefix(options.maxTSNEPoints)).sorted()
            }
            let loaded = try loadImages(order.map { ids[$0] }, labels: order.map { labels[$0] })
            guard loaded.count >= 4 else { continue }
            let per = spec.inputHeight * spec.inputWidth * spec.inputChannels
            let (net, _) = try network(r, on: backend)
            let points = try HiddenActivations.compute(network: net, count: loaded.count) { i in
                ExplainInput.chw(
                    hwc: loaded.pixels[i * per..<(i + 1) * per], height: spec.inputHeight, width: spec.inputWidth,
                    channels: spec.inputChannels)
            }
            // scikit-learn refuses perplexity >= n; a third of the points keeps each
            // point's neighbourhood well inside the set.
            let tsne = TSNE(perplexity: min(30, Double(points.count - 1) / 3), iterations: 1000, seed: options.seed)
            let e = try tsne.embed(points)
            if let why = e.failure {
                failed.append("\(r.size) training images (\(loaded.count) points): \(why)")
                continue
            }
            scatters.append(
                Plots.scatter(
                    x: e.embedding.map { $0[0] }, y: e.embedding.map { $0[1] }, classes: loaded.labels,
                    classNames: manifest.classNames,
                    options: PlotOptions(
                        title: "\(r.size) training images: \(loaded.count) points",
                        xLabel: "t-SNE 1", yLabel: "t-SNE 2", width: 420, height: 340)))
            counts.append(
                "\(r.size): \(testCount) test + \(leftOut) left out of training"
                    + (loaded.count < ids.count ? " (a sample of \(loaded.count) shown)" : ""))
        }
        guard !scatters.isEmpty || !failed.isEmpty else { return }
        page.section("Fig. 5: t-SNE of the last hidden layer (fold \(fold))")
        if !failed.isEmpty {
            page.note("Not plotted, the t-SNE layout means nothing: " + failed.joined(separator: "; ") + ".")
        }
        guard !scatters.isEmpty else { return }
        page.svgRow(
            scatters,
            caption: "dense1 activations of the fold's test images plus the images each training size left "
                + "out of training (validation excluded), coloured by class — \(counts.joined(separator: "; ")). "
                + "The paper's ALL-IDB2 panels (10, 50, 100 images) show 215, 175 and 125 points.")
    }

    func formatNumber(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
