import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Class probabilities for images: CSV `path,predicted,prob_<class>...` or JSON on stdout.")

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String

    @Option(name: .long, help: "Output format.")
    var format: OutputFormat = .csv

    @Option(name: .long, help: "Size policy for images of another size.")
    var fit: FitPolicy = .pad

    @Argument(help: "Image files (PNG, TIFF, JPEG).")
    var images: [String]

    @Flag(
        name: .customLong("skip-bad-images"),
        help: "Leave unreadable image files out of the output (each named on stderr) instead of stopping.")
    var skipBadImages = false

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        guard !images.isEmpty else { throw ValidationError("no images given") }
        let policy = fit
        let backend = try backendOptions.make()
        let (file, net) = try loadModel(model, backend: backend, maxBatch: 32)
        let items = images.map { DatasetItem(path: $0, label: 0, className: "") }
        try requireImageMemory(count: items.count, height: file.spec.inputHeight, width: file.spec.inputWidth, what: "predict")
        let loaded = try offeringSkipBadImages {
            try ImageLoader.load(
                items, height: file.spec.inputHeight, width: file.spec.inputWidth, fit: policy, skipBad: skipBadImages)
        }
        noteWarnings(loaded.report)
        // The rows of the output are the images read: every one left out is named, so a
        // file missing from the CSV is never a silent loss.
        for bad in loaded.report.bad { note("left out (--skip-bad-images): \(bad.description)") }
        if loaded.count == 0 { throw RunError("no image given could be read (\(loaded.report.skipped) left out)") }
        let changed = loaded.report.resized + loaded.report.padded + loaded.report.cropped
        if changed > 0 {
            note(
                "\(changed) of \(loaded.count) images differ from the model input \(file.spec.inputWidth)x\(file.spec.inputHeight) and were fitted (\(policy.rawValue))"
            )
        }
        let set = LabeledImages(
            geometry: ImageGeometry(height: file.spec.inputHeight, width: file.spec.inputWidth),
            pixels: loaded.pixels, labels: loaded.labels, paths: loaded.items.map(\.path))
        let probs = try Predictor(network: net, temperature: file.temperature).probabilities(set)
        print(
            renderPredictions(paths: set.paths, probabilities: probs, classNames: file.classNames, format: format),
            terminator: "")
        backendOptions.finish(backend)
    }
}

/// CSV with exactly the header `path,predicted,prob_<c1>,...`, or a JSON array.
func renderPredictions(paths: [String], probabilities: [[Float]], classNames: [String], format: OutputFormat) -> String {
    if format == .json {
        let rows = zip(paths, probabilities).map { path, p -> String in
            let predicted = classNames[Metrics.argmax(p)]
            let probs = zip(classNames, p).map { "\(jsonString($0)):\(String(format: "%.9g", $1))" }.joined(separator: ",")
            return "{\"path\":\(jsonString(FileSystemPath.display(path))),\"predicted\":\(jsonString(predicted)),\"probabilities\":{\(probs)}}"
        }
        return "[\n" + rows.map { "  " + $0 }.joined(separator: ",\n") + "\n]\n"
    }
    var out = "path,predicted," + classNames.map { csvField("prob_" + $0) }.joined(separator: ",") + "\n"
    for (path, p) in zip(paths, probabilities) {
        out += csvField(path) + "," + csvField(classNames[Metrics.argmax(p)]) + ","
        out += p.map { String(format: "%.9g", $0) }.joined(separator: ",") + "\n"
    }
    return out
}

/// One CSV field, quoted per RFC 4180 by the project's one CSV writer (bytes of file
/// names that are not UTF-8 shown as `\xFF`, so the output stays UTF-8).
func csvField(_ s: String) -> String { CSVWriter.field(FileSystemPath.display(s)) }
