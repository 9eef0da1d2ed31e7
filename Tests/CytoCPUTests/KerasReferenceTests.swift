import CytoCore
import CytoCPU
import Foundation
import XCTest

/// The folder ../shared beside the repository (CI clones the project with it there).
func sharedFolder(_ file: String = #filePath) -> URL {
    URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared")
}

final class KerasReferenceTests: XCTestCase {
    func run(_ name: String, threads: Int, stepTolerance: Float = 1e-6) throws {
        let url = sharedFolder().appendingPathComponent("reference/\(name)")
        guard FileManager.default.fileExists(atPath: url.path) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("missing \(url.path)"); return }
            throw XCTSkip("no reference vectors at \(url.path)")
        }
        let reference = try KerasReference(url: url)
        let results = try reference.compare(on: CPUBackend(threads: threads), stepTolerance: stepTolerance)
        XCTAssertGreaterThan(results.count, 40)
        for r in results where !r.passed { XCTFail("\(name): \(r)") }
    }

    // The PBC crops have flat regions where max-pool inputs tie exactly (see
    // KerasReference.compare): forward and gradients are held to the README's
    // tolerances, the 3-step parameters to 1e-4 (a tenth of one RMSprop step).
    func testTwoClass257() throws { try run("keras_2class_257.safetensors", threads: 2, stepTolerance: 1e-4) }
    func testSixClass257() throws { try run("keras_6class_257.safetensors", threads: 1, stepTolerance: 1e-4) }
    func testTwoClass400() throws { try run("keras_2class_400.safetensors", threads: 2) }
}
