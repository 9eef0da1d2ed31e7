import CytoCPU
import CytoReferenceData
import Foundation
import XCTest

@testable import CytoCore

/// The CPU backend against the project's Keras reference vectors (Tests/Fixtures/reference,
/// embedded in the binary): forward, loss, gradients, Keras 3 and Keras 2.0.8 optimizer steps.
final class KerasReferenceTests: XCTestCase {
    func run(_ name: String, threads: Int) throws {
        let reference = try ReferenceFixtures.reference(name)
        let results = try reference.compare(on: CPUBackend(threads: threads), stepTolerance: 1e-5)
        // 10 activations + 16 gradients + 4 optimizer runs x 16 parameters.
        XCTAssertEqual(results.count, 90, results.map(\.tensor).joined(separator: " "))
        XCTAssertTrue(results.contains { $0.tensor == "rmsprop3k2.conv1.weight" }, "no Keras 2.0.8-form steps checked")
        for r in results where !r.passed { XCTFail("\(name): \(r)") }
    }

    func testTwoClass257() throws { try run("keras_2class_257.safetensors", threads: 2) }
    func testSixClass257() throws { try run("keras_6class_257.safetensors", threads: 1) }
    func testTwoClass400() throws { try run("keras_2class_400.safetensors", threads: 2) }

    /// Every embedded file is the committed fixture, byte for byte.
    func testEmbeddedFilesAreTheCommittedFixtures() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/reference")
        let committed = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertEqual(ReferenceFixtures.files.map(\.name).sorted(), committed)
        for f in ReferenceFixtures.files {
            XCTAssertEqual(
                f.data, try Data(contentsOf: folder.appendingPathComponent(f.name)), "\(f.name): rebuild after scripts/make-reference")
        }
    }

    /// The Keras 2.0.8-form allowance tells the forms apart: Keras 3's RMSprop steps
    /// (the file's rmsprop3) do not pass as Keras 2.0.8's (rmsprop3k2).
    func testKeras2StepsDistinguishTheForms() throws {
        let reference = try ReferenceFixtures.reference("keras_2class_257.safetensors")
        var rejected = 0, elements = 0
        for (name, _) in reference.spec.parameterShapes {
            let t = { (prefix: String) in reference.file.tensors[prefix + name]!.floats() }
            let own = reference.check(
                "rmsprop3k2." + name, t("rmsprop3k2."),
                kind: .step(initial: t(""), gradient: t("grad."), learningRate: 1e-3))
            XCTAssertTrue(own.passed, "\(own)")
            let other = reference.check(
                "rmsprop3k2." + name, t("rmsprop3."),
                kind: .step(initial: t(""), gradient: t("grad."), learningRate: 1e-3))
            rejected += other.failures; elements += other.elements
        }
        // Large gradients step alike in both forms; most parameters' gradients are small.
        XCTAssertGreaterThan(rejected, elements / 2, "Keras 3 steps passed as Keras 2.0.8 steps: \(rejected) of \(elements) rejected")
    }
}
