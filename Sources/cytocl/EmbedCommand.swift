import ArgumentParser
import CytoCore
import CytoData
import CytoExplain
import CytoReport
import CytoTrain
import Foundation

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "t-SNE of the network's dense1 activations: CSV of 2-D coordinates, an SVG scatter plot, the KL divergence.",
        discussion: """
            Runs every image of --data through the model, takes the hidden dense1 activations \
            (32-d after ReLU in the paper's network) and embeds them in 2-D with t-SNE (exact \
            up to 1,000 points, Barnes-Hut beyond, unless --tsne-method says otherwise). Writes \
            embedding.csv (path,class,x,y), embedding.svg and tsne.json into --out; with \
            --models, <model>.embedding.csv/.svg per model and panel.svg with the plots side by side.
            """)

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String?

    @Option(name: .long, help: "Several model files, comma-separated: one plot each, side by side in panel.svg.")
    var models: String?

    @Option(name: .long, help: "Data set folder or CSV.")
    var data: String

    @OptionGroup var dataOptions: DataOptions

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, parsing: .unconditional, help: "t-SNE perplexity (lowered automatically for small sets).")
    var perplexity: Double = 30

    @Option(name: .long, parsing: .unconditional, help: "t-SNE iterations.")
    var iterations: Int = 1000

    @Option(name: .long, parsing: .unconditional, help: "Random seed of the t-SNE initialisation.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "The t-SNE gradient: exact, Barnes-Hut, or auto (exact up to 1,000 points).")
    var tsneMethod: TSNEMethodArgument = .auto

    @OptionGroup var outputs: OverwriteOption
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let method = tsneMethod.method
        guard perplexity > 0 else { throw ValidationError("--perplexity must be positive") }
        guard iterations > 0 else { throw ValidationError("--iterations must be positive") }
        let paths = try modelPaths(model: model, models: models)
        let tags = modelTags(paths)
        let outDir = URL(fileURLWithPath: out)
        try outputs.check(["embedding.csv", "tsne.json", "panel.svg"].map { outDir.appendingPathComponent($0) })
        // A refusal after the preflight (a bad image, a model without a dense layer) leaves no empty --out behind.
        let created = OSPath.missingFolders(outDir)
        defer { OSPath.removeEmptyFolders(created) }
        try AtomicFile.preflight([outDir.appendingPathComponent("embedding.csv")])  // writable before any work
        let backend = try backendOptions.make()
        var loadedBySize: [String: (index: DatasetIndex, images: LabeledImages)] = [:]
        var svgs: [String] = []
        var summaries: [String] = []
        // The header comes with the first row: printed first, it stood alone on stdout
        // when the data was refused (exit 1 after a CSV header).
        var header: String? = "model,points,method,perplexity,kl_divergence,seconds,csv"
        for (mi, path) in paths.enumerated() {
            let (file, net) = try loadModel(path, backend: backend, maxBatch: 32)
            let spec = file.spec
            guard !spec.denseUnits.isEmpty else { throw RunError("\(path) has no hidden dense layer to embed") }
            let key = "\(spec.inputHeight)x\(spec.inputWidth)"
            if loadedBySize[key] == nil {
                // Nothing is split: a class of one image (or none) is no error, as in `evaluate`.
                loadedBySize[key] = try dataOptions.load(
                    data, height: spec.inputHeight, width: spec.inputWidth, strict: false, excluding: [out])
            }
            let (index, set) = loadedBySize[key]!
            guard set.count >= 3 else { throw RunError("--data \(FileSystemPath.visible(data)): t-SNE needs at least 3 images, it has \(set.count)") }
            // dense1 activations, in batches on the backend.
            let per = spec.inputHeight * spec.inputWidth * spec.inputChannels
            let bar = ProgressBar(title: "activations", total: set.count)
            let points = try HiddenActivations.compute(network: net, count: set.count, progress: { bar.update($0) }) { i in
                ExplainInput.chw(
                    hwc: set.pixels[i * per..<(i + 1) * per], height: spec.inputHeight,
                    width: spec.inputWidth, channels: spec.inputChannels)
            }
            // Class names: the data set's (the model's when they agree in number).
            let classNames = index.classNames
            var tsne = TSNE(perplexity: perplexity, iterations: iterations, seed: seed, method: method)
            tsne.klEvery = max(1, iterations / 20)
            let tbar = ProgressBar(title: "t-SNE", total: iterations)
            let result = try tsne.embed(points) { it, _ in tbar.update(it) }
            let prefix = paths.count > 1 ? "\(tags[mi])." : ""
            var csv = "path,class,x,y\n"
            for (i, e) in result.embedding.enumerated() {
                csv +=
                    [
                        csvField(set.paths[i]), csvField(classNames[set.labels[i]]),
                        String(format: "%.6g", e[0]), String(format: "%.6g", e[1]),
                    ].joined(separator: ",") + "\n"
            }
            let csvURL = outDir.appendingPathComponent(prefix + "embedding.csv")
            try writeAtomically(Data(csv.utf8), to: csvURL)
            let title =
                paths.count > 1
                ? "\(tags[mi]) (KL \(String(format: "%.3f", result.klDivergence)))"
                : "t-SNE of dense1 (KL \(String(format: "%.3f", result.klDivergence)))"
            let svg = Plots.scatter(
                x: result.embedding.map { $0[0] }, y: result.embedding.map { $0[1] },
                classes: set.labels, classNames: classNames,
                options: PlotOptions(
                    title: title, xLabel: "t-SNE 1", yLabel: "t-SNE 2",
                    width: 560, height: 420))
            try writeAtomically(Data(svg.utf8), to: outDir.appendingPathComponent(prefix + "embedding.svg"))
            svgs.append(svg)
            let history = result.klHistory.map { "{\"iteration\":\($0.iteration),\"kl\":\(String(format: "%.6g", $0.kl))}" }
            summaries.append(
                """
                  {"model":\(jsonString(path)),"points":\(points.count),"method":\(jsonString(result.method.rawValue)),\
                "perplexity":\(String(format: "%.6g", result.effectivePerplexity)),"learning_rate":\(String(format: "%.6g", result.learningRate)),\
                "kl_divergence":\(String(format: "%.6g", result.klDivergence)),"seconds":\(String(format: "%.3f", result.seconds)),\
                "kl_history":[\(history.joined(separator: ","))]}
                """)
            if let h = header { print(h); header = nil }
            print(
                [
                    csvField(tags[mi]), "\(points.count)", result.method.rawValue, String(format: "%.6g", result.effectivePerplexity),
                    String(format: "%.6g", result.klDivergence), String(format: "%.3f", result.seconds), csvField(csvURL.path),
                ]
                .joined(separator: ","))
            note(
                "\(tags[mi]): t-SNE of \(points.count) points (\(result.method.rawValue)) in \(String(format: "%.1f", result.seconds)) s, final KL divergence \(String(format: "%.4f", result.klDivergence))"
            )
        }
        try writeAtomically(
            Data(("[\n" + summaries.joined(separator: ",\n") + "\n]\n").utf8),
            to: outDir.appendingPathComponent("tsne.json"))
        if svgs.count > 1 {
            try writeAtomically(
                Data(sideBySide(svgs, width: 560, height: 420).utf8),
                to: outDir.appendingPathComponent("panel.svg"))
        }
        backendOptions.finish(backend)
    }

    /// Nests standalone SVG documents side by side in one document.
    func sideBySide(_ svgs: [String], width: Double, height: Double) -> String {
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width) * svgs.count)\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width) * svgs.count) \(Int(height))\">\n"
        for (i, inner) in svgs.enumerated() {
            var body = inner
            if let r = body.range(of: "<svg ") { body.replaceSubrange(r, with: "<svg x=\"\(Int(width) * i)\" y=\"0\" ") }
            s += body
        }
        return s + "</svg>\n"
    }
}
