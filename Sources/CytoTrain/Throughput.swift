import CytoCore
import Dispatch
import Foundation

/// The paper's network on a backend, fed from random images already on the device:
/// what `bench` and `plan` time (a training step, an augmented step, inference) when
/// the speed of the engine, not of a data set's decoding, is the question.
public final class SyntheticTrainingLoad {
    public let network: Network
    public let backend: any Backend
    /// The random images as the host has them (for a `Predictor`).
    public let images: LabeledImages
    let deviceImages: any DeviceBuffer
    var cursor = 0

    /// `count` random images of the spec's input size with labels 0, 1, ..., uploaded once.
    public init(spec: ModelSpec, backend: any Backend, maxBatch: Int, count: Int = 64, seed: UInt64) throws {
        let net = try Network(spec: spec, backend: backend, maxBatch: maxBatch)
        net.initialize(seed: seed)
        var rng = SeededGenerator(seed: seed &+ 1)
        let geometry = ImageGeometry(height: spec.inputHeight, width: spec.inputWidth)
        let pixels = (0..<(count * geometry.pixelsPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        images = LabeledImages(
            geometry: geometry, pixels: pixels, labels: (0..<count).map { $0 % spec.classes },
            paths: (0..<count).map { "synthetic-\($0)" })
        let buffer = try backend.makeBuffer(.uint8, count: pixels.count, label: "synthetic images")
        pixels.withUnsafeBytes { backend.write(bytes: $0, to: buffer, byteOffset: 0) }
        deviceImages = buffer
        network = net
        self.backend = backend
    }

    /// Gathers the next `batch` images (augmented by `transforms` when given) into the
    /// network's input and their labels into its label buffer.
    public func loadNext(batch: Int, transforms: [AugmentTransform]? = nil) {
        let indices = (0..<batch).map { Int32((cursor + $0) % images.count) }
        cursor = (cursor + batch) % images.count
        backend.gatherBatch(
            images: deviceImages, geometry: images.geometry, indices: indices, transforms: transforms, output: network.input)
        backend.write(indices.map { Float(images.labels[Int($0)]) }, to: network.labels, offset: 0)
    }

    /// One training step on the next batch.
    public func trainStep(batch: Int, optimizer: OptimizerConfig, transforms: [AugmentTransform]? = nil) throws {
        loadNext(batch: batch, transforms: transforms)
        try network.trainStep(batch: batch, optimizer: optimizer)
    }
}

/// `cytocl bench`'s measurement of one backend at one input size and batch: images/s of
/// a bare training step, of the end-to-end step users run (the paper's augmentation,
/// the step, and validation images at the ALL protocol's ratio) with the augmentation's
/// share measured inside it, and of inference.
public struct Throughput: Sendable {
    public var train: Double
    public var inference: Double
    public var endToEnd: Double
    /// Share of the end-to-end step spent in the augmented batch gather.
    public var augmentShare: Double
    /// Kernel launches of one training step, where the backend counts them.
    public var launchesPerStep: Int?

    /// Validation images per training image in the end-to-end step (ALL-IDB: 25 per 200).
    public static let validationRatio = 25.0 / 200.0

    /// Measures `seconds` per rate (three times; the median is kept). `profile` is called
    /// after each phase with its name, so a caller can print and reset the backend's profile.
    public static func measure(
        backend: any Backend, size: Int, batch: Int, sampler: AugmentSampler, seconds: Double,
        profile: (String) -> Void = { _ in }
    ) throws -> Throughput {
        let spec = ModelSpec.paper(height: size, width: size, classes: 2)
        let load = try SyntheticTrainingLoad(spec: spec, backend: backend, maxBatch: batch, seed: 1)
        let net = load.network
        /// Images per second of `body`, which handles `perCall` images.
        func timeIt(perCall: Int = batch, _ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<2 { try body() }
            backend.synchronize()
            var rates: [Double] = []
            for _ in 0..<3 {
                let start = Date()
                var n = 0
                repeat {
                    try body(); n += 1
                    if n % 4 == 0 { backend.synchronize() }
                } while Date().timeIntervalSince(start) < seconds
                backend.synchronize()
                rates.append(Double(n * perCall) / Date().timeIntervalSince(start))
            }
            return rates.sorted()[1]
        }
        let train = try timeIt { try load.trainStep(batch: batch, optimizer: .paperBinary) }
        var launches: Int?
        if let before = backend.statistics.kernelLaunches {
            try load.trainStep(batch: batch, optimizer: .paperBinary)
            launches = (backend.statistics.kernelLaunches ?? before) - before
        }
        profile("training step")
        // End to end: eight augmented training batches, then validation images in the
        // protocol's ratio (forward and loss only, gathered without augmentation).
        var augRNG = SeededGenerator(seed: 9)
        let stepsPerRound = 8
        let validationImages = max(1, Int((Double(stepsPerRound * batch) * validationRatio).rounded()))
        /// One round: eight augmented training batches, then the validation images.
        /// With `gatherSeconds`, each augmented gather is timed on its own (the device
        /// drained before and after it), and its seconds are added there.
        func round(gatherSeconds: UnsafeMutablePointer<Double>? = nil) throws {
            for _ in 0..<stepsPerRound {
                let t = (0..<batch).map { _ in AugmentTransform.random(using: &augRNG, sampler: sampler) }
                if let gatherSeconds {
                    backend.synchronize()
                    let start = DispatchTime.now().uptimeNanoseconds
                    load.loadNext(batch: batch, transforms: t)
                    backend.synchronize()
                    gatherSeconds.pointee += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                } else {
                    load.loadNext(batch: batch, transforms: t)
                }
                try net.trainStep(batch: batch, optimizer: .paperBinary)
            }
            var v = 0
            while v < validationImages {
                let n = min(batch, validationImages - v)
                load.loadNext(batch: n)
                net.forward(batch: n, keepingActivations: false)
                net.loss(batch: n, gradient: false)
                v += n
            }
        }
        let endToEnd = try timeIt(perCall: stepsPerRound * batch) { try round() }
        profile("end-to-end step")
        // The augmentation's share of the end-to-end step, measured inside it: the
        // seconds of the augmented gathers over the seconds of whole rounds, in rounds
        // run apart from the rate above (the drains around each gather would slow an
        // OpenCL queue). A gather timed alone in a loop would look cheaper than it is
        // in the step, where the network's activations have pushed the images out of
        // the caches.
        var gatherSeconds = 0.0, roundSeconds = 0.0
        repeat {
            backend.synchronize()
            let start = DispatchTime.now().uptimeNanoseconds
            try round(gatherSeconds: &gatherSeconds)
            backend.synchronize()
            roundSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        } while roundSeconds < seconds
        backend.resetProfile()
        let inference = timeIt {
            load.loadNext(batch: batch)
            net.forward(batch: batch, keepingActivations: false)
            net.computeProbabilities(batch: batch)
        }
        _ = try net.takeMetrics()
        // A rate measured on a device that failed is not a measurement.
        try backend.checkErrors()
        return Throughput(
            train: train, inference: inference, endToEnd: endToEnd, augmentShare: min(1, gatherSeconds / roundSeconds),
            launchesPerStep: launches)
    }
}
