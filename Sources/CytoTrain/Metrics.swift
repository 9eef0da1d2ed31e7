import CytoCore
import Foundation

/// Evaluation metrics: ROC curve and ROC-AUC, accuracy / sensitivity / specificity,
/// the confusion matrix, per-class precision / recall / F1 and their averages, and
/// summaries over cross-validation folds.
///
/// Conventions follow scikit-learn so numbers can be compared one to one:
/// - the positive class of a binary problem is label `1` and its score is the
///   probability of class 1;
/// - the ROC curve has one point per distinct score (sklearn's
///   `roc_curve(..., drop_intermediate=False)`), starting at (0, 0) with threshold +inf;
/// - ROC-AUC is the Mann–Whitney statistic, ties between a positive and a negative
///   counted 1/2 (identical to the trapezoidal area under that curve);
/// - a ratio whose denominator is zero (precision with no predictions, recall with
///   no support, F1 with P + R = 0) is 0 (sklearn's `zero_division=0`);
/// - the confusion matrix has true classes as rows and predicted classes as columns;
///   the predicted class is the arg-max of the probabilities, the lowest index on a tie.
public enum Metrics {

    // MARK: ROC

    /// A receiver operating characteristic curve: points `(fpr[i], tpr[i])` obtained by
    /// calling "positive" every sample whose score is `>= thresholds[i]`.
    /// The first point is (0, 0) with threshold `+infinity`; the last is (1, 1).
    public struct ROCCurve: Sendable, Equatable, Codable {
        public var fpr: [Double]
        public var tpr: [Double]
        public var thresholds: [Double]
        public init(fpr: [Double], tpr: [Double], thresholds: [Double]) {
            self.fpr = fpr; self.tpr = tpr; self.thresholds = thresholds
        }
        /// True when the curve could not be computed (no positives, no negatives, or a NaN score).
        public var isEmpty: Bool { fpr.isEmpty }
        /// The trapezoidal area under the curve (equals `Metrics.rocAUC` on the same input).
        public var auc: Double { Metrics.trapezoidArea(x: fpr, y: tpr) }
    }

    /// The ROC curve of `scores` (higher = more likely positive) against binary `labels`
    /// (0 or 1). Thresholds are the distinct scores in decreasing order; tied scores
    /// form one point, so a tie between classes gives a diagonal segment.
    /// Returns an empty curve when either class is absent or a score is NaN.
    public static func rocCurve(scores: [Double], labels: [Int]) -> ROCCurve {
        precondition(scores.count == labels.count, "rocCurve: \(scores.count) scores but \(labels.count) labels")
        precondition(labels.allSatisfy { $0 == 0 || $0 == 1 }, "rocCurve: labels must be 0 or 1")
        let pos = labels.reduce(0, +), neg = labels.count - pos
        if pos == 0 || neg == 0 || scores.contains(where: { $0.isNaN }) {
            return ROCCurve(fpr: [], tpr: [], thresholds: [])
        }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var fpr: [Double] = [0], tpr: [Double] = [0], thr: [Double] = [.infinity]
        var tp = 0, fp = 0, i = 0
        while i < order.count {
            let s = scores[order[i]]
            while i < order.count && scores[order[i]] == s {
                if labels[order[i]] == 1 { tp += 1 } else { fp += 1 }
                i += 1
            }
            fpr.append(Double(fp) / Double(neg))
            tpr.append(Double(tp) / Double(pos))
            thr.append(s)
        }
        return ROCCurve(fpr: fpr, tpr: tpr, thresholds: thr)
    }

    /// Float convenience for `rocCurve(scores:labels:)`.
    public static func rocCurve(scores: [Float], labels: [Int]) -> ROCCurve {
        rocCurve(scores: scores.map(Double.init), labels: labels)
    }

    /// ROC-AUC as the Mann–Whitney U statistic divided by `positives * negatives`:
    /// the probability that a random positive scores higher than a random negative,
    /// ties counted 1/2. O(n log n) via mid-ranks. NaN when either class is absent
    /// or a score is NaN.
    public static func rocAUC(scores: [Double], labels: [Int]) -> Double {
        precondition(scores.count == labels.count, "rocAUC: \(scores.count) scores but \(labels.count) labels")
        precondition(labels.allSatisfy { $0 == 0 || $0 == 1 }, "rocAUC: labels must be 0 or 1")
        let pos = labels.reduce(0, +), neg = labels.count - pos
        if pos == 0 || neg == 0 || scores.contains(where: { $0.isNaN }) { return .nan }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Sum of the (1-based, mid-) ranks of the positives.
        var rankSum = 0.0, i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let midRank = Double(i + j + 2) / 2
            for k in i...j where labels[order[k]] == 1 { rankSum += midRank }
            i = j + 1
        }
        let u = rankSum - Double(pos) * Double(pos + 1) / 2
        return u / (Double(pos) * Double(neg))
    }

    /// Float convenience for `rocAUC(scores:labels:)`.
    public static func rocAUC(scores: [Float], labels: [Int]) -> Double {
        rocAUC(scores: scores.map(Double.init), labels: labels)
    }

    /// Area under a piecewise-linear curve by the trapezoid rule (x must be non-decreasing).
    public static func trapezoidArea(x: [Double], y: [Double]) -> Double {
        precondition(x.count == y.count)
        var a = 0.0
        if x.count < 2 { return 0 }
        for i in 1..<x.count { a += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2 }
        return a
    }

    // MARK: Threshold metrics

    /// Counts and rates of a binary decision at a threshold.
    public struct BinaryRates: Sendable, Equatable, Codable {
        public var truePositives: Int, falsePositives: Int, trueNegatives: Int, falseNegatives: Int
        public var count: Int { truePositives + falsePositives + trueNegatives + falseNegatives }
        /// (TP + TN) / n; 0 for no samples.
        public var accuracy: Double { ratio(truePositives + trueNegatives, count) }
        /// Recall of the positive class, TP / (TP + FN); 0 without positives.
        public var sensitivity: Double { ratio(truePositives, truePositives + falseNegatives) }
        /// Recall of the negative class, TN / (TN + FP); 0 without negatives.
        public var specificity: Double { ratio(trueNegatives, trueNegatives + falsePositives) }
        /// TP / (TP + FP); 0 without positive predictions.
        public var precision: Double { ratio(truePositives, truePositives + falsePositives) }
    }

    /// Decides "positive" when `score > threshold` (strictly, so that a probability of
    /// exactly 0.5 is called negative, as the arg-max of a 2-way softmax does) and counts
    /// the outcomes against binary `labels` (1 = positive).
    public static func binaryRates(scores: [Double], labels: [Int], threshold: Double = 0.5) -> BinaryRates {
        precondition(scores.count == labels.count, "binaryRates: \(scores.count) scores but \(labels.count) labels")
        var r = BinaryRates(truePositives: 0, falsePositives: 0, trueNegatives: 0, falseNegatives: 0)
        for (s, y) in zip(scores, labels) {
            precondition(y == 0 || y == 1, "binaryRates: labels must be 0 or 1")
            let p = s > threshold
            switch (p, y == 1) {
            case (true, true): r.truePositives += 1
            case (true, false): r.falsePositives += 1
            case (false, false): r.trueNegatives += 1
            case (false, true): r.falseNegatives += 1
            }
        }
        return r
    }

    // MARK: Confusion matrix and per-class scores

    /// Index of the largest value; the lowest index wins a tie; NaN never wins
    /// (an all-NaN row gives 0).
    public static func argmax(_ p: [Float]) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in p.enumerated() where v > bestValue { best = i; bestValue = v }
        return best
    }

    /// Confusion matrix `m[true][predicted]` of class indices in `0..<classCount`.
    public static func confusionMatrix(predicted: [Int], labels: [Int], classCount: Int) -> [[Int]] {
        precondition(predicted.count == labels.count, "confusionMatrix: \(predicted.count) predictions but \(labels.count) labels")
        var m = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for (p, y) in zip(predicted, labels) {
            precondition(
                (0..<classCount).contains(p) && (0..<classCount).contains(y),
                "confusionMatrix: class index out of 0..<\(classCount)")
            m[y][p] += 1
        }
        return m
    }

    /// Confusion matrix from per-sample class probabilities (prediction = arg-max).
    public static func confusionMatrix(probabilities: [[Float]], labels: [Int], classCount: Int) -> [[Int]] {
        confusionMatrix(predicted: probabilities.map(argmax), labels: labels, classCount: classCount)
    }

    /// One bin of a reliability diagram: the images whose top-label confidence falls in
    /// (lower, upper], their mean confidence and the share of them predicted correctly.
    public struct ReliabilityBin: Sendable, Equatable, Codable {
        public var lower: Double, upper: Double
        public var count: Int
        /// NaN when the bin is empty.
        public var meanConfidence: Double, accuracy: Double
    }

    /// Top-label reliability bins (Guo et al., ICML 2017): `bins` equal-width bins of the
    /// largest probability (bin m holds confidences in ((m-1)/M, m/M], the first also 0),
    /// each with its mean confidence and accuracy (prediction = arg-max, as everywhere).
    /// Rows with a non-finite probability are left out.
    public static func reliability(probabilities: [[Float]], labels: [Int], bins: Int = 15) -> [ReliabilityBin] {
        precondition(probabilities.count == labels.count && bins > 0)
        var n = [Int](repeating: 0, count: bins), conf = [Double](repeating: 0, count: bins), hit = [Int](repeating: 0, count: bins)
        for (p, y) in zip(probabilities, labels) where p.allSatisfy(\.isFinite) && !p.isEmpty {
            let k = argmax(p), c = Double(p[k])
            let b = min(bins - 1, max(0, Int((c * Double(bins)).rounded(.up)) - 1))
            n[b] += 1; conf[b] += c; hit[b] += k == y ? 1 : 0
        }
        return (0..<bins).map { b in
            ReliabilityBin(
                lower: Double(b) / Double(bins), upper: Double(b + 1) / Double(bins), count: n[b],
                meanConfidence: n[b] > 0 ? conf[b] / Double(n[b]) : .nan, accuracy: n[b] > 0 ? Double(hit[b]) / Double(n[b]) : .nan)
        }
    }

    /// Expected calibration error: the count-weighted mean of |accuracy - mean confidence|
    /// over the reliability bins (15 equal-width bins, top label). NaN without images.
    public static func expectedCalibrationError(_ bins: [ReliabilityBin]) -> Double {
        let total = bins.reduce(0) { $0 + $1.count }
        guard total > 0 else { return .nan }
        return bins.filter { $0.count > 0 }.reduce(0) { $0 + Double($1.count) * abs($1.accuracy - $1.meanConfidence) } / Double(total)
    }

    /// Brier score in Brier's (1950) multi-class form: the mean over images of the squared
    /// distance between the probability vector and the one-hot truth, sum over classes
    /// (0 perfect, 2 worst; with two classes twice scikit-learn's `brier_score_loss` of the
    /// positive class). NaN without images or with a non-finite probability.
    public static func brierScore(probabilities: [[Float]], labels: [Int]) -> Double {
        guard !probabilities.isEmpty else { return .nan }
        var s = 0.0
        for (p, y) in zip(probabilities, labels) {
            for (k, q) in p.enumerated() {
                let d = Double(q) - (k == y ? 1 : 0)
                s += d * d
            }
        }
        return s / Double(probabilities.count)
    }

    /// Precision, recall, F1 and support of one class.
    public struct ClassScores: Sendable, Equatable, Codable {
        public var precision: Double, recall: Double, f1: Double
        /// Number of true samples of the class.
        public var support: Int
        /// Number of samples predicted as the class.
        public var predicted: Int

        // The stored scores follow sklearn's `zero_division=0` (0 where a ratio has no
        // denominator) so that averages match sklearn's; these say which of them are
        // real numbers, for reports that must print `undefined` instead of a 0.

        /// Precision is tp / predicted: undefined for a class never predicted.
        public var precisionIsDefined: Bool { predicted > 0 }
        /// Recall is tp / support: undefined for a class with no test images.
        public var recallIsDefined: Bool { support > 0 }
        /// F1 is 2tp / (2tp + fp + fn): undefined only for a class with neither test
        /// images nor predictions (0 when it has one but not the other, a real miss).
        public var f1IsDefined: Bool { support > 0 || predicted > 0 }
    }

    /// Per-class scores from a confusion matrix (rows true, columns predicted).
    public static func classScores(confusion m: [[Int]]) -> [ClassScores] {
        let k = m.count
        return (0..<k).map { c in
            let tp = m[c][c]
            let support = m[c].reduce(0, +)
            let predicted = (0..<k).reduce(0) { $0 + m[$1][c] }
            let p = ratio(tp, predicted), r = ratio(tp, support)
            let f1 = p + r > 0 ? 2 * p * r / (p + r) : 0
            return ClassScores(precision: p, recall: r, f1: f1, support: support, predicted: predicted)
        }
    }

    /// F1 averaged over classes weighted by support (sklearn `average="weighted"`);
    /// 0 for an empty matrix.
    public static func f1Weighted(confusion m: [[Int]]) -> Double {
        let s = classScores(confusion: m)
        let total = s.reduce(0) { $0 + $1.support }
        guard total > 0 else { return 0 }
        return s.reduce(0.0) { $0 + $1.f1 * Double($1.support) } / Double(total)
    }

    /// Unweighted mean of F1 over the classes that occur in the truth or the
    /// predictions (sklearn `average="macro"` without an explicit `labels` list, so a
    /// class absent from a test fold neither helps nor hurts); 0 for an empty matrix.
    public static func f1Macro(confusion m: [[Int]]) -> Double {
        let present = classScores(confusion: m).filter { $0.support > 0 || $0.predicted > 0 }
        guard !present.isEmpty else { return 0 }
        return present.reduce(0.0) { $0 + $1.f1 } / Double(present.count)
    }

    /// Fraction of the matrix on the diagonal; 0 for an empty matrix.
    public static func accuracy(confusion m: [[Int]]) -> Double {
        let total = m.reduce(0) { $0 + $1.reduce(0, +) }
        let diag = m.indices.reduce(0) { $0 + m[$1][$1] }
        return ratio(diag, total)
    }

    // MARK: Summaries over folds

    /// Mean and sample standard deviation (n - 1 in the denominator) of a set of values.
    public struct MeanSD: Sendable, Equatable, Codable {
        public var mean: Double
        /// Sample s.d.; NaN when fewer than two values.
        public var sd: Double
        public var count: Int
        public init(mean: Double, sd: Double, count: Int) { self.mean = mean; self.sd = sd; self.count = count }
    }

    /// The arithmetic mean; NaN for no values.
    public static func mean(_ v: [Double]) -> Double {
        v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
    }

    /// Sample standard deviation (n - 1); NaN for fewer than two values.
    public static func sampleSD(_ v: [Double]) -> Double {
        guard v.count >= 2 else { return .nan }
        let m = mean(v)
        let ss = v.reduce(0.0) { $0 + ($1 - m) * ($1 - m) }
        return (ss / Double(v.count - 1)).squareRoot()
    }

    /// Mean and sample s.d. together.
    public static func meanSD(_ v: [Double]) -> MeanSD {
        MeanSD(mean: mean(v), sd: sampleSD(v), count: v.count)
    }

    /// A mean ROC curve over folds on a common false-positive-rate grid.
    public struct MeanROC: Sendable, Equatable, Codable {
        /// The grid, evenly spaced from 0 to 1.
        public var fpr: [Double]
        /// Mean TPR at each grid point; starts at 0 and ends at 1.
        public var meanTPR: [Double]
        /// Sample s.d. of the TPR across folds at each grid point (NaN for one fold).
        public var sdTPR: [Double]
        /// Mean and s.d. of the folds' own AUCs (not the area under the mean curve).
        public var auc: MeanSD
        /// Number of curves averaged (empty curves are skipped).
        public var folds: Int
        /// Area under the mean curve.
        public var areaUnderMean: Double { Metrics.trapezoidArea(x: fpr, y: meanTPR) }
        /// `meanTPR - sdTPR` clipped to [0, 1] (a NaN s.d. counts as 0).
        public var lowerTPR: [Double] { zip(meanTPR, sdTPR).map { max(0, $0 - ($1.isNaN ? 0 : $1)) } }
        /// `meanTPR + sdTPR` clipped to [0, 1] (a NaN s.d. counts as 0).
        public var upperTPR: [Double] { zip(meanTPR, sdTPR).map { min(1, $0 + ($1.isNaN ? 0 : $1)) } }
    }

    /// TPR of a curve at false-positive rate `x`: on a vertical step (several points
    /// with the same FPR) the highest TPR, otherwise linear between neighbours.
    public static func interpolateTPR(_ curve: ROCCurve, at x: Double) -> Double {
        let f = curve.fpr, t = curve.tpr
        guard !f.isEmpty else { return .nan }
        if x < f[0] { return t[0] }
        // The last index with fpr <= x (fpr is non-decreasing, TPR too, so on a
        // vertical step this is the highest point).
        var lo = 0, hi = f.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if f[mid] <= x { lo = mid } else { hi = mid - 1 }
        }
        if f[lo] == x || lo == f.count - 1 { return t[lo] }
        let x0 = f[lo], x1 = f[lo + 1]
        return t[lo] + (t[lo + 1] - t[lo]) * (x - x0) / (x1 - x0)
    }

    /// Averages ROC curves (one per fold) on `gridPoints` evenly spaced FPR values in
    /// [0, 1], as in scikit-learn's cross-validated ROC example: each curve is
    /// interpolated at the grid, the mean curve is pinned to TPR 0 at FPR 0 and to 1 at
    /// FPR 1, and the s.d. across folds is kept for a ±1 s.d. band.
    public static func meanROC(_ curves: [ROCCurve], gridPoints: Int = 101) -> MeanROC {
        precondition(gridPoints >= 2)
        let grid = (0..<gridPoints).map { Double($0) / Double(gridPoints - 1) }
        let used = curves.filter { !$0.isEmpty }
        var mean = [Double](repeating: .nan, count: gridPoints)
        var sd = [Double](repeating: .nan, count: gridPoints)
        if !used.isEmpty {
            let rows = used.map { c -> [Double] in
                var r = grid.map { interpolateTPR(c, at: $0) }
                r[0] = 0
                return r
            }
            for g in 0..<gridPoints {
                let col = rows.map { $0[g] }
                mean[g] = Metrics.mean(col)
                sd[g] = sampleSD(col)
            }
            mean[0] = 0
            mean[gridPoints - 1] = 1
        }
        return MeanROC(
            fpr: grid, meanTPR: mean, sdTPR: sd,
            auc: meanSD(used.map { $0.auc }), folds: used.count)
    }

    @inline(__always) static func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? 0 : Double(a) / Double(b) }
}

/// Everything one evaluation of a classifier on a test set reports: accuracy, the
/// confusion matrix, per-class and averaged F1, and for two classes the ROC-AUC and
/// sensitivity / specificity at 0.5 of the positive class (`positiveClass`: `blast` or
/// `blasts` when a class is so named, else index 1).
public struct ClassificationReport: Sendable, Equatable, Codable {
    public var classNames: [String]
    /// `confusion[true][predicted]`.
    public var confusion: [[Int]]
    public var accuracy: Double
    public var perClass: [Metrics.ClassScores]
    public var f1Weighted: Double
    public var f1Macro: Double
    /// ROC-AUC of the class-1 probability; nil unless there are exactly two classes
    /// (NaN when the test set lacks one of them).
    public var rocAUC: Double?
    /// Rates at threshold 0.5 of the positive class's probability (`positiveClass`);
    /// nil unless two classes.
    public var binary: Metrics.BinaryRates?
    /// Expected calibration error (15 equal-width bins, top label) and Brier score
    /// (`Metrics.expectedCalibrationError`, `Metrics.brierScore`).
    public var ece: Double
    public var brier: Double

    /// - Parameters:
    ///   - probabilities: one row of class probabilities per sample (`classNames.count` wide).
    ///   - labels: the true class index of each sample.
    ///   - classNames: the name of each class index.
    public init(probabilities: [[Float]], labels: [Int], classNames: [String]) {
        precondition(
            probabilities.count == labels.count,
            "ClassificationReport: \(probabilities.count) probability rows but \(labels.count) labels")
        let k = classNames.count
        precondition(
            probabilities.allSatisfy { $0.count == k },
            "ClassificationReport: every probability row must have \(k) entries")
        self.classNames = classNames
        confusion = Metrics.confusionMatrix(probabilities: probabilities, labels: labels, classCount: k)
        accuracy = Metrics.accuracy(confusion: confusion)
        perClass = Metrics.classScores(confusion: confusion)
        f1Weighted = Metrics.f1Weighted(confusion: confusion)
        f1Macro = Metrics.f1Macro(confusion: confusion)
        ece = Metrics.expectedCalibrationError(Metrics.reliability(probabilities: probabilities, labels: labels))
        brier = Metrics.brierScore(probabilities: probabilities, labels: labels)
        if k == 2 {
            rocAUC = Metrics.rocAUC(scores: probabilities.map { Double($0[1]) }, labels: labels)
            let positive = Self.positiveIndex(classNames)
            binary = Metrics.binaryRates(
                scores: probabilities.map { Double($0[positive]) }, labels: labels.map { $0 == positive ? 1 : 0 })
        } else {
            rocAUC = nil
            binary = nil
        }
    }

    /// The class whose recall sensitivity is (two classes): `blast` (or `blasts`, any case)
    /// when a class is so named, else class 1. Class folders `blast` and `other` sort blast first (class 0),
    /// ALL-IDB's layout and `--positive` make it class 1: with "class 1" alone, `evaluate`
    /// of a model trained on folders printed the recall of `other` as the sensitivity.
    public var positiveClass: Int { Self.positiveIndex(classNames) }

    static func positiveIndex(_ classNames: [String]) -> Int {
        // `blasts` too: folders `blasts/`, `normal/` made normal's recall the sensitivity.
        classNames.count == 2 ? classNames.firstIndex { ["blast", "blasts"].contains($0.lowercased()) } ?? 1 : 1
    }

    /// How many classes macro F1 averages: those with an F1 (test images or predictions).
    public var macroClassCount: Int { perClass.filter(\.f1IsDefined).count }

    /// Why a NaN ROC-AUC is undefined.
    var needsBothClasses: String {
        let present = Set(perClass.indices.filter { perClass[$0].support > 0 })
        if present.count < 2 {
            let only = present.first.map { "'\(classNames[$0])'" } ?? "no"
            return "needs images of both classes; the test set has only \(only) images"
        }
        return "a probability is not a number"
    }

    /// Sensitivity at 0.5 (two classes only).
    public var sensitivity: Double? { binary?.sensitivity }
    /// Specificity at 0.5 (two classes only).
    public var specificity: Double? { binary?.specificity }

    /// A JSON object (keys in a fixed order, NaN written as null).
    public var json: String {
        func num(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        var o: [String] = []
        o.append("\"images\":\(confusion.joined().reduce(0, +))")
        o.append("\"classes\":[\(classNames.map(jsonString).joined(separator: ","))]")
        o.append("\"accuracy\":\(num(accuracy))")
        o.append("\"f1_weighted\":\(num(f1Weighted))")
        o.append("\"f1_macro\":\(macroClassCount == 0 ? "null" : num(f1Macro))")
        o.append("\"f1_macro_classes\":\(macroClassCount)")
        if let a = rocAUC { o.append("\"roc_auc\":\(num(a))") }
        if let b = binary {
            o.append("\"sensitivity\":\(b.truePositives + b.falseNegatives == 0 ? "null" : num(b.sensitivity))")
            o.append("\"specificity\":\(b.trueNegatives + b.falsePositives == 0 ? "null" : num(b.specificity))")
            o.append("\"positive_class\":\(jsonString(classNames[positiveClass]))")
        }
        o.append("\"ece\":\(num(ece))")
        o.append("\"brier\":\(num(brier))")
        o.append("\"confusion\":[\(confusion.map { "[\($0.map(String.init).joined(separator: ","))]" }.joined(separator: ","))]")
        // Undefined per-class scores are null, never a 0 that reads as a measured miss.
        let pc = zip(classNames, perClass).map { n, s in
            let p = s.precisionIsDefined ? num(s.precision) : "null"
            let r = s.recallIsDefined ? num(s.recall) : "null"
            let f = s.f1IsDefined ? num(s.f1) : "null"
            return "{\"class\":\(jsonString(n)),\"precision\":\(p),\"recall\":\(r),\"f1\":\(f),\"support\":\(s.support)}"
        }
        o.append("\"per_class\":[\(pc.joined(separator: ","))]")
        return "{" + o.joined(separator: ",") + "}"
    }

    /// A plain-text table in the style of sklearn's `classification_report`, followed by
    /// the confusion matrix.
    public var text: String {
        func f(_ x: Double) -> String { x.isFinite ? String(format: "%.4f", x) : "   nan" }
        let w = max(12, (classNames.map(\.count).max() ?? 0) + 2)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines: [String] = []
        lines.append(pad("", w) + pad("precision", 11) + pad("recall", 11) + pad("f1", 11) + pad("support", 9))
        func score(_ x: Double, _ defined: Bool) -> String { defined ? f(x) : "undefined" }
        for (n, s) in zip(classNames, perClass) {
            lines.append(
                pad(n, w) + pad(score(s.precision, s.precisionIsDefined), 11) + pad(score(s.recall, s.recallIsDefined), 11)
                    + pad(score(s.f1, s.f1IsDefined), 11) + pad("\(s.support)", 9))
        }
        let total = perClass.reduce(0) { $0 + $1.support }
        lines.append("")
        lines.append(pad("accuracy", w) + pad("", 20) + pad(f(accuracy), 9) + pad("\(total)", 9))
        var macro = pad("macro F1", w) + pad("", 20) + pad(macroClassCount == 0 ? "undefined" : f(f1Macro), 9)
        if macroClassCount < classNames.count {
            let n = classNames.count - macroClassCount
            macro += "  (over \(macroClassCount) of \(classNames.count) classes; \(n) with no images and no predictions left out)"
        }
        lines.append(macro)
        lines.append(pad("weighted F1", w) + pad("", 20) + pad(f(f1Weighted), 9))
        // A metric the test images cannot define (ROC-AUC, sensitivity or specificity
        // when a class is absent) says so instead of showing a number.
        func undefined(_ why: String) -> String { "   undefined (\(why))" }
        let missing = { (k: Int) in "no '\(self.classNames[k])' test images" }
        if let a = rocAUC {
            lines.append(pad("ROC-AUC", w) + pad("", 20) + (a.isNaN ? undefined(needsBothClasses) : pad(f(a), 9)))
        }
        if let b = binary {
            // Which class is the positive one is said: a bare "sensitivity" read as blast's.
            let (yes, no) = (positiveClass, 1 - positiveClass)
            let s = b.truePositives + b.falseNegatives == 0 ? undefined(missing(yes)) : pad(f(b.sensitivity), 9)
            let p = b.trueNegatives + b.falsePositives == 0 ? undefined(missing(no)) : pad(f(b.specificity), 9)
            lines.append(pad("sensitivity", w) + pad("", 20) + s + "  (recall of \(classNames[yes]), the positive class)")
            lines.append(pad("specificity", w) + pad("", 20) + p + "  (recall of \(classNames[no]))")
        }
        lines.append(pad("ECE", w) + pad("", 20) + pad(f(ece), 9))
        lines.append(pad("Brier", w) + pad("", 20) + pad(f(brier), 9))
        lines.append("")
        lines.append("confusion (rows true, columns predicted):")
        let cw = max(6, (confusion.flatMap { $0 }.map { String($0).count }.max() ?? 1) + 2)
        // Row names carry their index ("[1] eosinophil"), longer than the class names `w`
        // is made for: with PBC's names the rows of longer names pushed their counts
        // out of the columns.
        let rowNames = classNames.indices.map { "[\($0)] " + classNames[$0] }
        let rw = max(w, (rowNames.map(\.count).max() ?? 0) + 1)
        lines.append(pad("", rw) + classNames.enumerated().map { pad("[\($0.offset)]", cw) }.joined())
        for (i, row) in confusion.enumerated() {
            lines.append(pad(rowNames[i], rw) + row.map { pad("\($0)", cw) }.joined())
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
