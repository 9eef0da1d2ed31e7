import CytoCore
import XCTest

@testable import CytoCPU

/// The CPU backend's fused conv blocks (`convBlockForward`, `convStackBackward`)
/// against the same computation op by op (conv + ReLU, max-pool, max-pool backward,
/// ReLU backward, filter, bias and input gradients, each checked against direct loops
/// in `NaiveReferenceTests`), on every kernel path this CPU runs. The shapes cover
/// odd and even heights and widths (dropped pooling rows and columns), channel counts
/// that are odd (the filter gradient's two-channel kernel has a remainder) or not a
/// multiple of four (the input gradient's scatter path), rows wider than one vector
/// and narrower (the forward kernel's one-vector path), rows wide enough for AVX2's
/// and AVX-512's four-channel filter-gradient kernels, and more rows than one 16-row task.
final class FusedBlockTests: XCTestCase {
    struct Case { var batch: Int; var sizes: [Int]; var channels: [Int] }

    /// Two-block stacks: `sizes[0]` is the input side, `channels` = [in, block 1, block 2].
    let cases = [
        Case(batch: 2, sizes: [41, 39], channels: [3, 4, 8]),
        Case(batch: 3, sizes: [22, 23], channels: [4, 3, 5]),
        Case(batch: 1, sizes: [70, 44], channels: [8, 8, 16]),
        // Rows wide enough for AVX2's four-channel filter-gradient kernel, with a
        // one-channel remainder (5 = 4 + 1) and a six-lane tail that pooling keeps
        // (102 = 12 x 8 + 6; an odd width's last column gets no gradient).
        Case(batch: 2, sizes: [52, 104], channels: [3, 5, 4]),
        // Rows wide enough for AVX-512's four-channel filter-gradient kernel (169 >= 160),
        // with a one-channel remainder and a nine-lane tail; their pooling rows (84
        // windows) end in a partial vector on both paths (the backward's overlapped
        // last vector).
        Case(batch: 1, sizes: [10, 171], channels: [3, 5, 4]),
        // conv5 and conv6 of the paper's network at 257: rows narrower than one vector
        // (10 and 3 wide: the forward kernel's one-vector path, forward and in the
        // input gradient through the padded route).
        Case(batch: 2, sizes: [14, 12], channels: [8, 8, 16]),
    ]

    func testFusedBlocksEqualTheOpsTheyFuse() throws {
        for path in CPUPath.supported {
            for c in cases {
                // Without an input gradient as in a training step, whose forward keeps
                // only the pooling routes; with one as saliency, which reads the activations.
                try check(c, path: path, inputGradient: false, activationRead: false)
                try check(c, path: path, inputGradient: true, activationRead: true)
            }
        }
    }

    /// Where a block's zero-bordered gradient is too large for L2, the backward pass
    /// runs one image at a time; its weight, bias and input gradients must be exactly
    /// those of the whole batch at once (the same tasks and sums in the same order).
    func testBackwardOneImageAtATimeEqualsTheWholeBatch() throws {
        let geometries = [
            ConvGeometry(batch: 3, inChannels: 4, outChannels: 4, inHeight: 38, inWidth: 41),
            ConvGeometry(batch: 3, inChannels: 4, outChannels: 8, inHeight: 18, inWidth: 19),
        ]
        for path in CPUPath.supported {
            var results: [[[Float]]] = []
            for limit in [Int.max, 0] {
                let backend = CPUBackend(threads: 2, path: path)
                backend.paddedImageAtATimeBytes = limit
                XCTAssertEqual(geometries.map(backend.paddedImageAtATime), [limit == 0, limit == 0])
                var rng = SeededGenerator(seed: 11)
                let blocks = try makeBlocks(backend, geometries, &rng)
                let gradInput = try upload(backend, [Float](repeating: 7, count: geometries[0].inputCount))
                for var b in blocks {
                    b.activationRead = false
                    backend.convBlockForward(b)
                }
                backend.convStackBackward(blocks, gradInput: gradInput)
                var out: [[Float]] = []
                for b in blocks {
                    out.append(backend.read(b.gradWeight, offset: 0, count: b.geometry.weightCount))
                    out.append(backend.read(b.gradBias, offset: 0, count: b.geometry.outChannels))
                }
                out.append(backend.read(blocks[0].gradPooled, offset: 0, count: blocks[0].poolGeometry.outputCount))
                out.append(backend.read(gradInput, offset: 0, count: geometries[0].inputCount))
                results.append(out)
            }
            XCTAssertEqual(results[0], results[1], "\(path)")
        }
    }

    /// Inference may skip writing the activations; the pooled outputs must not change.
    func testInferenceWithoutKeptActivationsGivesTheSamePooledOutput() throws {
        for path in CPUPath.supported {
            let backend = CPUBackend(threads: 2, path: path)
            var rng = SeededGenerator(seed: 5)
            let g = ConvGeometry(batch: 2, inChannels: 3, outChannels: 4, inHeight: 37, inWidth: 52)
            let blocks = try makeBlocks(backend, [g], &rng)
            backend.convBlockForward(blocks[0])
            let kept = backend.read(blocks[0].pooled, offset: 0, count: blocks[0].poolGeometry.outputCount)
            backend.fill(blocks[0].pooled, value: -1, count: blocks[0].poolGeometry.outputCount)
            var inference = blocks[0]
            inference.keepActivation = false
            backend.convBlockForward(inference)
            XCTAssertEqual(backend.read(blocks[0].pooled, offset: 0, count: blocks[0].poolGeometry.outputCount), kept, "\(path)")
        }
    }

    func upload(_ backend: CPUBackend, _ v: [Float]) throws -> any DeviceBuffer {
        let b = try backend.makeBuffer(.float32, count: v.count, label: "t")
        backend.write(v, to: b, offset: 0)
        return b
    }

    func makeBlocks(_ backend: CPUBackend, _ geometries: [ConvGeometry], _ rng: inout SeededGenerator) throws -> [ConvBlock] {
        func random(_ n: Int, _ scale: Float, _ offset: Float = 0) -> [Float] {
            (0..<n).map { _ in (rng.nextUnitFloat() - 0.5) * scale + offset }
        }
        var blocks: [ConvBlock] = []
        var input = try upload(backend, random(geometries[0].inputCount, 2, 0.5))
        for g in geometries {
            let pool = PoolGeometry(batch: g.batch, channels: g.outChannels, inHeight: g.outHeight, inWidth: g.outWidth)
            let block = ConvBlock(
                geometry: g, input: input, weight: try upload(backend, random(g.weightCount, 1)),
                bias: try upload(backend, random(g.outChannels, 0.2, 0.02)),
                activation: try upload(backend, random(g.outputCount, 1)), pooled: try upload(backend, random(pool.outputCount, 1)),
                gradWeight: try upload(backend, random(g.weightCount, 1)), gradBias: try upload(backend, random(g.outChannels, 1)),
                gradActivation: try upload(backend, random(g.outputCount, 1)),
                gradPooled: try upload(backend, random(pool.outputCount, 2)))
            blocks.append(block)
            input = block.pooled
        }
        return blocks
    }

    func check(_ c: Case, path: CPUPath, inputGradient: Bool, activationRead: Bool) throws {
        let backend = CPUBackend(threads: 2, path: path)
        var geometries: [ConvGeometry] = []
        var h = c.sizes[0], w = c.sizes[1]
        for k in 1..<c.channels.count {
            geometries.append(ConvGeometry(batch: c.batch, inChannels: c.channels[k - 1], outChannels: c.channels[k], inHeight: h, inWidth: w))
            h = (h - 2) / 2; w = (w - 2) / 2
        }
        var rng = SeededGenerator(seed: UInt64(c.sizes[0] * 31 + c.sizes[1]))
        let blocks = try makeBlocks(backend, geometries, &rng)
        let top = blocks[blocks.count - 1]
        let topGradient = backend.read(top.gradPooled, offset: 0, count: top.poolGeometry.outputCount)
        let gradInput = try upload(backend, [Float](repeating: 7, count: geometries[0].inputCount))

        // Fused.
        for var b in blocks {
            b.activationRead = activationRead
            backend.convBlockForward(b)
        }
        backend.convStackBackward(blocks, gradInput: inputGradient ? gradInput : nil)
        func snapshot() -> [[Float]] {
            var out: [[Float]] = []
            for b in blocks {
                out.append(backend.read(b.pooled, offset: 0, count: b.poolGeometry.outputCount))
                out.append(backend.read(b.gradWeight, offset: 0, count: b.geometry.weightCount))
                out.append(backend.read(b.gradBias, offset: 0, count: b.geometry.outChannels))
            }
            for b in blocks.dropLast() { out.append(backend.read(b.gradPooled, offset: 0, count: b.poolGeometry.outputCount)) }
            if inputGradient { out.append(backend.read(gradInput, offset: 0, count: geometries[0].inputCount)) }
            return out
        }
        let fused = snapshot()

        // Op by op, from the same top gradient.
        backend.write(topGradient, to: top.gradPooled, offset: 0)
        for b in blocks {
            backend.conv2dForward(b.geometry, input: b.input, weight: b.weight, bias: b.bias, output: b.activation, relu: true)
            backend.maxPoolForward(b.poolGeometry, input: b.activation, output: b.pooled)
        }
        for k in blocks.indices.reversed() {
            let b = blocks[k], g = b.geometry
            backend.maxPoolBackward(b.poolGeometry, input: b.activation, gradOutput: b.gradPooled, gradInput: b.gradActivation)
            backend.reluBackward(count: g.outputCount, activation: b.activation, grad: b.gradActivation)
            backend.conv2dBackwardFilter(g, input: b.input, gradOutput: b.gradActivation, gradWeight: b.gradWeight)
            backend.conv2dBackwardBias(g, gradOutput: b.gradActivation, gradBias: b.gradBias)
            if let target = k > 0 ? blocks[k - 1].gradPooled : (inputGradient ? gradInput : nil) {
                backend.conv2dBackwardData(g, gradOutput: b.gradActivation, weight: b.weight, gradInput: target)
            }
        }
        let reference = snapshot()

        XCTAssertEqual(fused.count, reference.count)
        for (i, (a, r)) in zip(fused, reference).enumerated() {
            XCTAssertEqual(a.count, r.count)
            let scale = r.map(abs).max() ?? 0
            let err = zip(a, r).map { abs($0 - $1) }.max() ?? 0
            // Sums run in another order (per task, then in task order), so allow rounding.
            XCTAssertLessThanOrEqual(err, 2e-5 * max(1, scale), "tensor \(i), \(c.sizes) \(c.channels) \(path) input gradient \(inputGradient), activation read \(activationRead)")
        }
        // Pooled outputs and the routing of every gradient are exact, not approximate.
        XCTAssertEqual(fused[0], reference[0], "pooled output of block 1, \(path)")
    }
}
