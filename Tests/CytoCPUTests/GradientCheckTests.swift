import CytoCPU
import CytoCore
import XCTest

/// Finite-difference checks of every layer's gradient on a small network, so a wrong
/// backward op fails here before it can corrupt training.
final class GradientCheckTests: XCTestCase {
    let spec = ModelSpec(inputHeight: 22, inputWidth: 22, convFilters: [3, 4], denseUnits: [6], classes: 3)
    let batch = 3

    func makeNetwork() throws -> (Network, CPUBackend) {
        let backend = CPUBackend(threads: 2)
        let net = try Network(spec: spec, backend: backend, maxBatch: batch)
        net.initialize(seed: 7)
        // Biases away from zero so that ReLUs are not all on one side.
        var rng = SeededGenerator(seed: 3)
        var w = try net.weights()
        for name in w.keys.sorted() where name.hasSuffix("bias") {  // sorted: dictionary order varies per instance
            w[name] = w[name]!.map { _ in rng.nextUnitFloat() * 0.2 - 0.05 }
        }
        try net.setWeights(w)
        let pixels = (0..<(batch * spec.inputChannels * spec.inputHeight * spec.inputWidth)).map { _ in rng.nextUnitFloat() }
        backend.write(pixels, to: net.input, offset: 0)
        backend.write([0, 2, 1], to: net.labels, offset: 0)
        return (net, backend)
    }

    func loss(_ net: Network) throws -> Double {
        _ = try net.takeMetrics()
        net.forward(batch: batch)
        net.loss(batch: batch, gradient: false)
        return try net.takeMetrics().loss
    }

    /// Fraction of elements whose analytic gradient disagrees with the central
    /// difference by more than 1% of the tensor's largest gradient plus 5% of the
    /// element (the float32 loss limits the difference quotient to about 1e-5). A few elements may sit on a ReLU or max-pool kink, where the finite
    /// difference is meaningless; everything else must agree.
    func mismatchFraction(_ a: [Float], _ b: [Double]) -> Double {
        let scale = b.map { abs($0) }.max() ?? 0
        let bad = zip(a, b).filter { abs(Double($0) - $1) > 1e-2 * scale + 0.05 * abs($1) }.count
        return Double(bad) / Double(max(1, a.count))
    }

    func testParameterGradientsMatchFiniteDifferences() throws {
        let (net, backend) = try makeNetwork()
        _ = try net.takeMetrics()
        net.forward(batch: batch)
        net.loss(batch: batch, gradient: true)
        try net.backward(batch: batch)
        let analytic = try net.gradients()
        let h: Float = 1e-3
        for p in net.parameters {
            var values = backend.read(p.value, offset: 0, count: p.count)
            var numeric = [Double](repeating: 0, count: p.count)
            for i in 0..<p.count {
                let old = values[i]
                values[i] = old + h; backend.write(values, to: p.value, offset: 0); let up = try loss(net)
                values[i] = old - h; backend.write(values, to: p.value, offset: 0); let down = try loss(net)
                values[i] = old
                numeric[i] = (up - down) / Double(2 * h)
            }
            backend.write(values, to: p.value, offset: 0)
            let bad = mismatchFraction(analytic[p.name]!, numeric)
            XCTAssertLessThanOrEqual(bad, 0.05, "\(p.name): \(bad * 100)% of elements disagree with finite differences")
            XCTAssertGreaterThan(numeric.map { abs($0) }.max()!, 1e-4, "\(p.name): gradient is zero, the check would be vacuous")
        }
    }

    func testInputGradientMatchesFiniteDifferences() throws {
        let (net, backend) = try makeNetwork()
        _ = try net.takeMetrics()
        net.forward(batch: batch)
        net.loss(batch: batch, gradient: true)
        try net.backward(batch: batch, inputGradient: true)
        let count = net.input.count
        let analytic = backend.read(net.inputGradient!, offset: 0, count: count)
        var x = backend.read(net.input, offset: 0, count: count)
        // A sample of input positions, spread over every channel and image.
        let positions = stride(from: 0, to: count, by: 7).map { $0 }
        var numeric: [Double] = []
        let h: Float = 1e-3
        for i in positions {
            let old = x[i]
            x[i] = old + h; backend.write(x, to: net.input, offset: 0); let up = try loss(net)
            x[i] = old - h; backend.write(x, to: net.input, offset: 0); let down = try loss(net)
            x[i] = old
            numeric.append((up - down) / Double(2 * h))
        }
        backend.write(x, to: net.input, offset: 0)
        let bad = mismatchFraction(positions.map { analytic[$0] }, numeric)
        XCTAssertLessThanOrEqual(bad, 0.05, "input gradient: \(bad * 100)% of elements disagree with finite differences")
    }

    func testThreadCountDoesNotChangeResultsForFixedThreads() throws {
        // Same seed and thread count twice: bit-identical weights after training steps.
        func run() throws -> [Float] {
            let (net, _) = try makeNetwork()
            for _ in 0..<3 { try net.trainStep(batch: batch, optimizer: .paperBinary) }
            return try net.weights()["conv1.weight"]!
        }
        XCTAssertEqual(try run(), try run())
    }
}
