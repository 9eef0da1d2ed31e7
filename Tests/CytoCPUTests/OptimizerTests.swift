import CytoCore
import XCTest

@testable import CytoCPU

/// The CPU optimizers against the formulas written out in Double.
final class OptimizerTests: XCTestCase {
    /// Runs 3 steps of `update` on the CPU backend.
    func cpuSteps(_ update: (Int) -> OptimizerUpdate, p0: [Float], grads: [[Float]]) throws -> [Float] {
        let b = CPUBackend()
        let n = p0.count
        let p = try b.makeBuffer(.float32, count: n, label: "p"), g = try b.makeBuffer(.float32, count: n, label: "g")
        let s1 = try b.makeBuffer(.float32, count: n, label: "s1"), s2 = try b.makeBuffer(.float32, count: n, label: "s2")
        b.write(p0, to: p, offset: 0); b.fill(s1, value: 0, count: n); b.fill(s2, value: 0, count: n)
        for (t, gt) in grads.enumerated() {
            b.write(gt, to: g, offset: 0)
            b.optimizerStep(update(t + 1), count: n, parameters: p, gradients: g, state1: s1, state2: s2)
        }
        return b.read(p, offset: 0, count: n)
    }

    let p0: [Float] = [0.5, -0.25, 0.1, 0, 1, -1]
    /// Gradients from 1 down to 1e-6: the small ones are where the two RMSprop forms part.
    let grads: [[Float]] = [
        [0.3, -1e-4, 2e-6, -0.7, 1e-3, 5e-5],
        [0.2, -2e-4, -1e-6, -0.6, 2e-3, 4e-5],
        [-0.1, -1e-4, 3e-6, -0.5, 1e-3, 6e-5],
    ]

    func testRMSpropKeras2MatchesFormula() throws {
        let c = OptimizerConfig(kind: .rmsprop, learningRate: 1e-3, form: .keras2)
        let ours = try cpuSteps({ c.update(step: $0) }, p0: p0, grads: grads)
        for i in p0.indices {
            var p = Double(p0[i]), a = 0.0
            for g in grads.map({ Double($0[i]) }) {
                a = 0.9 * a + 0.1 * g * g
                p -= 1e-3 * g / (a.squareRoot() + 1e-8)
            }
            XCTAssertEqual(Double(ours[i]), p, accuracy: 1e-6, "parameter \(i)")
        }
    }

    func testRMSpropKeras3MatchesFormulaAndDiffersForSmallGradients() throws {
        let c3 = OptimizerConfig(kind: .rmsprop, learningRate: 1e-3, form: .keras3)
        let ours = try cpuSteps({ c3.update(step: $0) }, p0: p0, grads: grads)
        let k2 = try cpuSteps({ OptimizerConfig(kind: .rmsprop, learningRate: 1e-3, form: .keras2).update(step: $0) }, p0: p0, grads: grads)
        for i in p0.indices {
            var p = Double(p0[i]), a = 0.0
            for g in grads.map({ Double($0[i]) }) {
                a = 0.9 * a + 0.1 * g * g
                p -= 1e-3 * g / (a + 1e-7).squareRoot()
            }
            XCTAssertEqual(Double(ours[i]), p, accuracy: 1e-6, "parameter \(i)")
        }
        XCTAssertEqual(ours[0], k2[0], accuracy: 1e-6, "large gradients: both forms agree")
        XCTAssertGreaterThan(abs(p0[1] - k2[1]), 3 * abs(p0[1] - ours[1]), "|g| 1e-4: the Keras 2.0.8 step is several times larger")
        XCTAssertGreaterThan(abs(p0[2] - k2[2]), 1e-3, "|g| ~2e-6: Keras 2.0.8 still takes steps of about lr")
        XCTAssertLessThan(abs(p0[2] - ours[2]), 1e-4, "|g| ~2e-6: Keras 3's steps are tiny")
    }

    func testAdamBothFormsMatchFormula() throws {
        for form in OptimizerConfig.Form.allCases {
            let c = OptimizerConfig(kind: .adam, learningRate: 1e-4, form: form)
            let eps = form == .keras2 ? 1e-8 : 1e-7
            let ours = try cpuSteps({ c.update(step: $0) }, p0: p0, grads: grads)
            for i in p0.indices {
                var p = Double(p0[i]), m = 0.0, v = 0.0
                for (t, g) in grads.map({ Double($0[i]) }).enumerated() {
                    m = 0.9 * m + 0.1 * g; v = 0.999 * v + 0.001 * g * g
                    let lrT = 1e-4 * (1 - pow(0.999, Double(t + 1))).squareRoot() / (1 - pow(0.9, Double(t + 1)))
                    p -= lrT * m / (v.squareRoot() + eps)
                }
                XCTAssertEqual(Double(ours[i]), p, accuracy: 1e-7, "\(form) parameter \(i)")
            }
        }
    }
}
