import CytoCore
import CytoSweep
import CytoTrain
import Foundation
import XCTest

/// Two-class test outputs whose ROC-AUC is `value` (to 0.01): ten negatives at 0.30,
/// 0.34, ..., 0.66; positive i beats c_i of them, with sum c_i = 100 * AUC
/// (Mann–Whitney: AUC = pairs won / (10 * 10)).
func binaryOutputs(rocAUC value: Double) -> (labels: [Int], probabilities: [[Float]]) {
    var labels: [Int] = [], probs: [[Float]] = []
    let pairs = Int((value * 100).rounded())
    for j in 0..<10 { labels.append(0); probs.append([1 - Float(0.30 + 0.04 * Double(j)), Float(0.30 + 0.04 * Double(j))]) }
    for i in 0..<10 {
        let beaten = pairs / 10 + (i < pairs % 10 ? 1 : 0)
        let s = Float(0.28 + 0.04 * Double(beaten))
        labels.append(1); probs.append([1 - s, s])
    }
    return (labels, probs)
}

/// A finished, self-consistent sweep record for report tests: the metrics are computed
/// from the given test probabilities (records are checked against them on read), with
/// a three-epoch history.
func fixtureRecord(fold: Int, size: Int, classes: [String], labels: [Int], probabilities probs: [[Float]], metric: String) -> SweepRecord {
    let truth = ClassificationReport(probabilities: probs, labels: labels, classNames: classes)
    let hist = (1...3).map { e in
        try! JSONDecoder().decode(
            EpochRecord.self,
            from: Data(
                """
                {"epoch":\(e),"loss":\(1.0 / Double(e)),"accuracy":0.5,"validationLoss":\(1.2 / Double(e)),"validationAccuracy":0.5,"seconds":0.1}
                """.utf8))
    }
    return SweepRecord(
        fold: fold, size: size, seed: 1, protocolName: "x", classNames: classes, trainIDs: ["a"],
        validationIDs: ["f\(fold)-v"], testIDs: labels.indices.map { "f\(fold)-t\($0)" }, epochsRun: 3, bestEpoch: 3,
        stopReason: "reached the maximum number of epochs", history: hist, testLabels: labels,
        testProbabilities: probs, metric: metric, value: metric == "roc_auc" ? truth.rocAUC! : truth.f1Weighted,
        rocAUC: truth.rocAUC, accuracy: truth.accuracy, f1Weighted: truth.f1Weighted, f1Macro: truth.f1Macro,
        confusion: truth.confusion, wallSeconds: 2, trainingSeconds: 1.5, backend: "cpu (test)", host: "h",
        finished: "2024-01-01T00:00:00Z")
}
