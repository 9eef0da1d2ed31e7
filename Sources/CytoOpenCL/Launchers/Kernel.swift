import COpenCL

/// A file of Kernels/, as embedded in the binary.
enum KernelFile: String, CaseIterable {
    case augment = "augment.cl"
    case conv = "conv.cl"
    case dense = "dense.cl"
    case elementwise = "elementwise.cl"
    case loss = "loss.cl"
    case optim = "optim.cl"
    case pool = "pool.cl"
    case reduce = "reduce.cl"
}

/// Every kernel the backend launches and the file that defines it: the one place
/// where kernel names are spelled (a test checks each against its file).
enum Kernel: String, CaseIterable {
    case gatherAugment = "gather_augment"
    case conv3x3
    case padCopy = "pad_copy"
    case filterRows = "conv3x3_filter_rows"
    case filterPartial = "conv3x3_filter_partial"
    case filterTiled = "conv3x3_filter_tiled"
    case gemm
    case denseBackward = "dense_backward"
    case reluForward = "relu_fwd"
    case reluBackward = "relu_bwd"
    case fill
    case copy
    case softmaxCrossEntropy = "softmax_xent"
    case denseCrossEntropyStep = "dense_xent_step"
    case softmax = "softmax_rows"
    case sgd
    case rmsprop
    case rmspropKeras2 = "rmsprop_keras2"
    case adam
    case maxPoolForward = "maxpool_fwd"
    case maxPoolBackward = "maxpool_bwd"
    case channelSumGroup = "channel_sum_partial"
    case channelSumVector = "channel_sum_vec"
    case reduceRows = "reduce_rows"
    case reduceSegments = "reduce_segments"

    var name: String { rawValue }

    var file: KernelFile {
        switch self {
        case .gatherAugment: return .augment
        case .conv3x3, .padCopy, .filterRows, .filterPartial, .filterTiled: return .conv
        case .gemm, .denseBackward: return .dense
        case .reluForward, .reluBackward, .fill, .copy: return .elementwise
        case .softmaxCrossEntropy, .denseCrossEntropyStep, .softmax: return .loss
        case .sgd, .rmsprop, .rmspropKeras2, .adam: return .optim
        case .maxPoolForward, .maxPoolBackward: return .pool
        case .channelSumGroup, .channelSumVector, .reduceRows, .reduceSegments: return .reduce
        }
    }
}

/// One kernel argument as `clSetKernelArg` takes it.
enum KernelArgument {
    case buffer(cl_mem)
    /// An OpenCL `int` (32 bits; buffers are limited to Int32.max elements).
    case int(Int)
    case float(Float)
    /// An OpenCL `int` that is 0 or 1.
    case flag(Bool)
    /// A `__local` array of this many bytes.
    case local(bytes: Int)
}

/// One kernel's launch with its arguments by name. Each conforming type sets the
/// arguments in the order of the kernel's parameter list in Kernels/*.cl and
/// computes the grid that kernel's header comment gives, so no call site passes a
/// bare positional number.
protocol KernelLaunch {
    var kernel: Kernel { get }
    var arguments: [KernelArgument] { get }
    /// Work-items per dimension (rounded up to whole groups by the backend).
    var global: [Int] { get }
    /// The group shape the kernel needs; nil: the backend's default for the device.
    var local: [Int]? { get }
}

extension KernelLaunch {
    var local: [Int]? { nil }
}

/// Planes of floats in a buffer with their own strides: element (plane p, row y,
/// column x) is at `offset + p*plane + y*row + x`. A dense [P][H][W] array, or the
/// interior of the zero-bordered buffer the data-gradient convolution reads.
struct StridedPlanes {
    let mem: cl_mem
    let row: Int
    let plane: Int
    let offset: Int

    static func dense(_ mem: cl_mem, height: Int, width: Int) -> StridedPlanes {
        StridedPlanes(mem: mem, row: width, plane: height * width, offset: 0)
    }

    /// The (row, plane, offset) arguments of the kernels that take such a view.
    var arguments: [KernelArgument] { [.int(row), .int(plane), .int(offset)] }
}

/// `(x + m - 1) / m`.
@inline(__always) func ceilDiv(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m }
