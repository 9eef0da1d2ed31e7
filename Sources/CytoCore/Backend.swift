/// The device abstraction: everything the network needs from a compute device.
///
/// Layers, the model and the trainer speak only to this protocol, so they never
/// know whether they run on the CPU or through OpenCL. Every op *enqueues* work on
/// buffers the backend owns; nothing is read back to the host until `read` is
/// called. A whole training step (batch gather and augmentation, forward, loss,
/// backward, optimizer update, metric accumulation) therefore stays on the device,
/// and the trainer reads the metrics buffer once per epoch.
///
/// Conventions shared by every implementation:
/// - activations are NCHW float32, images are NHWC uint8 (as decoded);
/// - convolutions are 3x3, stride 1, "valid" (no padding);
/// - max-pooling is 2x2, stride 2, floor (odd trailing rows/columns are dropped);
/// - dense weights are [out, in] row-major; conv weights are [out, in, 3, 3];
/// - gradient ops *overwrite* their outputs (they never accumulate).
/// The kinds of `Backend`; the raw value is the `--backend` selector's word.
public enum BackendKind: String, Sendable, CaseIterable {
    case cpu, opencl
}

public protocol Backend: AnyObject {
    /// Which implementation this is: decisions that differ per kind (CPU cells share the
    /// host's memory and cores, an OpenCL device has its own) ask this, never a downcast.
    var kind: BackendKind { get }
    /// Human-readable device description printed by every command.
    var deviceDescription: String { get }

    // MARK: Buffers
    func makeBuffer(_ element: BufferElement, count: Int, label: String) throws -> any DeviceBuffer
    func write(_ values: [Float], to buffer: any DeviceBuffer, offset: Int)
    func write(bytes: UnsafeRawBufferPointer, to buffer: any DeviceBuffer, byteOffset: Int)
    /// Blocks until all enqueued work is done, then copies `count` elements out.
    /// Throws the backend's failure (see `checkErrors`) instead of returning numbers
    /// that a failed op left behind.
    func read(_ buffer: any DeviceBuffer, offset: Int, count: Int) throws -> [Float]
    func fill(_ buffer: any DeviceBuffer, value: Float, count: Int)
    func copy(from source: any DeviceBuffer, to destination: any DeviceBuffer, count: Int)
    /// Waits until all enqueued work has finished.
    func synchronize()

    // MARK: Failures and profiling
    /// Throws the first failure of an op since the backend was made: a kernel that
    /// could not be created or launched, a failed transfer or wait. Ops only enqueue
    /// work and cannot throw, so a failure is recorded and surfaces here (and in
    /// `read`). A backend that failed stays failed: every later `checkErrors` and
    /// `read` throws the same error and later ops do nothing, because device memory
    /// may hold partial results. Callers check after every training step and before
    /// trusting any result.
    func checkErrors() throws
    /// A table of time per op (or per kernel) since the last reset, slowest first, or
    /// a line saying that profiling is off.
    func profileReport() -> String
    /// Forgets the recorded times.
    func resetProfile()
    /// What can still be allocated (host memory for the CPU backend, device memory
    /// for OpenCL), so that work can be refused before it is allocated; nil when unknown.
    func memoryLimit() -> MemoryLimit?
    /// Counters the backend keeps while it runs (kernel launches), so that commands
    /// report them without knowing which backend they hold.
    var statistics: BackendStatistics { get }

    // MARK: Batches
    /// Builds a float NCHW batch scaled by 1/255 from a set of NHWC uint8 images
    /// already on the device: `output[i] = augment(images[indices[i]], transforms[i])`.
    /// With `transforms == nil` the images are copied unchanged.
    func gatherBatch(
        images: any DeviceBuffer, geometry: ImageGeometry, indices: [Int32],
        transforms: [AugmentTransform]?, output: any DeviceBuffer)

    // MARK: Convolution (3x3 valid)
    /// `output = relu?(conv(input, weight) + bias)`.
    func conv2dForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool)
    /// `gradInput = transposed-conv(gradOutput, weight)`.
    func conv2dBackwardData(
        _ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer,
        gradInput: any DeviceBuffer)
    /// `gradWeight[o,c,ky,kx] = sum_{n,y,x} gradOutput[n,o,y,x] * input[n,c,y+ky,x+kx]`.
    func conv2dBackwardFilter(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradWeight: any DeviceBuffer)
    /// `gradBias[o] = sum_{n,y,x} gradOutput[n,o,y,x]`.
    func conv2dBackwardBias(_ g: ConvGeometry, gradOutput: any DeviceBuffer, gradBias: any DeviceBuffer)

    // MARK: Pooling and activations
    func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer)
    /// Routes each gradient to the first maximum (row-major) of its window; every
    /// other input position gets zero.
    func maxPoolBackward(
        _ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: any DeviceBuffer)
    func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer)
    /// `grad[i] = activation[i] > 0 ? grad[i] : 0`, in place; `activation` is the ReLU output.
    func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer)

    // MARK: Dense
    /// `output = relu?(input * weight^T + bias)`, input [batch, in], weight [out, in].
    func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool)
    /// gradWeight = gradOutput^T input, gradBias = column sums, gradInput = gradOutput weight
    /// (skipped when `gradInput` is nil).
    func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer)

    // MARK: Loss and reductions
    /// Softmax over `classes`, mean categorical cross-entropy against integer labels
    /// (stored as floats), its gradient with respect to the logits (divided by the batch),
    /// and accumulation of `[loss sum, correct count, sample count]` into `metrics[0..<3]`.
    func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?,
        metrics: any DeviceBuffer)
    /// Softmax only (inference).
    func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer)

    // MARK: Optimizers
    /// One update of `count` parameters in place. `state1`/`state2` are the optimizer's
    /// slots (RMSprop: velocity; Adam: m and v; SGD: momentum velocity).
    func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer,
        gradients: any DeviceBuffer, state1: any DeviceBuffer, state2: any DeviceBuffer)

    // MARK: Segmented buffers and fused ops
    //
    // A GPU pays several microseconds per kernel launch, more than the work of most
    // ops of this small network at batch 5, so a training step is also expressed in
    // a few coarse ops. A backend may run each in fewer launches than its pieces;
    // the protocol extension below composes them from the pieces (the CPU backend
    // uses those), and every fused op must give the pieces' results.

    /// One allocation holding `counts.count` segments back to back, and a buffer per
    /// segment that views it (a write to a segment is a write to `whole`). The layout
    /// (segment offsets and the padding between them) depends only on `counts`, so
    /// several segmented buffers made with the same counts line up element for
    /// element: an element-wise op over `whole` (the optimizer) covers every segment
    /// at once. Padding elements are zero when made and no op writes them.
    func makeSegmentedBuffer(
        _ element: BufferElement, counts: [Int], labels: [String], label: String
    ) throws
        -> (whole: any DeviceBuffer, segments: [any DeviceBuffer])

    /// `activation = relu(conv(input, weight) + bias)`, then `pooled = maxpool(activation)`.
    func convBlockForward(_ block: ConvBlock)

    /// Backward through the blocks (each conv -> ReLU -> 2x2 max-pool, `blocks[k].input`
    /// being `blocks[k-1].pooled`), last block first: from `gradPooled` of the last block
    /// to every `gradWeight` and `gradBias`, through each block's `gradPooled`, and into
    /// `gradInput` (the gradient of `blocks[0].input`) when it is given. `gradActivation`
    /// is scratch the size of `activation`; a backend may use its own instead.
    func convStackBackward(_ blocks: [ConvBlock], gradInput: (any DeviceBuffer)?)

    /// `denseBackward`, and then, when `inputIsReLU` (the input is a ReLU output),
    /// `gradInput[i] = 0` wherever `input[i] <= 0` (ReLU backward fused in).
    func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer, inputIsReLU: Bool)

    /// The output layer of a training step: `logits = input * weight^T + bias`, then
    /// `softmaxCrossEntropy` with a logit gradient, then `denseBackward(inputIsReLU:)`
    /// from that gradient.
    func denseSoftmaxCrossEntropyStep(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: any DeviceBuffer,
        metrics: any DeviceBuffer, gradWeight: any DeviceBuffer,
        gradBias: any DeviceBuffer, gradInput: any DeviceBuffer, inputIsReLU: Bool)
}

/// Where the segments of a segmented buffer lie: each starts on an `alignmentBytes`
/// boundary and is followed by at least `slackBytes` of padding.
public struct SegmentLayout: Sendable, Equatable {
    /// First element of each segment.
    public let offsets: [Int]
    /// Elements in the whole buffer.
    public let total: Int

    public init(counts: [Int], alignmentBytes: Int, slackBytes: Int, elementBytes: Int) {
        let align = max(1, alignmentBytes / elementBytes), slack = (slackBytes + elementBytes - 1) / elementBytes
        var offsets: [Int] = [], next = 0
        for n in counts {
            offsets.append(next)
            next = (next + n + slack + align - 1) / align * align
        }
        self.offsets = offsets
        total = next
    }
}

/// The buffers of one convolution block (3x3 valid conv -> ReLU -> 2x2 max-pool) of
/// a network, forward and backward.
public struct ConvBlock {
    public var geometry: ConvGeometry
    /// [N, IC, H, W]: the network input or the previous block's `pooled`.
    public var input: any DeviceBuffer
    public var weight: any DeviceBuffer
    public var bias: any DeviceBuffer
    /// [N, OC, OH, OW]: ReLU output of the convolution (the pooling input).
    public var activation: any DeviceBuffer
    /// [N, OC, OH/2, OW/2].
    public var pooled: any DeviceBuffer
    public var gradWeight: any DeviceBuffer
    public var gradBias: any DeviceBuffer
    /// Scratch the size of `activation`.
    public var gradActivation: any DeviceBuffer
    /// Gradient of `pooled`: read by `convStackBackward` for the last block, written
    /// by it for the others.
    public var gradPooled: any DeviceBuffer
    /// Whether `convBlockForward` must leave the ReLU output in `activation` (for a
    /// backward pass). When false (inference) a backend may skip writing it, and
    /// `activation` is then undefined.
    public var keepActivation = true
    /// With `keepActivation`: whether the caller reads `activation` itself afterwards
    /// (saliency's near-tie check does). When false, `activation` is undefined and a
    /// backend keeps only what its own `convStackBackward` needs: the CPU backend keeps
    /// each pooling window's route (one byte instead of four floats of ReLU output; at
    /// 257x257 the first block's activation is 1 MB per image, written and read back
    /// from memory once per training step).
    public var activationRead = true

    public init(
        geometry: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        activation: any DeviceBuffer, pooled: any DeviceBuffer, gradWeight: any DeviceBuffer,
        gradBias: any DeviceBuffer, gradActivation: any DeviceBuffer, gradPooled: any DeviceBuffer
    ) {
        self.geometry = geometry; self.input = input; self.weight = weight; self.bias = bias
        self.activation = activation; self.pooled = pooled; self.gradWeight = gradWeight; self.gradBias = gradBias
        self.gradActivation = gradActivation; self.gradPooled = gradPooled
    }

    public var poolGeometry: PoolGeometry {
        PoolGeometry(
            batch: geometry.batch, channels: geometry.outChannels,
            inHeight: geometry.outHeight, inWidth: geometry.outWidth)
    }
}

/// The fused ops composed from the pieces, for backends that have nothing faster.
extension Backend {
    public func convBlockForward(_ block: ConvBlock) {
        conv2dForward(
            block.geometry, input: block.input, weight: block.weight, bias: block.bias,
            output: block.activation, relu: true)
        maxPoolForward(block.poolGeometry, input: block.activation, output: block.pooled)
    }

    public func convStackBackward(_ blocks: [ConvBlock], gradInput: (any DeviceBuffer)?) {
        for k in blocks.indices.reversed() {
            let b = blocks[k], g = b.geometry
            maxPoolBackward(b.poolGeometry, input: b.activation, gradOutput: b.gradPooled, gradInput: b.gradActivation)
            reluBackward(count: g.outputCount, activation: b.activation, grad: b.gradActivation)
            conv2dBackwardFilter(g, input: b.input, gradOutput: b.gradActivation, gradWeight: b.gradWeight)
            conv2dBackwardBias(g, gradOutput: b.gradActivation, gradBias: b.gradBias)
            if let target = k > 0 ? blocks[k - 1].gradPooled : gradInput {
                conv2dBackwardData(g, gradOutput: b.gradActivation, weight: b.weight, gradInput: target)
            }
        }
    }

    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer, inputIsReLU: Bool
    ) {
        denseBackward(
            g, input: input, weight: weight, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight, gradBias: gradBias)
        if inputIsReLU, let gi = gradInput { reluBackward(count: g.batch * g.inFeatures, activation: input, grad: gi) }
    }

    public func denseSoftmaxCrossEntropyStep(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: any DeviceBuffer,
        metrics: any DeviceBuffer, gradWeight: any DeviceBuffer,
        gradBias: any DeviceBuffer, gradInput: any DeviceBuffer, inputIsReLU: Bool
    ) {
        denseForward(g, input: input, weight: weight, bias: bias, output: logits, relu: false)
        softmaxCrossEntropy(
            batch: g.batch, classes: g.outFeatures, logits: logits, labels: labels,
            probabilities: probabilities, gradLogits: gradLogits, metrics: metrics)
        denseBackward(
            g, input: input, weight: weight, gradOutput: gradLogits, gradInput: gradInput,
            gradWeight: gradWeight, gradBias: gradBias, inputIsReLU: inputIsReLU)
    }
}

/// What a backend has counted since it was made. A counter a backend does not keep
/// is nil (the CPU backend launches no device kernels).
public struct BackendStatistics: Sendable, Equatable {
    /// Device kernels enqueued: the difference over a training step is the step's
    /// launch count, which bounds a GPU step's time (several microseconds each).
    public var kernelLaunches: Int?

    public init(kernelLaunches: Int? = nil) {
        self.kernelLaunches = kernelLaunches
    }
}

extension Backend {
    /// Nothing counted, unless the backend says otherwise.
    public var statistics: BackendStatistics { BackendStatistics() }
}

/// The element type of a device buffer.
public enum BufferElement: Sendable, Equatable {
    case float32
    case uint8

    public var byteSize: Int { self == .float32 ? 4 : 1 }
}

/// Memory owned by a backend. Only the backend that made it may use it.
public protocol DeviceBuffer: AnyObject {
    var element: BufferElement { get }
    /// Number of elements.
    var count: Int { get }
    var label: String { get }
}

/// Shape of a 3x3 valid convolution.
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public var batch: Int
    public var inChannels: Int
    public var outChannels: Int
    public var inHeight: Int
    public var inWidth: Int

    public init(batch: Int, inChannels: Int, outChannels: Int, inHeight: Int, inWidth: Int) {
        self.batch = batch; self.inChannels = inChannels; self.outChannels = outChannels
        self.inHeight = inHeight; self.inWidth = inWidth
    }
    public var outHeight: Int { inHeight - 2 }
    public var outWidth: Int { inWidth - 2 }
    public var inputCount: Int { batch * inChannels * inHeight * inWidth }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * inChannels * 9 }
    public var description: String {
        "conv \(batch)x\(inChannels)x\(inHeight)x\(inWidth) -> \(outChannels)x\(outHeight)x\(outWidth)"
    }
}

/// Shape of a 2x2 stride-2 max-pool (floor mode).
public struct PoolGeometry: Hashable, Sendable {
    public var batch: Int
    public var channels: Int
    public var inHeight: Int
    public var inWidth: Int

    public init(batch: Int, channels: Int, inHeight: Int, inWidth: Int) {
        self.batch = batch; self.channels = channels; self.inHeight = inHeight; self.inWidth = inWidth
    }
    public var outHeight: Int { inHeight / 2 }
    public var outWidth: Int { inWidth / 2 }
    public var inputCount: Int { batch * channels * inHeight * inWidth }
    public var outputCount: Int { batch * channels * outHeight * outWidth }
}

/// Shape of a fully connected layer.
public struct DenseGeometry: Hashable, Sendable {
    public var batch: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(batch: Int, inFeatures: Int, outFeatures: Int) {
        self.batch = batch; self.inFeatures = inFeatures; self.outFeatures = outFeatures
    }
}

/// Shape of a set of NHWC uint8 images that all have the model's input size.
public struct ImageGeometry: Hashable, Sendable {
    public var height: Int
    public var width: Int
    public var channels: Int

    public init(height: Int, width: Int, channels: Int = 3) {
        self.height = height; self.width = width; self.channels = channels
    }
    public var pixelsPerImage: Int { height * width * channels }
}

/// One optimizer update with every scalar the device needs precomputed on the host,
/// so a step never needs to read anything back.
public enum OptimizerUpdate: Sendable, Equatable {
    /// Keras SGD: `v = momentum*v - lr*g; p += v` (plain `p -= lr*g` when momentum is 0).
    case sgd(learningRate: Float, momentum: Float)
    /// Keras 3 RMSprop: `v = rho*v + (1-rho)*g^2; p -= lr*g/sqrt(v+eps)` (epsilon inside the root).
    case rmsprop(learningRate: Float, rho: Float, epsilon: Float)
    /// Keras 2.0.8 RMSprop, the paper's: `v = rho*v + (1-rho)*g^2; p -= lr*g/(sqrt(v)+eps)`
    /// (epsilon outside the root). For |g| well below sqrt(eps_keras3) its steps are several
    /// times larger than the Keras 3 form's, so the two train differently.
    case rmspropKeras2(learningRate: Float, rho: Float, epsilon: Float)
    /// Adam with the bias correction folded into `stepSize = lr*sqrt(1-b2^t)/(1-b1^t)`:
    /// `m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; p -= stepSize*m/(sqrt(v)+eps)`.
    /// Keras 2.0.8 and Keras 3 share this formula and differ only in epsilon (1e-8, 1e-7).
    case adam(stepSize: Float, beta1: Float, beta2: Float, epsilon: Float)
}
