import CytoCore
import Foundation
import XCTest

/// `train --calibrate`: the temperature fitted on the validation images is stored in
/// the model file, and `predict` applies it (softmax(logits / T)).
extension CLITests {
    func testTrainCalibrateStoresATemperatureThatPredictApplies() throws {
        let data = try synth("cells", layout: "all-idb", count: 10, size: 200, seed: 5)
        let run = dir.appendingPathComponent("run").path
        let train = try cytocl([
            "train", "--data", data, "--out", run, "--input", "200x200", "--epochs", "2", "--val-fraction", "0.5", "--calibrate",
        ])
        XCTAssertEqual(train.status, 0, train.stderr)
        // The validation ECE before and after, on stderr.
        let line = try XCTUnwrap(
            train.stderr.split(separator: "\n").first { $0.contains("calibrated on") }, train.stderr)
        XCTAssertTrue(line.contains("ECE") && line.contains("->") && line.contains("temperature"), String(line))
        XCTAssertFalse(train.stderr.contains("nan"), train.stderr)

        let calibrated = try ModelFile.read(from: URL(fileURLWithPath: run + "/model.safetensors"))
        XCTAssertNotEqual(calibrated.temperature, 1, "the key cytocl.temperature is stored: \(train.stderr)")
        XCTAssertTrue(ModelFile.temperatureRange.contains(calibrated.temperature))
        XCTAssertTrue(line.contains(String(format: "temperature %.4g", calibrated.temperature)), String(line))
        // The same weights with T = 1 (no key): predict's calibrated probabilities are the
        // softmax of the uncalibrated log-probabilities (= logits up to a constant) / T.
        var plain = calibrated
        plain.temperature = 1
        let plainURL = dir.appendingPathComponent("plain.safetensors")
        try plain.write(to: plainURL)
        let header = String(decoding: try Data(contentsOf: plainURL).prefix(4000), as: UTF8.self)
        XCTAssertFalse(header.contains("cytocl.temperature"), "T = 1 is not written")

        let images = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }.sorted()
            .prefix(6).map { data + "/" + $0 }
        func probabilities(_ model: String) throws -> [[Double]] {
            let r = try cytocl(["predict", "--model", model] + images)
            XCTAssertEqual(r.status, 0, r.stderr)
            return r.stdout.split(separator: "\n").dropFirst().map { row in
                row.split(separator: ",").dropFirst(2).map { Double($0)! }
            }
        }
        let withT = try probabilities(run + "/model.safetensors")
        let without = try probabilities(plainURL.path)
        XCTAssertEqual(withT.count, 6)
        let t = calibrated.temperature
        var largest = 0.0
        for (p, q) in zip(withT, without) {
            let z = q.map { log($0) / t }
            let m = z.max()!
            let e = z.map { exp($0 - m) }
            let s = e.reduce(0, +)
            for k in p.indices {
                XCTAssertEqual(p[k], e[k] / s, accuracy: 1e-5, "calibrated \(p) vs softmax(log \(q) / \(t))")
                largest = max(largest, abs(p[k] - q[k]))
            }
        }
        XCTAssertGreaterThan(largest, 1e-4, "the temperature changed the probabilities")
    }
}
