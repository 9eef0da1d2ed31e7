import CytoCore
import Foundation
import XCTest

@testable import CytoReport

final class LearningCurveTests: XCTestCase {
    let sizes = [10, 20, 30, 40, 50, 60, 80, 100, 150, 200]

    /// Metric (1 - error) of the law a + b n^-c.
    func metric(_ n: Int, a: Double, b: Double, c: Double) -> Double { 1 - (a + b * pow(Double(n), -c)) }

    func testRecoversKnownParametersFromExactCurves() throws {
        for (a, b, c) in [(0.03, 2.0, 0.8), (0.0, 0.9, 0.5), (0.1, 5.0, 1.5)] {
            let errors = sizes.map { a + b * pow(Double($0), -c) }
            let fit = try XCTUnwrap(
                LearningCurve.fit(sizes: sizes.map(Double.init), errors: errors, weights: sizes.map { _ in 1 }))
            XCTAssertEqual(fit.a, a, accuracy: 1e-5, "a for \((a, b, c))")
            XCTAssertEqual(fit.b, b, accuracy: 1e-3 * b, "b for \((a, b, c))")
            XCTAssertEqual(fit.c, c, accuracy: 1e-4, "c for \((a, b, c))")
        }
    }

    func testExactFoldsForecastTheLawAndItsTargetSize() throws {
        // Five identical folds: no spread, so the band is the point and the size is analytic.
        let row = sizes.map { metric($0, a: 0.02, b: 1.5, c: 0.7) }
        let f = try LearningCurve.forecast(sizes: sizes, values: Array(repeating: row, count: 5)).get()
        XCTAssertEqual(f.predicted(at: 2000), metric(2000, a: 0.02, b: 1.5, c: 0.7), accuracy: 1e-5)
        let band = f.band(at: 2000)
        XCTAssertEqual(band.lower, band.upper, accuracy: 1e-6)
        // 1 - 0.02 - 1.5 n^-0.7 = 0.95  =>  n = (1.5 / 0.03)^(1/0.7) = 267.5
        let t = f.sizeReaching(0.95)
        XCTAssertEqual(try XCTUnwrap(t.size), pow(50, 1 / 0.7), accuracy: 0.5)
        XCTAssertEqual(try XCTUnwrap(t.lower), pow(50, 1 / 0.7), accuracy: 0.02 * 267.5)
        XCTAssertEqual(try XCTUnwrap(t.upper), pow(50, 1 / 0.7), accuracy: 0.02 * 267.5)
        // Above the asymptote 0.98 the target is never reached.
        let never = f.sizeReaching(0.99)
        XCTAssertNil(never.size)
        XCTAssertNil(never.upper)
    }

    /// A small, noisy plan sweep (the ROC-AUC of `cytocl plan` on 120 generated cells,
    /// 3 epochs): the bootstrap refits fan out below the smallest size, and the optimistic
    /// edge was found "at 1 image" (the plan said "about 2 labelled images") for a curve
    /// measured at 0.70 with 10 images. The search starts at the smallest fitted size.
    func testTheBandIsNotSearchedBelowTheSmallestSize() throws {
        let values: [[Double]] = [
            [0.9375, 0.7569444444444444, 0.5, 0.6111111111111112], [0.5694444444444444, 0.75, 0.7986111111111112, 1],
            [0.4791666666666667, 0.875, 0.9097222222222222, 0.9097222222222222], [0.5416666666666666, 0.5, 0.875, 0.9513888888888888],
            [0.9722222222222222, 0.8263888888888888, 0.9861111111111112, 0.5416666666666666],
        ]
        let f = try LearningCurve.forecast(sizes: [10, 19, 37, 72], values: values).get()
        let t = f.sizeReaching(0.95)
        let lower = try XCTUnwrap(t.lower)
        XCTAssertGreaterThanOrEqual(lower, 10)
        // Where the band's upper edge first reaches 0.95, it does; just below, it does not.
        XCTAssertGreaterThanOrEqual(f.band(at: lower).upper, 0.95)
        if lower > 10 { XCTAssertLessThan(f.band(at: lower / 1.01).upper, 0.95) }
        XCTAssertLessThan(f.band(at: 10).upper, 0.95, "the case this test is about: the edge is below 0.95 at 10 images")
    }

    func testNoisyFoldsIntervalContainsTheTruthBeyondTheData() throws {
        // Ten folds with ALL-IDB-like noise (s.d. proportional to the error, a shared
        // per-fold offset for the fold's test block); the 90% band at 2x and 4x the largest
        // size contains the true curve, and the point forecast is close to it.
        var g = SeededGenerator(seed: 7)
        let (a, b, c) = (0.03, 1.2, 0.7)
        var values: [[Double]] = []
        for _ in 0..<10 {
            let foldOffset = LearningCurve.gaussian(&g)
            values.append(
                sizes.map { n in
                    let e = a + b * pow(Double(n), -c)
                    let noisy = e + 0.4 * e * (0.6 * foldOffset + 0.8 * LearningCurve.gaussian(&g))
                    return 1 - min(1, max(0, noisy))
                })
        }
        let f = try LearningCurve.forecast(sizes: sizes, values: values).get()
        XCTAssertEqual(f.replicatesUsed, LearningCurve.replicates)
        for n in [400.0, 800.0] {
            let truth = 1 - (a + b * pow(n, -c))
            let band = f.band(at: n)
            XCTAssertLessThan(band.lower, truth, "n=\(n)")
            XCTAssertGreaterThan(band.upper, truth, "n=\(n)")
            XCTAssertLessThan(band.upper - band.lower, 0.1, "n=\(n): a band this wide says nothing")
            XCTAssertEqual(f.predicted(at: n), truth, accuracy: 0.02, "n=\(n)")
        }
        // Deterministic: the same data and seed give the same band.
        let again = try LearningCurve.forecast(sizes: sizes, values: values).get()
        XCTAssertEqual(again.band(at: 400).lower, f.band(at: 400).lower)
        XCTAssertEqual(again.band(at: 400).upper, f.band(at: 400).upper)
    }

    func testBackTestFitsOnlyTheSmallerSizes() throws {
        let row = sizes.map { metric($0, a: 0.05, b: 1.0, c: 0.6) }
        var rows = Array(repeating: row, count: 4)
        rows[0][9] = 0.2  // a wild value at 200 that the fit up to 100 must not see
        let f = try LearningCurve.forecast(sizes: sizes, values: rows, maxSize: 100).get()
        XCTAssertEqual(f.sizes, [10, 20, 30, 40, 50, 60, 80, 100])
        XCTAssertEqual(f.predicted(at: 200), metric(200, a: 0.05, b: 1.0, c: 0.6), accuracy: 1e-4)
    }

    func testDegenerateInputsCannotBeForecast() {
        func reason(_ s: [Int], _ v: [[Double]], max: Int? = nil) -> String {
            switch LearningCurve.forecast(sizes: s, values: v, maxSize: max) {
            case .success: return "a forecast"
            case .failure(let e): return e.description
            }
        }
        let row = sizes.map { metric($0, a: 0.05, b: 1.0, c: 0.6) }
        // Too few sizes (two finished, or the back-test leaves two).
        XCTAssertTrue(reason([10, 20], [[0.7, 0.8], [0.7, 0.8], [0.8, 0.9]]).contains("at least 3 sizes"))
        XCTAssertTrue(reason(sizes, Array(repeating: row, count: 4), max: 20).contains("at least 3 sizes"))
        // A size with no finished cell does not count.
        XCTAssertTrue(reason([10, 20, 30], Array(repeating: [0.7, 0.8, .nan], count: 4)).contains("at least 3 sizes"))
        // AUC 1.0 everywhere, or any constant.
        XCTAssertTrue(reason(sizes, Array(repeating: sizes.map { _ in 1.0 }, count: 5)).contains("no trend"))
        // Too few folds for a fold bootstrap.
        XCTAssertTrue(reason(sizes, [row, row]).contains("at least 3"))
        // A curve that gets worse with size has no decreasing fit.
        let worse = sizes.map { 0.9 - 0.3 * Double($0) / 200 }
        XCTAssertTrue(reason(sizes, [worse, worse, worse]).contains("does not improve"))
        // Corrupt values.
        XCTAssertTrue(reason(sizes, [row, row, row.map { $0 * 2 }]).contains("outside [0, 1]"))
    }
}
