import CytoCPU
import CytoCore
import CytoData
import CytoTestSupport
import CytoTrain
import Foundation
import XCTest

/// `TrainingConfig.classBalance`: the training sets a selection strategy picks can be
/// 9 of one class to 1 of the other; `.oversample` shows every class equally often per
/// epoch, and on a set with equal counts changes nothing.
final class ClassBalanceTests: XCTestCase {
    func testOversampleRepeatsEachSmallerClassUpToTheLargest() {
        let labels = [Int](repeating: 0, count: 9) + [1] + [2, 2, 2]
        var rng = SeededGenerator(seed: 5)
        let order = Trainer.epochOrder(labels: labels, balance: .oversample, using: &rng)
        XCTAssertEqual(order.count, 27, "three classes of 9")
        var perImage = [Int](repeating: 0, count: labels.count)
        for i in order { perImage[i] += 1 }
        XCTAssertEqual(Array(perImage[0..<9]), [Int](repeating: 1, count: 9), "the largest class once each")
        XCTAssertEqual(perImage[9], 9, "the single image of class 1 nine times")
        XCTAssertEqual(Array(perImage[10...]), [3, 3, 3], "class 2's three images three times each")
        // Shuffled across classes, not one class after the other.
        XCTAssertNotEqual(order.map { labels[$0] }, order.map { labels[$0] }.sorted())
    }

    func testOversampleChangesNothingOnABalancedSetAndNoneNeverRepeats() {
        let balanced = (0..<12).map { $0 % 3 }
        var a = SeededGenerator(seed: 9), b = SeededGenerator(seed: 9)
        for _ in 0..<3 {  // the generator's state too: every later epoch stays the same
            XCTAssertEqual(
                Trainer.epochOrder(labels: balanced, balance: .oversample, using: &a),
                Trainer.epochOrder(labels: balanced, balance: nil, using: &b))
        }
        let unbalanced = [0, 0, 0, 0, 0, 1]
        var c = SeededGenerator(seed: 9)
        XCTAssertEqual(Trainer.epochOrder(labels: unbalanced, balance: ClassBalance.none, using: &c).sorted(), Array(0..<6))
    }

    /// 18 "other" cells against 2 blasts, validated on a balanced set: trained as it is
    /// the network learns the prior (blasts get a low probability, and the balanced
    /// validation loss is worse); oversampled, it learns the blasts.
    func testOversampledTrainingOnAnUnbalancedSetRanksTheSmallerClass() throws {
        let size = 32
        let spec = ModelSpec(inputHeight: size, inputWidth: size, convFilters: [4, 8, 8], denseUnits: [16], classes: 2)
        let dir = try tempDir("class-balance")
        defer { try? FileManager.default.removeItem(at: dir) }
        try SyntheticCells.generate(into: dir, layout: .allIDB, count: 60, size: size, seed: 4)
        let index = try DatasetIndex.load(path: dir.path)
        let loaded = try ImageLoader.load(index.items, height: size, width: size)
        let ppi = size * size * 3
        func subset(_ idx: [Int]) -> LabeledImages {
            LabeledImages(
                geometry: ImageGeometry(height: size, width: size),
                pixels: idx.flatMap { loaded.pixels[($0 * ppi)..<(($0 + 1) * ppi)] }, labels: idx.map { loaded.labels[$0] },
                paths: idx.map { loaded.items[$0].path })
        }
        let other = loaded.labels.indices.filter { loaded.labels[$0] == 0 }
        let blast = loaded.labels.indices.filter { loaded.labels[$0] == 1 }
        let train = subset(Array(other.prefix(18)) + Array(blast.prefix(2)))
        let validation = subset(Array(other.dropFirst(18).prefix(10)) + Array(blast.dropFirst(2).prefix(10)))
        func run(_ balance: ClassBalance?) throws -> (loss: Double, meanBlast: Double, auc: Double) {
            let net = try Network(spec: spec, backend: CPUBackend(), maxBatch: 32)
            net.initialize(seed: 3)
            var config = TrainingConfig()
            config.maxEpochs = 12; config.patience = 12; config.seed = 3; config.classBalance = balance
            let result = try Trainer(network: net, config: config).fit(train: train, validation: validation)
            let p = try Predictor(network: net).probabilities(validation).map { Double($0[1]) }
            let auc = Metrics.rocAUC(scores: p, labels: validation.labels)
            return (result.bestLoss, p.reduce(0, +) / Double(p.count), auc)
        }
        let plain = try run(nil), oversampled = try run(.oversample)
        XCTAssertLessThan(
            oversampled.loss, plain.loss, "balanced validation loss: oversampled \(oversampled), as it is \(plain)")
        XCTAssertGreaterThan(
            oversampled.meanBlast, plain.meanBlast + 0.1, "mean blast probability: oversampled \(oversampled), as it is \(plain)")
        XCTAssertGreaterThan(oversampled.auc, 0.8, "oversampled \(oversampled)")
    }
}
