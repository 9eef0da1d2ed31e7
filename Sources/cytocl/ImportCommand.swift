import ArgumentParser
import CytoCore
import CytoInterop
import Foundation

/// `cytocl import`: a model trained elsewhere as a CytoCL model file.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a Keras .h5 model of this network family into a CytoCL model file.",
        discussion: """
            Reads Keras 2 files (model.save, ModelCheckpoint, save_weights) and Keras 3 legacy .h5
            files of networks made of 3x3 valid conv + ReLU + 2x2 max-pool blocks, a flatten and
            dense layers ending in a softmax or one sigmoid unit. Kernels are converted to CytoCL's
            layouts; a sigmoid unit becomes a two-class softmax [1 - p, p]. The Keras model is taken
            to have been fed pixels scaled by 1/255, as in the paper's scripts.
            """)

    @Option(name: .long, help: "Source format.")
    var from: ImportSource = .keras

    @Argument(help: "The Keras .h5 / .hdf5 file.")
    var file: String

    @Option(name: .long, help: "Output model file (.safetensors).")
    var out: String

    @OptionGroup var outputs: OverwriteOption

    @Option(name: .long, help: "Class names in output order, e.g. other,blast (default class0,class1,...).")
    var classes: String?

    @Option(name: .long, help: "Input size WxH, when the file does not record it (weights-only files).")
    var input: String?

    func run() throws {
        try outputs.check([URL(fileURLWithPath: out)])
        try AtomicFile.preflight([URL(fileURLWithPath: out)])  // before the HDF5 file is read
        var options = KerasImport.Options()
        if let c = classes {
            let names = try parseNameList(c, option: "--classes")
            guard Set(names).count == names.count else {
                throw ValidationError("--classes must be distinct, non-empty names separated by commas (got '\(c)')")
            }
            options.classNames = names
        }
        if let i = input {
            let (h, w) = try parseSize(i)
            options.inputSize = (h, w)
        }
        let result = try KerasImport.read(path: file, options: options)
        for line in result.notes { note(line) }
        try result.model.write(to: URL(fileURLWithPath: out))
        let spec = result.model.spec
        note(
            "wrote \(out): input \(spec.inputWidth)x\(spec.inputHeight)x\(spec.inputChannels), conv filters \(spec.convFilters.map(String.init).joined(separator: ",")), dense \((spec.denseUnits + [spec.classes]).map(String.init).joined(separator: ",")), classes \(result.model.classNames.joined(separator: ","))"
        )
    }
}

/// `--from` of `import`.
enum ImportSource: String, CaseIterable, ExpressibleByArgument {
    case keras
}
