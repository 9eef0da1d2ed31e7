import CytoCPU
import CytoCore
import CytoData
import CytoReport
import CytoTrain
import CytoSweep
import Foundation
import XCTest

/// Cells whose network never learns: a network dead from its initialisation (every
/// first-layer filter negative, so every ReLU outputs zero) gives one output for every
/// image. The record and the report mark it, and `--restarts` begins it again.
final class CollapseTests: XCTestCase {
    func testReasonNamesConstantOutputsAndALossAtChance() {
        func epoch(_ l: Double) -> EpochRecord {
            try! JSONDecoder().decode(EpochRecord.self, from: Data("{\"epoch\":1,\"loss\":\(l),\"accuracy\":0.5,\"seconds\":0}".utf8))
        }
        let learning = [0.70, 0.69, 0.60, 0.40].map(epoch)
        let varied: [[Float]] = [[0.2, 0.8], [0.7, 0.3]]
        XCTAssertNil(Collapse.reason(history: learning, probabilities: varied, classes: 2))
        let same: [[Float]] = Array(repeating: [0.4971, 0.5029], count: 25)
        XCTAssertEqual(
            Collapse.reason(history: learning, probabilities: same, classes: 2),
            "the same output for every test image (0.4971/0.5029)")
        // The issue's run: 58 epochs at 0.693-0.699.
        let flat = (0..<58).map { epoch(0.693 + 0.006 * Double($0 % 2)) }
        XCTAssertEqual(
            Collapse.reason(history: flat, probabilities: varied, classes: 2),
            "training loss 0.693-0.699 in all 58 epochs, never leaving ln 2 = 0.693 ± 0.02")
        XCTAssertNotNil(Collapse.reason(history: Array(repeating: epoch(1.79), count: 10), probabilities: varied, classes: 6), "ln 6")
        XCTAssertNil(Collapse.reason(history: [epoch(0.69)], probabilities: varied, classes: 2), "every run starts at chance")
    }

    /// Bright blasts, dark others: a live network learns it in a few epochs.
    static func easyData(side: Int) -> SweepData {
        var labels: [Int] = [], ids: [String] = [], pixels: [UInt8] = []
        var rng = SeededGenerator(seed: 11)
        for i in 0..<40 {
            let c = i % 2
            labels.append(c); ids.append("c\(c)/img\(i).png")
            pixels += (0..<(side * side * 3)).map { _ in UInt8(c == 1 ? 150 : 30) &+ UInt8.random(in: 0...60, using: &rng) }
        }
        let images = LabeledImages(geometry: ImageGeometry(height: side, width: side), pixels: pixels, labels: labels, paths: ids)
        return SweepData(images: images, ids: ids, classNames: ["other", "blast"], path: "/generated")
    }

    /// Makes every first-layer filter weight negative on the first attempt: pixels are
    /// non-negative, so every first-layer ReLU gives zero on every image.
    static func deadFirstAttempt(_ net: Network, _ attempt: Int) throws {
        guard attempt == 0 else { return }
        let conv1 = net.parameters.first { $0.shape.count == 4 }!
        let w = try net.backend.read(conv1.value, offset: 0, count: conv1.count)
        net.backend.write(w.map { -abs($0) - 0.01 }, to: conv1.value, offset: 0)
    }

    func sweep(restarts: Int?) throws -> (URL, [SweepRecord]) {
        let side = 16
        var p = SweepProtocol.custom
        p.folds = 2; p.sizes = [16]; p.valPerFold = 4
        p.training.maxEpochs = 14; p.training.patience = 14
        p.restarts = restarts
        let spec = ModelSpec(inputHeight: side, inputWidth: side, convFilters: [4, 4], denseUnits: [8], classes: 2)
        let dir = tempDir("collapse")
        let runner = try SweepRunner(directory: dir, protocol: p, data: Self.easyData(side: side), spec: spec, seed: 2)
        runner.initializationHook = Self.deadFirstAttempt
        let out = try runner.run(backend: CPUBackend(threads: 1))
        XCTAssertTrue(out.failed.isEmpty, "\(out.failed)")
        return (dir, try loadSweepRecords(dir))
    }

    func testADeadInitialisationIsMarkedAndOneRestartRecoversIt() throws {
        let (dir, dead) = try sweep(restarts: nil)
        XCTAssertEqual(dead.count, 2)
        for r in dead {
            XCTAssertNotNil(r.collapse, "fold \(r.fold)")
            XCTAssertTrue(r.collapse!.hasPrefix("the same output for every test image"), r.collapse!)
            XCTAssertNil(r.restarts)
            XCTAssertEqual(r.value, 0.5, "ROC-AUC of one output for every image")
        }
        let written = try SweepReport.write(sweep: dir)
        let html = try String(contentsOf: written.html, encoding: .utf8)
        XCTAssertTrue(html.contains("Cells whose network never learned"))
        XCTAssertTrue(html.contains("2 of 2"), "collapsed cells per size")
        XCTAssertTrue(html.contains("none (every cell trains from its first initialisation); 2 cells never learned"))
        // A record may not claim a collapse its outputs do not show.
        let (_, live) = try sweep(restarts: 1)
        XCTAssertEqual(live.count, 2)
        for r in live {
            XCTAssertNil(r.collapse, "fold \(r.fold): \(r.collapse ?? "")")
            XCTAssertNil(r.collapseReason)
            XCTAssertEqual(r.restarts, 1, "fold \(r.fold) began again from the next seed")
            XCTAssertGreaterThan(r.value, 0.5)
        }
        var forged = live[0]
        forged.collapse = "the same output for every test image (0.5/0.5)"
        XCTAssertNotNil(forged.inconsistency(expected: nil, manifest: nil))
    }
}
