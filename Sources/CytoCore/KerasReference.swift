import Foundation

/// Checks a backend against the Keras reference vectors (shared/reference/*.safetensors):
/// forward activations, loss, gradients, and the parameters after 3 RMSprop and 3 Adam
/// steps, with the tolerances stated in that folder's README. Used by the tests of
/// every backend and by `cytocl verify`.
public struct KerasReference {
    public struct Comparison: CustomStringConvertible {
        public var tensor: String
        public var maxError: Float
        public var allowed: Float   // the worst-case allowance at the worst element
        public var passed: Bool
        public var description: String {
            "\(passed ? "ok  " : "FAIL") \(tensor): max |ours - ref| = \(maxError) (allowed \(allowed))"
        }
    }

    public let file: SafeTensors
    public let path: String
    public let spec: ModelSpec
    public let batch: Int

    public init(url: URL) throws {
        file = try SafeTensors.read(contentsOf: url)
        path = url.path
        let model = try ModelFile.from(file.filteringParameters(), path: url.path)
        spec = model.spec
        guard let x = file.tensors["input_u8"] else { throw CytoError.modelFile(path: path, reason: "no input_u8 tensor") }
        batch = x.shape[0]
    }

    /// Runs every check on `backend` and returns one comparison per tensor.
    /// - Parameter stepTolerance: the allowance for parameters after 3 optimizer steps.
    ///   The README's 1e-6 holds for images without flat regions (the 400x400 file).
    ///   The PBC crops contain flat, saturated regions where several max-pool inputs
    ///   tie exactly; which tied input receives the gradient then depends on each
    ///   framework's floating-point summation order, so after three steps a few
    ///   parameters can differ by a fraction of one step. Gradients themselves match.
    public func compare(on backend: any Backend, stepTolerance: Float = 1e-6) throws -> [Comparison] {
        var results: [Comparison] = []
        let net = try Network(spec: spec, backend: backend, maxBatch: batch)
        let initial = try ModelFile.from(file.filteringParameters(), path: path).weights
        try load(initial, into: net)
        net.forward(batch: batch)
        net.loss(batch: batch, gradient: true)
        try net.backward(batch: batch, inputGradient: false)
        for (i, _) in spec.convFilters.enumerated() {
            results.append(check("out.conv\(i + 1)", try backend.read(net.pooled[i], offset: 0, count: count("out.conv\(i + 1)")), kind: .activation))
        }
        for j in 0..<spec.denseUnits.count {
            results.append(check("out.dense\(j + 1)", try backend.read(net.denseOut[j], offset: 0, count: count("out.dense\(j + 1)")), kind: .activation))
        }
        results.append(check("out.logits", try backend.read(net.logits, offset: 0, count: count("out.logits")), kind: .activation))
        results.append(check("out.probs", try backend.read(net.probabilities, offset: 0, count: count("out.probs")), kind: .activation))
        let m = try net.takeMetrics()
        results.append(check("out.loss", [Float(m.loss)], kind: .activation))
        let grads = try net.gradients()
        for (name, _) in spec.parameterShapes { results.append(check("grad.\(name)", grads[name]!, kind: .gradient)) }

        for run in KerasReference.optimizerRuns where run.required || file.tensors["\(run.prefix).conv1.weight"] != nil {
            try load(initial, into: net)
            net.resetOptimizer()
            for _ in 0..<3 { try net.trainStep(batch: batch, optimizer: run.optimizer) }
            let w = try net.weights()
            for (name, _) in spec.parameterShapes {
                let kind: Kind = run.relativeToStep ? .step(initial: initial[name]!) : .parameter(stepTolerance)
                results.append(check("\(run.prefix).\(name)", w[name]!, kind: kind))
            }
        }
        return results
    }

    /// The optimizer runs a reference file can hold: parameters after 3 steps on the
    /// reference batch, named `<prefix>.<param>`. `rmsprop3`/`adam3` are Keras 3's
    /// optimizers and every reference file has them; `rmsprop3k2`/`adam3k2` follow Keras
    /// 2.0.8's formulas (epsilon 1e-8 outside the root) and are checked when present, with
    /// an allowance relative to how far the parameter moved (see `Kind.step`).
    static let optimizerRuns: [(prefix: String, optimizer: OptimizerConfig, required: Bool, relativeToStep: Bool)] = [
        ("rmsprop3", OptimizerConfig(kind: .rmsprop, learningRate: 1e-3, form: .keras3), true, false),
        ("adam3", OptimizerConfig(kind: .adam, learningRate: 1e-4, form: .keras3), true, false),
        ("rmsprop3k2", OptimizerConfig(kind: .rmsprop, learningRate: 1e-3, form: .keras2), false, true),
        ("adam3k2", OptimizerConfig(kind: .adam, learningRate: 1e-4, form: .keras2), false, true),
    ]

    /// Uploads the reference batch and the given weights.
    func load(_ weights: [String: [Float]], into net: Network) throws {
        try net.setWeights(weights)
        let images = file.tensors["input_u8"]!
        let h = images.shape[1], w = images.shape[2], c = images.shape[3]
        let buffer = try net.backend.makeBuffer(.uint8, count: images.elementCount, label: "reference images")
        images.data.withUnsafeBytes { net.backend.write(bytes: $0, to: buffer, byteOffset: 0) }
        net.backend.gatherBatch(images: buffer, geometry: ImageGeometry(height: h, width: w, channels: c),
                                indices: (0..<Int32(batch)).map { $0 }, transforms: nil, output: net.input)
        net.backend.write(file.tensors["labels"]!.floats(), to: net.labels, offset: 0)
        net.backend.fill(net.metrics, value: 0, count: 4)
    }

    /// The reference saliency for image `i` ([H, W]).
    public func saliency() -> [Float]? { file.tensors["saliency"]?.floats() }

    /// Tolerance rules. `step`: per element `2e-6 + 0.02*|ref - initial|`, i.e. 2% of the
    /// distance the reference moved the parameter in its 3 steps, plus float rounding.
    /// With epsilon outside the root a parameter whose gradient is nearly zero still
    /// moves by almost `lr` per step, so tiny gradient differences (e.g. max-pool ties
    /// broken differently) change the step's sign or size; a fixed allowance would be
    /// either too loose for the large steps or too tight for those.
    enum Kind { case activation, gradient, parameter(Float), step(initial: [Float]) }

    func count(_ name: String) -> Int { file.tensors[name]?.elementCount ?? 0 }

    /// Applies the README's tolerance for each kind of tensor.
    func check(_ name: String, _ ours: [Float], kind: Kind) -> Comparison {
        guard let ref = file.tensors[name]?.floats() else {
            return Comparison(tensor: name, maxError: .infinity, allowed: 0, passed: false)
        }
        guard ref.count == ours.count else {
            return Comparison(tensor: "\(name) (size \(ours.count) vs \(ref.count))", maxError: .infinity, allowed: 0, passed: false)
        }
        let refMax = ref.map { abs($0) }.max() ?? 0
        var worst: Float = 0, worstAllowed: Float = 0, passed = true, worstExcess: Float = -.infinity
        for (i, (a, b)) in zip(ours, ref).enumerated() {
            let allowed: Float
            switch kind {
            case .activation: allowed = 1e-5 + 1e-4 * abs(b)
            case .gradient: allowed = 1e-6 + 1e-3 * refMax
            case .parameter(let t): allowed = t
            case .step(let initial): allowed = 2e-6 + 0.02 * abs(b - initial[i])
            }
            let err = abs(a - b)
            if !(err <= allowed) { passed = false }
            if err.isNaN { worst = .nan; worstAllowed = allowed; continue }
            if err - allowed > worstExcess { worstExcess = err - allowed; worst = err; worstAllowed = allowed }
        }
        return Comparison(tensor: name, maxError: worst, allowed: worstAllowed, passed: passed)
    }
}

extension SafeTensors {
    /// Only the model-file tensors (convN.*, denseN.*) and metadata.
    func filteringParameters() -> SafeTensors {
        var out = SafeTensors(metadata: metadata)
        for (k, v) in tensors where (k.hasPrefix("conv") || k.hasPrefix("dense")) && !k.contains("/") {
            out.tensors[k] = v
        }
        return out
    }
}
