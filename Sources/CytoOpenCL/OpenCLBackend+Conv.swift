import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {

    func convForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        output: any DeviceBuffer, relu: Bool, pooled: (any DeviceBuffer)?
    ) {
        launch(
            Conv3x3Launch(
                input: buf(input).mem, weight: buf(weight).mem, bias: buf(bias).mem, output: buf(output).mem,
                batch: g.batch, inChannels: g.inChannels, inRow: g.inWidth, inPlane: g.inHeight * g.inWidth,
                outChannels: g.outChannels, outHeight: g.outHeight, outWidth: g.outWidth,
                weights: .forward(inChannels: g.inChannels), relu: relu, pooled: pooled.map { buf($0).mem },
                vectorWidth: tuning.vectorWidth, rowsPerItem: tuning.convRows),
            tag: "conv_fwd\(pooled == nil ? "" : "+pool") \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        convForward(g, input: input, weight: weight, bias: bias, output: output, relu: relu, pooled: nil)
    }

    /// One launch when the convolution computes two rows of an even number of pixels
    /// per work-item (vector width 2 or more): each work-item then pools its own
    /// outputs. With vector width 1, a separate max-pool launch.
    public func convBlockForward(_ block: ConvBlock) {
        let g = block.geometry
        if tuning.convRows == 2 {
            convForward(
                g, input: block.input, weight: block.weight, bias: block.bias, output: block.activation,
                relu: true, pooled: block.pooled)
        } else {
            convForward(
                g, input: block.input, weight: block.weight, bias: block.bias, output: block.activation,
                relu: true, pooled: nil)
            maxPoolForward(block.poolGeometry, input: block.activation, output: block.pooled)
        }
    }

    /// The zero-padded buffer holding the gradient of a convolution's output as the
    /// input of its data-gradient convolution: [N*OC][OH+4][pw], interior at (2, 2).
    struct PaddedGradient {
        let buffer: OpenCLBuffer
        let row: Int
        let plane: Int
        var interior: Int { 2 * row + 2 }
        var view: StridedPlanes { StridedPlanes(mem: buffer.mem, row: row, plane: plane, offset: interior) }
    }

    func paddedGradient(_ g: ConvGeometry) -> PaddedGradient? {
        let pw = ceilDiv(g.inWidth, tuning.vectorWidth) * tuning.vectorWidth + 2
        let ph = g.outHeight + 4
        guard let pad = paddedBuffer(planes: g.batch * g.outChannels, height: ph, width: pw) else { return nil }
        return PaddedGradient(buffer: pad, row: pw, plane: ph * pw)
    }

    /// The data gradient as a convolution of the padded gradient with the flipped,
    /// transposed weights: output channel c reads weight[o][c][2-ky][2-kx].
    func convDataFromPadded(_ g: ConvGeometry, _ pad: PaddedGradient, weight: any DeviceBuffer, gradInput: any DeviceBuffer) {
        launch(
            Conv3x3Launch(
                input: pad.buffer.mem, weight: buf(weight).mem, bias: nil, output: buf(gradInput).mem,
                batch: g.batch, inChannels: g.outChannels, inRow: pad.row, inPlane: pad.plane,
                outChannels: g.inChannels, outHeight: g.inHeight, outWidth: g.inWidth,
                weights: .transposedFlipped(layerInChannels: g.inChannels), relu: false, pooled: nil,
                vectorWidth: tuning.vectorWidth, rowsPerItem: tuning.convRows),
            tag: "conv_bwd_data \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dBackwardData(
        _ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        guard let pad = paddedGradient(g) else { return }
        launch(
            PadCopyLaunch(
                source: buf(gradOutput).mem, destination: pad.buffer.mem, planes: g.batch * g.outChannels,
                height: g.outHeight, width: g.outWidth, paddedRow: pad.row, vectorWidth: tuning.vectorWidth),
            tag: "conv_bwd_data.pad \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
        convDataFromPadded(g, pad, weight: weight, gradInput: gradInput)
    }

    /// How `filterPartials` splits the sums: partial rows (OC*IC*9 weights, then OC
    /// biases) times `chunks` partial sums each.
    func filterChunks(_ g: ConvGeometry) -> Int {
        switch tuning.filterKernel {
        case .rows:
            let r = min(g.outHeight, 32)
            return g.batch * ((g.outHeight + r - 1) / r)
        case .tiled:
            let r = filterTileRows(g)
            return r == 0 ? partialKernelChunks(g) : g.batch * ((g.outHeight + r - 1) / r)
        case .partial:
            return partialKernelChunks(g)
        }
    }

    /// Row chunks of the "partial" filter kernel (several images' rows may share one).
    func partialKernelChunks(_ g: ConvGeometry) -> Int {
        let rows = g.batch * g.outHeight
        let rowsPerChunk: Int
        switch tuning.partialFilterSplit {
        case .fewLongChunks: rowsPerChunk = max(8, rows / max(1, 256 / (g.outChannels * g.inChannels)))
        case .manyShortChunks: rowsPerChunk = 4
        }
        return (rows + rowsPerChunk - 1) / rowsPerChunk
    }

    /// Rows of the tiled filter kernel's local-memory tile; 0 when not even one row
    /// fits (then the "partial" kernel is used).
    func filterTileRows(_ g: ConvGeometry) -> Int {
        let l = tiledFilterGroupWidth(g)
        let budget = tuning.localMemoryBytes / 2 - l * 10 * 4
        let fit = budget / (4 * g.inWidth) - 2
        guard fit >= 1 else { return 0 }
        return min(tuning.filterTileRowLimit, fit, g.outHeight)
    }

    /// Work-items per group of the tiled filter kernel: one per output column, 32 to 256.
    func tiledFilterGroupWidth(_ g: ConvGeometry) -> Int {
        powerOfTwoGroup(min(256, max(32, g.outWidth)), .filterTiled)
    }

    /// Pass 1 of the filter (and, with `withBias`, bias) gradient into
    /// `partial[pOff ...]`, laid out as `filterChunks` says.
    func filterPartials(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: StridedPlanes, partial: OpenCLBuffer,
        pOff: Int, withBias: Bool
    ) {
        let tag = "conv_bwd_filter\(withBias ? "+bias" : "") \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)"
        let operands = FilterGradientOperands(
            input: buf(input).mem, gradOutput: gradOutput, partial: partial.mem, partialOffset: pOff,
            withBias: withBias, geometry: g)
        let chunks = filterChunks(g)
        let tileRows = tuning.filterKernel == .tiled ? filterTileRows(g) : 0
        if tuning.filterKernel == .rows {
            // Row chunks of one image per work-item; small groups so every thread gets work.
            let r = min(g.outHeight, 32)
            var l1 = 1
            while l1 * 2 <= min(64, operands.channelPairs * chunks / 64) { l1 *= 2 }
            launch(
                FilterRowsLaunch(
                    operands: operands, chunksPerImage: ceilDiv(g.outHeight, r), rowsPerChunk: r,
                    pairsPerGroup: min(l1, groupLimit(.filterRows))),
                tag: tag)
        } else if tileRows > 0 {
            launch(
                FilterTiledLaunch(operands: operands, groupWidth: tiledFilterGroupWidth(g), tileRows: tileRows, chunks: chunks),
                tag: tag)
        } else {
            let nxv = ceilDiv(g.outWidth, tuning.vectorWidth)
            let want: Int
            switch tuning.partialFilterSplit {
            case .fewLongChunks: want = min(nxv, 64)
            case .manyShortChunks: want = min(256, ceilDiv(nxv, 32) * 32)
            }
            launch(
                FilterPartialLaunch(
                    operands: operands, groupWidth: powerOfTwoGroup(want, .filterPartial), chunks: chunks,
                    rowsPerChunk: ceilDiv(g.batch * g.outHeight, chunks)),
                tag: tag)
        }
    }

    public func conv2dBackwardFilter(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradWeight: any DeviceBuffer
    ) {
        let rows = g.weightCount, chunks = filterChunks(g)
        guard let partial = scratchBuffer("filter", floats: (rows + g.outChannels) * chunks) else { return }
        filterPartials(
            g, input: input,
            gradOutput: .dense(buf(gradOutput).mem, height: g.outHeight, width: g.outWidth),
            partial: partial, pOff: 0, withBias: false)
        launch(
            ReduceRowsLaunch(partial: partial.mem, output: buf(gradWeight).mem, rows: rows, partialsPerRow: chunks),
            tag: "conv_bwd_filter.sum \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dBackwardBias(_ g: ConvGeometry, gradOutput: any DeviceBuffer, gradBias: any DeviceBuffer) {
        channelSums(
            gradOutput, n: g.batch, c: g.outChannels, p: g.outHeight * g.outWidth, into: gradBias,
            tag: "conv_bwd_bias \(g.outChannels) \(g.outHeight)x\(g.outWidth)")
    }

    /// Per block, last first: max-pool backward with the ReLU mask, written straight
    /// into the padded buffer the data gradient reads (1 launch); filter and bias
    /// partial sums from that buffer (1); the data gradient into the previous block's
    /// pooled gradient (1, not for the first block unless `gradInput` is wanted). Then
    /// one launch reduces the partial sums of every block into the gradients.
    public func convStackBackward(_ blocks: [ConvBlock], gradInput: (any DeviceBuffer)?) {
        var offsets: [Int] = [], total = 0
        for b in blocks {
            offsets.append(total)
            total += (b.geometry.weightCount + b.geometry.outChannels) * filterChunks(b.geometry)
        }
        guard let partial = scratchBuffer("filter.stack", floats: total) else { return }
        for k in blocks.indices.reversed() {
            let b = blocks[k], g = b.geometry, pg = b.poolGeometry
            guard let pad = paddedGradient(g) else { return }
            launch(
                MaxPoolBackwardLaunch(
                    input: buf(b.activation).mem, gradOutput: buf(b.gradPooled).mem, gradInput: pad.view,
                    planes: pg.batch * pg.channels, inHeight: pg.inHeight, inWidth: pg.inWidth, inputIsReLU: true),
                tag: "maxpool_bwd+relu \(pg.channels) \(pg.inHeight)x\(pg.inWidth)")
            filterPartials(
                g, input: b.input,
                gradOutput: pad.view,
                partial: partial, pOff: offsets[k], withBias: true)
            if let target = k > 0 ? blocks[k - 1].gradPooled : gradInput {
                convDataFromPadded(g, pad, weight: b.weight, gradInput: target)
            }
        }
        // Segments: each block's weight rows, then its bias rows, into their buffers.
        var segments: [(rows: Int, partial: Int, chunks: Int, destination: any DeviceBuffer)] = []
        for (k, b) in blocks.enumerated() {
            let g = b.geometry, chunks = filterChunks(g)
            segments.append((g.weightCount, offsets[k], chunks, b.gradWeight))
            segments.append((g.outChannels, offsets[k] + g.weightCount * chunks, chunks, b.gradBias))
        }
        reduceSegments(partial, segments, tag: "conv_bwd_filter+bias.sum")
    }
}
