import CytoCPU
import CytoCore
import CytoData
import XCTest

@testable import CytoSelect

/// The contrastive embedding's pieces against references: the loss against its
/// textbook formula, its gradient against finite differences, the views against the
/// engine's own augmentation, and pre-training against what it is for (a lower loss).
final class ContrastiveTests: XCTestCase {
    /// SimCLR's loss written as in the paper, one row at a time (no shared terms).
    func referenceLoss(_ z: [Double], rows n: Int, dimension d: Int, temperature t: Double) -> Double {
        func cosine(_ a: Int, _ b: Int) -> Double {
            var ab = 0.0, aa = 0.0, bb = 0.0
            for j in 0..<d { ab += z[a * d + j] * z[b * d + j]; aa += z[a * d + j] * z[a * d + j]; bb += z[b * d + j] * z[b * d + j] }
            return ab / (aa.squareRoot() * bb.squareRoot())
        }
        var total = 0.0
        for i in 0..<n {
            let partner = i % 2 == 0 ? i + 1 : i - 1
            let denominator = (0..<n).filter { $0 != i }.map { exp(cosine(i, $0) / t) }.reduce(0, +)
            total += -log(exp(cosine(i, partner) / t) / denominator)
        }
        return total / Double(n)
    }

    func testNTXentValueAndGradientMatchTheFormulaAndFiniteDifferences() {
        var rng = SeededGenerator(seed: 5)
        let n = 8, d = 5
        let z = (0..<(n * d)).map { _ in Double(rng.nextUnitFloat()) * 2 - 1 }
        for t in [0.5, 0.1] {
            let (loss, grad) = NTXent.lossAndGradient(z, rows: n, dimension: d, temperature: t)
            XCTAssertEqual(loss, referenceLoss(z, rows: n, dimension: d, temperature: t), accuracy: 1e-12)
            let h = 1e-6
            for k in z.indices {
                var plus = z, minus = z
                plus[k] += h; minus[k] -= h
                let numeric = (referenceLoss(plus, rows: n, dimension: d, temperature: t) - referenceLoss(minus, rows: n, dimension: d, temperature: t)) / (2 * h)
                XCTAssertEqual(grad[k], numeric, accuracy: 1e-7 + 1e-5 * abs(numeric), "element \(k), temperature \(t)")
            }
        }
        // Views that agree score lower than views that do not.
        let agreeing = (0..<n).flatMap { i in (0..<d).map { j in j == i / 2 ? 1.0 : 0.0 } }
        XCTAssertLessThan(
            NTXent.lossAndGradient(agreeing, rows: n, dimension: d, temperature: 0.5).loss,
            NTXent.lossAndGradient(z, rows: n, dimension: d, temperature: 0.5).loss)
    }

    func testAFullFrameViewIsTheEngineAugmentationAndTheJitterIsAShiftAndContrast() throws {
        let side = 24
        let pixels = SyntheticCells.render(kind: .monocyte, size: side, seed: 2).pixels
        let backend = CPUBackend()
        let geo = ImageGeometry(height: side, width: side)
        let images = try backend.makeBuffer(.uint8, count: pixels.count, label: "images")
        pixels.withUnsafeBytes { backend.write(bytes: $0, to: images, byteOffset: 0) }
        let out = try backend.makeBuffer(.float32, count: geo.pixelsPerImage, label: "out")
        for t in [
            AugmentTransform(degrees: 37, flipHorizontal: true, flipVertical: false, sampler: .bilinear),
            AugmentTransform(degrees: 211, flipHorizontal: false, flipVertical: true, sampler: .nearest),
        ] {
            backend.gatherBatch(images: images, geometry: geo, indices: [0], transforms: [t], output: out)
            let engine = try backend.read(out, offset: 0, count: geo.pixelsPerImage)
            let view = pixels.withUnsafeBufferPointer { ContrastiveView(transform: t).render($0, height: side, width: side) }
            for k in engine.indices { XCTAssertEqual(view[k], engine[k], accuracy: 1e-6, "\(t) value \(k)") }
        }
        // Jitter: contrast 1 leaves a per-channel shift, clamped to [0, 1].
        let plain = pixels.withUnsafeBufferPointer { ContrastiveView(transform: .identity).render($0, height: side, width: side) }
        let shifted = pixels.withUnsafeBufferPointer {
            ContrastiveView(transform: .identity, shift: [0.1, -0.05, 0]).render($0, height: side, width: side)
        }
        let plane = side * side
        for k in plain.indices {
            XCTAssertEqual(shifted[k], min(1, max(0, plain[k] + [0.1, -0.05, 0][k / plane])), accuracy: 1e-6)
        }
        // Without the jitter the same draws give the same geometry and no colour change.
        var g1 = SeededGenerator(seed: 4), g2 = SeededGenerator(seed: 4)
        let jittered = ContrastiveView.random(height: side, width: side, using: &g1)
        let unjittered = ContrastiveView.random(height: side, width: side, colourJitter: false, using: &g2)
        XCTAssertNotEqual(jittered.contrast, 1)
        XCTAssertEqual(unjittered, ContrastiveView(
            transform: jittered.transform, scale: jittered.scale, rowOffset: jittered.rowOffset, columnOffset: jittered.columnOffset))
        // A zoomed view of the identity samples the inner square.
        let zoomed = pixels.withUnsafeBufferPointer {
            ContrastiveView(transform: .identity, scale: 0.5, rowOffset: 4, columnOffset: 6).render($0, height: side, width: side)
        }
        XCTAssertEqual(zoomed[2 * side + 2], plain[(4 + 1) * side + 6 + 1], accuracy: 1e-6)
    }

    /// Eight generated cells of four kinds at 16x16 (two conv blocks: the debug build's
    /// CPU kernels are slow).
    func pool() -> (pixels: [UInt8], count: Int, side: Int) {
        let side = 16
        let kinds: [CellKind] = [.lymphocyte, .segmentedNeutrophil, .eosinophil, .myeloblast]
        var pixels: [UInt8] = []
        for i in 0..<8 { pixels += SyntheticCells.render(kind: kinds[i % 4], size: side, seed: UInt64(100 + i)).pixels }
        return (pixels, 8, side)
    }

    func testPretrainingLowersTheLossAndRepeatsForASeed() throws {
        let (pixels, count, side) = pool()
        var o = ContrastiveOptions()
        o.pairsPerStep = 8; o.epochs = 40; o.maxSteps = 20; o.learningRate = 0.01
        let backend = CPUBackend()
        let untrained = try Network(spec: try ContrastiveFeatures.spec(height: side, width: side, options: o), backend: backend, maxBatch: 16)
        untrained.initialize(seed: o.seed)
        let before = try ContrastiveFeatures.loss(of: untrained, pixels: pixels, count: count, height: side, width: side, seed: 9, options: o)
        let a = try ContrastiveFeatures.pretrain(pixels: pixels, count: count, height: side, width: side, backend: backend, options: o)
        let after = try ContrastiveFeatures.loss(of: a.network, pixels: pixels, count: count, height: side, width: side, seed: 9, options: o)
        XCTAssertEqual(a.losses.count, 20, "40 passes of 1 step, capped at 20")
        // ln(15) = 2.71 is the loss of a projection that tells nothing apart.
        print("contrastive loss on held-out views: \(before) -> \(after)")
        XCTAssertLessThan(after, before - 0.3, "held-out views: \(before) -> \(after)")
        // The same seed repeats the steps (losses depend on every earlier update).
        o.maxSteps = 5
        let b = try ContrastiveFeatures.pretrain(pixels: pixels, count: count, height: side, width: side, backend: CPUBackend(), options: o)
        XCTAssertEqual(Array(a.losses.prefix(5)), b.losses)
        o.seed += 1; o.maxSteps = 2
        let c = try ContrastiveFeatures.pretrain(pixels: pixels, count: count, height: side, width: side, backend: backend, options: o)
        XCTAssertNotEqual(Array(a.losses.prefix(2)), c.losses, "another seed, other weights and views")
    }

    func testTheEmbeddingIsTheStandardisedEncoderOutput() throws {
        let (pixels, count, side) = pool()
        var o = ContrastiveOptions()
        o.maxSteps = 10
        let e = try Embedding.compute(.contrastive, pixels: pixels, count: count, height: side, width: side, backend: CPUBackend(), contrastive: o)
        XCTAssertEqual(e.count, count)
        XCTAssertTrue((1...ContrastiveFeatures.units).contains(e[0].count), "\(e[0].count) columns")
        for j in e[0].indices {
            let col = e.map { Double($0[j]) }
            let mean = col.reduce(0, +) / Double(count)
            let sd = (col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(count)).squareRoot()
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(sd, 1, accuracy: 1e-4)
        }
        XCTAssertEqual(
            e, try Embedding.compute(.contrastive, pixels: pixels, count: count, height: side, width: side, backend: CPUBackend(), contrastive: o))
        XCTAssertThrowsError(
            try ContrastiveFeatures.rows(pixels: Array(pixels.prefix(side * side * 3)), count: 1, height: side, width: side, backend: CPUBackend())
        ) { XCTAssertEqual("\($0)", "a contrastive embedding needs at least 2 images (got 1)") }
    }
}
