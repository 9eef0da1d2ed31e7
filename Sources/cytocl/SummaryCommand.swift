import ArgumentParser
import CytoCore
import Foundation

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the network's layers, output shapes and parameter counts (like Keras model.summary()).")

    @Option(name: .long, help: "Input size WxH.")
    var input: String = "257x257"

    @Option(name: .long, parsing: .unconditional, help: "Number of classes.")
    var classes: Int = 2

    @Option(name: .long, help: "Summarise this model file instead.")
    var model: String?

    func run() throws {
        if let m = model {
            let file = try ModelFile.read(from: URL(fileURLWithPath: m))
            print(file.spec.summary(), terminator: "")
            print(" Classes: \(file.classNames.joined(separator: ", "))")
            return
        }
        let (h, w) = try parseSize(input)
        guard classes >= 2 else { throw ValidationError("--classes must be at least 2") }
        let spec = ModelSpec.paper(height: h, width: w, classes: classes)
        try spec.validate()
        print(spec.summary(), terminator: "")
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a backend against the Keras reference vectors (forward, loss, gradients, optimizer steps).")

    @Option(name: .long, help: "A reference .safetensors file or a folder of them (default ../shared/reference).")
    var reference: String = "../shared/reference"

    @Option(name: .long, parsing: .unconditional, help: "Allowed difference of parameters after 3 optimizer steps.")
    var stepTolerance: Float = 1e-4

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let backend = try backendOptions.make()
        var files: [URL] = []
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: reference, isDirectory: &isDir) else {
            throw RunError("\(reference): no such file or folder")
        }
        if isDir.boolValue {
            files = try FileManager.default.contentsOfDirectory(atPath: reference).filter { $0.hasSuffix(".safetensors") }
                .sorted().map { URL(fileURLWithPath: reference).appendingPathComponent($0) }
        } else { files = [URL(fileURLWithPath: reference)] }
        var failures = 0
        for f in files {
            let results = try KerasReference(url: f).compare(on: backend, stepTolerance: stepTolerance)
            let bad = results.filter { !$0.passed }
            failures += bad.count
            print("\(f.lastPathComponent): \(results.count - bad.count)/\(results.count) tensors within tolerance")
            for r in bad { print("  \(r)") }
        }
        backendOptions.finish(backend)
        if failures > 0 { throw ExitCode(1) }
    }
}
