import CytoCore
import CytoSweep
import CytoReport
import CytoSweep
import CytoTrain
import Foundation
import XCTest

/// The planner's arithmetic: the full sweep's work and time from a device timing, the
/// labelled images a training size needs, the plan's sizes, and the forecast of a plan's records.
final class PlannerTests: XCTestCase {
    func testWorkAndTimeExtrapolation() {
        var p = SweepProtocol.custom
        p.training.batchSize = 5
        // 100 labelled images, 5 folds: test and validation blocks of 20 each, a pool of 60.
        // Size 10: 2 steps an epoch; size 100 is capped at the pool of 60: 12 steps.
        let w = Planner.work(protocol: p, sizes: [10, 100], folds: 5, labelled: 100, classCount: 2, pool: 60) { $0 == 10 ? 30 : 50 }
        XCTAssertEqual(w.cells, 10)
        XCTAssertEqual(w.trainingSteps, 5 * (30 * 2 + 50 * 12))
        XCTAssertEqual(w.forwardImages, 5 * ((30 * 20 + 20) + (50 * 20 + 20)))
        XCTAssertEqual(w.meanEpochs, 40)
        let t = DeviceTiming(selector: "cpu", device: "test", stepSeconds: 0.01, forwardSecondsPerImage: 0.001, concurrentCells: 2, steps: 9)
        XCTAssertEqual(Planner.seconds(w, timing: t), (3300 * 0.01 + 8200 * 0.001) / 2, accuracy: 1e-9)
        // Fixed test and validation sets; sizes per class repeat images (never capped).
        p.testPerFold = 30; p.valPerFold = 7; p.balancePerClass = true
        let perClass = Planner.work(protocol: p, sizes: [8], folds: 2, labelled: 1000, classCount: 3, pool: 5) { _ in 4 }
        XCTAssertEqual(perClass.trainingSteps, 2 * 4 * 5)  // 24 images at batch 5
        XCTAssertEqual(perClass.forwardImages, 2 * (4 * 7 + 30))
    }

    func testObservedEpochsFollowThePlansCells() throws {
        let rs = [(10, 40), (10, 60), (40, 100), (40, 120)].map { size, epochs -> SweepRecord in
            var r = fixtureRecord(fold: 0, size: size, classes: ["a", "b"], labels: [0, 1], probabilities: [[0.9, 0.1], [0.2, 0.8]], metric: "roc_auc")
            r.epochsRun = epochs
            return r
        }
        let e = try XCTUnwrap(Planner.observedEpochs(rs, maxEpochs: 500))
        XCTAssertEqual(e(5), 50)  // below the smallest plan size: its epochs
        XCTAssertEqual(e(20), 50)
        XCTAssertEqual(e(40), 110)
        XCTAssertEqual(e(1000), 110)
        XCTAssertEqual(try XCTUnwrap(Planner.observedEpochs(rs, maxEpochs: 80))(40), 80, "never above the protocol's maximum")
        XCTAssertNil(Planner.observedEpochs([], maxEpochs: 80))
    }

    func testLabelsNeededAndPlanSizes() throws {
        var p = SweepProtocol.custom
        XCTAssertEqual(Planner.labelsNeeded(trainingSize: 60, protocol: p, folds: 5, classCount: 2), 100)  // 60 = 3/5 of 100
        p.valPerFold = 25
        XCTAssertEqual(Planner.labelsNeeded(trainingSize: 55, protocol: p, folds: 5, classCount: 2), 100)  // 100 - 20 - 25
        p.testPerFold = 200
        XCTAssertEqual(Planner.labelsNeeded(trainingSize: 100, protocol: p, folds: 5, classCount: 2), 325)
        p.valPerFold = nil
        XCTAssertEqual(Planner.labelsNeeded(trainingSize: 100, protocol: p, folds: 5, classCount: 2), 500)
        XCTAssertEqual(Planner.labelsNeeded(trainingSize: 10, protocol: .multiclass, folds: 5, classCount: 6), 6 * 10 * 5 / 3)

        XCTAssertEqual(try Planner.planSizes(protocol: .custom, smallestPool: 150), [10, 20, 40, 80])
        XCTAssertEqual(try Planner.planSizes(protocol: .custom, smallestPool: 45), [10, 16, 27, 45])
        XCTAssertEqual(try Planner.planSizes(protocol: .multiclass, smallestPool: 3), [10, 20, 40, 80], "per class: repeated")
        XCTAssertThrowsError(try Planner.planSizes(protocol: .custom, smallestPool: 11)) {
            XCTAssertTrue("\($0)".contains("a fold's training pool holds 11 images"), "\($0)")
        }
    }

    /// Records drawn from AUC = 1 - (0.02 + 1.6 n^-0.7) at the plan's sizes: the forecast is the
    /// learning curve's, converted to labelled images (4 folds: training is half the data).
    func testForecastOfAPlansRecords() throws {
        var p = SweepProtocol.allIDBBinary
        p.sizes = [10, 20, 40, 80]; p.folds = 4
        let classes = ["other", "blast"]
        let a = FoldAssignment(folds: 4, classNames: classes, test: [], validation: [], trainingOrder: [])
        let m = SweepManifest(
            protocolSettings: p, dataPath: "/d", dataHash: "h", imageCount: 200, classNames: classes, classCounts: [100, 100], seed: 1,
            spec: .paper(height: 64, width: 64, classes: 2), assignment: a, created: "now")
        var records: [SweepRecord] = [], values = [[Double]](repeating: [], count: 4)
        for (f, off) in [-0.01, 0, 0.01, 0.005].enumerated() {
            for n in p.sizes {
                var r = fixtureRecord(fold: f, size: n, classes: classes, labels: [0, 1], probabilities: [[0.9, 0.1], [0.2, 0.8]], metric: "roc_auc")
                r.value = 1 - (0.02 + 1.6 * pow(Double(n), -0.7)) + off
                records.append(r); values[f].append(r.value)
            }
        }
        let f = Planner.forecast(manifest: m, records: records, target: 0.95, labelled: 200)
        let curve = try LearningCurve.forecast(sizes: p.sizes, values: values).get().sizeReaching(0.95)
        let n = try XCTUnwrap(curve.size)
        XCTAssertEqual(f.trainingSize, Int(n.rounded(.up)))
        XCTAssertEqual(Double(try XCTUnwrap(f.trainingSize)), 292, accuracy: 60, "the law reaches 0.95 at 292")
        XCTAssertEqual(f.labelsNeeded, Int((2 * n).rounded(.up)))
        XCTAssertEqual(f.moreLabels, f.labelsNeeded! - 200)
        XCTAssertEqual(f.lower, curve.lower.map { Int((2 * $0).rounded(.up)) })
        XCTAssertTrue(f.reachable)
        XCTAssertEqual(f.planSizes, [10, 20, 40, 80])
        XCTAssertEqual(f.measuredMeans[0]!, 1 - (0.02 + 1.6 * pow(10, -0.7)) + 0.00125, accuracy: 1e-12)
        XCTAssertTrue(f.sentence.hasPrefix("ROC-AUC 0.95 is forecast at about \(formatThousands(f.labelsNeeded!)) labelled images (90%: "), f.sentence)
        XCTAssertTrue(f.sentence.contains("200 are labelled, so about \(formatThousands(f.moreLabels!)) more."), f.sentence)

        // Reached at the smallest plan size already (mean 0.66 at 10): no extrapolation below it.
        let easy = Planner.forecast(manifest: m, records: records, target: 0.6, labelled: 200)
        XCTAssertEqual(easy.trainingSize, 10)
        XCTAssertEqual(easy.labelsNeeded, 20)
        XCTAssertNil(easy.lower)
        XCTAssertTrue(easy.sentence.hasPrefix("ROC-AUC 0.60 is reached already at the plan's smallest size (10 images per fold"), easy.sentence)

        // Unreachable: the curve levels off below the target; no number is given.
        let flat = Planner.forecast(manifest: m, records: records, target: 0.99, labelled: 200)
        XCTAssertFalse(flat.reachable)
        XCTAssertNil(flat.labelsNeeded)
        XCTAssertTrue(flat.sentence.contains("levels off at ROC-AUC 0.98"), flat.sentence)
    }
}
