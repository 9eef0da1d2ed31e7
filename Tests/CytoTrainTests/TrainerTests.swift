import CytoCPU
import CytoCore
import CytoData
import CytoTrain
import Foundation
import XCTest

/// Behaviour of training on generated cells: it learns, early stopping keeps the best
/// weights, and a diverging run stops with a clear reason.
final class TrainerTests: XCTestCase {
    static let size = 64
    static let spec = ModelSpec(inputHeight: size, inputWidth: size, convFilters: [4, 8, 8], denseUnits: [16], classes: 2)

    static func synthetic(count: Int, seed: UInt64) throws -> LabeledImages {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-trainer-\(seed)-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SyntheticCells.generate(into: dir, layout: .allIDB, count: count, size: size, seed: seed)
        let index = try DatasetIndex.load(path: dir.path)
        XCTAssertEqual(index.classNames, ["other", "blast"])
        let loaded = try ImageLoader.load(index.items, height: size, width: size)
        return LabeledImages(
            geometry: ImageGeometry(height: size, width: size), pixels: loaded.pixels,
            labels: loaded.labels, paths: loaded.items.map(\.path))
    }

    func testTrainingOnSyntheticCellsLearns() throws {
        let train = try Self.synthetic(count: 40, seed: 11)
        let test = try Self.synthetic(count: 30, seed: 12)
        let net = try Network(spec: Self.spec, backend: CPUBackend(), maxBatch: 32)
        net.initialize(seed: 1)
        var config = TrainingConfig()
        config.maxEpochs = 15; config.patience = 15; config.seed = 1
        let result = try Trainer(network: net, config: config).fit(train: train, validation: test)
        let first = result.history.first!, best = result.history[result.bestEpoch - 1]
        XCTAssertLessThan(best.validationLoss!, first.validationLoss! * 0.8, "validation loss did not fall: \(result.historyCSV)")
        XCTAssertLessThan(result.history.last!.loss, first.loss, "training loss did not fall")
        let probs = try Predictor(network: net).probabilities(test)
        let auc = Metrics.rocAUC(scores: probs.map { Double($0[1]) }, labels: test.labels)
        XCTAssertGreaterThan(auc, 0.85, "AUC \(auc) on held-out synthetic cells")
    }

    func testEarlyStoppingRestoresTheBestWeights() throws {
        let train = try Self.synthetic(count: 20, seed: 21)
        let net = try Network(spec: Self.spec, backend: CPUBackend(), maxBatch: 32)
        net.initialize(seed: 2)
        var config = TrainingConfig()
        config.maxEpochs = 40; config.patience = 3; config.seed = 2
        config.optimizer = OptimizerConfig(kind: .sgd, learningRate: 0.5)  // noisy on purpose
        let result = try Trainer(network: net, config: config).fit(train: train, validation: train)
        let losses = result.history.compactMap(\.validationLoss)
        XCTAssertEqual(result.bestLoss, losses.min()!, accuracy: 1e-12)
        XCTAssertEqual(result.bestEpoch, losses.firstIndex(of: losses.min()!)! + 1)
        if case .earlyStopping(let p) = result.stopReason {
            XCTAssertEqual(p, 3)
            XCTAssertEqual(result.history.count, result.bestEpoch + 3)
        }
        // The weights left in the network are the best epoch's: re-evaluating gives its loss.
        let probs = try Predictor(network: net).probabilities(train)
        let loss = zip(probs, train.labels).map { -log(Double(max($0[$1], 1e-30))) }.reduce(0, +) / Double(train.count)
        XCTAssertEqual(loss, result.bestLoss, accuracy: 1e-4)
    }

    func testDivergingRunStopsWithNonFiniteLoss() throws {
        let train = try Self.synthetic(count: 10, seed: 31)
        let net = try Network(spec: Self.spec, backend: CPUBackend(), maxBatch: 32)
        net.initialize(seed: 3)
        var config = TrainingConfig()
        config.maxEpochs = 30
        config.optimizer = OptimizerConfig(kind: .sgd, learningRate: 1e30)
        let result = try Trainer(network: net, config: config).fit(train: train, validation: train)
        guard case .nonFinite = result.stopReason else { return XCTFail("expected a non-finite stop, got \(result.stopReason)") }
        XCTAssertTrue("\(result.stopReason)".contains("not finite"))
        XCTAssertTrue(try net.weights().values.allSatisfy { $0.allSatisfy(\.isFinite) }, "best (finite) weights must be restored")
    }
}
