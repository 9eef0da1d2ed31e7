import CytoTrain
import Foundation

extension Metrics.MeanSD {
    /// "0.970 ± 0.020" (or "0.970" for a single value, "–" for none), for tables.
    public func formatted(decimals: Int = 3) -> String {
        guard count > 0, mean.isFinite else { return "–" }
        let m = String(format: "%.\(decimals)f", mean)
        return sd.isFinite ? m + " ± " + String(format: "%.\(decimals)f", sd) : m
    }
}
