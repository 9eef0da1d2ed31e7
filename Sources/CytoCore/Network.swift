/// One trainable tensor of the network and its optimizer slots, all on the device.
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let value: any DeviceBuffer
    public let gradient: any DeviceBuffer
    let state1: any DeviceBuffer
    let state2: any DeviceBuffer
    public var count: Int { shape.reduce(1, *) }

    init(name: String, shape: [Int], backend: any Backend) throws {
        self.name = name; self.shape = shape
        let n = shape.reduce(1, *)
        value = try backend.makeBuffer(.float32, count: n, label: name)
        gradient = try backend.makeBuffer(.float32, count: n, label: "grad.\(name)")
        state1 = try backend.makeBuffer(.float32, count: n, label: "opt1.\(name)")
        state2 = try backend.makeBuffer(.float32, count: n, label: "opt2.\(name)")
        backend.fill(gradient, value: 0, count: n)
        backend.fill(state1, value: 0, count: n)
        backend.fill(state2, value: 0, count: n)
    }
}

/// The sequential network on a backend: parameters, gradients, optimizer state and
/// every activation buffer, allocated once for `maxBatch` images and reused by every
/// step. The methods only enqueue backend ops; nothing is read back unless asked.
public final class Network {
    public let spec: ModelSpec
    public let backend: any Backend
    public let maxBatch: Int
    public private(set) var parameters: [Parameter] = []
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

    let convOut: [any DeviceBuffer]     // post-ReLU conv outputs
    let pooled: [any DeviceBuffer]
    let gradConvOut: [any DeviceBuffer]
    let gradPooled: [any DeviceBuffer]
    let denseOut: [any DeviceBuffer]    // hidden activations (post-ReLU), then logits
    let gradDense: [any DeviceBuffer]
    /// Gradient of the loss (or a class score) with respect to `input`; made on first use.
    public private(set) var inputGradient: (any DeviceBuffer)?

    public init(spec: ModelSpec, backend: any Backend, maxBatch: Int) throws {
        try spec.validate()
        guard maxBatch >= 1 else { throw CytoError.invalidArgument("batch size \(maxBatch) must be at least 1") }
        // Refuse before allocating anything when the buffers cannot fit.
        try spec.networkMemory(maxBatch: maxBatch).check(against: backend.memoryLimit())
        self.spec = spec; self.backend = backend; self.maxBatch = maxBatch
        for p in spec.parameterShapes { parameters.append(try Parameter(name: p.name, shape: p.shape, backend: backend)) }
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
        for p in parameters {
            backend.fill(p.state1, value: 0, count: p.count)
            backend.fill(p.state2, value: 0, count: p.count)
        }
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
        for (a, b) in zip(parameters, other.parameters) { backend.copy(from: b.value, to: a.value, count: a.count) }
    }

    public func gradients() throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for p in parameters { out[p.name] = try backend.read(p.gradient, offset: 0, count: p.count) }
        return out
    }

    // MARK: Steps

    /// Runs the network on the first `batch` images of `input`, writing logits (and
    /// every intermediate activation kept for backward).
    public func forward(batch n: Int) {
        precondition(n > 0 && n <= maxBatch, "batch \(n) outside 1...\(maxBatch)")
        var x = input
        for (i, g) in spec.convGeometries(batch: n).enumerated() {
            let w = parameters[2 * i], b = parameters[2 * i + 1]
            backend.conv2dForward(g, input: x, weight: w.value, bias: b.value, output: convOut[i], relu: true)
            let pg = PoolGeometry(batch: n, channels: g.outChannels, inHeight: g.outHeight, inWidth: g.outWidth)
            backend.maxPoolForward(pg, input: convOut[i], output: pooled[i])
            x = pooled[i]
        }
        let base = 2 * spec.convFilters.count
        let shapes = spec.denseShapes
        for (j, d) in shapes.enumerated() {
            let w = parameters[base + 2 * j], b = parameters[base + 2 * j + 1]
            backend.denseForward(DenseGeometry(batch: n, inFeatures: d.inFeatures, outFeatures: d.outFeatures),
                                 input: x, weight: w.value, bias: b.value, output: denseOut[j],
                                 relu: j < shapes.count - 1)
            x = denseOut[j]
        }
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
        backend.softmaxCrossEntropy(batch: n, classes: spec.classes, logits: logits, labels: labels,
                                    probabilities: probabilities,
                                    gradLogits: gradient ? gradDense[gradDense.count - 1] : nil,
                                    metrics: metrics)
    }

    /// Back-propagates the logit gradient left in the last dense gradient buffer by
    /// `loss(batch:gradient: true)` (or written there directly, e.g. for saliency),
    /// filling every parameter gradient, and the input gradient when `inputGradient` is true.
    public func backward(batch n: Int, inputGradient wantInput: Bool = false) throws {
        let convs = spec.convGeometries(batch: n)
        let base = 2 * spec.convFilters.count
        let shapes = spec.denseShapes
        for j in stride(from: shapes.count - 1, through: 0, by: -1) {
            let d = shapes[j]
            let w = parameters[base + 2 * j], b = parameters[base + 2 * j + 1]
            let x = j == 0 ? pooled[pooled.count - 1] : denseOut[j - 1]
            let gx = j == 0 ? gradPooled[gradPooled.count - 1] : gradDense[j - 1]
            backend.denseBackward(DenseGeometry(batch: n, inFeatures: d.inFeatures, outFeatures: d.outFeatures),
                                  input: x, weight: w.value, gradOutput: gradDense[j], gradInput: gx,
                                  gradWeight: w.gradient, gradBias: b.gradient)
            if j > 0 { backend.reluBackward(count: n * d.inFeatures, activation: x, grad: gx) }
        }
        if wantInput && inputGradient == nil {
            inputGradient = try backend.makeBuffer(.float32, count: input.count, label: "input.grad")
        }
        for i in stride(from: convs.count - 1, through: 0, by: -1) {
            let g = convs[i]
            let pg = PoolGeometry(batch: n, channels: g.outChannels, inHeight: g.outHeight, inWidth: g.outWidth)
            backend.maxPoolBackward(pg, input: convOut[i], gradOutput: gradPooled[i], gradInput: gradConvOut[i])
            backend.reluBackward(count: g.outputCount, activation: convOut[i], grad: gradConvOut[i])
            let w = parameters[2 * i], b = parameters[2 * i + 1]
            let x = i == 0 ? input : pooled[i - 1]
            backend.conv2dBackwardFilter(g, input: x, gradOutput: gradConvOut[i], gradWeight: w.gradient)
            backend.conv2dBackwardBias(g, gradOutput: gradConvOut[i], gradBias: b.gradient)
            if i > 0 {
                backend.conv2dBackwardData(g, gradOutput: gradConvOut[i], weight: w.value, gradInput: gradPooled[i - 1])
            } else if wantInput, let gi = inputGradient {
                backend.conv2dBackwardData(g, gradOutput: gradConvOut[i], weight: w.value, gradInput: gi)
            }
        }
    }

    /// The buffer `backward` reads the logit gradient from ([maxBatch, classes]).
    public var logitGradient: any DeviceBuffer { gradDense[gradDense.count - 1] }

    /// Applies one optimizer update to every parameter.
    public func applyGradients(_ optimizer: OptimizerConfig) {
        step += 1
        let update = optimizer.update(step: step)
        for p in parameters {
            backend.optimizerStep(update, count: p.count, parameters: p.value, gradients: p.gradient,
                                  state1: p.state1, state2: p.state2)
        }
    }

    /// One full training step on the batch already in `input`/`labels`.
    public func trainStep(batch n: Int, optimizer: OptimizerConfig) throws {
        forward(batch: n)
        loss(batch: n, gradient: true)
        try backward(batch: n)
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
