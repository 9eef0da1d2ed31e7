import Foundation
import XCTest

@testable import CytoCore

/// Which formulas each optimizer setting selects, and how saved settings decode.
final class OptimizerConfigTests: XCTestCase {
    func testPaperSettingsUseKeras2Forms() {
        XCTAssertEqual(OptimizerConfig.paperBinary.update(step: 1), .rmspropKeras2(learningRate: 0.001, rho: 0.9, epsilon: 1e-8))
        guard case let .adam(_, _, _, eps) = OptimizerConfig.paperMulticlass.update(step: 1) else { return XCTFail("not adam") }
        XCTAssertEqual(eps, 1e-8)
        XCTAssertEqual(OptimizerConfig(kind: .rmsprop).form, .keras2, "the default is the paper's Keras 2.0.8")
    }

    func testKeras3FormKeepsEpsilonInsideTheRoot() {
        let c = OptimizerConfig(kind: .rmsprop, learningRate: 0.001, form: .keras3)
        XCTAssertEqual(c.update(step: 1), .rmsprop(learningRate: 0.001, rho: 0.9, epsilon: 1e-7))
        var d = OptimizerConfig(kind: .adam, learningRate: 1e-4, form: .keras2)
        d.form = .keras3
        XCTAssertEqual(d.epsilon, 1e-7, "changing the form resets epsilon to the form's")
        XCTAssertTrue(c.summary.hasSuffix("form=keras3"), c.summary)
    }

    func testAdamBiasCorrectedStep() {
        let c = OptimizerConfig(kind: .adam, learningRate: 1e-4)
        guard case let .adam(step, _, _, _) = c.update(step: 3) else { return XCTFail("not adam") }
        // The float32 constants, as Keras holds them.
        let b1 = Double(Float(0.9)), b2 = Double(Float(0.999)), lr = Double(Float(1e-4))
        let expected = lr * (1 - pow(b2, 3)).squareRoot() / (1 - pow(b1, 3))
        XCTAssertEqual(Double(step), expected, accuracy: 1e-6 * expected)
    }

    func testSettingsSavedBeforeTheFormExistedDecodeAsKeras3() throws {
        let old = #"{"kind":"rmsprop","learningRate":0.001,"rho":0.9,"beta1":0.9,"beta2":0.999,"epsilon":1e-07,"momentum":0}"#
        let c = try JSONDecoder().decode(OptimizerConfig.self, from: Data(old.utf8))
        XCTAssertEqual(c.form, .keras3)
        XCTAssertEqual(c.update(step: 1), .rmsprop(learningRate: 0.001, rho: 0.9, epsilon: 1e-7))
        let round = try JSONDecoder().decode(OptimizerConfig.self, from: JSONEncoder().encode(OptimizerConfig.paperBinary))
        XCTAssertEqual(round, .paperBinary)
    }
}
