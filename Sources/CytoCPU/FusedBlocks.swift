import CytoCore

/// The CPU backend's fused convolution blocks. A block's activation at 257x257 is
/// 1 MB per image, so running conv, ReLU, pooling and their backward passes as
/// separate sweeps over it streams it through memory several times. These do each
/// block in one pass per direction, on rows that are still in cache.
extension CPUBackend {
    /// Conv + ReLU, then max-pooling of each pair of output rows as soon as both exist.
    /// Tasks are (image, pooled row); the task of an odd height's last pooled row also
    /// computes the conv row that pooling drops. Without `keepActivation` the conv rows
    /// go to the task's own few rows of scratch instead of the full-size activation
    /// buffer, so inference never streams that buffer through memory. With it, each
    /// window's route (`routes(of:)`) is written for the backward pass, and the conv
    /// rows go to the activation buffer only if the caller reads it (`activationRead`);
    /// a training step's do not.
    public func convBlockForward(_ block: ConvBlock) {
        timed("convBlockForward") {
            let g = block.geometry
            let inp = buf(block.input).floats, wt = buf(block.weight).floats, bs = buf(block.bias).floats
            let act = buf(block.activation).floats, pooled = buf(block.pooled).floats
            let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
            let Ho = g.outHeight, Wo = g.outWidth, Hq = Ho / 2, Wq = Wo / 2
            guard Hq > 0 else {
                conv2dForward(g, input: block.input, weight: block.weight, bias: block.bias, output: block.activation, relu: true)
                return
            }
            let writeActivation = block.keepActivation && block.activationRead
            let routes = block.keepActivation ? self.routes(of: buf(block.activation), count: g.batch * O * Hq * Wq) : nil
            parallelFor(g.batch * Hq, minPerChunk: 2) { items in
                // Scratch for three conv rows of every channel (planes 3 rows apart);
                // 19 KB at most for the paper's network.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: writeActivation ? 1 : O * 3 * Wo + 64) { rowsBuffer in
                    for item in items {
                        let n = item / Hq, y = item % Hq
                        // Conv row `row` of channel o is at `base + o * plane + row * Wo`.
                        let base = writeActivation ? act + n * O * Ho * Wo : rowsBuffer.baseAddress! - 2 * y * Wo
                        let plane = writeActivation ? Ho * Wo : 3 * Wo
                        let convRows = y == Hq - 1 ? Ho - 2 * y : 2
                        for r in 0..<convRows {
                            let row = 2 * y + r
                            kernels.convForwardRow(
                                inp + n * C * H * W + row * W, H * W, W, C, wt, bs, base + row * Wo, plane, O, Wo, true)
                        }
                        for o in 0..<O {
                            let top = UnsafePointer(base + o * plane + 2 * y * Wo)
                            let at = ((n * O + o) * Hq + y) * Wq
                            if let routes {
                                kernels.poolForwardRowRoutes(top, top + Wo, pooled + at, routes + at, Wq)
                            } else {
                                kernels.poolForwardRow(top, top + Wo, pooled + at, Wq)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Per block, last first: one parallel pass over (image, block of rows) tasks that
    /// runs max-pool backward and ReLU backward for the task's rows (summing the bias
    /// gradient on the way) and then the filter gradient over those same rows while
    /// they are in cache; then the input gradient. Where the input gradient runs
    /// through the forward kernel, the activation gradient is written straight into the
    /// zero-bordered buffer that kernel reads (no padded copy); where no input gradient
    /// is needed (the first block when training) it never leaves the task's scratch.
    ///
    /// Where the whole batch's zero-bordered gradient would not stay in a core's L2
    /// (`paddedImageAtATime`: conv2 at 257x257 is 2.6 MB at batch 5), both passes run
    /// one image at a time on one image's bordered buffer, so the input gradient reads
    /// what the pass before it has just written from L2, not from L3 or memory. The
    /// tasks, the order of every sum and the per-task partial sums (added in task
    /// order at the end) are the same either way, so the results are identical.
    public func convStackBackward(_ blocks: [ConvBlock], gradInput: (any DeviceBuffer)?) {
        for k in blocks.indices.reversed() {
            let b = blocks[k], g = b.geometry
            let target = k > 0 ? blocks[k - 1].gradPooled : gradInput
            let padded = target != nil && backwardDataUsesForwardKernel(g)
            let Ho = g.outHeight, Wo = g.outWidth, N = g.batch
            let blockRoutes = routes(of: buf(b.activation), count: N * g.outChannels * (Ho / 2) * (Wo / 2))
            let imageAtATime = padded && paddedImageAtATime(g)
            let partial = scratch(N * backwardTasksPerImage(g) * backwardSumsPerTask(g))
            let wt = buf(b.weight).floats
            let flipped = padded ? flippedWeights(g, wt) : []
            let calls: [Range<Int>] = imageAtATime ? (0..<N).map({ $0..<($0 + 1) }) : [0..<N]
            for images in calls {
                timed("poolReluFilterBackward") {
                    let destination: ActivationGradient
                    if padded {
                        let base = paddedGradient(g, images: images.count)
                        destination = .shared(base: base + 2 * (Wo + 4) + 2, row: Wo + 4, plane: (Ho + 4) * (Wo + 4))
                    } else if target != nil {
                        destination = .shared(base: buf(b.gradActivation).floats, row: Wo, plane: Ho * Wo)
                    } else {
                        destination = .taskScratch
                    }
                    blockBackward(
                        g, images: images, input: buf(b.input).floats, routes: blockRoutes, gradPooled: buf(b.gradPooled).floats,
                        destination: destination, partial: partial)
                }
                if let target {
                    timed("conv2dBackwardData") {
                        let gi = buf(target).floats
                        if padded {
                            backwardDataFromPadded(
                                g, images: images, padded: paddedGradient(g, images: images.count), flipped: flipped, gradInput: gi)
                        } else {
                            backwardDataScatter(
                                g, gradOutput: buf(b.gradActivation).floats, gradRow: g.outWidth,
                                gradPlane: g.outHeight * g.outWidth, weight: wt, gradInput: gi)
                        }
                    }
                }
            }
            timed("poolReluFilterBackward") {
                sumTaskPartials(g, partial: partial, gradWeight: buf(b.gradWeight).floats, gradBias: buf(b.gradBias).floats)
            }
        }
    }

    /// Whether `convStackBackward` runs a block one image at a time: where the batch's
    /// zero-bordered gradient is larger than `paddedImageAtATimeBytes` and there is
    /// more than one image.
    func paddedImageAtATime(_ g: ConvGeometry) -> Bool {
        g.batch > 1 && g.batch * g.outChannels * (g.outHeight + 4) * (g.outWidth + 4) * 4 > paddedImageAtATimeBytes
    }

    /// Where `blockBackward` puts the gradient of the conv output.
    enum ActivationGradient {
        /// A buffer the input gradient reads afterwards: plane (n, o) starts at
        /// `base + (n * O + o) * plane`, rows `row` floats apart.
        case shared(base: UnsafeMutablePointer<Float>, row: Int, plane: Int)
        /// Nowhere outside the task: each task keeps its rows in its own scratch.
        case taskScratch
    }

    /// Rows of conv output per task of `blockBackward` (even: pooling pairs rows).
    static let backwardRowsPerTask = 16

    /// Tasks of `blockBackward` per image, and the partial sums each task writes.
    func backwardTasksPerImage(_ g: ConvGeometry) -> Int { (g.outHeight + Self.backwardRowsPerTask - 1) / Self.backwardRowsPerTask }
    func backwardSumsPerTask(_ g: ConvGeometry) -> Int { g.outChannels * g.inChannels * 9 + g.outChannels }

    /// Max-pool backward + ReLU backward + bias and filter gradients of one block, for
    /// the images `images`. Tasks are (image, block of 16 output rows); task t (counted
    /// over the whole batch) writes its own partial weight and bias sums at
    /// `partial + t * backwardSumsPerTask(g)`, which `sumTaskPartials` then adds in
    /// task order, so the result depends neither on the thread count nor on how the
    /// images were split between calls. A `.shared` destination holds the images of
    /// this call only, the first at its base.
    func blockBackward(
        _ g: ConvGeometry, images: Range<Int>, input inp: UnsafeMutablePointer<Float>, routes: UnsafeMutablePointer<UInt8>,
        gradPooled gp: UnsafeMutablePointer<Float>, destination: ActivationGradient, partial: UnsafeMutablePointer<Float>
    ) {
        let C = g.inChannels, O = g.outChannels, H = g.inHeight, W = g.inWidth
        let Ho = g.outHeight, Wo = g.outWidth, Hq = Ho / 2, Wq = Wo / 2
        let rowsPerTask = Self.backwardRowsPerTask
        let blocks = backwardTasksPerImage(g)
        let tasks = images.count * blocks, firstTask = images.lowerBound * blocks, per = backwardSumsPerTask(g)
        // Scratch rows for `.taskScratch`: a slab of O planes of rowsPerTask rows per
        // task. A range of tasks runs on one thread and reuses the slab of its first
        // task, so its rows stay in that core's L2 (a slab per task touched 5 MB per
        // step at conv1, 257x257, batch 5: more than L2 holds).
        let slab = O * rowsPerTask * Wo
        var taskRows: UnsafeMutablePointer<Float>?
        if case .taskScratch = destination { taskRows = scratch(tasks * slab, for: .taskRows) }
        parallelFor(tasks) { range in
            for local in range {
                let t = firstTask + local
                let n = t / blocks, y0 = (t % blocks) * rowsPerTask
                let y1 = min(Ho, y0 + rowsPerTask)
                let sums = partial + t * per
                // `origin(o) + y * row` is conv output row y of channel o (y in y0..<y1).
                let origin: (Int) -> UnsafeMutablePointer<Float>, row: Int
                switch destination {
                case let .shared(b, r, p):
                    origin = { o in b + ((n - images.lowerBound) * O + o) * p }; row = r
                case .taskScratch:
                    let mine = taskRows! + range.lowerBound * slab
                    origin = { o in mine + o * rowsPerTask * Wo - y0 * Wo }; row = Wo
                }
                for o in 0..<O {
                    let d = origin(o)
                    var bias: Float = 0
                    var y = y0
                    while y + 1 < y1 && y / 2 < Hq {
                        let at = ((n * O + o) * Hq + y / 2) * Wq
                        bias += kernels.poolReluBackwardRoutesRow(
                            UnsafePointer(routes + at), UnsafePointer(gp + at), d + y * row, d + (y + 1) * row, Wo, Wq)
                        y += 2
                    }
                    if y < y1 { (d + y * row).update(repeating: 0, count: Wo) }  // odd height's last row
                    sums[O * C * 9 + o] = bias
                }
                var o = 0
                if Wo >= kernels.quadFilterMinWidth {
                    while o + 4 <= O {
                        let d0 = origin(o)
                        for c in 0..<C {
                            kernels.convFilterGradientQuad(
                                inp, d0, origin(o + 1) - d0, row, n, y0..<y1, c, C, H, W, Wo, sums + (o * C + c) * 9, C * 9)
                        }
                        o += 4
                    }
                }
                while o + 2 <= O {
                    let d0 = origin(o), d1 = origin(o + 1)
                    for c in 0..<C {
                        kernels.convFilterGradientPair(
                            inp, d0, d1, row, n, y0..<y1, c, C, H, W, Wo, sums + (o * C + c) * 9, sums + ((o + 1) * C + c) * 9)
                    }
                    o += 2
                }
                if o < O {
                    let d = origin(o)
                    for c in 0..<C {
                        kernels.convFilterGradient(inp, d, row, n, y0..<y1, c, C, H, W, Wo, sums + (o * C + c) * 9)
                    }
                }
            }
        }
    }

    /// The weight and bias gradients of a block: `blockBackward`'s partial sums of
    /// every task of the batch, added in task order.
    func sumTaskPartials(
        _ g: ConvGeometry, partial: UnsafeMutablePointer<Float>, gradWeight gw: UnsafeMutablePointer<Float>,
        gradBias gb: UnsafeMutablePointer<Float>
    ) {
        let tasks = g.batch * backwardTasksPerImage(g), per = backwardSumsPerTask(g), filter = g.outChannels * g.inChannels * 9
        for k in 0..<per {
            var total: Float = 0
            for t in 0..<tasks { total += partial[t * per + k] }
            if k < filter { gw[k] = total } else { gb[k - filter] = total }
        }
    }
}
