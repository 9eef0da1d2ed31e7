/// One trainable tensor of the network and its optimizer slots, all on the device:
/// segments of the network's flat parameter, gradient and state buffers.
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let value: any DeviceBuffer
    public let gradient: any DeviceBuffer
    let state1: any DeviceBuffer
    let state2: any DeviceBuffer
    public var count: Int { shape.reduce(1, *) }

    init(
        name: String, shape: [Int], value: any DeviceBuffer, gradient: any DeviceBuffer,
        state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        self.name = name; self.shape = shape
        self.value = value; self.gradient = gradient; self.state1 = state1; self.state2 = state2
    }
}

/// Every parameter, gradient and optimizer slot of a network in four segmented
/// buffers with one layout, so one optimizer launch updates all parameters.
struct FlatParameters {
    let values: any DeviceBuffer
    let gradients: any DeviceBuffer
    let state1: any DeviceBuffer
    let state2: any DeviceBuffer
    let parameters: [Parameter]

    init(shapes: [(name: String, shape: [Int])], backend: any Backend) throws {
        let counts = shapes.map { $0.shape.reduce(1, *) }
        func make(_ prefix: String, _ label: String) throws -> (any DeviceBuffer, [any DeviceBuffer]) {
            let r = try backend.makeSegmentedBuffer(.float32, counts: counts, labels: shapes.map { prefix + $0.name }, label: label)
            backend.fill(r.whole, value: 0, count: r.whole.count)
            return (r.whole, r.segments)
        }
        let v = try make("", "parameters"), g = try make("grad.", "gradients")
        let s1 = try make("opt1.", "optimizer state 1"), s2 = try make("opt2.", "optimizer state 2")
        values = v.0; gradients = g.0; state1 = s1.0; state2 = s2.0
        parameters = shapes.indices.map { i in
            Parameter(
                name: shapes[i].name, shape: shapes[i].shape, value: v.1[i], gradient: g.1[i],
                state1: s1.1[i], state2: s2.1[i])
        }
    }
}

/// The sequential network on a backend: parameters, gradients, optimizer state and
/// every activation buffer, allocated once for `maxBatch` images and reused by every
/// step. The methods only enqueue backend ops; nothing is read back unless asked.
public final class Network {
    public let spec: ModelSpec
    public let backend: any Backend
    public let maxBatch: Int
    public let parameters: [Parameter]
    let flat: FlatParameters
    /// Optimizer steps taken so far (Adam's t).
    public private(set) var step = 0

    /// The batch fed to `forward`: [maxBatch, C, H, W], scaled pixels.
    public let input: any DeviceBuffer
    /// Integer class labels stored as floats: [maxBatch].
    public let labels: any DeviceBuffer
    /// Softmax output: [maxBatch, classes].
    public let probabilities: any DeviceBuffer
    /// `[loss sum, correct, samples]`, accumulated by every loss evaluation until reset.
    public let metrics: any DeviceBuffer

    let convOut: [any DeviceBuffer]  // post-ReLU conv outputs
    let pooled: [any DeviceBuffer]
    let gradConvOut: [any DeviceBuffer]
    let gradPooled: [any DeviceBuffer]
    let denseOut: [any DeviceBuffer]  // hidden activations (post-ReLU), then logits
    let gradDense: [any DeviceBuffer]
    /// Gradient of the loss (or a class score) with respect to `input`; made on first use.
    public private(set) var inputGradient: (any DeviceBuffer)?

    public init(spec: ModelSpec, backend: any Backend, maxBatch: Int) throws {
        try spec.validate()
        guard maxBatch >= 1 else { throw CytoError.invalidArgument("batch size \(maxBatch) must be at least 1") }
        // Refuse before allocating anything when the buffers cannot fit.
        try spec.networkMemory(maxBatch: maxBatch).check(against: backend.memoryLimit())
        self.spec = spec; self.backend = backend; self.maxBatch = maxBatch
        flat = try FlatParameters(shapes: spec.parameterShapes.map { ($0.name, $0.shape) }, backend: backend)
        parameters = flat.parameters
        let b = maxBatch
        input = try backend.makeBuffer(.float32, count: b * spec.inputChannels * spec.inputHeight * spec.inputWidth, label: "input")
        labels = try backend.makeBuffer(.float32, count: b, label: "labels")
        probabilities = try backend.makeBuffer(.float32, count: b * spec.classes, label: "probabilities")
        metrics = try backend.makeBuffer(.float32, count: 4, label: "metrics")
        var co: [any DeviceBuffer] = [], po: [any DeviceBuffer] = [], gco: [any DeviceBuffer] = [], gpo: [any DeviceBuffer] = []
        for (i, g) in spec.convGeometries(batch: b).enumerated() {
            co.append(try backend.makeBuffer(.float32, count: g.outputCount, label: "conv\(i + 1).out"))
            gco.append(try backend.makeBuffer(.float32, count: g.outputCount, label: "conv\(i + 1).grad"))
            let pc = b * g.outChannels * (g.outHeight / 2) * (g.outWidth / 2)
            po.append(try backend.makeBuffer(.float32, count: pc, label: "pool\(i + 1).out"))
            gpo.append(try backend.makeBuffer(.float32, count: pc, label: "pool\(i + 1).grad"))
        }
        convOut = co; pooled = po; gradConvOut = gco; gradPooled = gpo
        var dout: [any DeviceBuffer] = [], gd: [any DeviceBuffer] = []
        for (i, d) in spec.denseShapes.enumerated() {
            dout.append(try backend.makeBuffer(.float32, count: b * d.outFeatures, label: "dense\(i + 1).out"))
            gd.append(try backend.makeBuffer(.float32, count: b * d.outFeatures, label: "dense\(i + 1).grad"))
        }
        denseOut = dout; gradDense = gd
        backend.fill(metrics, value: 0, count: 4)
    }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    // MARK: Weights

    /// Keras defaults: Glorot-uniform kernels, zero biases, drawn from `seed`.
    public func initialize(seed: UInt64) {
        var rng = SeededGenerator.stream(seed: seed, "init")
        for p in parameters {
            if p.shape.count == 1 {
                backend.fill(p.value, value: 0, count: p.count)
                continue
            }
            let receptive = p.shape.count == 4 ? p.shape[2] * p.shape[3] : 1
            let fanIn = p.shape[1] * receptive, fanOut = p.shape[0] * receptive
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            let values = (0..<p.count).map { _ in (rng.nextUnitFloat() * 2 - 1) * limit }
            backend.write(values, to: p.value, offset: 0)
        }
        resetOptimizer()
    }

    /// Zeroes the optimizer slots and the step counter (e.g. before fine-tuning).
    public func resetOptimizer() {
        step = 0
        backend.fill(flat.state1, value: 0, count: flat.state1.count)
        backend.fill(flat.state2, value: 0, count: flat.state2.count)
    }

    /// Copies every parameter to the host, in model-file order. Throws the backend's
    /// failure rather than returning weights a failed op may have left.
    public func weights() throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for p in parameters { out[p.name] = try backend.read(p.value, offset: 0, count: p.count) }
        return out
    }

    /// Uploads parameters; every parameter of the spec must be present with its exact size.
    public func setWeights(_ weights: [String: [Float]]) throws {
        for p in parameters {
            guard let v = weights[p.name] else { throw CytoError.invalidModel("missing tensor \(p.name)") }
            guard v.count == p.count else {
                throw CytoError.invalidModel("tensor \(p.name) has \(v.count) values, expected \(p.count) for shape \(p.shape)")
            }
            backend.write(v, to: p.value, offset: 0)
        }
    }

    /// Copies the parameters of another network of the same spec on the same backend
    /// (used to keep the best-validation checkpoint on the device).
    public func copyWeights(from other: Network) {
        precondition(other.spec == spec)
        backend.copy(from: other.flat.values, to: flat.values, count: flat.values.count)
    }

    public func gradients() throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for p in parameters { out[p.name] = try backend.read(p.gradient, offset: 0, count: p.count) }
        return out
    }

    // MARK: Steps

    /// The convolution blocks at batch `n`, each with its buffers.
    func convBlocks(batch n: Int) -> [ConvBlock] {
        spec.convGeometries(batch: n).enumerated().map { i, g in
            ConvBlock(
                geometry: g, input: i == 0 ? input : pooled[i - 1],
                weight: parameters[2 * i].value, bias: parameters[2 * i + 1].value,
                activation: convOut[i], pooled: pooled[i],
                gradWeight: parameters[2 * i].gradient, gradBias: parameters[2 * i + 1].gradient,
                gradActivation: gradConvOut[i], gradPooled: gradPooled[i])
        }
    }

    /// Runs the network on the first `batch` images of `input`, writing logits. With
    /// `keepingActivations` (the default) every intermediate activation `backward`
    /// needs is kept; inference passes false, which lets a backend skip writing the
    /// convolutions' full-size ReLU outputs (at 257x257 the first is 1 MB per image).
    public func forward(batch n: Int, keepingActivations keep: Bool = true) {
        forwardHidden(batch: n, keepingActivations: keep)
        forwardDense(batch: n, layer: spec.denseShapes.count - 1)
    }

    /// Every layer but the output layer. `readingActivations: false` (a training step,
    /// which only runs `backward` on them) lets a backend keep what its backward pass
    /// needs instead of the ReLU outputs themselves (`ConvBlock.activationRead`).
    func forwardHidden(batch n: Int, keepingActivations keep: Bool = true, readingActivations read: Bool = true) {
        precondition(n > 0 && n <= maxBatch, "batch \(n) outside 1...\(maxBatch)")
        for var block in convBlocks(batch: n) {
            block.keepActivation = keep
            block.activationRead = read
            backend.convBlockForward(block)
        }
        activationsKept = keep
        for j in 0..<(spec.denseShapes.count - 1) { forwardDense(batch: n, layer: j) }
    }

    /// Whether the last forward pass kept what `backward` reads.
    private var activationsKept = false

    func denseInput(_ j: Int) -> any DeviceBuffer { j == 0 ? pooled[pooled.count - 1] : denseOut[j - 1] }
    func denseInputGradient(_ j: Int) -> any DeviceBuffer { j == 0 ? gradPooled[gradPooled.count - 1] : gradDense[j - 1] }

    func denseGeometry(batch n: Int, layer j: Int) -> DenseGeometry {
        let d = spec.denseShapes[j]
        return DenseGeometry(batch: n, inFeatures: d.inFeatures, outFeatures: d.outFeatures)
    }

    func forwardDense(batch n: Int, layer j: Int) {
        let base = 2 * spec.convFilters.count
        let w = parameters[base + 2 * j], b = parameters[base + 2 * j + 1]
        backend.denseForward(
            denseGeometry(batch: n, layer: j), input: denseInput(j), weight: w.value, bias: b.value,
            output: denseOut[j], relu: j < spec.denseShapes.count - 1)
    }

    /// Logits of the last forward pass: [maxBatch, classes].
    public var logits: any DeviceBuffer { denseOut[denseOut.count - 1] }

    /// Output of the hidden dense layer `index` (0 = dense1) after ReLU.
    public func hiddenActivations(_ index: Int) -> any DeviceBuffer { denseOut[index] }

    /// Softmax of the last forward pass into `probabilities`.
    public func computeProbabilities(batch n: Int) {
        backend.softmax(batch: n, classes: spec.classes, logits: logits, probabilities: probabilities)
    }

    /// Loss (and its gradient when `gradient` is true) against `labels`; accumulates `metrics`.
    public func loss(batch n: Int, gradient: Bool) {
        backend.softmaxCrossEntropy(
            batch: n, classes: spec.classes, logits: logits, labels: labels,
            probabilities: probabilities,
            gradLogits: gradient ? gradDense[gradDense.count - 1] : nil,
            metrics: metrics)
    }

    /// Back-propagates the logit gradient left in the last dense gradient buffer by
    /// `loss(batch:gradient: true)` (or written there directly, e.g. for saliency),
    /// filling every parameter gradient, and the input gradient when `inputGradient` is true.
    public func backward(batch n: Int, inputGradient wantInput: Bool = false) throws {
        try backward(batch: n, fromDenseLayer: spec.denseShapes.count - 1, inputGradient: wantInput)
    }

    /// Back-propagates from the output gradient of dense layer `top` (in `gradDense[top]`).
    func backward(batch n: Int, fromDenseLayer top: Int, inputGradient wantInput: Bool) throws {
        precondition(activationsKept, "backward after a forward pass that did not keep its activations")
        let base = 2 * spec.convFilters.count
        for j in stride(from: top, through: 0, by: -1) {
            let w = parameters[base + 2 * j], b = parameters[base + 2 * j + 1]
            backend.denseBackward(
                denseGeometry(batch: n, layer: j), input: denseInput(j), weight: w.value,
                gradOutput: gradDense[j], gradInput: denseInputGradient(j),
                gradWeight: w.gradient, gradBias: b.gradient, inputIsReLU: j > 0)
        }
        if wantInput && inputGradient == nil {
            inputGradient = try backend.makeBuffer(.float32, count: input.count, label: "input.grad")
        }
        backend.convStackBackward(convBlocks(batch: n), gradInput: wantInput ? inputGradient : nil)
    }

    /// The buffer `backward` reads the logit gradient from ([maxBatch, classes]).
    public var logitGradient: any DeviceBuffer { gradDense[gradDense.count - 1] }

    /// Applies one optimizer update to every parameter (one op over the flat buffers).
    public func applyGradients(_ optimizer: OptimizerConfig) {
        step += 1
        backend.optimizerStep(
            optimizer.update(step: step), count: flat.values.count, parameters: flat.values,
            gradients: flat.gradients, state1: flat.state1, state2: flat.state2)
    }

    /// One full training step on the batch already in `input`/`labels`.
    /// Runs `forward`, `loss(gradient: true)`, `backward` and `applyGradients`, with the
    /// output layer, its loss and its backward pass in one fused op.
    public func trainStep(batch n: Int, optimizer: OptimizerConfig) throws {
        forwardHidden(batch: n, readingActivations: false)
        let top = spec.denseShapes.count - 1
        let base = 2 * spec.convFilters.count
        let w = parameters[base + 2 * top], b = parameters[base + 2 * top + 1]
        backend.denseSoftmaxCrossEntropyStep(
            denseGeometry(batch: n, layer: top), input: denseInput(top), weight: w.value,
            bias: b.value, logits: logits, labels: labels, probabilities: probabilities,
            gradLogits: logitGradient, metrics: metrics, gradWeight: w.gradient,
            gradBias: b.gradient, gradInput: denseInputGradient(top), inputIsReLU: top > 0)
        try backward(batch: n, fromDenseLayer: top - 1, inputGradient: false)
        applyGradients(optimizer)
    }

    /// Reads and clears the accumulated metrics: (mean loss, accuracy, samples).
    public func takeMetrics() throws -> (loss: Double, accuracy: Double, samples: Int) {
        let m = try backend.read(metrics, offset: 0, count: 3)
        backend.fill(metrics, value: 0, count: 4)
        let n = Double(m[2])
        guard n > 0 else { return (.nan, .nan, 0) }
        return (Double(m[0]) / n, Double(m[1]) / n, Int(m[2]))
    }
}
