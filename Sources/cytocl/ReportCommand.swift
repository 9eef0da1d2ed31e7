import ArgumentParser
import CytoCore
import CytoData
import CytoExplain
import CytoReport
import CytoTrain
import Foundation

/// `cytocl report`: the HTML page, SVG figures and CSV tables of a sweep directory.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write SWEEP_DIR/report/index.html (inline SVG figures), summary.csv and cells.csv for a sweep.",
        discussion: """
        When the sweep saved its models (--save-models), the page also shows, for the first
        fold with models and up to four training sizes, a saliency map of one test image per
        model (the paper's Fig. 4b) and a t-SNE of the dense1 activations of that fold's
        test images (Fig. 5). --no-explain leaves them out.
        """)

    @Argument(help: "A directory made by `cytocl sweep` (may still be running).")
    var sweepDir: String

    @Option(name: .long, help: "Output directory (default: SWEEP_DIR/report).")
    var out: String?

    @Flag(name: .long, inversion: .prefixedNo, help: "Saliency and t-SNE panels of saved models.")
    var explain = true

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let sweep = URL(fileURLWithPath: sweepDir)
        let written: SweepReport.Written
        do {
            written = try SweepReport.write(sweep: sweep, to: out.map { URL(fileURLWithPath: $0) }) { page in
                if explain { try modelPanels(sweep: sweep, page: &page) }
            }
        } catch let e as CytoError { throw ValidationError(e.description) }
        note("\(written.cells) of \(written.totalCells) cells finished")
        print(written.html.path)
        print(written.summaryCSV.path)
    }

    /// Saliency and t-SNE panels for the saved models of the first fold that has any.
    func modelPanels(sweep: URL, page: inout HTMLPage) throws {
        let manifest = try loadSweepManifest(sweep)
        let records = try loadSweepRecords(sweep)
        let cellsDir = sweep.appendingPathComponent("cells")
        func modelURL(_ r: SweepRecord) -> URL { cellsDir.appendingPathComponent("fold\(r.fold)-size\(r.size).safetensors") }
        let withModels = records.filter { FileManager.default.fileExists(atPath: modelURL($0).path) }
        guard let fold = withModels.map(\.fold).min() else { return }
        var chosen = withModels.filter { $0.fold == fold }.sorted { $0.size < $1.size }
        if chosen.count > 4 {
            let n = chosen.count
            chosen = (0..<4).map { chosen[Int((Double($0) * Double(n - 1) / 3).rounded())] }
        }
        let backend = try backendOptions.make()
        let spec = manifest.spec
        // The fold's test images (the same for every size), at most 400 for the t-SNE.
        let test = chosen[0]
        let root = URL(fileURLWithPath: manifest.dataPath)
        let count = min(400, test.testIDs.count)
        let items = (0..<count).map { i -> DatasetItem in
            let id = test.testIDs[i]
            let path = id.hasPrefix("/") ? id : root.appendingPathComponent(id).path
            return DatasetItem(path: path, label: test.testLabels[i], className: manifest.classNames[test.testLabels[i]])
        }
        let loaded = try ImageLoader.load(items, height: spec.inputHeight, width: spec.inputWidth, skipBad: true)
        guard loaded.count >= 3 else { return }
        let per = spec.inputHeight * spec.inputWidth * spec.inputChannels
        let inputs = (0..<loaded.count).map { i in
            ExplainInput.chw(hwc: loaded.pixels[i * per..<(i + 1) * per], height: spec.inputHeight,
                             width: spec.inputWidth, channels: spec.inputChannels)
        }
        let labels = loaded.labels
        // One image of the positive (last) class for the saliency row.
        let shown = labels.lastIndex(of: manifest.classNames.count - 1) ?? 0
        let image = RGBPixels(width: spec.inputWidth, height: spec.inputHeight,
                              pixels: Array(loaded.pixels[shown * per..<(shown + 1) * per]))
        var row: [RGBPixels?] = [image]
        var scatters: [String] = []
        for r in chosen {
            let (_, net) = try loadModel(modelURL(r).path, backend: backend, maxBatch: 32)
            let s = try Saliency.compute(network: net, inputs: [inputs[shown]]) { _, _ in labels[shown] }
            row.append(Heatmap.colorize(s.maps[0], width: spec.inputWidth, height: spec.inputHeight, colormap: .sequential))
            guard !spec.denseUnits.isEmpty else { continue }
            let points = try HiddenActivations.compute(network: net, count: inputs.count) { inputs[$0] }
            let tsne = TSNE(perplexity: min(30, Double(points.count - 1) / 3), iterations: 1000, seed: 0)
            let e = try tsne.embed(points)
            scatters.append(Plots.scatter(x: e.embedding.map { $0[0] }, y: e.embedding.map { $0[1] }, classes: labels,
                                          classNames: manifest.classNames,
                                          options: PlotOptions(title: "\(r.size) training images (KL \(String(format: "%.2f", e.klDivergence)))",
                                                               xLabel: "t-SNE 1", yLabel: "t-SNE 2", width: 420, height: 340)))
        }
        let sizes = chosen.map { String($0.size) }.joined(separator: ", ")
        page.section("What the networks look at (fold \(fold))")
        let panel = Heatmap.panel([row])
        let png = try ImageCodec.encodePNG(RGBImage(width: panel.width, height: panel.height, pixels: panel.pixels))
        page.png(Data(png), alt: "saliency maps",
                 caption: "Input (\(manifest.classNames[labels[shown]])) and saliency |d score / d input| of the networks trained on \(sizes) images.")
        if !scatters.isEmpty {
            page.section("t-SNE of the last hidden layer (fold \(fold))")
            page.svgRow(scatters, caption: "dense1 activations of \(loaded.count) test images, networks trained on \(sizes) images.")
        }
    }
}
