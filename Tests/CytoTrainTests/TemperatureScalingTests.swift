import CytoCPU
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

    /// `calibrate` on a network made over-confident (weights scaled up x4, labels that are
    /// its own predictions flipped for a third of the images): T > 1 lowers the
    /// validation NLL and the ECE, and a Predictor with that T gives softmax(logits / T).
    func testCalibrateSoftensAnOverConfidentNetwork() throws {
        let spec = ModelSpec(inputHeight: 16, inputWidth: 16, convFilters: [4], denseUnits: [8], classes: 3)
        let net = try Network(spec: spec, backend: CPUBackend(), maxBatch: 8)
        net.initialize(seed: 3)
        var weights = try net.weights()
        for k in weights.keys { weights[k] = weights[k]!.map { $0 * 4 } }
        try net.setWeights(weights)
        var g = SeededGenerator(seed: 5)
        let count = 30
        let pixels = (0..<(count * 16 * 16 * 3)).map { _ in UInt8(truncatingIfNeeded: Int(g.nextUnitFloat() * 256)) }
        var set = LabeledImages(
            geometry: ImageGeometry(height: 16, width: 16), pixels: pixels, labels: [Int](repeating: 0, count: count),
            paths: (0..<count).map { "img\($0)" })
        let predicted = try Predictor(network: net).probabilities(set).map { Metrics.argmax($0) }
        set.labels = predicted.enumerated().map { i, k in i % 3 == 0 ? (k + 1) % 3 : k }
        let c = try XCTUnwrap(try TemperatureScaling.calibrate(network: net, validation: set))
        XCTAssertGreaterThan(c.temperature, 1.2, c.summary)
        XCTAssertLessThan(c.nllAfter, c.nllBefore, c.summary)
        XCTAssertLessThan(c.eceAfter, c.eceBefore, c.summary)
        let logits = try Predictor(network: net).logits(set)
        let scaled = try Predictor(network: net, temperature: c.temperature).probabilities(set)
        for (l, p) in zip(logits, scaled) {
            let expected = TemperatureScaling.probabilities(logits: l, temperature: c.temperature)
            for (a, b) in zip(p, expected) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
        }
    }
}
