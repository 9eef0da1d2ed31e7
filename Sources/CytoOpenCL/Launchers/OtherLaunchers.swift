import COpenCL
import CytoCore

// The kernels of optim.cl, reduce.cl and augment.cl.

/// One optimizer update of `count` parameters, a parameter per work-item.
struct OptimizerLaunch: KernelLaunch {
    var update: OptimizerUpdate
    var parameters: cl_mem
    var gradients: cl_mem
    var state1: cl_mem
    var state2: cl_mem
    var count: Int

    var kernel: Kernel {
        switch update {
        case .sgd: return .sgd
        case .rmsprop: return .rmsprop
        case .rmspropKeras2: return .rmspropKeras2
        case .adam: return .adam
        }
    }
    var arguments: [KernelArgument] {
        let p = KernelArgument.buffer(parameters), g = KernelArgument.buffer(gradients), s1 = KernelArgument.buffer(state1)
        switch update {
        case .sgd(let lr, let momentum):
            return [p, g, s1, .float(lr), .float(momentum), .int(count)]
        case .rmsprop(let lr, let rho, let eps), .rmspropKeras2(let lr, let rho, let eps):
            return [p, g, s1, .float(lr), .float(rho), .float(eps), .int(count)]
        case .adam(let step, let b1, let b2, let eps):
            return [p, g, s1, .buffer(state2), .float(step), .float(b1), .float(b2), .float(eps), .int(count)]
        }
    }
    var global: [Int] { [count] }
}

/// The per-channel sums of [batch][channels][plane] data, pass 1: chunk j of plane
/// (n, c) into partial[c*(batch*chunksPerPlane) + n*chunksPerPlane + j].
struct ChannelSumLaunch: KernelLaunch {
    var input: cl_mem
    var partial: cl_mem
    var batch: Int
    var channels: Int
    var plane: Int
    var chunksPerPlane: Int
    var chunk: Int
    /// nil: `channel_sum_vec`, a work-item per chunk; else `channel_sum_partial`
    /// with groups of this many work-items (a power of two).
    var groupWidth: Int?

    var kernel: Kernel { groupWidth == nil ? .channelSumVector : .channelSumGroup }
    var arguments: [KernelArgument] {
        let sizes: [KernelArgument] = [.int(batch), .int(channels), .int(plane), .int(chunksPerPlane), .int(chunk)]
        guard let l = groupWidth else { return [.buffer(input), .buffer(partial)] + sizes }
        return [.buffer(input), .buffer(partial), .local(bytes: l * 4)] + sizes
    }
    var global: [Int] {
        guard let l = groupWidth else { return [batch * chunksPerPlane, channels] }
        return [l, batch * chunksPerPlane, channels]
    }
    var local: [Int]? { groupWidth.map { [$0, 1, 1] } ?? [1, 1] }
}

/// `reduce_rows`: out[r] = sum of the `partialsPerRow` partial sums of row r, in order.
struct ReduceRowsLaunch: KernelLaunch {
    let kernel = Kernel.reduceRows
    var partial: cl_mem
    var output: cl_mem
    var rows: Int
    var partialsPerRow: Int
    var arguments: [KernelArgument] { [.buffer(partial), .buffer(output), .int(rows), .int(partialsPerRow)] }
    var global: [Int] { [rows] }
}

/// `reduce_segments`: `reduce_rows` for several segments of one allocation, each
/// described by four ints of `table` (first row, partial offset, partials per row,
/// output offset).
struct ReduceSegmentsLaunch: KernelLaunch {
    let kernel = Kernel.reduceSegments
    var partial: cl_mem
    var output: cl_mem
    var table: cl_mem
    var segments: Int
    var rows: Int
    var arguments: [KernelArgument] {
        [.buffer(partial), .buffer(output), .buffer(table), .int(segments), .int(rows)]
    }
    var global: [Int] { [rows] }
}

/// `gather_augment`: images[indices[i]] (NHWC uint8) into out[i] (NCHW float, /255),
/// through the affine map params[i] when `augmented`; eight pixels per work-item.
struct GatherAugmentLaunch: KernelLaunch {
    let kernel = Kernel.gatherAugment
    var images: cl_mem
    var indices: cl_mem
    var maps: cl_mem
    var output: cl_mem
    var count: Int
    var geometry: ImageGeometry
    var augmented: Bool
    var arguments: [KernelArgument] {
        [
            .buffer(images), .buffer(indices), .buffer(maps), .buffer(output),
            .int(count), .int(geometry.height), .int(geometry.width), .int(geometry.channels), .flag(augmented),
        ]
    }
    var global: [Int] { [ceilDiv(geometry.width, 8), geometry.height, count] }
}
