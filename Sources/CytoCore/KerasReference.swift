import Foundation

/// Checks a backend against Keras reference vectors (the project's own are
/// Tests/Fixtures/reference/*.safetensors, written by scripts/make-reference and
/// embedded by `CytoReferenceData`): forward activations, loss, gradients, and the
/// parameters after 3 RMSprop and 3 Adam steps (Keras 3's, and Keras 2.0.8's when the
/// file has them), with the tolerances the README's Correctness section states. Used
/// by the tests of every backend and by `cytocl verify`.
public struct KerasReference {
    public struct Comparison: CustomStringConvertible {
        public var tensor: String
        public var maxError: Float
        public var allowed: Float  // the worst-case allowance at the worst element
        public var passed: Bool
        /// Elements outside their allowance, of `elements`.
        public var failures = 0
        public var elements = 0
        public var description: String {
            "\(passed ? "ok  " : "FAIL") \(tensor): max |ours - ref| = \(maxError) (allowed \(allowed))"
                + (failures > 0 ? ", \(failures) of \(elements) elements over" : "")
        }
    }

    public let file: SafeTensors
    public let path: String
    public let spec: ModelSpec
    public let batch: Int

    public init(url: URL) throws {
        try self.init(file: SafeTensors.read(contentsOf: url), path: url.path)
    }

    /// A reference file already in memory (e.g. embedded in the binary); `path` names it in errors.
    public init(data: Data, path: String) throws {
        try self.init(file: SafeTensors.parse(data, path: path), path: path)
    }

    init(file: SafeTensors, path: String) throws {
        self.file = file
        self.path = path
        let model = try ModelFile.from(file.filteringParameters(), path: path)
        spec = model.spec
        guard let x = file.tensors["input_u8"] else { throw CytoError.modelFile(path: path, reason: "no input_u8 tensor") }
        batch = x.shape[0]
    }

    /// Runs every check on `backend` and returns one comparison per tensor.
    /// - Parameter stepTolerance: the allowance for parameters after 3 Keras 3 optimizer
    ///   steps (`rmsprop3`, `adam3`). 1e-5, a hundredth of one RMSprop step, for the
    ///   project's fixtures: after the first step the parameters differ from Keras' by
    ///   ~1e-7, and a max-pool window whose two largest inputs are tied (or within
    ///   rounding of each other) can then send its gradient to the other input in
    ///   steps 2 and 3 on some compilers (measured: 1.8e-7 on the CPU and PoCL, 4.3e-6
    ///   on Mesa rusticl). Real crops with many ties (e.g. PBC) can need 1e-4.
    public func compare(on backend: any Backend, stepTolerance: Float = 1e-5) throws -> [Comparison] {
        var results: [Comparison] = []
        let net = try Network(spec: spec, backend: backend, maxBatch: batch)
        let initial = try ModelFile.from(file.filteringParameters(), path: path).weights
        try load(initial, into: net)
        net.forward(batch: batch)
        net.loss(batch: batch, gradient: true)
        try net.backward(batch: batch, inputGradient: false)
        for (i, _) in spec.convFilters.enumerated() {
            results.append(
                check("out.conv\(i + 1)", try backend.read(net.pooled[i], offset: 0, count: count("out.conv\(i + 1)")), kind: .activation))
        }
        for j in 0..<spec.denseUnits.count {
            results.append(
                check(
                    "out.dense\(j + 1)", try backend.read(net.denseOut[j], offset: 0, count: count("out.dense\(j + 1)")), kind: .activation)
            )
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
                let kind: Kind =
                    run.relativeToStep
                    ? .step(
                        initial: initial[name]!, gradient: file.tensors["grad.\(name)"]?.floats() ?? [],
                        learningRate: run.optimizer.learningRate)
                    : .parameter(stepTolerance)
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
        net.backend.gatherBatch(
            images: buffer, geometry: ImageGeometry(height: h, width: w, channels: c),
            indices: (0..<Int32(batch)).map { $0 }, transforms: nil, output: net.input)
        net.backend.write(file.tensors["labels"]!.floats(), to: net.labels, offset: 0)
        net.backend.fill(net.metrics, value: 0, count: 4)
    }

    /// The network on `backend` with the file's initial weights and its batch uploaded
    /// (as the trainer uploads images), ready for a forward pass.
    public func network(on backend: any Backend) throws -> Network {
        let net = try Network(spec: spec, backend: backend, maxBatch: batch)
        try load(ModelFile.from(file.filteringParameters(), path: path).weights, into: net)
        return net
    }

    /// The class index of each image of the batch.
    public var labels: [Int] { file.tensors["labels"].map { $0.floats().map { Int($0) } } ?? [] }

    /// Compares saliency maps (the batch's [N, H, W], max over channels of
    /// |d logit[label] / d x|) with the file's `saliency` under the activation tolerance;
    /// nil when the file has none.
    public func compareSaliency(_ maps: [Float]) -> Comparison? {
        file.tensors["saliency"] == nil ? nil : check("saliency", maps, kind: .activation)
    }

    /// The saliency check with the allowance near-tied max-pool windows give (see
    /// `NearTieAllowance`): `net` must hold this file's weights and batch and have just
    /// computed `maps` (a forward pass that kept its activations). Each block's measured
    /// activation difference is read from `net`'s pooled outputs against the file's
    /// `out.convK`. Nil when the file has no saliency.
    public func compareSaliency(_ maps: [Float], network net: Network) throws -> SaliencyCheck? {
        guard file.tensors["saliency"] != nil else { return nil }
        var differences: [Float] = []
        for k in spec.convFilters.indices {
            let name = "out.conv\(k + 1)"
            guard let ref = file.tensors[name]?.floats() else {
                throw CytoError.modelFile(path: path, reason: "no \(name) tensor, needed to judge the saliency's max-pool near-ties")
            }
            let ours = try net.backend.read(net.pooled[k], offset: 0, count: ref.count)
            differences.append(zip(ours, ref).reduce(0) { max($0, abs($1.0 - $1.1)) })
        }
        let allowance = try net.nearTieAllowance(batch: batch, classes: labels, differences: differences)
        let plain = check("saliency", maps, kind: .activation)
        let comparison = check("saliency", maps, kind: .activation, extra: allowance.extra)
        var largest: (difference: Float, allowed: Float) = (0, 0)
        for (i, (a, b)) in zip(maps, file.tensors["saliency"]!.floats()).enumerated() where abs(a - b) > largest.difference {
            largest = (abs(a - b), 1e-5 + 1e-4 * abs(b) + allowance.extra[i])
        }
        return SaliencyCheck(comparison: comparison, allowance: allowance, usingNearTieAllowance: plain.failures, largest: largest)
    }

    /// A saliency comparison and the near-tie allowance it used.
    public struct SaliencyCheck {
        public var comparison: Comparison
        public var allowance: NearTieAllowance
        /// Elements outside the plain activation tolerance (within it plus the near-tie
        /// allowance unless `comparison` failed).
        public var usingNearTieAllowance: Int
        /// The largest |ours - ref| of the map and the allowance at that element.
        public var largest: (difference: Float, allowed: Float)
    }

    /// The reference saliency for image `i` ([H, W]).
    public func saliency() -> [Float]? { file.tensors["saliency"]?.floats() }

    /// Tolerance rules (README, Correctness). `step` (Keras 2.0.8-form runs): per element
    /// `2e-6 + 0.02*|ref - initial|`, 2% of the distance the reference moved the parameter
    /// in its 3 steps plus float rounding, because with epsilon outside the root even a
    /// small gradient moves a parameter by about `lr` per step. Where the reference
    /// gradient is at rounding-noise level (|grad| < 1e-7, ten times epsilon) the step
    /// `lr*g/(sqrt(a) + 1e-8)` depends on the last bits of g, which differ between any
    /// two summation orders; those elements get a further tenth of `lr`.
    enum Kind { case activation, gradient, parameter(Float), step(initial: [Float], gradient: [Float], learningRate: Float) }

    func count(_ name: String) -> Int { file.tensors[name]?.elementCount ?? 0 }

    /// Applies the README's tolerance for each kind of tensor.
    func check(_ name: String, _ ours: [Float], kind: Kind, extra: [Float]? = nil) -> Comparison {
        guard let ref = file.tensors[name]?.floats() else {
            return Comparison(tensor: name, maxError: .infinity, allowed: 0, passed: false)
        }
        guard ref.count == ours.count else {
            return Comparison(tensor: "\(name) (size \(ours.count) vs \(ref.count))", maxError: .infinity, allowed: 0, passed: false)
        }
        let refMax = ref.map { abs($0) }.max() ?? 0
        var worst: Float = 0, worstAllowed: Float = 0, passed = true, worstExcess: Float = -.infinity, failures = 0
        for (i, (a, b)) in zip(ours, ref).enumerated() {
            let allowed: Float
            switch kind {
            case .activation: allowed = 1e-5 + 1e-4 * abs(b) + (extra.map { $0[i] } ?? 0)
            case .gradient: allowed = 1e-6 + 1e-3 * refMax
            case .parameter(let t): allowed = t
            case .step(let initial, let gradient, let lr):
                let noiseLevel = i < gradient.count && abs(gradient[i]) < 1e-7
                allowed = 2e-6 + 0.02 * abs(b - initial[i]) + (noiseLevel ? 0.1 * lr : 0)
            }
            let err = abs(a - b)
            if !(err <= allowed) { passed = false; failures += 1 }
            if err.isNaN { worst = .nan; worstAllowed = allowed; continue }
            if err - allowed > worstExcess { worstExcess = err - allowed; worst = err; worstAllowed = allowed }
        }
        return Comparison(
            tensor: name, maxError: worst, allowed: worstAllowed, passed: passed, failures: failures,
            elements: ref.count)
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
