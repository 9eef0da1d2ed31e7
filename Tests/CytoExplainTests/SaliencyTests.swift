import CytoCPU
import CytoCore
import CytoOpenCL
import CytoReferenceData
import Foundation
import XCTest

@testable import CytoExplain

/// A Keras reference file with its network loaded (initial weights) and its batch uploaded.
struct ReferenceCase {
    let reference: KerasReference
    let weights: [String: [Float]]
    let labels: [Int]
    /// [C, H, W] per image, 1/255-scaled.
    let inputs: [[Float]]

    /// `name`: one of the embedded reference files (Tests/Fixtures/reference).
    static func load(_ name: String) throws -> ReferenceCase {
        let reference = try ReferenceFixtures.reference(name)
        var weights: [String: [Float]] = [:]
        for (name, _) in reference.spec.parameterShapes { weights[name] = reference.file.tensors[name]!.floats() }
        let images = reference.file.tensors["input_u8"]!
        let h = images.shape[1], w = images.shape[2], c = images.shape[3]
        let bytes = images.bytes()
        let inputs = (0..<reference.batch).map { i in
            ExplainInput.chw(hwc: bytes[i * h * w * c..<(i + 1) * h * w * c], height: h, width: w, channels: c)
        }
        let labels = reference.file.tensors["labels"]!.floats().map { Int($0) }
        return ReferenceCase(reference: reference, weights: weights, labels: labels, inputs: inputs)
    }

    /// Builds the network on `backend` with the batch uploaded exactly as the trainer does.
    func network(on backend: any Backend) throws -> Network {
        let net = try Network(spec: reference.spec, backend: backend, maxBatch: reference.batch)
        try net.setWeights(weights)
        let images = reference.file.tensors["input_u8"]!
        let buffer = try backend.makeBuffer(.uint8, count: images.elementCount, label: "reference images")
        images.data.withUnsafeBytes { backend.write(bytes: $0, to: buffer, byteOffset: 0) }
        backend.gatherBatch(
            images: buffer,
            geometry: ImageGeometry(
                height: images.shape[1], width: images.shape[2],
                channels: images.shape[3]),
            indices: (0..<Int32(reference.batch)).map { $0 }, transforms: nil, output: net.input)
        return net
    }
}

final class SaliencyTests: XCTestCase {
    func checkReference(_ name: String, backend: any Backend) throws {
        let rc = try ReferenceCase.load(name)
        guard let ref = rc.reference.saliency() else { return XCTFail("\(name) has no saliency tensor") }
        let net = try rc.network(on: backend)
        let n = rc.reference.batch
        let r = try Saliency.compute(network: net, batch: n) { i, _ in rc.labels[i] }
        XCTAssertEqual(r.classes, rc.labels)
        let ours = r.maps.flatMap { $0 }
        XCTAssertEqual(ours.count, ref.count)
        var failures = 0, worst: Float = 0
        for (a, b) in zip(ours, ref) {
            let err = abs(a - b)
            worst = max(worst, err)
            if !(err <= 1e-5 + 1e-4 * abs(b)) { failures += 1 }
        }
        XCTAssertEqual(
            failures, 0, "\(name) on \(backend.kind): \(failures) of \(ref.count) saliency values out of tolerance, worst |diff| \(worst)")
        XCTAssertGreaterThan(ref.map { abs($0) }.max() ?? 0, 0, "reference saliency is all zeros")

        // Uploading host-converted inputs gives the same maps.
        let again = try Saliency.compute(network: net, inputs: rc.inputs) { i, _ in rc.labels[i] }
        for (a, b) in zip(again.maps.flatMap { $0 }, ref) {
            XCTAssertEqual(a, b, accuracy: 1e-5 + 1e-4 * abs(b)); if abs(a - b) > 1e-5 + 1e-4 * abs(b) { break }
        }
    }

    func testReferenceSaliencyCPU() throws {
        try checkReference("keras_2class_257.safetensors", backend: CPUBackend(threads: 2))
    }

    func testReferenceSaliencySixClassCPU() throws {
        try checkReference("keras_6class_257.safetensors", backend: CPUBackend(threads: 2))
    }

    func testReferenceSaliencyOpenCL() throws {
        let backend: OpenCLBackend
        do { backend = try OpenCLBackend(device: .best) } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" { throw error }
            throw XCTSkip("no OpenCL device: \(error)")
        }
        try checkReference("keras_2class_257.safetensors", backend: backend)
    }

    func testMatchesFiniteDifferences() throws {
        let spec = ModelSpec(
            inputHeight: 14, inputWidth: 13, inputChannels: 3, convFilters: [3, 4],
            denseUnits: [5], classes: 3)
        let backend = CPUBackend(threads: 1)
        let net = try Network(spec: spec, backend: backend, maxBatch: 2)
        net.initialize(seed: 5)
        var w = try net.weights()
        var rng = SeededGenerator(seed: 9)
        for (name, shape) in spec.parameterShapes where shape.count == 1 {
            w[name] = (0..<shape[0]).map { _ in 0.05 + 0.1 * rng.nextUnitFloat() }
        }
        try net.setWeights(w)
        let hw = spec.inputHeight * spec.inputWidth
        let inputs = (0..<2).map { _ in (0..<3 * hw).map { _ in rng.nextUnitFloat() } }
        let classes = [2, 0]
        let r = try Saliency.compute(network: net, inputs: inputs) { i, _ in classes[i] }
        let host = try LRP(spec: spec, weights: w)
        for i in 0..<2 {
            let x = inputs[i].map(Double.init)
            // Host and backend forward agree.
            let hostLogits = host.forward(x).densePre.last!
            for (a, b) in zip(r.logits[i], hostLogits) { XCTAssertEqual(Double(a), b, accuracy: 1e-5 + 1e-5 * abs(b)) }
            var fd = [Double](repeating: 0, count: hw)
            let h = 1e-6
            for k in 0..<x.count {
                var xp = x, xm = x
                xp[k] += h; xm[k] -= h
                let d = (host.forward(xp).densePre.last![classes[i]] - host.forward(xm).densePre.last![classes[i]]) / (2 * h)
                fd[k % hw] = max(fd[k % hw], abs(d))
            }
            let scale = fd.max()!
            XCTAssertGreaterThan(scale, 0)
            var bad = 0
            for p in 0..<hw where abs(Double(r.maps[i][p]) - fd[p]) > 1e-4 * scale + 1e-6 { bad += 1 }
            XCTAssertEqual(bad, 0, "image \(i): \(bad) of \(hw) pixels differ from finite differences")
        }
    }
}
