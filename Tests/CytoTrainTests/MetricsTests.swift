import CytoTestSupport
import XCTest

@testable import CytoTrain

/// Expected values come from scikit-learn 1.9.1 / NumPy on the same literal inputs
/// (`roc_curve(drop_intermediate=False)`, `roc_auc_score`, `recall_score`,
/// `precision_recall_fscore_support(zero_division=0)`, `f1_score`, `np.std(ddof=1)`,
/// and the sklearn cross-validated-ROC recipe with `np.interp` on a 101-point grid),
/// plus one case computed by hand.
final class MetricsTests: XCTestCase {
    // Binary with ties across classes (three samples at 0.5, two at 0.4).
    let tieScores: [Double] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.5, 0.5, 0.9, 0.2, 0.65, 0.5, 0.05]
    let tieLabels = [0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1, 0]
    // Imbalanced: 4 positives of 23, many ties.
    let imbScores: [Double] = [
        0.6, 0.7, 0.3, 0.5, 0.9, 0.9, 0.1, 0.2, 0.1, 0.4, 0.0, 0.5, 0.6, 0.3, 0.7, 0.6, 0.0, 0.6, 0.3, 0.4, 0.3, 0.7, 0.4,
    ]
    let imbLabels = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]


    func testHandComputedAUC() {
        // Pairs (pos, neg): (0.9,0.5)=1 (0.9,0.1)=1 (0.5,0.5)=1/2 (0.5,0.1)=1 -> 3.5/4.
        XCTAssertEqual(Metrics.rocAUC(scores: [0.9, 0.5, 0.5, 0.1], labels: [1, 1, 0, 0]), 0.875, accuracy: 1e-15)
        let c = Metrics.rocCurve(scores: [0.9, 0.5, 0.5, 0.1], labels: [1, 1, 0, 0])
        XCTAssertEqual(c.fpr, [0, 0, 0.5, 1])
        XCTAssertEqual(c.tpr, [0, 0.5, 1, 1])
        XCTAssertEqual(c.thresholds, [.infinity, 0.9, 0.5, 0.1])
        XCTAssertEqual(c.auc, 0.875, accuracy: 1e-15)
        // All tied -> 0.5; perfect -> 1; inverted -> 0.
        XCTAssertEqual(Metrics.rocAUC(scores: [0.3, 0.3, 0.3], labels: [1, 0, 1]), 0.5)
        XCTAssertEqual(Metrics.rocAUC(scores: [0.1, 0.2, 0.8, 0.9], labels: [0, 0, 1, 1]), 1)
        XCTAssertEqual(Metrics.rocAUC(scores: [0.1, 0.2, 0.8, 0.9], labels: [1, 1, 0, 0]), 0)
    }

    func testROCWithTiesMatchesSklearn() {
        let c = Metrics.rocCurve(scores: tieScores, labels: tieLabels)
        assertClose(c.fpr, [0.0, 0.0, 0.0, 0.16666666666666666, 0.3333333333333333, 0.5, 0.5, 0.6666666666666666, 0.8333333333333334, 1.0], atol: 1e-12)
        assertClose(
            c.tpr,
            [0.0, 0.16666666666666666, 0.3333333333333333, 0.3333333333333333, 0.6666666666666666, 0.8333333333333334, 1.0, 1.0, 1.0, 1.0], atol: 1e-12)
        XCTAssertEqual(c.thresholds, [.infinity, 0.9, 0.8, 0.65, 0.5, 0.4, 0.35, 0.2, 0.1, 0.05])
        XCTAssertEqual(Metrics.rocAUC(scores: tieScores, labels: tieLabels), 0.7638888888888888, accuracy: 1e-12)
        XCTAssertEqual(c.auc, 0.7638888888888888, accuracy: 1e-12)
        let r = Metrics.binaryRates(scores: tieScores, labels: tieLabels)
        XCTAssertEqual(r.accuracy, 0.5833333333333334, accuracy: 1e-12)
        XCTAssertEqual(r.sensitivity, 0.3333333333333333, accuracy: 1e-12)
        XCTAssertEqual(r.specificity, 0.8333333333333334, accuracy: 1e-12)
    }

    func testImbalancedMatchesSklearn() {
        XCTAssertEqual(Metrics.rocAUC(scores: imbScores, labels: imbLabels), 0.34868421052631576, accuracy: 1e-12)
        let c = Metrics.rocCurve(scores: imbScores, labels: imbLabels)
        assertClose(
            c.fpr,
            [
                0.0, 0.10526315789473684, 0.2631578947368421, 0.42105263157894735, 0.5263157894736842, 0.6842105263157895,
                0.7894736842105263, 0.7894736842105263, 0.8947368421052632, 1.0,
            ], atol: 1e-12)
        assertClose(c.tpr, [0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.75, 1.0, 1.0, 1.0], atol: 1e-12)
        XCTAssertEqual(c.auc, 0.34868421052631576, accuracy: 1e-12)
        let r = Metrics.binaryRates(scores: imbScores, labels: imbLabels)
        XCTAssertEqual(r.accuracy, 0.5217391304347826, accuracy: 1e-12)
        XCTAssertEqual(r.sensitivity, 0.25, accuracy: 1e-12)
        XCTAssertEqual(r.specificity, 0.5789473684210527, accuracy: 1e-12)
        // As a 2-class report from probabilities (p0 = 1 - p1).
        let probs = imbScores.map { [Float(1 - $0), Float($0)] }
        let rep = ClassificationReport(probabilities: probs, labels: imbLabels, classNames: ["other", "blast"])
        XCTAssertEqual(rep.f1Weighted, 0.5774804905239688, accuracy: 1e-12)
        XCTAssertEqual(rep.f1Macro, 0.41025641025641024, accuracy: 1e-12)
        XCTAssertEqual(rep.rocAUC!, 0.34868421052631576, accuracy: 1e-7)
        XCTAssertEqual(rep.accuracy, 0.5217391304347826, accuracy: 1e-12)
        XCTAssertEqual(rep.sensitivity!, 0.25, accuracy: 1e-12)
        // The same cells with the classes in the order class folders `blast`, `other`
        // give them (blast is class 0): sensitivity is still blast's recall, not other's.
        let swapped = ClassificationReport(
            probabilities: probs.map { [$0[1], $0[0]] }, labels: imbLabels.map { 1 - $0 }, classNames: ["blast", "other"])
        XCTAssertEqual(swapped.positiveClass, 0)
        XCTAssertEqual(swapped.sensitivity!, 0.25, accuracy: 1e-12)
        XCTAssertEqual(swapped.specificity!, 0.5789473684210527, accuracy: 1e-12)
        XCTAssertEqual(swapped.rocAUC!, 0.34868421052631576, accuracy: 1e-7)
        XCTAssertTrue(swapped.text.contains("(recall of blast, the positive class)"), swapped.text)
        XCTAssertTrue(swapped.json.contains("\"positive_class\":\"blast\""), swapped.json)
        // Folders `Blasts/`, `normal/` (blasts first): still the blasts' recall.
        let plural = ClassificationReport(
            probabilities: probs.map { [$0[1], $0[0]] }, labels: imbLabels.map { 1 - $0 }, classNames: ["Blasts", "normal"])
        XCTAssertEqual(plural.positiveClass, 0)
        XCTAssertEqual(plural.sensitivity!, 0.25, accuracy: 1e-12)
        XCTAssertTrue(plural.text.contains("(recall of Blasts, the positive class)"), plural.text)
        // Two classes without a blast: class 1, named.
        let other = ClassificationReport(probabilities: probs, labels: imbLabels, classNames: ["LYT", "MYO"])
        XCTAssertEqual(other.positiveClass, 1)
        XCTAssertEqual(other.sensitivity!, 0.25, accuracy: 1e-12)
    }

    let multiP: [[Float]] = [
        [0.7, 0.1, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1], [0.1, 0.2, 0.6, 0.1], [0.3, 0.3, 0.2, 0.2],
        [0.1, 0.6, 0.2, 0.1], [0.5, 0.1, 0.1, 0.3], [0.2, 0.2, 0.5, 0.1], [0.4, 0.4, 0.1, 0.1],
        [0.1, 0.1, 0.7, 0.1], [0.25, 0.35, 0.1, 0.3], [0.6, 0.2, 0.1, 0.1], [0.1, 0.3, 0.4, 0.2],
        [0.3, 0.2, 0.2, 0.3], [0.2, 0.5, 0.1, 0.2],
    ]
    let multiY = [0, 1, 2, 3, 1, 3, 2, 0, 2, 3, 0, 1, 3, 1]

    func testMulticlassWithNeverPredictedClassMatchesSklearn() {
        XCTAssertEqual(multiP.map(Metrics.argmax), [0, 1, 2, 0, 1, 0, 2, 0, 2, 1, 0, 2, 0, 1])  // ties -> lowest index
        let rep = ClassificationReport(probabilities: multiP, labels: multiY, classNames: ["a", "b", "c", "d"])
        XCTAssertEqual(rep.confusion, [[3, 0, 0, 0], [0, 3, 1, 0], [0, 0, 3, 0], [3, 1, 0, 0]])
        assertClose(rep.perClass.map(\.precision), [0.5, 0.75, 0.75, 0.0], atol: 1e-12)
        assertClose(rep.perClass.map(\.recall), [1.0, 0.75, 1.0, 0.0], atol: 1e-12)
        assertClose(rep.perClass.map(\.f1), [0.6666666666666666, 0.75, 0.8571428571428571, 0.0], atol: 1e-12)
        XCTAssertEqual(rep.perClass.map(\.support), [3, 4, 3, 4])
        XCTAssertEqual(rep.accuracy, 0.6428571428571429, accuracy: 1e-12)
        XCTAssertEqual(rep.f1Weighted, 0.5408163265306122, accuracy: 1e-12)
        XCTAssertEqual(rep.f1Macro, 0.5684523809523809, accuracy: 1e-12)
        XCTAssertNil(rep.rocAUC)
        XCTAssertNil(rep.binary)
    }

    func testClassAbsentFromTruthAndPredictionsDoesNotChangeAverages() {
        let p5 = multiP.map { $0 + [0] }
        let rep = ClassificationReport(probabilities: p5, labels: multiY, classNames: ["a", "b", "c", "d", "e"])
        XCTAssertEqual(rep.f1Macro, 0.5684523809523809, accuracy: 1e-12)
        XCTAssertEqual(rep.f1Weighted, 0.5408163265306122, accuracy: 1e-12)
        XCTAssertEqual(rep.confusion[4], [0, 0, 0, 0, 0])
    }

    func testMeanSD() {
        let v = [0.97, 0.95, 1.0, 0.93, 0.99, 0.96, 0.94, 1.0, 0.98, 0.92]
        let m = Metrics.meanSD(v)
        XCTAssertEqual(m.mean, 0.9640000000000001, accuracy: 1e-12)
        XCTAssertEqual(m.sd, 0.028751811537130426, accuracy: 1e-12)
        XCTAssertEqual(m.count, 10)
        XCTAssertTrue(Metrics.sampleSD([1]).isNaN)
        XCTAssertTrue(Metrics.mean([]).isNaN)
    }

    func testMeanROCMatchesSklearnRecipe() {
        let curves = [
            Metrics.rocCurve(scores: tieScores, labels: tieLabels),
            Metrics.rocCurve(scores: imbScores, labels: imbLabels),
            Metrics.rocCurve(scores: [0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2], labels: [1, 1, 0, 1, 0, 1, 0, 0]),
        ]
        let m = Metrics.meanROC(curves, gridPoints: 101)
        XCTAssertEqual(m.fpr.count, 101)
        XCTAssertEqual(m.fpr.first, 0); XCTAssertEqual(m.fpr.last, 1)
        let expected: [(Int, Double, Double)] = [
            (0, 0.0, 0.0), (1, 0.27777777777777773, 0.2545875386086578), (10, 0.27777777777777773, 0.2545875386086578),
            (25, 0.4166666666666667, 0.3818813079129867), (33, 0.5052777777777778, 0.3488436586038911),
            (50, 0.75, 0.4330127018922193), (75, 0.8541666666666666, 0.25259074277046134),
            (90, 1.0, 0.0), (99, 1.0, 0.0), (100, 1.0, 0.0),
        ]
        for (g, mean, sd) in expected {
            XCTAssertEqual(m.meanTPR[g], mean, accuracy: 1e-12, "grid \(g)")
            XCTAssertEqual(m.sdTPR[g], sd, accuracy: 1e-12, "grid \(g)")
        }
        XCTAssertEqual(m.auc.mean, 0.6416910331384015, accuracy: 1e-12)
        XCTAssertEqual(m.auc.sd, 0.2549127470406039, accuracy: 1e-12)
        XCTAssertEqual(m.folds, 3)
        XCTAssertTrue(zip(m.lowerTPR, m.upperTPR).allSatisfy { $0 <= $1 && $0 >= 0 && $1 <= 1 })
    }

    func testDegenerateInputs() {
        XCTAssertTrue(Metrics.rocAUC(scores: [0.1, 0.2], labels: [1, 1]).isNaN)
        XCTAssertTrue(Metrics.rocCurve(scores: [0.1, 0.2], labels: [0, 0]).isEmpty)
        XCTAssertTrue(Metrics.rocAUC(scores: [.nan, 0.2], labels: [0, 1]).isNaN)
        let m = Metrics.meanROC([
            Metrics.rocCurve(scores: [0.1], labels: [1]),
            Metrics.rocCurve(scores: [0.1, 0.9], labels: [0, 1]),
        ])
        XCTAssertEqual(m.folds, 1)
        XCTAssertEqual(m.meanTPR[50], 1)
        XCTAssertTrue(m.sdTPR[50].isNaN)
        let r = ClassificationReport(probabilities: [], labels: [], classNames: ["a", "b"])
        XCTAssertEqual(r.accuracy, 0)
        XCTAssertEqual(r.f1Weighted, 0)
        XCTAssertTrue(r.rocAUC!.isNaN)
        XCTAssertTrue(r.json.contains("\"roc_auc\":null"))
    }

    func testRenderings() throws {
        let rep = ClassificationReport(probabilities: multiP, labels: multiY, classNames: ["blast \"x\"", "b", "c", "d"])
        let obj = try JSONSerialization.jsonObject(with: Data(rep.json.utf8)) as! [String: Any]
        XCTAssertEqual(obj["classes"] as? [String], ["blast \"x\"", "b", "c", "d"])
        XCTAssertEqual(obj["f1_weighted"] as! Double, rep.f1Weighted, accuracy: 1e-15)
        XCTAssertEqual(obj["confusion"] as? [[Int]], rep.confusion)
        XCTAssertTrue(rep.text.contains("weighted F1"))
        XCTAssertTrue(rep.text.contains("0.5408"))
    }
}
