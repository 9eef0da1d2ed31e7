import CytoCPU
import CytoCore
import CytoTestSupport
import CytoTrain
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

    /// 18 dim images against 2 bright ones (pixels uniform in 0...160 against 96...255:
    /// each pixel overlaps, the mean tells them apart), validated on 10 of each. Trained
    /// as it is, the network leans on the prior and gives the bright class a low
    /// probability; oversampled, it learns that class. A tiny network, so the test is fast.
    func testOversampledTrainingOnAnUnbalancedSetLearnsTheSmallerClass() throws {
        let side = 10
        let spec = ModelSpec(inputHeight: side, inputWidth: side, convFilters: [4], denseUnits: [8], classes: 2)
        var rng = SeededGenerator(seed: 21)
        func images(_ labels: [Int]) -> LabeledImages {
            var pixels: [UInt8] = []
            for l in labels {
                for _ in 0..<(side * side * 3) {
                    let u = rng.nextUnitFloat()
                    pixels.append(UInt8(l == 0 ? u * 160 : 96 + u * 159))
                }
            }
            return LabeledImages(
                geometry: ImageGeometry(height: side, width: side), pixels: pixels, labels: labels,
                paths: labels.indices.map { "image\($0)" })
        }
        let train = images([Int](repeating: 0, count: 18) + [1, 1])
        let validation = images([Int](repeating: 0, count: 10) + [Int](repeating: 1, count: 10))
        func run(_ balance: ClassBalance?) throws -> (loss: Double, brightProbability: Double) {
            let net = try Network(spec: spec, backend: CPUBackend(), maxBatch: 32)
            net.initialize(seed: 3)
            var config = TrainingConfig()
            config.maxEpochs = 20; config.patience = 20; config.seed = 3; config.classBalance = balance
            let result = try Trainer(network: net, config: config).fit(train: train, validation: validation)
            let p = try Predictor(network: net).probabilities(validation)
            let bright = validation.labels.indices.filter { validation.labels[$0] == 1 }.map { Double(p[$0][1]) }
            return (result.bestLoss, bright.reduce(0, +) / Double(bright.count))
        }
        let plain = try run(nil), oversampled = try run(.oversample)
        XCTAssertLessThan(oversampled.loss, plain.loss, "balanced validation loss: oversampled \(oversampled), as it is \(plain)")
        XCTAssertGreaterThan(
            oversampled.brightProbability, plain.brightProbability + 0.1,
            "mean probability of the smaller class on its images: oversampled \(oversampled), as it is \(plain)")
        XCTAssertGreaterThan(oversampled.brightProbability, 0.5, "oversampled \(oversampled)")
    }
}
