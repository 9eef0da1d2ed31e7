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
                onBoth(ocl) { be, on in be.conv2dForward(g, input: on(x), weight: on(w), bias: on(b), output: on(y), relu: relu) }
                try assertBackendsAgree(ocl, y, rtol: 1e-5, atol: 1e-6, "conv forward \(g) relu \(relu)")
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
            onBoth(ocl) { be, on in be.conv2dBackwardData(g, gradOutput: on(gy), weight: on(w), gradInput: on(gx)) }
            try assertBackendsAgree(ocl, gx, rtol: 1e-5, atol: 1e-6, "conv backward data \(g)")
        }
        try ocl.checkErrors()
    }

    func testConvBackwardFilterAndBias() throws {
        let ocl = try Fixture.backend()
        var r = Rand(3)
        for g in convShapes() {
            let x = try Pair(ocl, r.floats(g.inputCount)), gy = try Pair(ocl, r.floats(g.outputCount))
            let gw = try Pair(ocl, count: g.weightCount), gb = try Pair(ocl, count: g.outChannels)
            onBoth(ocl) { be, on in
                be.conv2dBackwardFilter(g, input: on(x), gradOutput: on(gy), gradWeight: on(gw))
                be.conv2dBackwardBias(g, gradOutput: on(gy), gradBias: on(gb))
            }
            try assertBackendsAgree(ocl, gw, rtol: 2e-5, atol: 1e-5, "conv backward filter \(g)")
            try assertBackendsAgree(ocl, gb, rtol: 2e-5, atol: 1e-5, "conv backward bias \(g)")
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
            onBoth(ocl) { be, on in
                be.maxPoolForward(g, input: on(x), output: on(y))
                be.maxPoolBackward(g, input: on(x), gradOutput: on(gy), gradInput: on(gx))
            }
            try assertBackendsAgree(ocl, y, rtol: 0, "max-pool forward \(g)")
            try assertBackendsAgree(ocl, gx, rtol: 0, "max-pool backward \(g)")
        }
        try ocl.checkErrors()
    }

    func testElementwise() throws {
        let ocl = try Fixture.backend()
        var r = Rand(5)
        for n in [1, 7, 1000, 65_537] {
            let x = try Pair(ocl, r.floats(n)), y = try Pair(ocl, count: n), g = try Pair(ocl, r.floats(n))
            onBoth(ocl) { be, on in be.relu(count: n, input: on(x), output: on(y)) }
            var (a, c) = try read(ocl, y)
            XCTAssertEqual(a, c, "relu \(n)")
            onBoth(ocl) { be, on in be.reluBackward(count: n, activation: on(y), grad: on(g)) }
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
                onBoth(ocl) { be, on in
                    be.denseForward(g, input: on(x), weight: on(w), bias: on(b), output: on(y), relu: relu)
                    be.denseBackward(
                        g, input: on(x), weight: on(w), gradOutput: on(gy), gradInput: relu ? on(gx) : nil, gradWeight: on(gw),
                        gradBias: on(gb))
                }
                for (p, name) in [(y, "forward"), (gw, "grad weight"), (gb, "grad bias")] + (relu ? [(gx, "grad input")] : []) {
                    try assertBackendsAgree(ocl, p, rtol: 1e-5, atol: 1e-6, "dense \(name) \(g) relu \(relu)")
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
                onBoth(ocl) { be, on in
                    be.softmaxCrossEntropy(
                        batch: batch, classes: classes, logits: on(z), labels: on(labels), probabilities: on(p), gradLogits: on(gz),
                        metrics: on(m))
                }
            }
            try assertBackendsAgree(ocl, p, rtol: 0, atol: 1e-6, "softmax probabilities \(batch)x\(classes)")
            try assertBackendsAgree(ocl, gz, rtol: 0, atol: 1e-6, "logit gradient \(batch)x\(classes)")
            let (a, c) = try read(ocl, m)
            XCTAssertEqual(a[0], c[0], accuracy: 1e-5 * max(1, abs(c[0])), "loss sum")
            XCTAssertEqual(Array(a[1...3]), Array(c[1...3]), "correct and sample counts")
            // Inference softmax and the no-gradient path.
            ocl.softmaxCrossEntropy(
                batch: batch, classes: classes, logits: z.cl, labels: labels.cl, probabilities: p.cl, gradLogits: nil, metrics: m.cl)
            onBoth(ocl) { be, on in be.softmax(batch: batch, classes: classes, logits: on(z), probabilities: on(gz)) }
            try assertBackendsAgree(ocl, gz, rtol: 0, atol: 1e-6, "softmax \(batch)x\(classes)")
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
                onBoth(ocl) { be, on in be.optimizerStep(u, count: n, parameters: on(p), gradients: on(g), state1: on(s1), state2: on(s2)) }
            }
            try assertBackendsAgree(ocl, p, rtol: 1e-6, atol: 1e-7, "\(u)")
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
