import CytoTrain
import Foundation

extension Metrics.MeanSD {
    /// "0.970 ± 0.020", or "0.970 ± n/a" when the s.d. is undefined (fewer than two
    /// values): never a made-up 0, which would read as folds that agree perfectly.
    public func meanWithSD(decimals: Int = 3) -> String {
        let m = mean.isFinite ? String(format: "%.\(decimals)f", mean) : "n/a"
        return m + " ± " + (sd.isFinite && count >= 2 ? String(format: "%.\(decimals)f", sd) : "n/a")
    }

    /// "0.970 ± 0.020" (or "0.970" for a single value, "–" for none), for tables.
    public func formatted(decimals: Int = 3) -> String {
        guard count > 0, mean.isFinite else { return "–" }
        let m = String(format: "%.\(decimals)f", mean)
        return sd.isFinite ? m + " ± " + String(format: "%.\(decimals)f", sd) : m
    }
}
