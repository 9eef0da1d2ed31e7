import CytoCPU
import CytoCore
import CytoSweep
import CytoTrain
import Foundation
import XCTest

/// Every sweep cell fits a temperature on its validation images and records the ECE before
/// and after, on validation and test; a record whose stored ECEs its probabilities do not
/// give is refused.
final class CellCalibrationTests: XCTestCase {
    func testCellRecordsTemperatureAndECEBeforeAndAfter() throws {
        let dir = tempDir("cell-calibration")
        let runner = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: try SweepTests.data(count: 40), spec: SweepTests.spec, seed: 3)
        let record = try runner.runCell(SweepCell(fold: 0, size: 8), backend: CPUBackend(threads: 2))
        let c = try XCTUnwrap(record.calibration, "a cell with validation images records its calibration")
        XCTAssertEqual(c.validationImages, 4)
        XCTAssertTrue(TemperatureScaling.range.contains(c.temperature), "\(c.temperature)")
        func ece(_ p: [[Float]]) -> Double { Metrics.expectedCalibrationError(Metrics.reliability(probabilities: p, labels: record.testLabels)) }
        XCTAssertEqual(c.testECEBefore, ece(record.testProbabilities), accuracy: 1e-12)
        XCTAssertEqual(
            c.testECEAfter, ece(CellCalibration.rescale(record.testProbabilities, temperature: c.appliedTemperature)), accuracy: 1e-12)
        XCTAssertEqual(c.appliedTemperature, c.atBound ? 1 : c.temperature)
        // The NLL fit never makes the validation set's NLL worse; its ECE moves either way.
        XCTAssertTrue((0...1).contains(c.validationECEBefore) && (0...1).contains(c.validationECEAfter))
        guard case .valid(let read) = SweepRecord.check(runner.recordURL(SweepCell(fold: 0, size: 8)), cell: SweepCell(fold: 0, size: 8))
        else { return XCTFail("the written record reads back") }
        XCTAssertEqual(read.calibration, c)

        var edited = record
        edited.calibration?.testECEAfter = c.testECEAfter / 2 + 0.01
        let problem = try XCTUnwrap(edited.inconsistency(expected: nil, manifest: nil))
        XCTAssertTrue(problem.hasPrefix("calibration test ECE"), problem)
        edited = record
        edited.calibration?.temperature = 50
        XCTAssertEqual(edited.inconsistency(expected: nil, manifest: nil), "calibration temperature 50.0 is outside 0.05...20.0")
    }

    /// Probabilities at T recomputed from those at T = 1 equal softmax(logits / T).
    func testRescaleEqualsSoftmaxOfScaledLogits() {
        let logits: [[Float]] = [[2, -1, 0.5], [-3, 4, 1], [0, 0, 0]]
        let p1 = logits.map { TemperatureScaling.probabilities(logits: $0, temperature: 1).map { Float($0) } }
        for t in [0.5, 1.7, 4.0] {
            let r = CellCalibration.rescale(p1, temperature: t)
            for (row, l) in zip(r, logits) {
                for (a, b) in zip(row, TemperatureScaling.probabilities(logits: l, temperature: t)) { XCTAssertEqual(Double(a), b, accuracy: 1e-6) }
            }
        }
    }
}
