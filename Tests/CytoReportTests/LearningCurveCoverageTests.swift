import CytoCore
import Foundation
import XCTest

@testable import CytoReport

/// Measures how often the forecast's 90% band contains the measured mean at 2x, 4x and 10x
/// the largest fitted size, over simulated sweeps (docs/learning-curves.md has the figures
/// and how `LearningCurve.intervalInflation` was chosen from them).
///
/// A simulated sweep: k folds, each a replicate of the curve with fold noise of s.d.
/// kappa * e(n) (the spread of real sweeps shrinks with the error: ALL-IDB's 0.97 +- 0.02
/// at 200 images is kappa ~ 0.7), half of it shared by all sizes of a fold (its test block
/// is the same at every size), and at sizes of 20 or fewer a 5% chance per cell that
/// training collapsed (metric 0.5, as a network that predicts one class). The true curve
/// is one of three families, a third each, so the measurement includes a wrong model:
/// the law itself a + b n^-c; a sum of two power laws (a fast term that dominates the
/// fitted sizes and a slow one that dominates later: the fitted law is then optimistic);
/// and a stretched exponential a + d exp(-(n/s)^0.5) (saturates faster: pessimistic).
/// The measured value at a larger size is the k-fold mean of the same folds there.
///
/// `CYTOCL_LC_SWEEPS=N swift test --filter LearningCurveCoverageTests/testMeasureCoverage`
/// prints the table (N sweeps per design; `CYTOCL_LC_SEED`, default 2026, the seed the
/// inflation was calibrated on: check it on another); without it the test is skipped.
final class LearningCurveCoverageTests: XCTestCase {
    struct Design {
        var name: String
        var sizes: [Int]
        var folds: Int
    }
    static let designs = [
        Design(name: "ALL-like: 10-50 images, 10 folds", sizes: [10, 20, 30, 40, 50], folds: 10),
        Design(name: "custom-like: 10, 20, 50, 100 images, 5 folds", sizes: [10, 20, 50, 100], folds: 5),
    ]
    static let ratios: [Double] = [2, 4, 10]

    /// One forecast checked at one larger size.
    struct Case {
        var family: Int
        var ratio: Double
        /// The factor the raw band's half-width on the observed side needs to contain the
        /// observed value (0 when it is the point forecast; infinity when that side is empty).
        var needed: Double
        var absError: Double
    }

    static func uniform(_ g: inout SeededGenerator, _ lo: Double, _ hi: Double) -> Double {
        lo + (hi - lo) * Double(g.next() >> 11) / 9_007_199_254_740_992.0
    }

    /// Simulates `count` sweeps of a design and returns the checked cases and how many sweeps gave no forecast.
    static func simulate(_ d: Design, count: Int, seed: UInt64) -> (cases: [Case], failed: Int) {
        var g = SeededGenerator.stream(seed: seed, d.name)
        var cases: [Case] = []
        var failed = 0
        let largest = Double(d.sizes.last!)
        let testSizes = ratios.map { largest * $0 }
        for sweep in 0..<count {
            let family = sweep % 3
            let a = uniform(&g, 0.005, 0.08)
            let e10 = uniform(&g, 0.12, 0.35)
            let truth: (Double) -> Double
            switch family {
            case 0:
                let c = uniform(&g, 0.3, 1.2), b = (e10 - a) * pow(10, c)
                truth = { a + b * pow($0, -c) }
            case 1:
                let c1 = uniform(&g, 0.8, 1.6), c2 = uniform(&g, 0.15, 0.4), share = uniform(&g, 0.15, 0.35)
                let b1 = (e10 - a) * (1 - share) * pow(10, c1), b2 = (e10 - a) * share * pow(10, c2)
                truth = { a + b1 * pow($0, -c1) + b2 * pow($0, -c2) }
            default:
                let s = uniform(&g, 5, 60), dd = (e10 - a) / exp(-pow(10 / s, 0.5))
                truth = { a + dd * exp(-pow($0 / s, 0.5)) }
            }
            let kappa = uniform(&g, 0.3, 0.9)
            let offsets = (0..<d.folds).map { _ in LearningCurve.gaussian(&g) }
            func cell(_ f: Int, _ n: Double) -> Double {
                if n <= 20 && uniform(&g, 0, 1) < 0.05 { return 0.5 }
                let e = truth(n)
                let noisy = e + kappa * e * (0.7071 * offsets[f] + 0.7071 * LearningCurve.gaussian(&g))
                return 1 - min(1, max(0, noisy))
            }
            let values = (0..<d.folds).map { f in d.sizes.map { cell(f, Double($0)) } }
            let observed = testSizes.map { n in (0..<d.folds).map { cell($0, n) }.reduce(0, +) / Double(d.folds) }
            guard case .success(let fc) = LearningCurve.forecast(sizes: d.sizes, values: values, inflation: .none) else {
                failed += 1
                continue
            }
            for (i, n) in testSizes.enumerated() {
                let r = fc.rawErrorBand(at: n)
                let obsE = 1 - observed[i]
                let needed: Double
                if obsE >= r.point {
                    needed = obsE == r.point ? 0 : (r.high > r.point ? (obsE - r.point) / (r.high - r.point) : .infinity)
                } else {
                    needed = r.low < r.point ? (r.point - obsE) / (r.point - r.low) : .infinity
                }
                cases.append(Case(family: family, ratio: ratios[i], needed: needed, absError: abs(obsE - r.point)))
            }
        }
        return (cases, failed)
    }

    /// The share of cases the band widened by `inflation` contains.
    static func coverage(_ cases: [Case], _ inflation: BandInflation) -> Double {
        guard !cases.isEmpty else { return .nan }
        return Double(cases.filter { $0.needed <= inflation.factor(ratio: $0.ratio) * (1 + 1e-12) }.count) / Double(cases.count)
    }

    func testCalibratedBandCoversSimulatedSweeps() {
        // 24 sweeps of the ALL-like design (a short test; testMeasureCoverage runs hundreds):
        // with the calibrated widening, at least 70% coverage at 2x and 4x (90% expected;
        // 70% is more than three binomial s.d. below it at 24 cases).
        let (cases, failed) = Self.simulate(Self.designs[0], count: 24, seed: 1)
        XCTAssertLessThanOrEqual(failed, 3, "most simulated sweeps must give a forecast")
        for r in [2.0, 4.0] {
            let c = Self.coverage(cases.filter { $0.ratio == r }, LearningCurve.intervalInflation)
            XCTAssertGreaterThanOrEqual(c, 0.70, "coverage at \(r)x")
        }
    }

    func testMeasureCoverage() throws {
        guard let n = ProcessInfo.processInfo.environment["CYTOCL_LC_SWEEPS"].flatMap(Int.init) else {
            throw XCTSkip("set CYTOCL_LC_SWEEPS=N to measure coverage over N simulated sweeps per design")
        }
        var all: [Case] = []
        for d in Self.designs {
            let seed = ProcessInfo.processInfo.environment["CYTOCL_LC_SEED"].flatMap(UInt64.init) ?? 2026
            let (cases, failed) = Self.simulate(d, count: n, seed: seed)
            all += cases
            print("\(d.name): \(n) sweeps, \(failed) without a forecast")
            for r in Self.ratios {
                let c = cases.filter { $0.ratio == r }
                let needed = c.map(\.needed).sorted()
                let err = c.map(\.absError).sorted()
                print(
                    String(
                        format:
                            "  %4.0fx: raw coverage %.3f, calibrated %.3f, factor for 90%% %.2f, median |error| %.4f, 90th pct %.4f (%d cases)",
                        r, Self.coverage(c, .none), Self.coverage(c, LearningCurve.intervalInflation),
                        BoxStats.quantile(needed.map { min($0, 1e6) }, 0.9), BoxStats.quantile(err, 0.5), BoxStats.quantile(err, 0.9),
                        c.count))
                for fam in 0..<3 {
                    let cf = c.filter { $0.family == fam }
                    print(
                        String(
                            format: "        family %d: raw %.3f, calibrated %.3f (%d)", fam, Self.coverage(cf, .none),
                            Self.coverage(cf, LearningCurve.intervalInflation), cf.count))
                }
            }
        }
        for r in Self.ratios {
            let c = all.filter { $0.ratio == r }
            print(
                String(
                    format: "both designs %4.0fx: raw %.3f, calibrated %.3f, factor for 90%% %.2f", r, Self.coverage(c, .none),
                    Self.coverage(c, LearningCurve.intervalInflation), BoxStats.quantile(c.map { min($0.needed, 1e6) }.sorted(), 0.9)))
        }
    }
}
