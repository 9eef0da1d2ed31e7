import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy, ROC-AUC (binary), weighted and macro F1 and the confusion matrix on a labelled data set.")

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String

    @Option(name: .long, help: "Labelled data set.")
    var data: String

    @Flag(name: .long, help: "JSON on stdout instead of text.")
    var json = false

    @Flag(name: .long, help: "Go on when test images are images the model was trained on (recorded in the model file); refused otherwise.")
    var allowOverlap = false

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let backend = try backendOptions.make()
        let (file, net) = try loadModel(model, backend: backend, maxBatch: 32)
        // A test set is not split: one image (of one class) is enough to evaluate on.
        // Byte-identical copies are dropped as in `train` (unless --no-dedupe), so a
        // copied file is not scored twice.
        let (index, set) = try dataOptions.load(
            data, height: file.spec.inputHeight, width: file.spec.inputWidth, dedupe: true, strict: false)
        guard set.count > 0 else { throw RunError("\(data): no images to evaluate on") }
        // Test metrics on training images are no test: the model records a digest of
        // each training image's decoded pixels (models of older versions record none).
        if let trainedFit = file.provenance["training_fit"], trainedFit != dataOptions.fit.rawValue {
            note(
                "warning: \(FileSystemPath.visible(model)) was trained on images fitted with --fit \(trainedFit); with --fit "
                    + "\(dataOptions.fit.rawValue) its training images cannot be recognised among the test images")
        } else if let recorded = file.provenance["training_pixel_digests"], !recorded.isEmpty {
            let overlaps = SetOverlaps.find(
                recordedDigests: Set(recorded.split(separator: ",").map(String.init)), checkedPaths: set.paths,
                checkedPixels: set.pixels, imageBytes: file.spec.inputHeight * file.spec.inputWidth * 3)
            if !overlaps.isEmpty {
                let line =
                    "\(overlaps.count) of \(set.count) test images are images \(FileSystemPath.visible(model)) was trained on: "
                    + SetOverlaps.summary(overlaps)
                if !allowOverlap { throw RunError("--data \(FileSystemPath.visible(data)): \(line); give --allow-overlap to go on") }
                note("warning: --data \(FileSystemPath.visible(data)): \(line)")
            }
        }
        // Map the data's classes onto the model's by name.
        var mapping: [Int] = []
        for name in index.classNames {
            guard let k = file.classNames.firstIndex(of: name) else {
                // The two slips behind this on real data: a blast-vs-other model evaluated on
                // AML's class folders without the --positive it was trained with, and a
                // class folder spelt in another case than the training one.
                var hint = ""
                if let same = file.classNames.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) {
                    hint = " (the model's is spelt '\(same)': class names are compared exactly)"
                } else if file.classNames == DatasetLayout.binaryClasses && dataOptions.positive == nil {
                    hint = " (a blast-vs-other model: give the --positive classes it was trained with, e.g. --positive MYO,MOB)"
                }
                throw RunError(
                    "--data \(FileSystemPath.visible(data)): class '\(FileSystemPath.visible(name))' is not one of the model's classes \(file.classNames.joined(separator: ", "))\(hint)"
                )
            }
            mapping.append(k)
        }
        let labels = set.labels.map { mapping[$0] }
        let probs = try Predictor(network: net, temperature: file.temperature).probabilities(set)
        // The one evaluation summary type, shared with the sweep's cells.
        let summary = ClassificationReport(probabilities: probs, labels: labels, classNames: file.classNames)
        print(json ? summary.json : summary.text, terminator: json ? "\n" : "")
        backendOptions.finish(backend)
    }
}
