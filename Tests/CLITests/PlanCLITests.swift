import Foundation
import XCTest

/// `cytocl plan`: a plan sweep on a 250-image set, the forecast on stdout (text and JSON),
/// the full sweep's time on the CPU backend, resuming a kept plan, and a bad --target.
final class PlanCLITests: XCTestCase {
    func cytocl(_ args: [String]) throws -> CLITests.Output { try CLITests.run(args) }

    func testPlanPrintsForecastAndTimesAndJSON() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-cli-plan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("cells").path, kept = dir.appendingPathComponent("plan").path
        let synth = try cytocl(["synth", "--out", data, "--layout", "all-idb", "--count", "250", "--size", "16", "--seed", "3"])
        XCTAssertEqual(synth.status, 0, synth.stderr)

        let bad = try cytocl(["plan", "--data", data, "--target", "1.5"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertEqual(
            bad.stderr.split(separator: "\n").first, "Error: --target must be a number between 0 and 1 (exclusive), got 1.5", bad.stderr)
        // A negative target is a value, not an option; --sizes is named once.
        let negative = try cytocl(["plan", "--data", data, "--target", "-0.1"])
        XCTAssertEqual(negative.stderr.split(separator: "\n").first, "Error: --target must be a number between 0 and 1 (exclusive), got -0.1")
        let sizes = try cytocl(["plan", "--data", data, "--sizes", "0"])
        XCTAssertEqual(sizes.stderr.split(separator: "\n").first, "Error: --sizes: '0' is not a positive integer")
        let sweepSizes = try cytocl(["plan", "--data", data, "--sweep-sizes", "5:1"])
        XCTAssertEqual(sweepSizes.stderr.split(separator: "\n").first, "Error: --sweep-sizes range '5:1': need 0 < start <= end and step > 0")

        // Tiny network and input, 2 epochs: the point is the plumbing, not the forecast's value.
        let common = [
            "plan", "--data", data, "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "2", "--patience", "2",
            "--folds", "3", "--sizes", "4,8,16", "--sweep-sizes", "10,20", "--sweep-folds", "5", "--devices", "cpu", "--timing-seconds", "0.2",
            "--near-duplicates", "off", "--keep", kept,
        ]
        let text = try cytocl(common)
        XCTAssertEqual(text.status, 0, text.stderr)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        let forecast = try XCTUnwrap(lines.first)
        XCTAssertTrue(forecast.hasPrefix("ROC-AUC 0.95 "), text.stdout)
        XCTAssertTrue(
            ["is forecast at about", "cannot forecast", "levels off", "is forecast beyond"].contains { forecast.contains($0) }, forecast)
        XCTAssertTrue(text.stderr.contains("[9/9] plan: "), "progress on stderr: \(text.stderr)")
        XCTAssertFalse(text.stdout.contains("[9/9]"), "no progress on stdout")
        XCTAssertTrue(lines.contains { $0.hasPrefix("plan sweep: 3 folds x sizes 4,8,16 (images)") }, text.stdout)
        XCTAssertTrue(lines.contains("full sweep (5 folds x sizes 10,20, up to 2 epochs):"), text.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  cpu (") && $0.contains("about") && $0.contains("at most") && $0.contains("at the plan's pace") }, text.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: kept + "/cells").filter { $0.hasSuffix(".json") }.count, 9)

        // Resumed from the kept plan (no cell retrained): the same forecast, as JSON.
        let json = try cytocl(common + ["--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertFalse(json.stderr.contains("epochs, "), "the kept cells are not retrained: \(json.stderr)")
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], json.stdout)
        let f = try XCTUnwrap(o["forecast"] as? [String: Any])
        XCTAssertEqual(f["sentence"] as? String, forecast)
        XCTAssertEqual(f["planSizes"] as? [Int], [4, 8, 16])
        XCTAssertEqual(f["planFolds"] as? Int, 3)
        XCTAssertEqual(f["labelled"] as? Int, 250)
        XCTAssertEqual(o["resumedCells"] as? Int, 9)
        XCTAssertEqual(f["metric"] as? String, "roc_auc")
        let estimate = try XCTUnwrap((o["estimates"] as? [[String: Any]])?.first)
        let timing = try XCTUnwrap(estimate["timing"] as? [String: Any]), atMost = try XCTUnwrap(estimate["atMost"] as? [String: Any])
        XCTAssertEqual(timing["selector"] as? String, "cpu")
        // 5 folds of 250 images: test and validation blocks of 50, a pool of 150. Sizes 10 and 20
        // at batch 5 and 2 epochs: 5 x 2 x (2 + 4) steps; per cell 2 validation passes and a test pass.
        XCTAssertEqual(atMost["cells"] as? Int, 10)
        // A kept plan of other settings is refused naming --keep (it named sweep's --out only).
        let other = try cytocl(common + ["--seed", "2"])
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.stderr.contains("seed: the directory has 1, this run has 2"), other.stderr)
        XCTAssertTrue(other.stderr.contains("plan --keep"), other.stderr)
        XCTAssertEqual(atMost["trainingSteps"] as? Double, 60)
        XCTAssertEqual(atMost["forwardImages"] as? Double, 1500)
        let step = try XCTUnwrap(timing["stepSeconds"] as? Double), fwd = try XCTUnwrap(timing["forwardSecondsPerImage"] as? Double)
        let cells = try XCTUnwrap(timing["concurrentCells"] as? Int)
        XCTAssertGreaterThan(step, 0)
        XCTAssertEqual(try XCTUnwrap(estimate["atMostSeconds"] as? Double), (60 * step + 1500 * fwd) / Double(cells), accuracy: 1e-9)
    }
}
