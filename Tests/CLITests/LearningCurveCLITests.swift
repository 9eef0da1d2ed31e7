import Foundation
import XCTest

/// `report --target/--fit-sizes` (the learning-curve forecast) and `evaluate`'s calibration
/// figures through the binary.
extension CLITests {
    func testReportWritesLearningCurveCSVAndChecksTarget() throws {
        let data = try synth("cells", layout: "all-idb", count: 40, size: 64, seed: 9)
        let out = dir.appendingPathComponent("sweep").path
        let sweep = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "4,8,12", "--folds", "3",
            "--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "2", "--patience", "2",
        ])
        XCTAssertEqual(sweep.status, 0, sweep.stderr)
        for bad in [["--target", "1.5"], ["--target", "0"], ["--fit-sizes", "0"]] {
            let r = try cytocl(["report", out] + bad)
            XCTAssertEqual(r.status, 64, "\(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(bad[0]), r.stderr)
        }
        let report = try cytocl(["report", out, "--target", "0.97"])
        XCTAssertEqual(report.status, 0, report.stderr)
        // The forecast sentence (or why there is none) is on stderr, never a number from a failed fit.
        let line = try XCTUnwrap(report.stderr.split(separator: "\n").first { $0.contains("ROC-AUC 0.97") }, report.stderr)
        XCTAssertTrue(
            ["is forecast at", "is forecast beyond", "cannot forecast", "does not reach"].contains { line.contains($0) }, String(line))
        let csv = try String(contentsOfFile: out + "/report/learning-curve.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first, "size,observed_mean,predicted,lower,upper")
        XCTAssertEqual(
            Array(csv.dropFirst().prefix(3).map { $0.split(separator: ",", omittingEmptySubsequences: false)[0] }), ["4", "8", "12"])
        for row in csv.dropFirst().prefix(3) {
            XCTAssertFalse(
                row.split(separator: ",", omittingEmptySubsequences: false)[1].isEmpty, "measured sizes have an observed mean: \(row)")
        }
        let html = try String(contentsOfFile: out + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("Forecast: how many images reach ROC-AUC 0.97?"))
        XCTAssertTrue(html.contains("Back-test"))

        // evaluate reports ECE and Brier.
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["other", "blast"])
        let ev = try cytocl(["evaluate", "--model", model.path, "--data", data, "--json"])
        XCTAssertEqual(ev.status, 0, ev.stderr + ev.stdout)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ev.stdout.utf8)) as? [String: Any])
        let ece = try XCTUnwrap(json["ece"] as? Double, ev.stdout), brier = try XCTUnwrap(json["brier"] as? Double, ev.stdout)
        XCTAssertTrue((0...1).contains(ece) && (0...2).contains(brier), ev.stdout)
    }
}
