import CytoCPU
import CytoCore
import Foundation
import XCTest

@testable import CytoTrain
@testable import CytoSweep

/// The CPU backend with faults a test switches on: a device failure after a number of
/// training steps (as an OpenCL launch failure would be recorded), or a loss that
/// explodes (logits scaled up) or turns NaN from a given training step on.
final class FaultyBackend: Backend {
    let inner = CPUBackend(threads: 2)
    /// Training steps (loss calls with a gradient) completed so far.
    private(set) var steps = 0
    /// From this training step on (1-based), the backend is failed.
    var failAtStep: Int?
    /// From this training step on, logits are multiplied by `logitScale` before the loss.
    var explodeAtStep: Int?
    var logitScale: Float = 1e7
    private var failure: Error?

    struct DeviceLost: Error, CustomStringConvertible { var description: String { "simulated device failure (test)" } }

    var kind: String { "faulty-cpu" }
    var deviceDescription: String { "faulty CPU backend (test)" }
    /// Bytes requested through `makeBuffer` and `makeSegmentedBuffer`.
    private(set) var allocatedBytes = 0
    func makeBuffer(_ element: BufferElement, count: Int, label: String) throws -> any DeviceBuffer {
        allocatedBytes += count * element.byteSize
        return try inner.makeBuffer(element, count: count, label: label)
    }
    func makeSegmentedBuffer(
        _ element: BufferElement, counts: [Int], labels: [String], label: String
    ) throws
        -> (whole: any DeviceBuffer, segments: [any DeviceBuffer])
    {
        allocatedBytes += counts.reduce(0, +) * element.byteSize
        return try inner.makeSegmentedBuffer(element, counts: counts, labels: labels, label: label)
    }
    func write(_ values: [Float], to buffer: any DeviceBuffer, offset: Int) { inner.write(values, to: buffer, offset: offset) }
    func write(bytes: UnsafeRawBufferPointer, to buffer: any DeviceBuffer, byteOffset: Int) {
        inner.write(bytes: bytes, to: buffer, byteOffset: byteOffset)
    }
    func read(_ buffer: any DeviceBuffer, offset: Int, count: Int) throws -> [Float] {
        try checkErrors()
        return inner.read(buffer, offset: offset, count: count)
    }
    func fill(_ buffer: any DeviceBuffer, value: Float, count: Int) { inner.fill(buffer, value: value, count: count) }
    func copy(from source: any DeviceBuffer, to destination: any DeviceBuffer, count: Int) {
        inner.copy(from: source, to: destination, count: count)
    }
    func synchronize() { inner.synchronize() }
    func checkErrors() throws { if let failure { throw failure } }
    func profileReport() -> String { inner.profileReport() }
    func resetProfile() { inner.resetProfile() }
    func memoryLimit() -> MemoryLimit? { inner.memoryLimit() }
    func gatherBatch(
        images: any DeviceBuffer, geometry: ImageGeometry, indices: [Int32], transforms: [AugmentTransform]?,
        output: any DeviceBuffer
    ) {
        inner.gatherBatch(images: images, geometry: geometry, indices: indices, transforms: transforms, output: output)
    }
    func conv2dForward(
        _ g: ConvGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        output: any DeviceBuffer, relu: Bool
    ) {
        inner.conv2dForward(g, input: input, weight: weight, bias: bias, output: output, relu: relu)
    }
    func conv2dBackwardData(_ g: ConvGeometry, gradOutput: any DeviceBuffer, weight: any DeviceBuffer, gradInput: any DeviceBuffer) {
        inner.conv2dBackwardData(g, gradOutput: gradOutput, weight: weight, gradInput: gradInput)
    }
    func conv2dBackwardFilter(_ g: ConvGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer, gradWeight: any DeviceBuffer) {
        inner.conv2dBackwardFilter(g, input: input, gradOutput: gradOutput, gradWeight: gradWeight)
    }
    func conv2dBackwardBias(_ g: ConvGeometry, gradOutput: any DeviceBuffer, gradBias: any DeviceBuffer) {
        inner.conv2dBackwardBias(g, gradOutput: gradOutput, gradBias: gradBias)
    }
    func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer) {
        inner.maxPoolForward(g, input: input, output: output)
    }
    func maxPoolBackward(_ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer, gradInput: any DeviceBuffer) {
        inner.maxPoolBackward(g, input: input, gradOutput: gradOutput, gradInput: gradInput)
    }
    func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer) { inner.relu(count: count, input: input, output: output) }
    func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer) {
        inner.reluBackward(count: count, activation: activation, grad: grad)
    }
    func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, bias: any DeviceBuffer,
        output: any DeviceBuffer, relu: Bool
    ) {
        inner.denseForward(g, input: input, weight: weight, bias: bias, output: output, relu: relu)
    }
    func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: (any DeviceBuffer)?, gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer
    ) {
        inner.denseBackward(
            g, input: input, weight: weight, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight, gradBias: gradBias)
    }
    func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?, metrics: any DeviceBuffer
    ) {
        if gradLogits != nil {
            steps += 1
            if let f = failAtStep, steps >= f, failure == nil { failure = DeviceLost() }
        }
        if let e = explodeAtStep, steps >= e, case let values = inner.read(logits, offset: 0, count: batch * classes) {
            inner.write(
                values.enumerated().map { $0.offset % classes == 0 ? $0.element * logitScale : -$0.element * logitScale },
                to: logits, offset: 0)
        }
        inner.softmaxCrossEntropy(
            batch: batch, classes: classes, logits: logits, labels: labels, probabilities: probabilities,
            gradLogits: gradLogits, metrics: metrics)
    }
    func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer) {
        inner.softmax(batch: batch, classes: classes, logits: logits, probabilities: probabilities)
    }
    func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer, gradients: any DeviceBuffer,
        state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        inner.optimizerStep(update, count: count, parameters: parameters, gradients: gradients, state1: state1, state2: state2)
    }
}

/// A failed backend or an exploding loss stops training and never yields numbers.
final class BackendFailureTests: XCTestCase {
    static let spec = ModelSpec(inputHeight: 30, inputWidth: 30, convFilters: [4, 8], denseUnits: [8], classes: 2)

    /// Twelve smooth random images, labels alternating.
    func images() -> LabeledImages {
        var rng = SeededGenerator(seed: 9)
        let g = ImageGeometry(height: 30, width: 30)
        let px = (0..<(12 * g.pixelsPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next() % 200) }
        return LabeledImages(geometry: g, pixels: px, labels: (0..<12).map { $0 % 2 }, paths: (0..<12).map { "img\($0)" })
    }

    func trainer(_ backend: FaultyBackend, epochs: Int = 6) throws -> Trainer {
        let net = try Network(spec: Self.spec, backend: backend, maxBatch: 32)
        net.initialize(seed: 1)
        var config = TrainingConfig()
        config.maxEpochs = epochs; config.patience = epochs; config.batchSize = 4
        return try Trainer(network: net, config: config)
    }

    func testADeviceFailureStopsTrainingAndNoWeightsCanBeRead() throws {
        let backend = FaultyBackend()
        backend.failAtStep = 5  // during epoch 2 (3 steps per epoch)
        let t = try trainer(backend)
        var epochsSeen: [Int] = []
        XCTAssertThrowsError(try t.fit(train: images(), validation: images()) { epochsSeen.append($0.epoch) }) { error in
            XCTAssertTrue(error is FaultyBackend.DeviceLost, "\(error)")
        }
        XCTAssertEqual(epochsSeen, [1], "the failing epoch must not be reported")
        XCTAssertEqual(backend.steps, 5, "training went on after the failure")
        XCTAssertThrowsError(try t.network.weights(), "weights read from a failed backend")
        XCTAssertThrowsError(try Predictor(network: t.network).probabilities(images()))
    }

    func testAnExplodingFiniteLossDivergesAndKeepsTheBestEarlierEpoch() throws {
        let backend = FaultyBackend()
        backend.explodeAtStep = 7  // epoch 3
        let t = try trainer(backend)
        let result = try t.fit(train: images(), validation: images())
        guard case .exploded(let epoch, let what, let loss, _) = result.stopReason else {
            return XCTFail("expected an exploded loss, got \(result.stopReason)")
        }
        XCTAssertEqual(epoch, 3)
        XCTAssertEqual(what, "training loss")
        XCTAssertTrue(loss.isFinite && loss > 1e4, "\(loss)")
        XCTAssertEqual(result.history.count, 3)
        XCTAssertTrue((1...2).contains(result.bestEpoch))
        XCTAssertFalse(result.divergedWithoutModel)
        let summary = try XCTUnwrap(result.divergenceSummary)
        XCTAssertTrue(summary.contains("diverged at epoch 3") && summary.contains("kept the weights of epoch \(result.bestEpoch)"), summary)
        // The weights left are the best epoch's: finite, and giving its validation loss.
        backend.explodeAtStep = nil
        let w = try t.network.weights()
        XCTAssertTrue(w.values.allSatisfy { $0.allSatisfy(\.isFinite) })
        let probs = try Predictor(network: t.network).probabilities(images())
        let loss2 = zip(probs, images().labels).map { -log(Double(max($0[$1], 1e-30))) }.reduce(0, +) / 12
        XCTAssertEqual(loss2, result.bestLoss, accuracy: 1e-4)
    }

    func testDivergenceInTheFirstEpochLeavesNoModel() throws {
        let backend = FaultyBackend()
        backend.explodeAtStep = 1
        let result = try trainer(backend).fit(train: images(), validation: images())
        XCTAssertTrue(result.stopReason.diverged, "\(result.stopReason)")
        XCTAssertEqual(result.bestEpoch, 0)
        XCTAssertTrue(result.divergedWithoutModel)
        XCTAssertTrue(result.divergenceSummary!.contains("no epoch before it gave usable weights"))
    }

    func testNetworkMemoryEstimateIsWhatTheNetworkAllocates() throws {
        for (spec, batch) in [(Self.spec, 32), (ModelSpec.paper(height: 200, width: 210, classes: 6), 5)] {
            let backend = FaultyBackend()
            _ = try Network(spec: spec, backend: backend, maxBatch: batch)
            XCTAssertEqual(spec.networkMemory(maxBatch: batch).bytes, backend.allocatedBytes, "\(spec)")
        }
    }

    func testDivergenceLimits() {
        let limits = Trainer.DivergenceLimits()
        XCTAssertNil(limits.violation(0.69, firstLoss: 0.69))
        XCTAssertNil(limits.violation(50, firstLoss: 0.69), "a bad but recoverable loss")
        XCTAssertNil(limits.violation(0.5, firstLoss: 1e-5), "a loss near zero may bounce")
        XCTAssertNotNil(limits.violation(2.5e30, firstLoss: 0.69))
        XCTAssertNotNil(limits.violation(1e4 + 1, firstLoss: nil))
        XCTAssertNotNil(limits.violation(800, firstLoss: 0.69), "more than 1000x the first epoch's loss")
    }

    func testASweepCellOnAFailedDeviceIsRecordedFailedAndTheDeviceGetsNoMoreCells() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-sweepfail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let set = images()
        let data = SweepData(images: set, ids: set.paths, classNames: ["a", "b"], path: "/synthetic")
        var p = try SweepProtocol.named("custom")
        p.folds = 3; p.sizes = [4]; p.testPerFold = 2; p.valPerFold = 2
        p.training.maxEpochs = 2; p.training.patience = 2; p.training.batchSize = 4
        let runner = try SweepRunner(directory: dir, protocol: p, data: data, spec: Self.spec, seed: 1)
        let backend = FaultyBackend()
        backend.failAtStep = 1
        let outcome = try runner.run(backend: backend)
        XCTAssertEqual(outcome.failed.count, 1, "one cell fails, then the device is given no more")
        XCTAssertEqual(outcome.ran.count, 0)
        XCTAssertEqual(outcome.failedDevices.count, 1)
        XCTAssertFalse(runner.cells.contains(where: runner.isFinished), "no cell may count as done")
        XCTAssertTrue(FileManager.default.fileExists(atPath: runner.errorURL(runner.cells[0]).path))
        // A healthy device then runs every cell, the failed one included.
        let again = try runner.run(backend: CPUBackend(threads: 2))
        XCTAssertEqual(again.ran.count, runner.cells.count)
        XCTAssertTrue(runner.cells.allSatisfy(runner.isFinished))
    }
}
