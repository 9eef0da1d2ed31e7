import CytoCPU
import CytoCore
import CytoData
import CytoOpenCL
import CytoReferenceData
import CytoTrain
import Foundation
import XCTest

/// A seeded training run gives the same loss curve and predictions on the CPU backend
/// and on OpenCL (PoCL in CI), with on-device augmentation.
final class BackendAgreementTests: XCTestCase {
    func openCL() throws -> OpenCLBackend {
        do { return try OpenCLBackend(device: .best) } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw error }
            throw XCTSkip("no OpenCL device: \(error)")
        }
    }

    func run(_ backend: any Backend, train: LabeledImages, augment: Bool) throws -> (TrainingResult, [[Float]]) {
        let net = try Network(spec: TrainerTests.spec, backend: backend, maxBatch: 32)
        net.initialize(seed: 4)
        var config = TrainingConfig()
        config.maxEpochs = 4; config.patience = 10; config.seed = 4; config.augment = augment
        let result = try Trainer(network: net, config: config).fit(train: train, validation: train)
        return (result, try Predictor(network: net).probabilities(train))
    }

    func testLossCurveAndPredictionsMatchCPU() throws {
        let cl = try openCL()
        let train = try TrainerTests.synthetic(count: 20, seed: 41)
        for augment in [false, true] {
            let (a, pa) = try run(CPUBackend(), train: train, augment: augment)
            let (b, pb) = try run(cl, train: train, augment: augment)
            XCTAssertEqual(a.history.count, b.history.count)
            // Without augmentation the runs agree to float rounding; with it, rotated
            // batches may differ at a few border pixels (bilinear sampling at the edge).
            let tolerance = augment ? 2e-3 : 1e-4
            for (x, y) in zip(a.history, b.history) {
                XCTAssertEqual(x.loss, y.loss, accuracy: tolerance * max(1, abs(x.loss)), "epoch \(x.epoch) augment \(augment)")
                XCTAssertEqual(x.validationLoss!, y.validationLoss!, accuracy: tolerance * max(1, abs(x.validationLoss!)))
            }
            if !augment {
                for (p, q) in zip(pa, pb) { for (u, v) in zip(p, q) { XCTAssertEqual(u, v, accuracy: 1e-3) } }
            }
        }
    }

    /// OpenCL against every embedded Keras reference file (Tests/Fixtures/reference).
    func testKerasReferenceOnOpenCL() throws {
        let cl = try openCL()
        for reference in try ReferenceFixtures.all() {
            let results = try reference.compare(on: cl, stepTolerance: 1e-5)
            XCTAssertEqual(results.count, 90)
            for r in results where !r.passed { XCTFail("\(reference.path) on OpenCL: \(r)") }
        }
    }
}
