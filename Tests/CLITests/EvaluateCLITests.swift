import Foundation
import XCTest

/// `evaluate` on the tiny test sets users check a model with: one image per class is
/// enough, and a metric the images cannot define is said to be undefined, not printed.
extension CLITests {
    func testEvaluateOnOneImagePerClassAndOnOneClass() throws {
        let all = try synth("all", layout: "folders", count: 6, size: 64, seed: 4)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8])
        let tiny = dir.appendingPathComponent("tiny")
        for c in ["blast", "lymphocyte"] {
            let src = all + "/" + c
            let first = try FileManager.default.contentsOfDirectory(atPath: src).sorted().first!
            try FileManager.default.createDirectory(at: tiny.appendingPathComponent(c), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: src + "/" + first, toPath: tiny.appendingPathComponent(c + "/" + first).path)
        }
        let both = try cytocl(["evaluate", "--model", model.path, "--data", tiny.path, "--json"])
        XCTAssertEqual(both.status, 0, both.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(both.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["images"] as? Int, 2)
        let auc = try XCTUnwrap(json["roc_auc"] as? Double, both.stdout)
        XCTAssertTrue([0, 0.5, 1].contains(auc), "one positive and one negative: AUC is 0, 1/2 or 1, got \(auc)")

        // One class only: accuracy is defined, ROC-AUC (and the other class's recall) not.
        let lymphocyte = tiny.appendingPathComponent("lymphocyte")
        for f in try FileManager.default.contentsOfDirectory(atPath: lymphocyte.path) {
            try FileManager.default.removeItem(at: lymphocyte.appendingPathComponent(f))
        }
        let one = try cytocl(["evaluate", "--model", model.path, "--data", tiny.path])
        XCTAssertEqual(one.status, 0, one.stderr)
        let aucLine = one.stdout.split(separator: "\n").first { $0.hasPrefix("ROC-AUC") || $0.contains(" ROC-AUC") }
        XCTAssertNotNil(aucLine, one.stdout)
        XCTAssertTrue(aucLine?.contains("undefined") == true, one.stdout)
        XCTAssertFalse(one.stdout.contains("nan"), one.stdout)
        XCTAssertTrue(one.stdout.contains("only 'blast' images"), one.stdout)
        let oneJSON = try cytocl(["evaluate", "--model", model.path, "--data", tiny.path, "--json"])
        XCTAssertEqual(oneJSON.status, 0, oneJSON.stderr)
        let o = try JSONSerialization.jsonObject(with: Data(oneJSON.stdout.utf8)) as! [String: Any]
        XCTAssertTrue(o["roc_auc"] is NSNull, oneJSON.stdout)
        XCTAssertEqual(o["images"] as? Int, 1)
        // The positive class is blast (class 0 of folders `blast`, `lymphocyte`): with only
        // blast images it is the specificity that is undefined, not 0.
        XCTAssertEqual(o["positive_class"] as? String, "blast", oneJSON.stdout)
        XCTAssertNotNil(o["sensitivity"] as? Double, oneJSON.stdout)
        XCTAssertTrue(o["specificity"] is NSNull, "no negatives: specificity undefined, not 0")
    }
}
