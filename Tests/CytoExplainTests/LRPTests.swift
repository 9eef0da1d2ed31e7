import CytoTestSupport
import CytoCPU
import CytoCore
import Foundation
import XCTest

@testable import CytoExplain

final class LRPTests: XCTestCase {
    /// One 3x3 conv (1 -> 1 channel, identity-diagonal kernel) on a 4x4 image, a 2x2
    /// max-pool to 1x1, and a dense layer to 2 classes, all biases zero. With
    /// x[y][x] = 4y + x + 1 the conv outputs are 18, 21, 30, 33; the pool picks 33 at
    /// (1, 1), built from the pixels 6, 11 and 16 on the diagonal. Logits: 2*33, -1*33.
    func tinyModel() throws -> LRP {
        let spec = ModelSpec(inputHeight: 4, inputWidth: 4, inputChannels: 1, convFilters: [1], denseUnits: [], classes: 2)
        return try LRP(
            spec: spec,
            weights: [
                "conv1.weight": [1, 0, 0, 0, 1, 0, 0, 0, 1], "conv1.bias": [0],
                "dense1.weight": [2, -1], "dense1.bias": [0, 0],
            ])
    }
    let tinyInput: [Float] = (0..<16).map { Float($0 + 1) }

    func expected(_ values: [(Int, Double)]) -> [Double] {
        var e = [Double](repeating: 0, count: 16)
        for (i, v) in values { e[i] = v }
        return e
    }


    func testHandCheckedTinyNetworkZRule() throws {
        let lrp = try tinyModel()
        let r0 = lrp.explain(input: tinyInput, classIndex: 0, rule: .z)
        XCTAssertEqual(r0.logits, [66, -33])
        XCTAssertEqual(r0.score, 66)
        // R(pool) = 33 * 2 / 66 * 66 = 66; R(pixel) = x * w / 33 * 66.
        assertClose(r0.inputRelevance, expected([(5, 12), (10, 22), (15, 32)]), rtol: 1e-8, atol: 1e-8)
        XCTAssertEqual(r0.map, r0.inputRelevance.map(Float.init))
        let r1 = lrp.explain(input: tinyInput, classIndex: 1, rule: .z)
        XCTAssertEqual(r1.score, -33)
        assertClose(r1.inputRelevance, expected([(5, -6), (10, -11), (15, -16)]), rtol: 1e-8, atol: 1e-8)
        // nil class = predicted (class 0).
        XCTAssertEqual(lrp.explain(input: tinyInput, rule: .z).classIndex, 0)
    }

    func testHandCheckedTinyNetworkEpsilonRule() throws {
        let lrp = try tinyModel()
        let r = lrp.explain(input: tinyInput, classIndex: 0, rule: .epsilon(1))
        // dense: R(pool) = 33 * 2 / (66 + 1) * 66; conv: R(pixel) = x / (33 + 1) * R(pool).
        let rp = 33.0 * 2 / 67 * 66
        assertClose(r.inputRelevance, expected([(5, 6 / 34 * rp), (10, 11 / 34 * rp), (15, 16 / 34 * rp)]), rtol: 1e-9, atol: 1e-9)
        let r1 = lrp.explain(input: tinyInput, classIndex: 1, rule: .epsilon(1))
        // Negative z: the stabiliser is subtracted. R(pool) = 33 * -1 / (-33 - 1) * -33.
        let rp1 = 33.0 * -1 / -34 * -33
        assertClose(r1.inputRelevance, expected([(5, 6 / 34 * rp1), (10, 11 / 34 * rp1), (15, 16 / 34 * rp1)]), rtol: 1e-9, atol: 1e-9)
    }

    /// A random multi-channel network with zero biases, several images and classes.
    func randomCase(seed: UInt64) throws -> (LRP, [[Float]]) {
        let spec = ModelSpec(
            inputHeight: 23, inputWidth: 20, inputChannels: 3, convFilters: [4, 6],
            denseUnits: [8], classes: 3)
        let net = try Network(spec: spec, backend: CPUBackend(threads: 1), maxBatch: 1)
        net.initialize(seed: seed)
        var rng = SeededGenerator(seed: seed &+ 100)
        let inputs = (0..<4).map { _ in (0..<3 * 23 * 20).map { _ in rng.nextUnitFloat() } }
        return (try LRP(spec: spec, weights: net.weights()), inputs)
    }

    func testZRuleConservesRelevanceWithZeroBiases() throws {
        var checked = 0
        for seed in [1, 2, 3] as [UInt64] {
            let (lrp, inputs) = try randomCase(seed: seed)
            for x in inputs {
                for c in 0..<3 {
                    let r = lrp.explain(input: x, classIndex: c, rule: .z)
                    guard abs(r.score) > 1e-6 else { continue }
                    XCTAssertEqual(r.relevanceSum, r.score, accuracy: 1e-4 * abs(r.score), "seed \(seed) class \(c)")
                    let mapSum = r.map.reduce(0.0) { $0 + Double($1) }
                    XCTAssertEqual(mapSum, r.score, accuracy: 1e-4 * abs(r.score))
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }

    func testEpsilonRuleDoesNotExceedScore() throws {
        for seed in [1, 2, 3] as [UInt64] {
            let (lrp, inputs) = try randomCase(seed: seed)
            for x in inputs {
                for c in 0..<3 {
                    let r = lrp.explain(input: x, classIndex: c, rule: .epsilon(1))
                    let z = lrp.explain(input: x, classIndex: c, rule: .z)
                    XCTAssertLessThanOrEqual(abs(r.relevanceSum), abs(r.score) * (1 + 1e-9), "seed \(seed) class \(c)")
                    // The stabiliser absorbs relevance: epsilon = 1 keeps less than the z-rule.
                    XCTAssertLessThanOrEqual(abs(r.relevanceSum), abs(z.relevanceSum) * (1 + 1e-9) + 1e-12)
                }
            }
        }
    }

    /// The paper network at 257x257 on the reference images (initial weights, zero biases):
    /// host logits match Keras, the z-rule conserves, epsilon = 1 does not exceed the score.
    func testPaperNetworkOnReferenceImages() throws {
        let rc = try ReferenceCase.load("keras_2class_257.safetensors")
        let lrp = try LRP(spec: rc.reference.spec, weights: rc.weights)
        let refLogits = rc.reference.file.tensors["out.logits"]!.floats()
        let k = rc.reference.spec.classes
        // Conservation needs zero biases (Keras initialises them so; enforce it anyway).
        var zeroBias = rc.weights
        for (name, shape) in rc.reference.spec.parameterShapes where shape.count == 1 {
            zeroBias[name] = [Float](repeating: 0, count: shape[0])
        }
        let lrp0 = try LRP(spec: rc.reference.spec, weights: zeroBias)
        for (i, x) in rc.inputs.enumerated() {
            let start = Date()
            let z = lrp.explain(input: x, classIndex: rc.labels[i], rule: .z)
            let seconds = Date().timeIntervalSince(start)
            for c in 0..<k {
                XCTAssertEqual(z.logits[c], Double(refLogits[i * k + c]), accuracy: 1e-5 + 1e-4 * Double(abs(refLogits[i * k + c])))
            }
            let z0 = lrp0.explain(input: x, classIndex: rc.labels[i], rule: .z)
            XCTAssertEqual(z0.relevanceSum, z0.score, accuracy: 1e-4 * abs(z0.score), "image \(i)")
            let e = lrp.explain(input: x, classIndex: rc.labels[i], rule: .epsilon(1))
            XCTAssertLessThanOrEqual(abs(e.relevanceSum), abs(e.score) * (1 + 1e-9), "image \(i)")
            XCTAssertEqual(z.map.count, 257 * 257)
            if i == 0 { print("LRP z-rule 257x257 (debug build): \(String(format: "%.3f", seconds)) s") }
        }
    }
}
