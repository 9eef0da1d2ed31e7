import CytoCore
import CytoTrain
import Foundation
import XCTest

final class TemperatureScalingTests: XCTestCase {
    /// Labels drawn from softmax(z / 2.5) for logits z: the fitted temperature is close to 2.5,
    /// and scaling by it lowers the ECE of the over-confident raw softmax.
    func testRecoversTheTemperatureLabelsWereDrawnWith() throws {
        var g = SeededGenerator(seed: 11)
        var logits: [[Float]] = [], labels: [Int] = []
        for _ in 0..<4000 {
            let z = (0..<3).map { _ in Float(g.nextUnitFloat() * 16 - 8) }
            let p = TemperatureScaling.probabilities(logits: z, temperature: 2.5)
            let u = Double(g.nextUnitFloat())
            labels.append(u < p[0] ? 0 : (u < p[0] + p[1] ? 1 : 2))
            logits.append(z)
        }
        let t = try XCTUnwrap(TemperatureScaling.fit(logits: logits, labels: labels))
        XCTAssertEqual(t, 2.5, accuracy: 0.2)
        func ece(_ t: Double) -> Double {
            let probs = logits.map { TemperatureScaling.probabilities(logits: $0, temperature: t).map(Float.init) }
            return Metrics.expectedCalibrationError(Metrics.reliability(probabilities: probs, labels: labels))
        }
        XCTAssertLessThan(ece(t), 0.03)
        XCTAssertGreaterThan(ece(1), 0.08, "the raw softmax is over-confident")
        XCTAssertLessThan(
            TemperatureScaling.nll(logits: logits, labels: labels, temperature: t),
            TemperatureScaling.nll(logits: logits, labels: labels, temperature: 1))
    }

    func testSeparableAndBadInputs() {
        // Every image right with a margin: the NLL falls as T falls, so T hits the lower bound.
        let t = TemperatureScaling.fit(logits: [[3, -3], [-3, 3]], labels: [0, 1])
        XCTAssertEqual(t ?? 0, TemperatureScaling.range.lowerBound, accuracy: 1e-4)
        XCTAssertNil(TemperatureScaling.fit(logits: [], labels: []))
        XCTAssertNil(TemperatureScaling.fit(logits: [[.nan, 0]], labels: [0]))
        XCTAssertNil(TemperatureScaling.fit(logits: [[1, 0]], labels: [2]))
    }
}
