import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    static let ocb = 4
    var vectorWidth: Int { tuning.vectorWidth }
    var convRows: Int { tuning.convRows }

    func convForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        output: any DeviceBuffer, relu: Bool, pooled: (any DeviceBuffer)?
    ) {
        let nxv = (g.outWidth + vectorWidth - 1) / vectorWidth
        let nob = (g.outChannels + Self.ocb - 1) / Self.ocb
        launch(
            "conv3x3", "conv.cl",
            [
                .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(bias).mem), .mem(buf(output).mem),
                .int(g.batch), .int(g.inChannels), .int(g.inWidth), .int(g.inHeight * g.inWidth),
                .int(g.outChannels), .int(g.outHeight), .int(g.outWidth),
                .int(0), .int(g.inChannels * 9), .int(9), .int(3), .int(1), .int(1), .int(relu ? 1 : 0),
                .mem(buf(pooled ?? output).mem), .int(pooled == nil ? 0 : 1),
            ],
            global: [nxv, (g.outHeight + convRows - 1) / convRows, g.batch * nob],
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
        if convRows == 2 {
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
    }

    func paddedGradient(_ g: ConvGeometry) -> PaddedGradient? {
        let pw = (g.inWidth + vectorWidth - 1) / vectorWidth * vectorWidth + 2
        let ph = g.outHeight + 4
        guard let pad = paddedBuffer(planes: g.batch * g.outChannels, height: ph, width: pw) else { return nil }
        return PaddedGradient(buffer: pad, row: pw, plane: ph * pw)
    }

    /// The data gradient as a convolution of the padded gradient with the flipped,
    /// transposed weights: output channel c reads weight[o][c][2-ky][2-kx].
    func convDataFromPadded(_ g: ConvGeometry, _ pad: PaddedGradient, weight: any DeviceBuffer, gradInput: any DeviceBuffer) {
        let vw = vectorWidth
        let nxv = (g.inWidth + vw - 1) / vw
        let nob = (g.inChannels + Self.ocb - 1) / Self.ocb
        let w = buf(weight).mem
        launch(
            "conv3x3", "conv.cl",
            [
                .mem(pad.buffer.mem), .mem(w), .mem(w), .mem(buf(gradInput).mem),
                .int(g.batch), .int(g.outChannels), .int(pad.row), .int(pad.plane),
                .int(g.inChannels), .int(g.inHeight), .int(g.inWidth),
                .int(8), .int(9), .int(g.inChannels * 9), .int(-3), .int(-1), .int(0), .int(0),
                .mem(buf(gradInput).mem), .int(0),
            ],
            global: [nxv, (g.inHeight + convRows - 1) / convRows, g.batch * nob],
            tag: "conv_bwd_data \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
    }

    public func conv2dBackwardData(
        _ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        let vw = vectorWidth
        guard let pad = paddedGradient(g) else { return }
        let planes = g.batch * g.outChannels
        launch(
            "pad_copy", "conv.cl",
            [.mem(buf(gradOutput).mem), .mem(pad.buffer.mem), .int(planes), .int(g.outHeight), .int(g.outWidth), .int(pad.row)],
            global: [(g.outWidth + vw - 1) / vw, g.outHeight, planes],
            tag: "conv_bwd_data.pad \(g.outChannels)->\(g.inChannels) \(g.inHeight)x\(g.inWidth)")
        convDataFromPadded(g, pad, weight: weight, gradInput: gradInput)
    }

    /// Where a filter-gradient kernel reads gradOut: a dense gradient or the interior
    /// of a padded one (strides in floats).
    struct GradientView {
        let mem: cl_mem
        let row: Int
        let plane: Int
        let offset: Int
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
        let l = powerOfTwoGroup(min(256, max(32, g.outWidth)), "conv3x3_filter_tiled", "conv.cl")
        let budget = tuning.localMemoryBytes / 2 - l * 10 * 4
        let fit = budget / (4 * g.inWidth) - 2
        guard fit >= 1 else { return 0 }
        return min(tuning.filterTileRowLimit, fit, g.outHeight)
    }

    /// Pass 1 of the filter (and, with `withBias`, bias) gradient into
    /// `partial[pOff ...]`, laid out as `filterChunks` says.
    func filterPartials(
        _ g: ConvGeometry, input: any DeviceBuffer, gradOutput: GradientView, partial: OpenCLBuffer,
        pOff: Int, withBias: Bool
    ) {
        let tag = "conv_bwd_filter\(withBias ? "+bias" : "") \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)"
        let pairs = g.outChannels * g.inChannels
        let chunks = filterChunks(g)
        let view: [Arg] = [.int(gradOutput.row), .int(gradOutput.plane), .int(gradOutput.offset), .int(withBias ? 1 : 0), .int(pOff)]
        let tileRows = tuning.filterKernel == .tiled ? filterTileRows(g) : 0
        if tuning.filterKernel == .rows {
            // Row chunks of one image per work-item; small groups so every thread gets work.
            let r = min(g.outHeight, 32)
            let cpn = (g.outHeight + r - 1) / r
            var l1 = 1
            while l1 * 2 <= min(64, pairs * chunks / 64) { l1 *= 2 }
            launch(
                "conv3x3_filter_rows", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(cpn), .int(r),
                ] + view,
                global: [chunks, pairs], local: [1, min(l1, groupLimit("conv3x3_filter_rows", "conv.cl"))], tag: tag)
        } else if tileRows > 0 {
            let l = powerOfTwoGroup(min(256, max(32, g.outWidth)), "conv3x3_filter_tiled", "conv.cl")
            let nob = (g.outChannels + 3) / 4
            launch(
                "conv3x3_filter_tiled", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem),
                    .local((tileRows + 2) * g.inWidth * 4), .local(l * 10 * 4),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(tileRows),
                ] + view,
                global: [l, chunks, g.inChannels * nob], local: [l, 1, 1], tag: tag)
        } else {
            let nxv = (g.outWidth + vectorWidth - 1) / vectorWidth
            let want: Int
            switch tuning.partialFilterSplit {
            case .fewLongChunks: want = min(nxv, 64)
            case .manyShortChunks: want = min(256, (nxv + 31) / 32 * 32)
            }
            let l = powerOfTwoGroup(want, "conv3x3_filter_partial", "conv.cl")
            let rowsPerChunk = (g.batch * g.outHeight + chunks - 1) / chunks
            launch(
                "conv3x3_filter_partial", "conv.cl",
                [
                    .mem(buf(input).mem), .mem(gradOutput.mem), .mem(partial.mem), .local(l * 10 * 4),
                    .int(g.batch), .int(g.inChannels), .int(g.inHeight), .int(g.inWidth), .int(g.outChannels),
                    .int(chunks), .int(rowsPerChunk),
                ] + view,
                global: [l, chunks, pairs], local: [l, 1, 1], tag: tag)
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
            gradOutput: GradientView(mem: buf(gradOutput).mem, row: g.outWidth, plane: g.outHeight * g.outWidth, offset: 0),
            partial: partial, pOff: 0, withBias: false)
        launch(
            "reduce_rows", "reduce.cl", [.mem(partial.mem), .mem(buf(gradWeight).mem), .int(rows), .int(chunks)],
            global: [rows], tag: "conv_bwd_filter.sum \(g.inChannels)->\(g.outChannels) \(g.inHeight)x\(g.inWidth)")
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
                "maxpool_bwd", "pool.cl",
                [
                    .mem(buf(b.activation).mem), .mem(buf(b.gradPooled).mem), .mem(pad.buffer.mem),
                    .int(pg.batch * pg.channels), .int(pg.inHeight), .int(pg.inWidth),
                    .int(1), .int(pad.row), .int(pad.plane), .int(pad.interior),
                ],
                global: [(pg.inWidth + 15) / 16, (pg.inHeight + 1) / 2, pg.batch * pg.channels],
                tag: "maxpool_bwd+relu \(pg.channels) \(pg.inHeight)x\(pg.inWidth)")
            filterPartials(
                g, input: b.input,
                gradOutput: GradientView(mem: pad.buffer.mem, row: pad.row, plane: pad.plane, offset: pad.interior),
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
