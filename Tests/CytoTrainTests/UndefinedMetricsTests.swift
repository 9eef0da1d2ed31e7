import Foundation
import XCTest

@testable import CytoTrain

/// A per-class score with no denominator (recall of a class without test images,
/// precision of a class never predicted) is `undefined` / `null` in the evaluation
/// report, never a 0 that reads like a measured total miss; macro F1 says which
/// classes it averages.
final class UndefinedMetricsTests: XCTestCase {
    /// Five classes: a (one of two right, plus d's image) and b (both right) are ordinary; c has no images but is predicted once
    /// (recall undefined, precision 0, F1 0); d has one image and is never predicted
    /// (precision undefined, recall 0, F1 0); e has neither (all undefined, left out
    /// of macro F1).
    func report() -> ClassificationReport {
        let predicted = [0, 2, 1, 1, 0]
        let labels = [0, 0, 1, 1, 3]
        let probs = predicted.map { p in (0..<5).map { Float($0 == p ? 0.9 : 0.025) } }
        return ClassificationReport(probabilities: probs, labels: labels, classNames: ["a", "b", "c", "d", "e"])
    }

    func testUndefinedPerClassScoresAreNullInJSON() throws {
        let rep = report()
        let json = try JSONSerialization.jsonObject(with: Data(rep.json.utf8)) as! [String: Any]
        let rows = json["per_class"] as! [[String: Any]]
        func value(_ k: Int, _ key: String) -> Double? { rows[k][key] as? Double }
        func isNull(_ k: Int, _ key: String) -> Bool { rows[k][key] is NSNull }
        XCTAssertEqual(value(0, "precision"), 0.5)
        XCTAssertEqual(value(0, "recall"), 0.5)
        XCTAssertTrue(isNull(2, "recall"), "c has no images: recall undefined, got \(rows[2])")
        XCTAssertEqual(value(2, "precision"), 0, "c was predicted once, wrongly: precision is a real 0")
        XCTAssertEqual(value(2, "f1"), 0)
        XCTAssertTrue(isNull(3, "precision"), "d is never predicted: precision undefined, got \(rows[3])")
        XCTAssertEqual(value(3, "recall"), 0, "d's one image was missed: recall is a real 0")
        XCTAssertTrue(isNull(4, "precision") && isNull(4, "recall") && isNull(4, "f1"), "e: \(rows[4])")
        // Macro F1 over a, b, c, d: (0.5 + 1 + 0 + 0) / 4; e is left out, not a 0.
        XCTAssertEqual(json["f1_macro"] as? Double ?? -1, 0.375, accuracy: 1e-12)
        XCTAssertEqual(json["f1_macro_classes"] as? Int, 4)
    }

    func testUndefinedPerClassScoresSayUndefinedInText() {
        let lines = report().text.split(separator: "\n").map(String.init)
        func row(_ name: String) -> [String] {
            (lines.first { $0.split(separator: " ").first.map(String.init) == name } ?? "").split(separator: " ").map(String.init)
        }
        XCTAssertEqual(row("a"), ["a", "0.5000", "0.5000", "0.5000", "2"])
        XCTAssertEqual(row("c"), ["c", "0.0000", "undefined", "0.0000", "0"])
        XCTAssertEqual(row("d"), ["d", "undefined", "0.0000", "0.0000", "1"])
        XCTAssertEqual(row("e"), ["e", "undefined", "undefined", "undefined", "0"])
        let macro = lines.first { $0.contains("macro F1") } ?? ""
        XCTAssertTrue(macro.contains("0.3750"), macro)
        XCTAssertTrue(macro.contains("over 4 of 5 classes"), macro)
    }
}
