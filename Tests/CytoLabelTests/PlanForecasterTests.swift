import CytoCPU
import CytoCore
import CytoData
import CytoTrain
import XCTest

@testable import CytoLabel
@testable import CytoReport

/// The page's forecast line: the planner's numbers said as "about N more labels", and
/// honestly nothing when there are too few labels for a curve.
final class PlanForecasterTests: XCTestCase {
    func forecast(more: Int?, lower: Int?, upper: Int?, reachable: Bool, failure: String? = nil) -> PlanForecast {
        PlanForecast(
            metric: "roc_auc", target: 0.95, labelled: 40, sizeUnit: "images", planSizes: [10, 20, 40], planFolds: 5,
            measuredMeans: [0.7, 0.8, 0.85], trainingSize: nil, trainingSizeLower: nil, trainingSizeUpper: nil,
            labelsNeeded: more.map { $0 + 40 }, lower: lower, upper: upper, moreLabels: more, reachable: reachable,
            asymptote: 0.912, failure: failure, beyondMeasuredRange: false, sentence: "")
    }

    func testLineSaysHowManyMoreLabels() {
        XCTAssertEqual(
            PlanForecaster.line(forecast(more: 1160, lower: 600, upper: 3040, reachable: true)),
            "about 1,160 more labels to reach ROC-AUC 0.95 (90%: 560-3,000)")
        XCTAssertEqual(
            PlanForecaster.line(forecast(more: 200, lower: 90, upper: nil, reachable: true)),
            "about 200 more labels to reach ROC-AUC 0.95 (90%: 50-more than 1000x the largest plan size)")
        XCTAssertEqual(
            PlanForecaster.line(forecast(more: 0, lower: 20, upper: 70, reachable: true)),
            "the 40 labels so far are forecast to reach ROC-AUC 0.95 (90%: 0-30 more)")
        XCTAssertEqual(
            PlanForecaster.line(forecast(more: nil, lower: nil, upper: nil, reachable: false)),
            "ROC-AUC 0.95 is not forecast to be reached: the curve so far levels off at 0.912")
        // Reached, but past the planner's horizon: not "not reached ... levels off at 1.000".
        var beyond = forecast(more: nil, lower: nil, upper: nil, reachable: false)
        beyond.asymptote = 0.9996
        XCTAssertEqual(
            PlanForecaster.line(beyond),
            "ROC-AUC 0.95 is forecast only beyond 1000x the largest plan size (40,000 images per fold): too far to extrapolate "
                + "from 40 labels (the curve so far levels off at 1.000)")
        XCTAssertEqual(
            PlanForecaster.line(forecast(more: nil, lower: nil, upper: nil, reachable: false, failure: "the curve is flat")),
            "no forecast of ROC-AUC 0.95 yet: the curve is flat")
    }

    func images(_ n: Int) -> LabeledImages {
        let (h, w) = (32, 32)
        var pixels: [UInt8] = []
        var labels: [Int] = []
        for i in 0..<n {
            let image = SyntheticCells.render(kind: i % 2 == 0 ? .lymphoblast : .lymphocyte, size: h, seed: UInt64(i))
            pixels += image.pixels
            labels.append(i % 2)
        }
        return LabeledImages(
            geometry: ImageGeometry(height: h, width: w), pixels: pixels, labels: labels, paths: (0..<n).map { "c\($0).png" })
    }

    var forecaster: PlanForecaster {
        var training = TrainingConfig()
        training.maxEpochs = 2
        var f = PlanForecaster(
            spec: ModelSpec(inputHeight: 32, inputWidth: 32, convFilters: [2, 2], denseUnits: [4], classes: 2), training: training)
        f.folds = 3
        return f
    }

    /// Too few labels for a test block of every class in every fold: said so, not a number.
    func testTooFewLabelsGiveNoNumber() throws {
        let line = try forecaster.forecast(images: images(4), classNames: ["other", "blast"], backend: CPUBackend(threads: 1))
        XCTAssertTrue(line.hasPrefix("not enough labels yet to forecast (4 labelled: the data set is too small"), line)
    }

    /// Enough labels: the plan sweep runs on the labelled images and its curve gives the
    /// line (a number of labels, a level the curve stays under, or why no curve fits).
    func testPlanSweepOverTheLabelsGivesALine() throws {
        let line = try forecaster.forecast(images: images(40), classNames: ["other", "blast"], backend: CPUBackend(threads: 1))
        let forms = [
            #"^about [0-9,]+ more labels to reach ROC-AUC 0\.95 \(90%: [0-9,]+-([0-9,]+|more than .*)\)$"#,
            #"^the 40 labels so far are forecast to reach ROC-AUC 0\.95"#,
            #"^ROC-AUC 0\.95 is not forecast to be reached: the curve so far levels off at 0\.[0-9]{3}$"#,
            #"^no forecast of ROC-AUC 0\.95 yet: .+$"#,
        ]
        XCTAssertTrue(forms.contains { line.range(of: $0, options: .regularExpression) != nil }, line)
    }
}
