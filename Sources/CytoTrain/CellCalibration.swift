import CytoCore
import Foundation

/// Temperature scaling measured in a sweep cell: the temperature `train --calibrate` would
/// fit on this cell's validation images, and the expected calibration error (15 bins, top
/// label) before (T = 1) and after it, on the validation images it was fitted on and on the
/// cell's test images, which it never saw. The record's test probabilities stay those of
/// T = 1 (the protocol's metric is computed from them; temperature does not change the
/// ranking, so ROC-AUC and F1 are the same either way).
///
/// Why in every cell: a sweep is the one place where the same validation-set size is
/// repeated over folds and training sizes, so it measures what a small validation set can
/// and cannot calibrate (docs/learning-curves.md) — one extra forward pass over the
/// validation images per cell, against one per epoch during training.
public struct CellCalibration: Sendable, Codable, Equatable {
    /// The fitted temperature (`TemperatureScaling.fit`, within `TemperatureScaling.range`).
    public var temperature: Double
    /// Validation images it was fitted on.
    public var validationImages: Int
    public var validationECEBefore: Double
    public var validationECEAfter: Double
    public var testECEBefore: Double
    public var testECEAfter: Double
    /// True when the fit stopped at (within 1% of) an end of `TemperatureScaling.range`
    /// (e.g. every validation image right and the NLL still falling as T falls): no optimum
    /// was found, and `train --calibrate` keeps T = 1, so the "after" ECEs are those at T = 1.
    public var atBound: Bool

    /// The temperature `train --calibrate` would store: 1 when the fit hit a bound.
    public var appliedTemperature: Double { atBound ? 1 : temperature }

    public init(
        temperature: Double, validationImages: Int, validationECEBefore: Double, validationECEAfter: Double,
        testECEBefore: Double, testECEAfter: Double, atBound: Bool
    ) {
        self.temperature = temperature; self.validationImages = validationImages
        self.validationECEBefore = validationECEBefore; self.validationECEAfter = validationECEAfter
        self.testECEBefore = testECEBefore; self.testECEAfter = testECEAfter; self.atBound = atBound
    }

    /// Probabilities at temperature `t` recomputed from probabilities at T = 1: log p is the
    /// logit up to a per-image constant, which softmax ignores. A probability that underflowed
    /// to 0 in float32 is taken at the smallest positive float (its logit was at least ~103
    /// below the top one; any T in range keeps it negligible).
    public static func rescale(_ probabilities: [[Float]], temperature t: Double) -> [[Float]] {
        probabilities.map { row in
            TemperatureScaling.probabilities(logits: row.map { log(max($0, Float.leastNonzeroMagnitude)) }, temperature: t)
                .map { Float($0) }
        }
    }

    static func ece(_ probabilities: [[Float]], _ labels: [Int]) -> Double {
        Metrics.expectedCalibrationError(Metrics.reliability(probabilities: probabilities, labels: labels))
    }

    /// Fits the temperature on `validation` with the network's current weights and measures
    /// the ECE before and after on it and on the test set (given as its T = 1 probabilities).
    /// nil when there are no validation images or the logits are not finite.
    public static func measure(
        network: Network, validation: LabeledImages, testProbabilities: [[Float]], testLabels: [Int]
    ) throws -> CellCalibration? {
        guard let c = try TemperatureScaling.calibrate(network: network, validation: validation),
            !testProbabilities.isEmpty
        else { return nil }
        // The same test as `train --calibrate`, which then keeps T = 1.
        let r = TemperatureScaling.range
        let atBound = c.temperature <= r.lowerBound * 1.01 || c.temperature >= r.upperBound / 1.01
        let applied = atBound ? 1 : c.temperature
        return CellCalibration(
            temperature: c.temperature, validationImages: c.images, validationECEBefore: c.eceBefore,
            validationECEAfter: atBound ? c.eceBefore : c.eceAfter, testECEBefore: ece(testProbabilities, testLabels),
            testECEAfter: ece(rescale(testProbabilities, temperature: applied), testLabels), atBound: atBound)
    }

    /// Why these values cannot have been measured on the record's test set, or nil: a value
    /// out of range, or a test ECE that its stored probabilities (and temperature) do not give.
    public func inconsistency(testProbabilities: [[Float]], testLabels: [Int], validationCount: Int) -> String? {
        let r = TemperatureScaling.range
        guard temperature.isFinite, temperature >= r.lowerBound * (1 - 1e-6), temperature <= r.upperBound * (1 + 1e-6) else { return "calibration temperature \(temperature) is outside \(TemperatureScaling.range)" }
        for (name, v) in [
            ("validationECEBefore", validationECEBefore), ("validationECEAfter", validationECEAfter),
            ("testECEBefore", testECEBefore), ("testECEAfter", testECEAfter),
        ] where !(v.isFinite && v >= 0 && v <= 1) {
            return "calibration \(name) \(v) is outside [0, 1]"
        }
        if validationImages != validationCount {
            return "calibration on \(validationImages) validation images, but the cell has \(validationCount)"
        }
        let before = Self.ece(testProbabilities, testLabels)
        let after = Self.ece(Self.rescale(testProbabilities, temperature: appliedTemperature), testLabels)
        if abs(before - testECEBefore) > 1e-6 || abs(after - testECEAfter) > 1e-6 {
            return String(
                format: "calibration test ECE %.6g -> %.6g is not the %.6g -> %.6g its test probabilities give", testECEBefore,
                testECEAfter, before, after)
        }
        return nil
    }
}
