import COpenCL

// The kernels of dense.cl and loss.cl.

/// A matrix operand of `gemm`: element (r, c) at `mem[r*rowStride + c*columnStride]`,
/// so a transposed operand is the same buffer with the strides swapped.
struct StridedMatrix {
    var mem: cl_mem
    var rowStride: Int
    var columnStride: Int
}

/// `gemm`: C[m][n] = sum_k A(m,k) B(k,n) (+ bias[n]) (ReLU), in tiles of tile x tile.
struct GemmLaunch: KernelLaunch {
    let kernel = Kernel.gemm
    var a: StridedMatrix
    var b: StridedMatrix
    var bias: cl_mem?
    var c: cl_mem
    var m: Int
    var n: Int
    var k: Int
    var relu: Bool
    /// TS of the build (DeviceTuning.gemmTile).
    var tile: Int
    var arguments: [KernelArgument] {
        [
            .buffer(a.mem), .buffer(b.mem), .buffer(bias ?? a.mem), .buffer(c), .int(m), .int(n), .int(k),
            .int(a.rowStride), .int(a.columnStride), .int(b.rowStride), .int(b.columnStride),
            .flag(bias != nil), .flag(relu),
        ]
    }
    var global: [Int] { [ceilDiv(n, tile) * tile, ceilDiv(m, tile) * tile] }
    var local: [Int]? { [tile, tile] }
}

/// `dense_backward`: the weight gradient with the bias gradient as its row sums,
/// and (when `gradInput` is given) the input gradient, masked where the input is
/// not positive when `inputIsReLU`, in the two halves of the grid.
struct DenseBackwardLaunch: KernelLaunch {
    let kernel = Kernel.denseBackward
    var gradOutput: cl_mem
    var input: cl_mem
    var weight: cl_mem
    var gradWeight: cl_mem
    var gradBias: cl_mem
    var gradInput: cl_mem?
    var batch: Int
    var inFeatures: Int
    var outFeatures: Int
    var inputIsReLU: Bool
    var tile: Int
    var arguments: [KernelArgument] {
        [
            .buffer(gradOutput), .buffer(input), .buffer(weight), .buffer(gradWeight), .buffer(gradBias),
            .buffer(gradInput ?? gradWeight), .int(batch), .int(inFeatures), .int(outFeatures), .flag(inputIsReLU),
        ]
    }
    var global: [Int] {
        let rows = gradInput == nil ? outFeatures : max(outFeatures, batch)
        return [ceilDiv(inFeatures, tile) * tile, ceilDiv(rows, tile) * tile, gradInput == nil ? 1 : 2]
    }
    var local: [Int]? { [tile, tile, 1] }
}

/// `softmax_xent`: softmax, cross-entropy, metrics and (when `gradLogits` is given)
/// the logit gradient of a whole batch, by one work-item in order.
struct SoftmaxCrossEntropyLaunch: KernelLaunch {
    let kernel = Kernel.softmaxCrossEntropy
    var logits: cl_mem
    var labels: cl_mem
    var probabilities: cl_mem
    var gradLogits: cl_mem?
    var metrics: cl_mem
    var batch: Int
    var classes: Int
    var arguments: [KernelArgument] {
        [
            .buffer(logits), .buffer(labels), .buffer(probabilities), .buffer(gradLogits ?? probabilities),
            .buffer(metrics), .int(batch), .int(classes), .flag(gradLogits != nil),
        ]
    }
    var global: [Int] { [1] }
    var local: [Int]? { [1] }
}

/// `softmax_rows`: softmax only, a row per work-item.
struct SoftmaxLaunch: KernelLaunch {
    let kernel = Kernel.softmax
    var logits: cl_mem
    var probabilities: cl_mem
    var batch: Int
    var classes: Int
    var arguments: [KernelArgument] { [.buffer(logits), .buffer(probabilities), .int(batch), .int(classes)] }
    var global: [Int] { [batch] }
}

/// `dense_xent_step`: the output layer's forward pass, loss, metrics and backward
/// pass in one work-group of `groupWidth` work-items.
struct DenseCrossEntropyStepLaunch: KernelLaunch {
    let kernel = Kernel.denseCrossEntropyStep
    var input: cl_mem
    var weight: cl_mem
    var bias: cl_mem
    var logits: cl_mem
    var labels: cl_mem
    var probabilities: cl_mem
    var gradLogits: cl_mem
    var metrics: cl_mem
    var gradWeight: cl_mem
    var gradBias: cl_mem
    var gradInput: cl_mem
    var batch: Int
    var inFeatures: Int
    var classes: Int
    var inputIsReLU: Bool
    var groupWidth: Int
    var arguments: [KernelArgument] {
        [
            .buffer(input), .buffer(weight), .buffer(bias), .buffer(logits), .buffer(labels), .buffer(probabilities),
            .buffer(gradLogits), .buffer(metrics), .buffer(gradWeight), .buffer(gradBias), .buffer(gradInput),
            .int(batch), .int(inFeatures), .int(classes), .flag(inputIsReLU),
        ]
    }
    var global: [Int] { [groupWidth] }
    var local: [Int]? { [groupWidth] }
}
