import COpenCL
import CytoCore

// The kernels of conv.cl. VW (vectorWidth) and RY (rowsPerItem) are the build's
// defines: the launchers take them from the backend's DeviceTuning.

/// Where weight element (o, i, ky, kx) of `conv3x3` lies:
/// `w[base + o*perOutput + i*perInput + ky*perRow + kx*perColumn]`.
struct ConvWeightLayout {
    let base: Int
    let perOutput: Int
    let perInput: Int
    let perRow: Int
    let perColumn: Int

    /// The forward pass: weight [O][I][3][3] as stored.
    static func forward(inChannels: Int) -> ConvWeightLayout {
        ConvWeightLayout(base: 0, perOutput: inChannels * 9, perInput: 9, perRow: 3, perColumn: 1)
    }

    /// The data gradient as a convolution of the padded output gradient: its output
    /// channel c (an input channel of the layer) reads the transposed, flipped
    /// weights, weight[o][c][2-ky][2-kx] for its input channel o.
    static func transposedFlipped(layerInChannels: Int) -> ConvWeightLayout {
        ConvWeightLayout(base: 8, perOutput: 9, perInput: layerInChannels * 9, perRow: -3, perColumn: -1)
    }

    var arguments: [KernelArgument] { [.int(base), .int(perOutput), .int(perInput), .int(perRow), .int(perColumn)] }
}

/// `conv3x3`: a 3x3 valid convolution of [N][IC] planes (rows `inRow` floats
/// apart, planes `inPlane`) into [N][OC][OH][OW], with bias, ReLU and a fused 2x2
/// max-pool into `pooled` as options.
struct Conv3x3Launch: KernelLaunch {
    /// Output channels per work-item (OCB in conv.cl).
    static let outputChannelBlock = 4
    let kernel = Kernel.conv3x3
    var input: cl_mem
    var weight: cl_mem
    var bias: cl_mem?
    var output: cl_mem
    var batch: Int
    var inChannels: Int
    var inRow: Int
    var inPlane: Int
    var outChannels: Int
    var outHeight: Int
    var outWidth: Int
    var weights: ConvWeightLayout
    var relu: Bool
    /// The 2x2 max-pool of the output, computed by the work-item that made the
    /// outputs (needs rowsPerItem 2); nil: no pooling.
    var pooled: cl_mem?
    var vectorWidth: Int
    var rowsPerItem: Int

    var arguments: [KernelArgument] {
        [
            .buffer(input), .buffer(weight), .buffer(bias ?? weight), .buffer(output),
            .int(batch), .int(inChannels), .int(inRow), .int(inPlane),
            .int(outChannels), .int(outHeight), .int(outWidth),
        ] + weights.arguments + [.flag(bias != nil), .flag(relu), .buffer(pooled ?? output), .flag(pooled != nil)]
    }
    var global: [Int] {
        [
            ceilDiv(outWidth, vectorWidth), ceilDiv(outHeight, rowsPerItem),
            batch * ceilDiv(outChannels, Self.outputChannelBlock),
        ]
    }
}

/// `pad_copy`: [planes][height][width] into the interior of the zero-bordered
/// [planes][height+4][paddedRow] buffer, at (2, 2).
struct PadCopyLaunch: KernelLaunch {
    let kernel = Kernel.padCopy
    var source: cl_mem
    var destination: cl_mem
    var planes: Int
    var height: Int
    var width: Int
    var paddedRow: Int
    var vectorWidth: Int

    var arguments: [KernelArgument] {
        [.buffer(source), .buffer(destination), .int(planes), .int(height), .int(width), .int(paddedRow)]
    }
    var global: [Int] { [ceilDiv(width, vectorWidth), height, planes] }
}

/// What every filter-gradient kernel reads and writes: the layer's input, its
/// output gradient through a strided view, and the partial sums from
/// `partialOffset` on (with the bias sums after the weights' when `withBias`).
struct FilterGradientOperands {
    var input: cl_mem
    var gradOutput: StridedPlanes
    var partial: cl_mem
    var partialOffset: Int
    var withBias: Bool
    var geometry: ConvGeometry

    var buffers: [KernelArgument] { [.buffer(input), .buffer(gradOutput.mem), .buffer(partial)] }
    /// N, IC, H, W, OC.
    var shape: [KernelArgument] {
        [
            .int(geometry.batch), .int(geometry.inChannels), .int(geometry.inHeight), .int(geometry.inWidth),
            .int(geometry.outChannels),
        ]
    }
    /// gRow, gPlane, gOff, withBias, pOff.
    var view: [KernelArgument] { gradOutput.arguments + [.flag(withBias), .int(partialOffset)] }
    var channelPairs: Int { geometry.outChannels * geometry.inChannels }
}

/// `conv3x3_filter_rows`: a block of `rowsPerChunk` rows of one image per work-item.
struct FilterRowsLaunch: KernelLaunch {
    let kernel = Kernel.filterRows
    var operands: FilterGradientOperands
    var chunksPerImage: Int
    var rowsPerChunk: Int
    /// Work-items per group along the channel pairs.
    var pairsPerGroup: Int

    var arguments: [KernelArgument] {
        operands.buffers + operands.shape + [.int(chunksPerImage), .int(rowsPerChunk)] + operands.view
    }
    var global: [Int] { [operands.geometry.batch * chunksPerImage, operands.channelPairs] }
    var local: [Int]? { [1, pairsPerGroup] }
}

/// `conv3x3_filter_partial`: a work-group of `groupWidth` per (row chunk, channel pair).
struct FilterPartialLaunch: KernelLaunch {
    let kernel = Kernel.filterPartial
    var operands: FilterGradientOperands
    var groupWidth: Int
    var chunks: Int
    var rowsPerChunk: Int

    var arguments: [KernelArgument] {
        operands.buffers + [.local(bytes: groupWidth * 10 * 4)] + operands.shape
            + [.int(chunks), .int(rowsPerChunk)] + operands.view
    }
    var global: [Int] { [groupWidth, chunks, operands.channelPairs] }
    var local: [Int]? { [groupWidth, 1, 1] }
}

/// `conv3x3_filter_tiled`: a work-group per (block of `tileRows` rows of one image,
/// input channel, four output channels), input rows staged in local memory.
struct FilterTiledLaunch: KernelLaunch {
    /// Output channels per work-group (OB in conv.cl).
    static let outputChannelBlock = 4
    let kernel = Kernel.filterTiled
    var operands: FilterGradientOperands
    var groupWidth: Int
    var tileRows: Int
    var chunks: Int

    var arguments: [KernelArgument] {
        operands.buffers
            + [.local(bytes: (tileRows + 2) * operands.geometry.inWidth * 4), .local(bytes: groupWidth * 10 * 4)]
            + operands.shape + [.int(tileRows)] + operands.view
    }
    var global: [Int] {
        [groupWidth, chunks, operands.geometry.inChannels * ceilDiv(operands.geometry.outChannels, Self.outputChannelBlock)]
    }
    var local: [Int]? { [groupWidth, 1, 1] }
}
