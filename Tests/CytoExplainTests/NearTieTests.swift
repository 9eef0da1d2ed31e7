import CytoCPU
import CytoCore
import XCTest

@testable import CytoExplain

/// The saliency allowance `cytocl verify` derives from near-tied max-pool windows
/// (`NearTieAllowance`): it must cover what a different rounding of a near tie does to
/// the saliency, and nothing where no window is near a tie.
final class NearTieTests: XCTestCase {
    /// One conv block (a single 3x3 filter, 6x6 grey input -> 4x4 -> pooled 2x2) and a
    /// dense layer to two classes. On a constant image every window ties exactly; moving
    /// pixel (0, 3) by +-delta makes conv output (0, 1) the largest of window (0, 0) or not,
    /// which is what two implementations whose sums round differently can disagree on.
    func testAllowanceCoversAFlippedNearTieAndNothingElse() throws {
        let spec = ModelSpec(inputHeight: 6, inputWidth: 6, inputChannels: 1, convFilters: [1], denseUnits: [], classes: 2)
        let backend = CPUBackend(threads: 1)
        let net = try Network(spec: spec, backend: backend, maxBatch: 1)
        let kernel: [Float] = [0.3, -0.2, 0.5, 0.1, 0.4, -0.3, 0.2, 0.6, 0.25]
        try net.setWeights([
            "conv1.weight": kernel, "conv1.bias": [0],
            "dense1.weight": [1.0, -0.5, 0.75, 2.0, -1.0, 0.5, 0.25, 1.5], "dense1.bias": [0, 0],
        ])
        let delta: Float = 1e-6
        func image(_ d: Float) -> [Float] {
            var x = [Float](repeating: 0.5, count: 36)
            x[3] += d
            return x
        }
        func saliency(_ d: Float) throws -> [Float] {
            try Saliency.compute(network: net, inputs: [image(d)]) { _, _ in 0 }.maps[0]
        }
        let minus = try saliency(-delta)
        let plus = try saliency(delta)
        // The flip is real: the window's whole gradient moved between two conv outputs.
        let moved = zip(plus, minus).map { abs($0 - $1) }
        XCTAssertGreaterThan(moved.max()!, 0.05, "the two roundings of the near tie should give different saliency maps")

        // At +delta the gap of window (0, 0) is kernel[2] * delta; window (0, 1) (conv output
        // (0, 2) holds pixel (0, 3) at kernel[1]) is nearer still. A measured activation
        // difference of that size flags them.
        let gap = kernel[2] * delta
        let allowance = try net.nearTieAllowance(batch: 1, classes: [0], differences: [gap])
        XCTAssertEqual(allowance.windows, [2])
        for p in 0..<36 {
            XCTAssertLessThanOrEqual(
                moved[p], allowance.extra[p] * 1.0001 + 1e-7, "pixel (\(p / 6), \(p % 6)): the allowance must cover the flip")
        }
        // Rows 4 and 5 lie only under conv rows 2-3, whose windows tie exactly (identical
        // sums, the same first-maximum rule in every implementation): no allowance there.
        XCTAssertEqual(allowance.extra[24...].max(), 0)
        XCTAssertGreaterThan(allowance.pixels, 0)

        // With no measured difference nothing is near a tie and nothing is allowed.
        let none = try net.nearTieAllowance(batch: 1, classes: [0], differences: [0])
        XCTAssertEqual(none.windows, [0])
        XCTAssertEqual(none.pixels, 0)
    }
}
