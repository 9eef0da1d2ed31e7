import ArgumentParser
import CytoCore
import CytoExplain
import CytoReferenceData
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
            if file.temperature != 1 { print(" Softmax temperature: \(file.temperature) (train --calibrate)") }
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
        abstract:
            "Check a backend against Keras reference vectors: activations, loss, gradients, saliency, and parameters after 3 RMSprop and 3 Adam steps (Keras 3 and Keras 2.0.8 forms).",
        discussion: """
            Without --reference, checks the reference vectors built into cytocl (made by \
            scripts/make-reference with Keras 3: 257x257 with 2 and 6 classes, 400x400 with \
            2 classes). Prints the largest difference per tensor group and exits non-zero \
            when any tensor is outside its tolerance (README, Correctness).
            """)

    @Option(name: .long, help: "A reference .safetensors file or a folder of them (default: the reference vectors built into cytocl).")
    var reference: String?

    @Option(
        name: .long, parsing: .unconditional,
        help:
            "Allowed difference of parameters after 3 Keras 3 optimizer steps (rmsprop3, adam3); default 1e-5 for the built-in vectors, 1e-4 for --reference files (real crops tie in max-pools more often). Keras 2.0.8-form steps (rmsprop3k2, adam3k2) always use 2e-6 + 0.02*|ref - initial| per element."
    )
    var stepTolerance: Float?

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        if let stepTolerance, !(stepTolerance > 0 && stepTolerance.isFinite) {
            throw ValidationError("--step-tolerance must be a positive number")
        }
    }

    /// The reference files to check, named for the output.
    func references() throws -> [KerasReference] {
        guard let reference else { return try ReferenceFixtures.all() }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: reference, isDirectory: &isDir) else {
            throw RunError("--reference \(reference): no such file or folder")
        }
        var files = [URL(fileURLWithPath: reference)]
        if isDir.boolValue {
            files = try FileManager.default.contentsOfDirectory(atPath: reference).filter { $0.hasSuffix(".safetensors") }
                .sorted().map { URL(fileURLWithPath: reference).appendingPathComponent($0) }
            guard !files.isEmpty else { throw RunError("--reference \(reference): no .safetensors files in the folder") }
        }
        return try files.map { try KerasReference(url: $0) }
    }

    func run() throws {
        let refs = try references()
        let backend = try backendOptions.make()
        var failures = 0
        for ref in refs {
            var results = try ref.compare(on: backend, stepTolerance: stepTolerance ?? (reference == nil ? 1e-5 : 1e-4))
            let net = try ref.network(on: backend)
            let labels = ref.labels
            let saliency = try Saliency.compute(network: net, batch: ref.batch) { i, _ in labels[i] }
            let salCheck = try ref.compareSaliency(saliency.maps.flatMap { $0 }, network: net)
            if let c = salCheck?.comparison { results.append(c) }
            try backend.checkErrors()  // a device failure stops here, before any figure is printed
            let bad = results.filter { !$0.passed }
            failures += bad.count
            let name = ref.path.hasPrefix("embedded:") ? String(ref.path.dropFirst("embedded:".count)) : ref.path
            print("\(name): \(results.count - bad.count)/\(results.count) tensors within tolerance")
            for (group, members) in Verify.groups(results) {
                let worst = members.max { $0.maxError < $1.maxError }!
                let ratio = members.map { $0.allowed > 0 ? $0.maxError / $0.allowed : .infinity }.max()!
                print(
                    "  \(group.padding(toLength: 11, withPad: " ", startingAt: 0)) \(members.count) tensors, max |ours - ref| "
                        + String(format: "%.2e (%.2f of its allowance, in %@)", worst.maxError, ratio, worst.tensor))
            }
            if let s = salCheck { print("  " + Verify.nearTieLine(s)) }
            for r in bad { print("  \(r)") }
        }
        backendOptions.finish(backend)
        if failures > 0 {
            fflush(nil)  // the report lines before the one-line failure on stderr
            FileHandle.standardError.write(Data("verify: \(failures) tensor(s) outside tolerance on \(backend.deviceDescription)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// What the saliency's near-tie allowance covered (README, Correctness): the
    /// windows found per block, the pixels given an allowance, and how many needed it.
    static func nearTieLine(_ s: KerasReference.SaliencyCheck) -> String {
        let a = s.allowance
        let total = a.windows.reduce(0, +)
        guard total > 0 else {
            return "near-ties   no max-pool window within rounding of a tie; saliency held to 1e-5 + 1e-4 |ref| everywhere"
        }
        let blocks = a.windows.enumerated().filter { $0.element > 0 }.map { "\($0.element) in block \($0.offset + 1)" }
        return "near-ties   \(total) max-pool window(s) whose largest inputs lie within twice the block's activation difference "
            + "(\(blocks.joined(separator: ", "))): another implementation's rounding may route their gradient to another input, "
            + "so the \(a.pixels) saliency pixels under them get that gradient's bound as extra allowance (largest "
            + String(format: "%.2e", a.extra.max() ?? 0)
            + "); \(s.usingNearTieAllowance) element(s) needed it; largest saliency difference "
            + String(format: "%.2e (allowed %.2e there)", s.largest.difference, s.largest.allowed)
    }

    /// Results grouped as activations (`out.*`), `saliency`, `grad`, and each optimizer run.
    static func groups(_ results: [KerasReference.Comparison]) -> [(String, [KerasReference.Comparison])] {
        var order: [String] = [], byGroup: [String: [KerasReference.Comparison]] = [:]
        for r in results {
            let head = String(r.tensor.prefix { $0 != "." && $0 != " " })
            let group = head == "out" ? "activations" : head
            if byGroup[group] == nil { order.append(group) }
            byGroup[group, default: []].append(r)
        }
        return order.map { ($0, byGroup[$0]!) }
    }
}
