import COpenCL

// The kernels of elementwise.cl and pool.cl.

/// The element-wise kernels handle this many consecutive elements per work-item.
private let elementsPerItem = 8

/// A kernel of elementwise.cl over `count` elements: the grid is the same for each.
protocol ElementwiseLaunch: KernelLaunch {
    var count: Int { get }
}

extension ElementwiseLaunch {
    var global: [Int] { [ceilDiv(count, elementsPerItem)] }
}

/// `relu_fwd`: output = max(input, 0).
struct ReLUForwardLaunch: ElementwiseLaunch {
    let kernel = Kernel.reluForward
    var input: cl_mem
    var output: cl_mem
    var count: Int
    var arguments: [KernelArgument] { [.buffer(input), .buffer(output), .int(count)] }
}

/// `relu_bwd`: grad = activation > 0 ? grad : 0, in place.
struct ReLUBackwardLaunch: ElementwiseLaunch {
    let kernel = Kernel.reluBackward
    var activation: cl_mem
    var grad: cl_mem
    var count: Int
    var arguments: [KernelArgument] { [.buffer(activation), .buffer(grad), .int(count)] }
}

/// `fill`: the first `count` floats of `destination` = value.
struct FillLaunch: ElementwiseLaunch {
    let kernel = Kernel.fill
    var destination: cl_mem
    var value: Float
    var count: Int
    var arguments: [KernelArgument] { [.buffer(destination), .float(value), .int(count)] }
}

/// `copy`: the first `count` floats of `source` into `destination`.
struct CopyLaunch: ElementwiseLaunch {
    let kernel = Kernel.copy
    var source: cl_mem
    var destination: cl_mem
    var count: Int
    var arguments: [KernelArgument] { [.buffer(source), .buffer(destination), .int(count)] }
}

/// `maxpool_fwd`: 2x2 stride-2 max-pool of `planes` planes of inHeight x inWidth,
/// eight windows per work-item.
struct MaxPoolForwardLaunch: KernelLaunch {
    let kernel = Kernel.maxPoolForward
    var input: cl_mem
    var output: cl_mem
    var planes: Int
    var inHeight: Int
    var inWidth: Int
    var arguments: [KernelArgument] { [.buffer(input), .buffer(output), .int(planes), .int(inHeight), .int(inWidth)] }
    var global: [Int] { [ceilDiv(inWidth / 2, 8), inHeight / 2, planes] }
}

/// `maxpool_bwd`: each window's gradient to its first maximum, written through a
/// strided view (a dense gradient, or the padded input of the data gradient), and
/// masked by the input > 0 when `inputIsReLU`. Sixteen input columns of two input
/// rows per work-item.
struct MaxPoolBackwardLaunch: KernelLaunch {
    let kernel = Kernel.maxPoolBackward
    var input: cl_mem
    var gradOutput: cl_mem
    var gradInput: StridedPlanes
    var planes: Int
    var inHeight: Int
    var inWidth: Int
    var inputIsReLU: Bool
    var arguments: [KernelArgument] {
        [
            .buffer(input), .buffer(gradOutput), .buffer(gradInput.mem),
            .int(planes), .int(inHeight), .int(inWidth), .flag(inputIsReLU),
        ] + gradInput.arguments
    }
    var global: [Int] { [ceilDiv(inWidth, 16), ceilDiv(inHeight, 2), planes] }
}
