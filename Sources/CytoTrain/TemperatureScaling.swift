import CytoCore
import Foundation

/// Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017):
/// one scalar T > 0 divides the logits before the softmax, fitted on held-out (validation)
/// images by minimising the mean negative log-likelihood. T > 1 softens over-confident
/// probabilities; the arg-max, and so accuracy, F1 and ROC-AUC, are unchanged.
///
/// `train --calibrate` fits T on the validation images (`calibrate`) and stores it in the
/// model file (`ModelFile.temperature`); `Predictor`, ONNX export and the Python loader
/// apply it.
public enum TemperatureScaling {
    /// The searched range of T: a validation set of 25 images cannot support more (a
    /// perfectly separated set drives the optimum to the bound, see `fit`).
    public static let range = 0.05...20.0

    /// Softmax of `logits / t` (max-subtracted).
    public static func probabilities(logits: [Float], temperature t: Double) -> [Double] {
        let z = logits.map { Double($0) / t }
        let m = z.max() ?? 0
        let e = z.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// Mean negative log-likelihood of `labels` under softmax(logits / t).
    public static func nll(logits: [[Float]], labels: [Int], temperature t: Double) -> Double {
        var total = 0.0
        for (l, y) in zip(logits, labels) {
            let z = l.map { Double($0) / t }
            let m = z.max() ?? 0
            let lse = m + log(z.map { exp($0 - m) }.reduce(0, +))
            total += lse - z[y]
        }
        return total / Double(max(logits.count, 1))
    }

    /// The temperature that minimises the NLL: golden-section search on log T over `range`
    /// (the NLL is convex in 1/T, so unimodal in log T), to a relative precision of 1e-6.
    /// nil when there are no images or a logit is not finite.
    public static func fit(logits: [[Float]], labels: [Int]) -> Double? {
        guard !logits.isEmpty, logits.count == labels.count,
            logits.allSatisfy({ $0.allSatisfy(\.isFinite) }),
            zip(logits, labels).allSatisfy({ $1 >= 0 && $1 < $0.count })
        else { return nil }
        let g = (5.0.squareRoot() - 1) / 2
        var lo = log(range.lowerBound), hi = log(range.upperBound)
        func f(_ x: Double) -> Double { nll(logits: logits, labels: labels, temperature: exp(x)) }
        var x1 = hi - g * (hi - lo), x2 = lo + g * (hi - lo)
        var f1 = f(x1), f2 = f(x2)
        while hi - lo > 1e-6 {
            if f1 <= f2 {
                hi = x2; x2 = x1; f2 = f1; x1 = hi - g * (hi - lo); f1 = f(x1)
            } else {
                lo = x1; x1 = x2; f1 = f2; x2 = lo + g * (hi - lo); f2 = f(x2)
            }
        }
        let t = exp((lo + hi) / 2)
        return t.isFinite && t > 0 ? t : nil
    }

    /// What `calibrate` found: the temperature and the validation set's calibration with
    /// and without it.
    public struct Calibration: Sendable {
        public var temperature: Double
        public var images: Int
        /// Expected calibration error (15 bins, top label) at T = 1 and at `temperature`.
        public var eceBefore: Double, eceAfter: Double
        /// Mean negative log-likelihood at T = 1 and at `temperature` (what the fit minimises).
        public var nllBefore: Double, nllAfter: Double

        /// One line for stderr.
        public var summary: String {
            String(
                format: "calibrated on %d validation images: temperature %.4g; ECE %.4f -> %.4f, NLL %.4f -> %.4f",
                images, temperature, eceBefore, eceAfter, nllBefore, nllAfter)
        }
    }

    /// Fits T on `validation` with the network's current weights. nil when there are no
    /// validation images or the logits are not finite.
    public static func calibrate(network: Network, validation: LabeledImages) throws -> Calibration? {
        guard validation.count > 0 else { return nil }
        let logits = try Predictor(network: network).logits(validation)
        guard let t = fit(logits: logits, labels: validation.labels) else { return nil }
        func ece(_ t: Double) -> Double {
            let p = logits.map { probabilities(logits: $0, temperature: t).map { Float($0) } }
            return Metrics.expectedCalibrationError(Metrics.reliability(probabilities: p, labels: validation.labels))
        }
        return Calibration(
            temperature: t, images: validation.count, eceBefore: ece(1), eceAfter: ece(t),
            nllBefore: nll(logits: logits, labels: validation.labels, temperature: 1),
            nllAfter: nll(logits: logits, labels: validation.labels, temperature: t))
    }
}
