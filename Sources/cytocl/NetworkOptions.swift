import ArgumentParser
import CytoCore
import CytoSweep

/// `--input`, `--conv`, `--dense`: the network a sweep or a plan trains, shared by both
/// commands (one parser, one message per mistake).
struct NetworkOptions: ParsableArguments {
    @Option(name: .long, help: "Model input WxH (default: the protocol's: 257x257, 400x400 for aml-binary).")
    var input: String?

    @Option(name: .long, help: "Override the convolution filters, e.g. 4,8,8 (default: the paper's 4,8,8,8,16,16).")
    var conv: String?

    @Option(name: .long, help: "Override the hidden dense units, e.g. 16 (default: 32).")
    var dense: String?

    func validate() throws {
        if let i = input { _ = try parseSize(i) }
        if let c = conv { _ = try Self.positiveList(c, "--conv") }
        if let d = dense { _ = try Self.positiveList(d, "--dense") }
    }

    /// The model input (height, width): --input, or the protocol's.
    func inputSize(_ p: SweepProtocol) throws -> (Int, Int) {
        if let i = input { return try parseSize(i) }
        return (p.inputSize, p.inputSize)
    }

    /// The paper's network at the input size, with --conv and --dense, validated.
    func spec(_ p: SweepProtocol, classes: Int) throws -> ModelSpec {
        let (h, w) = try inputSize(p)
        return try Self.spec(height: h, width: w, classes: classes, conv: conv, dense: dense)
    }

    /// The paper's network at `height` x `width` with the `--conv` and `--dense`
    /// overrides, validated; a network the input cannot carry is refused naming the
    /// options that made it. Shared with `train`, which has the same two options.
    static func spec(height h: Int, width w: Int, classes: Int, conv: String?, dense: String?) throws -> ModelSpec {
        var spec = ModelSpec.paper(height: h, width: w, classes: classes)
        if let c = conv { spec.convFilters = try positiveList(c, "--conv") }
        if let d = dense { spec.denseUnits = try positiveList(d, "--dense") }
        do { try spec.validate() } catch {
            throw ValidationError("--input \(w)x\(h)\(conv.map { " --conv \($0)" } ?? ""): \(error)")
        }
        return spec
    }

    /// `4,8,8` -> [4, 8, 8]. Empty items are refused, not skipped: `--conv 4,,8` (a
    /// number lost in editing) trained a two-layer network 4,8 and said nothing.
    static func positiveList(_ s: String, _ flag: String) throws -> [Int] {
        let v = s.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("\(flag) \(s): should be positive integers separated by commas, like \(flag == "--dense" ? "16" : "4,8,8")")
        }
        return v.map { $0! }
    }
}

/// `--test-per-fold`, `--val-per-fold`: the images a protocol holds out of each fold.
struct HoldOutOptions: ParsableArguments {
    @Option(
        name: .long, parsing: .unconditional,
        help: "Balanced test images per fold (default: the protocol's; all-idb/multiclass/custom partition the data).")
    var testPerFold: Int?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Validation images per fold, drawn from the next fold's test block (default: the protocol's).")
    var valPerFold: Int?

    func apply(to p: inout SweepProtocol) {
        if let t = testPerFold { p.testPerFold = t }
        if let v = valPerFold { p.valPerFold = v }
    }
}
