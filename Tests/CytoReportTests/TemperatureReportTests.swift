import CytoCore
import CytoSweep
import CytoReport
import CytoSweep
import CytoTrain
import Foundation
import XCTest

/// The report's ECE before -> after temperature scaling per training size (Table S2's
/// `ece_calibrated` and the calibration section's table), from the cells' `CellCalibration`.
final class TemperatureReportTests: XCTestCase {
    func record(fold: Int, size: Int, temperature: Double?) -> SweepRecord {
        let labels = [0, 0, 1, 1, 1]
        let probs: [[Float]] = [[0.95, 0.05], [0.4, 0.6], [0.1, 0.9], [0.02, 0.98], [0.7, 0.3]]
        var r = fixtureRecord(fold: fold, size: size, classes: ["a", "b"], labels: labels, probabilities: probs, metric: "roc_auc")
        if let t = temperature {
            func ece(_ p: [[Float]]) -> Double { Metrics.expectedCalibrationError(Metrics.reliability(probabilities: p, labels: labels)) }
            r.calibration = CellCalibration(
                temperature: t, validationImages: 1, validationECEBefore: 0.2, validationECEAfter: 0.1 * Double(fold + 1),
                testECEBefore: ece(probs), testECEAfter: ece(CellCalibration.rescale(probs, temperature: t == 20 ? 1 : t)), atBound: t == 20)
        }
        return r
    }

    func testECEBeforeAndAfterPerSize() throws {
        let records = [
            record(fold: 0, size: 10, temperature: 2), record(fold: 1, size: 10, temperature: 20),
            record(fold: 0, size: 20, temperature: 1.5), record(fold: 1, size: 20, temperature: nil),
        ]
        for r in records { XCTAssertNil(r.inconsistency(expected: nil, manifest: nil), "\(r.size)/\(r.fold)") }
        let before = Metrics.expectedCalibrationError(Metrics.reliability(probabilities: records[0].testProbabilities, labels: records[0].testLabels))
        let after2 = try XCTUnwrap(records[0].calibration).testECEAfter, after20 = try XCTUnwrap(records[1].calibration).testECEAfter
        XCTAssertNotEqual(after2, before, accuracy: 1e-3, "T = 2 changes the test ECE")

        let rows = CalibrationReport.temperatureRows(records)
        XCTAssertEqual(rows.count, 2)
        XCTAssertEqual(rows[0], [
            "10", "2", "1", "2.00 (2.00-2.00)", "1", "0.200 → 0.150", String(format: "%.3f → %.3f", before, (after2 + after20) / 2),
        ])
        XCTAssertEqual(rows[1][1], "1", "a cell without calibration is not counted")
        XCTAssertEqual(rows[1][3], "1.50 (1.50-1.50)")
        // Only fits at a bound: no temperature was estimated, and the row says so.
        let bound = CalibrationReport.temperatureRows([record(fold: 1, size: 10, temperature: 20)])
        XCTAssertEqual(bound[0][3], "none (all at a bound)")
        XCTAssertEqual(bound[0][4], "1")

        // Table S2 / summary.csv: `ece_calibrated` beside `ece`, only where cells have it.
        let summary = SweepReport.summaryAllMetrics(records, primary: "roc_auc")
        let calibrated = summary.filter { $0.metric == "ece_calibrated" }
        XCTAssertEqual(calibrated.map(\.size), [10, 20])
        XCTAssertEqual(calibrated.map(\.folds), [2, 1])
        XCTAssertEqual(calibrated[0].mean, (after2 + after20) / 2, accuracy: 1e-12)
        XCTAssertEqual(summary.filter { $0.metric == "ece" }.map(\.folds), [2, 2])
    }
}
