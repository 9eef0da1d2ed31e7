import CytoTrain
import Foundation
import XCTest

/// Expected calibration error and Brier score (evaluate's `ece` and `brier`).
final class CalibrationMetricsTests: XCTestCase {
    // Four images, one per bin: confidences 0.9 (right), 0.78 (wrong), 0.7 (right), 0.55 (wrong).
    let probs: [[Float]] = [[0.9, 0.1], [0.78, 0.22], [0.3, 0.7], [0.45, 0.55]]
    let labels = [0, 1, 1, 0]

    func testECEAndBrierByHand() throws {
        let bins = Metrics.reliability(probabilities: probs, labels: labels)
        XCTAssertEqual(bins.count, 15)
        // (m-1)/15 < confidence <= m/15: 0.9 in bin 14 (0-based 13), 0.78 in 12 (11), 0.7 in 11 (10), 0.55 in 9 (8).
        XCTAssertEqual(bins.indices.filter { bins[$0].count > 0 }, [8, 10, 11, 13])
        XCTAssertEqual(bins[13].accuracy, 1); XCTAssertEqual(bins[11].accuracy, 0)
        // ECE = (|1-0.9| + |0-0.78| + |1-0.7| + |0-0.55|) / 4
        XCTAssertEqual(Metrics.expectedCalibrationError(bins), 1.73 / 4, accuracy: 1e-6)
        // Brier = mean of sum over classes: (0.02 + 1.2168 + 0.18 + 0.605) / 4
        XCTAssertEqual(Metrics.brierScore(probabilities: probs, labels: labels), 2.0218 / 4, accuracy: 1e-6)
        let r = ClassificationReport(probabilities: probs, labels: labels, classNames: ["other", "blast"])
        XCTAssertEqual(r.ece, 0.4325, accuracy: 1e-6)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.json.utf8)) as? [String: Any])
        XCTAssertEqual(json["ece"] as? Double ?? -1, 0.4325, accuracy: 1e-6)
        XCTAssertEqual(json["brier"] as? Double ?? -1, 0.50545, accuracy: 1e-6)
        XCTAssertTrue(r.text.contains("ECE"))
    }

    func testPerfectlyCalibratedAndOneHotPredictions() {
        // Confident and right: ECE 0, Brier 0. Confident and wrong: ECE 1, Brier 2.
        XCTAssertEqual(Metrics.expectedCalibrationError(Metrics.reliability(probabilities: [[1, 0], [0, 1]], labels: [0, 1])), 0)
        XCTAssertEqual(Metrics.brierScore(probabilities: [[1, 0], [0, 1]], labels: [0, 1]), 0)
        XCTAssertEqual(Metrics.expectedCalibrationError(Metrics.reliability(probabilities: [[1, 0]], labels: [1])), 1)
        XCTAssertEqual(Metrics.brierScore(probabilities: [[1, 0, 0]], labels: [2]), 2)
        // Ten images at confidence 0.7 of which 7 are right: calibrated.
        let p = [[Float]](repeating: [0.7, 0.3], count: 10), y = [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
        XCTAssertEqual(Metrics.expectedCalibrationError(Metrics.reliability(probabilities: p, labels: y)), 0, accuracy: 1e-6)
        // No images: undefined, not 0.
        XCTAssertTrue(Metrics.expectedCalibrationError(Metrics.reliability(probabilities: [], labels: [])).isNaN)
        XCTAssertTrue(Metrics.brierScore(probabilities: [], labels: []).isNaN)
    }
}
