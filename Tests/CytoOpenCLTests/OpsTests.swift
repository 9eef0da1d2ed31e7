import CytoTestSupport
import CytoCPU
import CytoCore
import XCTest

@testable import CytoOpenCL

/// Every op against CPUBackend. Tolerances (max |diff| <= atol + rtol * max|cpu|):
/// - conv forward and data gradient: rtol 1e-5 (sums of IC*9 or OC*9 products);
/// - conv filter and bias gradients: rtol 2e-5 (sums of up to N*OH*OW ~ 10^5..10^6
///   terms, summed in a different order than the CPU);
/// - pooling, ReLU, gather without rotation, metrics count: exact;
/// - dense: rtol 1e-5; softmax/cross-entropy: 1e-6 absolute on probabilities,
///   1e-5 relative on the loss sum; optimizers: rtol 1e-6.
final class OpsTests: XCTestCase {
    func convShapes() -> [ConvGeometry] {
        var r = Rand(7)
        var shapes = [
            ConvGeometry(batch: 5, inChannels: 3, outChannels: 4, inHeight: 257, inWidth: 257),
            ConvGeometry(batch: 2, inChannels: 3, outChannels: 4, inHeight: 400, inWidth: 400),
            ConvGeometry(batch: 5, inChannels: 4, outChannels: 8, inHeight: 127, inWidth: 127),
            ConvGeometry(batch: 5, inChannels: 16, outChannels: 16, inHeight: 4, inWidth: 4),
            ConvGeometry(batch: 1, inChannels: 1, outChannels: 1, inHeight: 3, inWidth: 3),
        ]
        for _ in 0..<6 {
            shapes.append(
                ConvGeometry(
                    batch: r.int(1...4), inChannels: r.int(1...9), outChannels: r.int(1...11),
                    inHeight: r.int(3...40), inWidth: r.int(3...41)))
        }
        return shapes
    }

    func testConvForward() throws {
        let ocl = try Fixture.backend()
        var r = Rand(1)
        for g in convShapes() {
            for relu in [false, true] where relu || g.inHeight < 300 {
                let x = try Pair(ocl, r.floats(g.inputCount)), w = try Pair(ocl, r.floats(g.weightCount))
                let b = try Pair(ocl, r.floats(g.outChannels)), y = try Pair(ocl, count: g.outputCount)
                ocl.conv2dForward(g, input: x.cl, weight: w.cl, bias: b.cl, output: y.cl, relu: relu)
                Fixture.cpu.conv2dForward(g, input: x.cpu, weight: w.cpu, bias: b.cpu, output: y.cpu, relu: relu)
                let (a, c) = try read(ocl, y)
                assertClose(a, c, rtol: 1e-5, atol: 1e-6, "conv forward \(g) relu \(relu)")
            }
        }
        try ocl.checkErrors()
    }

    func testConvBackwardData() throws {
        let ocl = try Fixture.backend()
        var r = Rand(2)
        for g in convShapes() {
            let gy = try Pair(ocl, r.floats(g.outputCount)), w = try Pair(ocl, r.floats(g.weightCount))
            let gx = try Pair(ocl, count: g.inputCount)
            ocl.conv2dBackwardData(g, gradOutput: gy.cl, weight: w.cl, gradInput: gx.cl)
            Fixture.cpu.conv2dBackwardData(g, gradOutput: gy.cpu, weight: w.cpu, gradInput: gx.cpu)
            let (a, c) = try read(ocl, gx)
            assertClose(a, c, rtol: 1e-5, atol: 1e-6, "conv backward data \(g)")
        }
        try ocl.checkErrors()
    }

    func testConvBackwardFilterAndBias() throws {
        let ocl = try Fixture.backend()
        var r = Rand(3)
        for g in convShapes() {
            let x = try Pair(ocl, r.floats(g.inputCount)), gy = try Pair(ocl, r.floats(g.outputCount))
            let gw = try Pair(ocl, count: g.weightCount), gb = try Pair(ocl, count: g.outChannels)
            ocl.conv2dBackwardFilter(g, input: x.cl, gradOutput: gy.cl, gradWeight: gw.cl)
            Fixture.cpu.conv2dBackwardFilter(g, input: x.cpu, gradOutput: gy.cpu, gradWeight: gw.cpu)
            ocl.conv2dBackwardBias(g, gradOutput: gy.cl, gradBias: gb.cl)
            Fixture.cpu.conv2dBackwardBias(g, gradOutput: gy.cpu, gradBias: gb.cpu)
            let (a, c) = try read(ocl, gw)
            assertClose(a, c, rtol: 2e-5, atol: 1e-5, "conv backward filter \(g)")
            let (ab, cb) = try read(ocl, gb)
            assertClose(ab, cb, rtol: 2e-5, atol: 1e-5, "conv backward bias \(g)")
        }
        try ocl.checkErrors()
    }

    func testPooling() throws {
        let ocl = try Fixture.backend()
        var r = Rand(4)
        var shapes = [
            PoolGeometry(batch: 5, channels: 4, inHeight: 255, inWidth: 255),
            PoolGeometry(batch: 2, channels: 16, inHeight: 4, inWidth: 4),
        ]
        for _ in 0..<5 {
            shapes.append(PoolGeometry(batch: r.int(1...3), channels: r.int(1...5), inHeight: r.int(2...33), inWidth: r.int(2...34)))
        }
        for g in shapes {
            // Quantised values make ties common, which exercises the first-maximum rule.
            let xv = r.floats(g.inputCount).map { ($0 * 4).rounded() / 4 }
            let x = try Pair(ocl, xv), y = try Pair(ocl, count: g.outputCount)
            let gy = try Pair(ocl, r.floats(g.outputCount)), gx = try Pair(ocl, count: g.inputCount)
            ocl.maxPoolForward(g, input: x.cl, output: y.cl)
            Fixture.cpu.maxPoolForward(g, input: x.cpu, output: y.cpu)
            ocl.maxPoolBackward(g, input: x.cl, gradOutput: gy.cl, gradInput: gx.cl)
            Fixture.cpu.maxPoolBackward(g, input: x.cpu, gradOutput: gy.cpu, gradInput: gx.cpu)
            let (a, c) = try read(ocl, y)
            assertClose(a, c, rtol: 0, "max-pool forward \(g)")
            let (ga, gc) = try read(ocl, gx)
            assertClose(ga, gc, rtol: 0, "max-pool backward \(g)")
        }
        try ocl.checkErrors()
    }

    func testElementwise() throws {
        let ocl = try Fixture.backend()
        var r = Rand(5)
        for n in [1, 7, 1000, 65_537] {
            let x = try Pair(ocl, r.floats(n)), y = try Pair(ocl, count: n), g = try Pair(ocl, r.floats(n))
            ocl.relu(count: n, input: x.cl, output: y.cl)
            Fixture.cpu.relu(count: n, input: x.cpu, output: y.cpu)
            var (a, c) = try read(ocl, y)
            XCTAssertEqual(a, c, "relu \(n)")
            ocl.reluBackward(count: n, activation: y.cl, grad: g.cl)
            Fixture.cpu.reluBackward(count: n, activation: y.cpu, grad: g.cpu)
            (a, c) = try read(ocl, g)
            XCTAssertEqual(a, c, "relu backward \(n)")
            ocl.fill(y.cl, value: 2.5, count: n - 1)
            ocl.copy(from: x.cl, to: g.cl, count: n)
            XCTAssertEqual(try ocl.read(y.cl, offset: 0, count: n - 1), [Float](repeating: 2.5, count: n - 1))
            XCTAssertEqual(try ocl.read(g.cl, offset: 0, count: n), Fixture.cpu.read(x.cpu, offset: 0, count: n))
        }
        // uint8 buffers
        let u = try ocl.makeBuffer(.uint8, count: 5, label: "u8")
        ocl.write([0, 1.4, 254.6, 300, -3], to: u, offset: 0)
        XCTAssertEqual(try ocl.read(u, offset: 0, count: 5), [0, 1, 255, 255, 0])
        ocl.fill(u, value: 9, count: 5)
        XCTAssertEqual(try ocl.read(u, offset: 1, count: 4), [9, 9, 9, 9])
        try ocl.checkErrors()
    }

    func testDense() throws {
        let ocl = try Fixture.backend()
        var r = Rand(6)
        var shapes = [
            DenseGeometry(batch: 5, inFeatures: 64, outFeatures: 32), DenseGeometry(batch: 5, inFeatures: 32, outFeatures: 2),
            DenseGeometry(batch: 32, inFeatures: 144, outFeatures: 32),
        ]
        for _ in 0..<4 { shapes.append(DenseGeometry(batch: r.int(1...40), inFeatures: r.int(1...70), outFeatures: r.int(1...35))) }
        for g in shapes {
            for relu in [false, true] {
                let x = try Pair(ocl, r.floats(g.batch * g.inFeatures)), w = try Pair(ocl, r.floats(g.outFeatures * g.inFeatures))
                let b = try Pair(ocl, r.floats(g.outFeatures)), y = try Pair(ocl, count: g.batch * g.outFeatures)
                let gy = try Pair(ocl, r.floats(g.batch * g.outFeatures)), gx = try Pair(ocl, count: g.batch * g.inFeatures)
                let gw = try Pair(ocl, count: w.count), gb = try Pair(ocl, count: b.count)
                ocl.denseForward(g, input: x.cl, weight: w.cl, bias: b.cl, output: y.cl, relu: relu)
                Fixture.cpu.denseForward(g, input: x.cpu, weight: w.cpu, bias: b.cpu, output: y.cpu, relu: relu)
                ocl.denseBackward(
                    g, input: x.cl, weight: w.cl, gradOutput: gy.cl, gradInput: relu ? gx.cl : nil, gradWeight: gw.cl, gradBias: gb.cl)
                Fixture.cpu.denseBackward(
                    g, input: x.cpu, weight: w.cpu, gradOutput: gy.cpu, gradInput: relu ? gx.cpu : nil, gradWeight: gw.cpu, gradBias: gb.cpu
                )
                for (p, name) in [(y, "forward"), (gw, "grad weight"), (gb, "grad bias")] + (relu ? [(gx, "grad input")] : []) {
                    let (a, c) = try read(ocl, p)
                    assertClose(a, c, rtol: 1e-5, atol: 1e-6, "dense \(name) \(g) relu \(relu)")
                }
            }
        }
        try ocl.checkErrors()
    }

    func testSoftmaxCrossEntropyAndMetrics() throws {
        let ocl = try Fixture.backend()
        var r = Rand(8)
        for (batch, classes) in [(5, 2), (32, 2), (7, 5), (1, 3)] {
            let z = try Pair(ocl, r.floats(batch * classes, -6, 6))
            let labels = try Pair(ocl, (0..<batch).map { _ in Float(r.int(0...(classes - 1))) })
            let p = try Pair(ocl, count: batch * classes), gz = try Pair(ocl, count: batch * classes)
            let m = try Pair(ocl, [0.5, 1, 2, 0])
            for _ in 0..<2 {  // metrics accumulate over calls
                ocl.softmaxCrossEntropy(
                    batch: batch, classes: classes, logits: z.cl, labels: labels.cl, probabilities: p.cl, gradLogits: gz.cl, metrics: m.cl)
                Fixture.cpu.softmaxCrossEntropy(
                    batch: batch, classes: classes, logits: z.cpu, labels: labels.cpu, probabilities: p.cpu, gradLogits: gz.cpu,
                    metrics: m.cpu)
            }
            var (a, c) = try read(ocl, p)
            assertClose(a, c, rtol: 0, atol: 1e-6, "softmax probabilities \(batch)x\(classes)")
            (a, c) = try read(ocl, gz)
            assertClose(a, c, rtol: 0, atol: 1e-6, "logit gradient \(batch)x\(classes)")
            (a, c) = try read(ocl, m)
            XCTAssertEqual(a[0], c[0], accuracy: 1e-5 * max(1, abs(c[0])), "loss sum")
            XCTAssertEqual(Array(a[1...3]), Array(c[1...3]), "correct and sample counts")
            // Inference softmax and the no-gradient path.
            ocl.softmaxCrossEntropy(
                batch: batch, classes: classes, logits: z.cl, labels: labels.cl, probabilities: p.cl, gradLogits: nil, metrics: m.cl)
            ocl.softmax(batch: batch, classes: classes, logits: z.cl, probabilities: gz.cl)
            Fixture.cpu.softmax(batch: batch, classes: classes, logits: z.cpu, probabilities: gz.cpu)
            (a, c) = try read(ocl, gz)
            assertClose(a, c, rtol: 0, atol: 1e-6, "softmax \(batch)x\(classes)")
            XCTAssertEqual(try ocl.read(m.cl, offset: 2, count: 1)[0], 2 + Float(3 * batch))
        }
        try ocl.checkErrors()
    }

    func testOptimizers() throws {
        let ocl = try Fixture.backend()
        var r = Rand(9)
        let updates: [OptimizerUpdate] = [
            .sgd(learningRate: 0.01, momentum: 0), .sgd(learningRate: 0.01, momentum: 0.9),
            .rmsprop(learningRate: 0.001, rho: 0.9, epsilon: 1e-7),
            .rmspropKeras2(learningRate: 0.001, rho: 0.9, epsilon: 1e-8),
            .adam(stepSize: 0.001 * (1 - 0.999).squareRoot() / (1 - 0.9), beta1: 0.9, beta2: 0.999, epsilon: 1e-7),
            .adam(stepSize: 0.001 * (1 - 0.999).squareRoot() / (1 - 0.9), beta1: 0.9, beta2: 0.999, epsilon: 1e-8),
        ]
        for u in updates {
            let n = 1031
            let p = try Pair(ocl, r.floats(n)), s1 = try Pair(ocl, count: n, fill: 0), s2 = try Pair(ocl, count: n, fill: 0)
            for step in 0..<3 {
                // Gradients from 1e-6 to 1 in magnitude: below ~3e-4 the two RMSprop forms differ.
                let g = try Pair(ocl, r.floats(n).enumerated().map { $1 * powf(10, -Float(($0 + step) % 7)) })
                ocl.optimizerStep(u, count: n, parameters: p.cl, gradients: g.cl, state1: s1.cl, state2: s2.cl)
                Fixture.cpu.optimizerStep(u, count: n, parameters: p.cpu, gradients: g.cpu, state1: s1.cpu, state2: s2.cpu)
            }
            let (a, c) = try read(ocl, p)
            assertClose(a, c, rtol: 1e-6, atol: 1e-7, "\(u)")
        }
        try ocl.checkErrors()
    }

    func testGatherBatch() throws {
        let ocl = try Fixture.backend()
        var r = Rand(10)
        for geo in [
            ImageGeometry(height: 257, width: 257), ImageGeometry(height: 31, width: 46, channels: 3),
            ImageGeometry(height: 20, width: 17, channels: 1),
        ] {
            let images = 4
            let pixels = (0..<(images * geo.pixelsPerImage)).map { _ in UInt8(r.int(0...255)) }
            let icl = try ocl.makeBuffer(.uint8, count: pixels.count, label: "images")
            let icpu = try Fixture.cpu.makeBuffer(.uint8, count: pixels.count, label: "images")
            pixels.withUnsafeBytes {
                ocl.write(bytes: $0, to: icl, byteOffset: 0); Fixture.cpu.write(bytes: $0, to: icpu, byteOffset: 0)
            }
            let indices: [Int32] = [3, 0, 2, 2, 1]
            let out = try Pair(ocl, count: indices.count * geo.pixelsPerImage)
            // No transform: exact.
            ocl.gatherBatch(images: icl, geometry: geo, indices: indices, transforms: nil, output: out.cl)
            Fixture.cpu.gatherBatch(images: icpu, geometry: geo, indices: indices, transforms: nil, output: out.cpu)
            var (a, c) = try read(ocl, out)
            XCTAssertEqual(a, c, "gather without transforms \(geo)")
            // Flips and identity: exact.
            let flips = (0..<indices.count).map { i in AugmentTransform(degrees: 0, flipHorizontal: i % 2 == 0, flipVertical: i % 3 == 0) }
            ocl.gatherBatch(images: icl, geometry: geo, indices: indices, transforms: flips, output: out.cl)
            Fixture.cpu.gatherBatch(images: icpu, geometry: geo, indices: indices, transforms: flips, output: out.cpu)
            (a, c) = try read(ocl, out)
            XCTAssertEqual(a, c, "gather with flips \(geo)")
            // Random rotations with either sampler: the same float operations on both
            // sides (affine map, no contraction), so the batches are identical.
            for sampler in AugmentSampler.allCases {
                var g = SeededGenerator(seed: 42)
                let rot = (0..<indices.count).map { _ in AugmentTransform.random(using: &g, sampler: sampler) }
                ocl.gatherBatch(images: icl, geometry: geo, indices: indices, transforms: rot, output: out.cl)
                Fixture.cpu.gatherBatch(images: icpu, geometry: geo, indices: indices, transforms: rot, output: out.cpu)
                (a, c) = try read(ocl, out)
                let off = zip(a, c).filter { $0 != $1 }.count
                XCTAssertEqual(off, 0, "\(sampler) rotation: \(off) of \(a.count) values differ between OpenCL and the CPU (\(geo))")
            }
        }
        try ocl.checkErrors()
    }
}
