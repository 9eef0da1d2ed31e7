import ArgumentParser
import CytoCore
import CytoData
import CytoTrain
import Foundation

/// Accuracy, ROC-AUC (binary), F1 and the confusion matrix of a model on labelled data.
struct EvaluationSummary: Codable {
    var images: Int
    var classes: [String]
    var accuracy: Double
    var rocAUC: Double?
    var sensitivity: Double?
    var specificity: Double?
    var f1Weighted: Double
    var f1Macro: Double
    var confusion: [[Int]]

    init(probabilities: [[Float]], labels: [Int], classes: [String]) {
        images = labels.count; self.classes = classes
        confusion = Metrics.confusionMatrix(probabilities: probabilities, labels: labels, classCount: classes.count)
        accuracy = Metrics.accuracy(confusion: confusion)
        f1Weighted = Metrics.f1Weighted(confusion: confusion)
        f1Macro = Metrics.f1Macro(confusion: confusion)
        if classes.count == 2 {
            let scores = probabilities.map { Double($0[1]) }
            rocAUC = Metrics.rocAUC(scores: scores, labels: labels)
            let r = Metrics.binaryRates(scores: scores, labels: labels)
            sensitivity = r.sensitivity; specificity = r.specificity
        }
    }

    var text: String {
        var s = "images: \(images)\n"
        s += String(format: "accuracy: %.4f\n", accuracy)
        if let a = rocAUC { s += String(format: "roc_auc: %.4f\n", a) }
        if let v = sensitivity, let p = specificity { s += String(format: "sensitivity: %.4f\nspecificity: %.4f\n", v, p) }
        s += String(format: "f1_weighted: %.4f\nf1_macro: %.4f\n", f1Weighted, f1Macro)
        let w = max(8, classes.map(\.count).max() ?? 0)
        func pad(_ t: String) -> String { String(repeating: " ", count: max(0, w - t.count)) + t }
        s += "confusion (rows: true, columns: predicted):\n" + pad("") + " " + classes.map(pad).joined(separator: " ") + "\n"
        for (c, row) in zip(classes, confusion) { s += pad(c) + " " + row.map { pad(String($0)) }.joined(separator: " ") + "\n" }
        return s
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy, ROC-AUC (binary), weighted and macro F1 and the confusion matrix on a labelled data set.")

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String

    @Option(name: .long, help: "Labelled data set.")
    var data: String

    @Flag(name: .long, help: "JSON on stdout instead of text.")
    var json = false

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let backend = try backendOptions.make()
        let (file, net) = try loadModel(model, backend: backend, maxBatch: 32)
        let (index, set) = try dataOptions.load(data, height: file.spec.inputHeight, width: file.spec.inputWidth, dedupe: false)
        // Map the data's classes onto the model's by name.
        var mapping: [Int] = []
        for name in index.classNames {
            guard let k = file.classNames.firstIndex(of: name) else {
                throw ValidationError("class '\(name)' of \(data) is not one of the model's classes \(file.classNames)")
            }
            mapping.append(k)
        }
        let labels = set.labels.map { mapping[$0] }
        let probs = try Predictor(network: net).probabilities(set)
        let summary = EvaluationSummary(probabilities: probs, labels: labels, classes: file.classNames)
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(data: try enc.encode(summary), encoding: .utf8)!)
        } else {
            print(summary.text, terminator: "")
        }
        backendOptions.finish(backend)
    }
}
