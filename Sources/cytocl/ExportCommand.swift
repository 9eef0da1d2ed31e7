import ArgumentParser
import CytoCore
import CytoInterop
import Foundation

/// `cytocl export`: a CytoCL model file in a format other runtimes load.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model as ONNX (opset 13): the whole network with the 1/255 scaling and the softmax.",
        discussion: """
            Input 'image': float32 [batch, 3, H, W], RGB pixel values 0..255 (NCHW, batch size open).
            Output 'probabilities': [batch, classes]. The class names are in the ONNX metadata
            (cytocl.classes, a JSON array), with cytocl.input and the model's provenance.
            """)

    @Option(name: .long, help: "Model file (.safetensors).")
    var model: String

    @Option(name: .long, help: "Output format.")
    var format: ExportFormat = .onnx

    @Option(name: .long, help: "Output file (e.g. model.onnx).")
    var out: String

    @OptionGroup var outputs: OverwriteOption

    func run() throws {
        let outURL = URL(fileURLWithPath: out)
        // `--out model.safetensors --overwrite` (meant: model.onnx) replaced the model with
        // its ONNX export: the trained weights were gone. The same file (any path, a link) is refused.
        if let a = OSPath.identity(model), a == OSPath.identity(out) {
            throw ValidationError("--out \(out) is the --model file; the export would replace the model it reads")
        }
        try outputs.check([outURL])
        try AtomicFile.preflight([outURL])  // "is a directory", not a failed rename after the work
        let file = try ModelFile.read(from: URL(fileURLWithPath: model))
        try ONNXExport.write(file, to: outURL, producerVersion: Cytocl.configuration.version)
        note(
            "wrote \(out): ONNX opset \(ONNXExport.opsetVersion), input '\(ONNXExport.inputName)' [batch, \(file.spec.inputChannels), \(file.spec.inputHeight), \(file.spec.inputWidth)] RGB 0..255, output '\(ONNXExport.outputName)' [batch, \(file.spec.classes)] (\(file.classNames.joined(separator: ", ")))"
        )
    }
}

/// `--format` of `export`.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    case onnx
}
