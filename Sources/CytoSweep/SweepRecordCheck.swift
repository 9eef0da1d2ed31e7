import CytoCore
import CytoData
import CytoTrain
import Foundation

/// A cell file that was read but cannot be counted: damaged (`corrupt`) or from a
/// training run whose loss stopped being finite (`diverged`, shown as failed).
public struct RejectedRecord: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case corrupt, diverged }
    public var url: URL
    public var cell: SweepCell?
    public var kind: Kind
    public var reason: String
    public var description: String { "\(url.path): \(kind == .corrupt ? "corrupt sweep record" : "training diverged"): \(reason)" }
}

/// The outcome of reading one cell file.
public enum RecordCheck: Sendable {
    case valid(SweepRecord)
    case rejected(RejectedRecord)
}

extension SweepRecord {
    /// Reads and validates the cell file at `url` (expected to hold `cell` of the sweep
    /// described by `manifest`, when given). Never throws: an unreadable, truncated,
    /// garbage or inconsistent file is `.rejected(.corrupt)`, a record of a run whose
    /// loss was not finite `.rejected(.diverged)`, so a damaged file is neither counted
    /// as done nor averaged into a report.
    public static func check(_ url: URL, cell expected: SweepCell?, manifest: SweepManifest? = nil) -> RecordCheck {
        func reject(_ kind: RejectedRecord.Kind, _ reason: String) -> RecordCheck {
            .rejected(RejectedRecord(url: url, cell: expected, kind: kind, reason: reason))
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            return reject(.corrupt, "a folder is in the place of the record file")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { return reject(.corrupt, "cannot read it (\(describeFileError(error)))") }
        if data.isEmpty { return reject(.corrupt, "the file is empty") }
        let record: SweepRecord
        do { record = try decode(data) } catch {
            // Valid JSON missing a field (or holding one of the wrong type) names the field.
            if let field = describeDecodingProblem(error) { return reject(.corrupt, "\(field) (\(data.count) bytes)") }
            let head = data.prefix(1) == Data("{".utf8) ? "truncated or malformed JSON" : "not a JSON sweep record"
            return reject(.corrupt, "\(head) (\(data.count) bytes)")
        }
        if let c = expected, c.fold != record.fold || c.size != record.size {
            return reject(
                .corrupt, "it holds fold \(record.fold) size \(record.size), but its file name says fold \(c.fold) size \(c.size)")
        }
        // Divergence first: a diverged run's record may also hold NaN metrics, and it
        // should read as a failed training, not as a damaged file.
        if let d = record.divergence { return reject(.diverged, d) }
        if let problem = record.inconsistency(expected: expected, manifest: manifest) { return reject(.corrupt, problem) }
        return .valid(record)
    }

    /// Why this record's training cannot be trusted (a non-finite loss), or nil.
    public var divergence: String? {
        for e in history {
            if !e.loss.isFinite { return "training loss \(e.loss) at epoch \(e.epoch)" }
            if let v = e.validationLoss, !v.isFinite { return "validation loss \(v) at epoch \(e.epoch)" }
        }
        if stopReason.contains("not finite") { return stopReason }
        return nil
    }

    /// Whether a stored metric equals the one recomputed from the stored probabilities,
    /// up to a relative 1e-6 (the record holds JSON doubles; the sums may differ in the
    /// last bits between the writer's and the reader's order of operations).
    static func agree(_ stored: Double, _ derived: Double) -> Bool {
        if stored.isNaN || derived.isNaN { return stored.isNaN && derived.isNaN }
        return abs(stored - derived) <= 1e-6 * max(abs(stored), abs(derived), 1e-12)
    }

    /// The first way this record contradicts itself, its file name or its sweep, or nil.
    public func inconsistency(expected: SweepCell?, manifest: SweepManifest?) -> String? {
        if let c = expected, c.fold != fold || c.size != size {
            return "it holds fold \(fold) size \(size), but its file name says fold \(c.fold) size \(c.size)"
        }
        if fold < 0 || size <= 0 { return "fold \(fold) size \(size) is not a cell" }
        func unit(_ name: String, _ v: Double) -> String? {
            v.isFinite ? (v >= 0 && v <= 1 ? nil : "\(name) \(v) is outside [0, 1]") : "\(name) is \(v)"
        }
        if let p = unit(metric, value) ?? rocAUC.flatMap({ unit("roc_auc", $0) }) ?? unit("accuracy", accuracy)
            ?? unit("f1_weighted", f1Weighted) ?? unit("f1_macro", f1Macro)
        {
            return p
        }
        if metric == "roc_auc", let a = rocAUC, a != value { return "value \(value) differs from its roc_auc \(a)" }
        if metric == "f1_weighted", f1Weighted != value { return "value \(value) differs from its f1_weighted \(f1Weighted)" }
        let k = classNames.count
        if k < 2 { return "\(k) class names" }
        if testLabels.count != testIDs.count || testProbabilities.count != testIDs.count {
            return "\(testIDs.count) test images but \(testLabels.count) labels and \(testProbabilities.count) probability rows"
        }
        if testIDs.isEmpty { return "no test images" }
        if let l = testLabels.first(where: { $0 < 0 || $0 >= k }) { return "test label \(l) is not one of \(k) classes" }
        for (i, row) in testProbabilities.enumerated() {
            if row.count != k { return "a probability row has \(row.count) values for \(k) classes" }
            if row.contains(where: { !$0.isFinite || $0 < 0 || $0 > 1 }) { return "a test probability is not in [0, 1]" }
            // Softmax outputs: a row that does not sum to 1 was not written by a network.
            let sum = row.reduce(0.0) { $0 + Double($1) }
            if abs(sum - 1) > 1e-4 {
                return "the probabilities of test image \(i) (\(testIDs[i])) sum to \(String(format: "%.6g", sum)), not 1"
            }
        }
        let times: [(String, Double?)] = [
            ("wallSeconds", wallSeconds), ("trainingSeconds", trainingSeconds), ("dataSeconds", dataSeconds),
            ("testSeconds", testSeconds), ("validationSeconds", validationSeconds),
        ]
        for case (let name, let t?) in times where !(t.isFinite && t >= 0) { return "\(name) \(t) is not a duration" }
        for (name, t) in threadCPUSeconds?.fields ?? [] where !(t.isFinite && t >= 0) {
            return "threadCPUSeconds.\(name) \(t) is not a duration"
        }
        if confusion.count != k || confusion.contains(where: { $0.count != k || $0.contains { $0 < 0 } })
            || confusion.joined().reduce(0, +) != testIDs.count
        {
            return "the confusion matrix does not fit \(k) classes and \(testIDs.count) test images"
        }
        // The confusion matrix and accuracy must be the ones its own test probabilities
        // give: test labels edited (or written by a broken run) under the stored metrics
        // would otherwise be counted as done and averaged into the report.
        // ROC-AUC and F1 too: a hand-edited `rocAUC` of 0.99 over probabilities that
        // give 0.5 would otherwise be averaged into the summary.
        let derived = ClassificationReport(probabilities: testProbabilities, labels: testLabels, classNames: classNames)
        if derived.confusion != confusion { return "its confusion matrix is not the one its test probabilities and labels give" }
        let stored: [(String, Double?, Double?)] = [
            ("accuracy", accuracy, derived.accuracy), ("roc_auc", rocAUC, derived.rocAUC),
            ("f1_weighted", f1Weighted, derived.f1Weighted), ("f1_macro", f1Macro, derived.f1Macro),
        ]
        for (name, s, d) in stored {
            switch (s, d) {
            case (nil, nil): continue
            case (let s?, nil): return "\(name) \(s) is stored, but \(k) classes have no \(name)"
            case (nil, let d?): return "\(name) is missing; its test probabilities give \(d)"
            case (let s?, let d?):
                if !Self.agree(s, d) { return "\(name) \(s) is not the \(d) its test probabilities and labels give" }
            }
        }
        if trainIDs.isEmpty { return "no training images" }
        if let c = calibration,
            let p = c.inconsistency(testProbabilities: testProbabilities, testLabels: testLabels, validationCount: validationIDs.count)
        {
            return p
        }
        if collapse != nil, collapseReason == nil {
            return "it is marked collapsed, but its test outputs differ and its training loss left the chance loss"
        }
        if let n = restarts, n < 0 || n > (manifest?.protocolSettings.restarts ?? n) {
            return "\(n) restarts, the sweep allows \(manifest?.protocolSettings.restarts ?? 0)"
        }
        if let s = sampling, !["balanced", "filled", "capped", "stratified", SweepSelection.sampling].contains(s) {
            return "sampling '\(s)' is not one the sweep writes"
        }
        if let shared = Set(trainIDs).intersection(testIDs).sorted().first {
            return "image \(shared) is in both its training and its test set"
        }
        if epochsRun != history.count || bestEpoch < 0 || bestEpoch > max(1, epochsRun) {
            return "epochs run \(epochsRun), best epoch \(bestEpoch) and \(history.count) history rows disagree"
        }
        if let m = manifest {
            if classNames != m.classNames { return "classes \(classNames) differ from the sweep's \(m.classNames)" }
            if metric != m.protocolSettings.metric { return "metric \(metric) differs from the sweep's \(m.protocolSettings.metric)" }
            if fold >= m.folds || !m.sizes.contains(size) { return "fold \(fold) size \(size) is not a cell of this sweep" }
            if protocolName != m.protocolSettings.name {
                return "protocol \(protocolName) differs from the sweep's \(m.protocolSettings.name)"
            }
            if let problem = imagesInconsistency(m) { return problem }
            let cellSeed = m.cellSeed(SweepCell(fold: fold, size: size))
            if seed != cellSeed { return "seed \(seed) is not the \(cellSeed) the sweep's seed \(m.seed) gives fold \(fold) size \(size)" }
            if let h = m.imagesHash, imagesHash != h {
                return "it was trained on other images (data hash \(imagesHash.map { String($0.prefix(12)) } ?? "not recorded"), "
                    + "the sweep's is \(h.prefix(12)))"
            }
        }
        if let c = trainingClassCounts {
            if c.count != k || c.contains(where: { $0 < 0 }) || c.reduce(0, +) != trainIDs.count {
                return "its training class counts \(c) do not fit \(k) classes and \(trainIDs.count) training images"
            }
        }
        return nil
    }

    /// How the record's image ids contradict fold `fold` of the sweep's stored split, or
    /// nil: the test set must be exactly the fold's, the validation set too, and the
    /// training set as many of the fold's training pool as the size draws (a record
    /// copied from another fold, or edited, would otherwise be averaged in).
    func imagesInconsistency(_ m: SweepManifest) -> String? {
        let a = m.assignment
        guard fold < a.test.count, fold < a.validation.count, fold < a.trainingOrder.count else {
            return "the sweep's fold assignment has no fold \(fold)"
        }
        let test = a.test[fold]
        if testIDs.count != test.count || Set(testIDs) != Set(test) {
            let extra = Set(testIDs).subtracting(test).sorted().first
            return "its \(testIDs.count) test images are not fold \(fold)'s \(test.count)"
                + (extra.map { " (\($0) is not in that fold's test set)" } ?? "")
        }
        let validation = a.validation[fold]
        if validationIDs.count != validation.count || Set(validationIDs) != Set(validation) {
            return "its \(validationIDs.count) validation images are not fold \(fold)'s \(validation.count)"
        }
        if m.selection != nil {
            // A strategy picks from the fold's whole pool (not only the drawing order
            // stored for the protocol's draw): outside the fold's test and validation sets.
            let held = Set(test + validation)
            if let stranger = trainIDs.first(where: { held.contains($0) }) {
                return "training image \(stranger) is in fold \(fold)'s test or validation set"
            }
            if Set(trainIDs).count != trainIDs.count { return "a training image is listed twice" }
            if trainIDs.count > size { return "it has \(trainIDs.count) training images, more than its size \(size)" }
            if sampling != SweepSelection.sampling { return "sampling '\(sampling ?? "none")' is not the selection's '\(SweepSelection.sampling)'" }
            return nil
        }
        let pool = Set(a.trainingOrder[fold].joined())
        if let stranger = trainIDs.first(where: { !pool.contains($0) }) {
            return "training image \(stranger) is not in fold \(fold)'s training pool"
        }
        guard let expected = try? a.trainingIDs(fold: fold, size: size, protocol: m.protocolSettings) else {
            return "the sweep's fold assignment cannot draw size \(size) for fold \(fold)"
        }
        if trainIDs.count != expected.count {
            return "it has \(trainIDs.count) training images, size \(size) of fold \(fold) draws \(expected.count)"
        }
        if let stored = trainingClassCounts, let derived = derivedClassCounts(m), stored != derived {
            return "its training class counts \(stored) are not the \(derived) its training images have in fold \(fold)"
        }
        return nil
    }
}
