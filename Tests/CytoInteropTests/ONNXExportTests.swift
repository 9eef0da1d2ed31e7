import CytoCore
import Foundation
import XCTest

@testable import CytoInterop

/// `cytocl export --format onnx` and python/cytocl_model.py, checked against
/// `cytocl predict` on synthetic cells by Python scripts (python/tests/) that use
/// onnx + onnxruntime and NumPy + safetensors. Under CI=true a missing Python
/// package fails these tests; locally they are skipped.
final class ONNXExportTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Interop.temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// A 96x96, 3-class network with random but decisive weights (He-scaled normal
    /// kernels, non-zero biases), so a layout mistake moves the probabilities far.
    func makeModel(at url: URL) throws -> ModelFile {
        let spec = ModelSpec(inputHeight: 96, inputWidth: 96, convFilters: [4, 8, 8, 16], denseUnits: [32], classes: 3)
        var rng = SeededGenerator(seed: 15)
        func normal() -> Float {
            let u1 = max(rng.nextUnitFloat(), 1e-7), u2 = rng.nextUnitFloat()
            return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
        }
        var weights: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes {
            let count = shape.reduce(1, *)
            if name.hasSuffix(".bias") {
                weights[name] = (0..<count).map { _ in 0.1 * normal() }
            } else {
                let fanIn = Float(shape.dropFirst().reduce(1, *))
                weights[name] = (0..<count).map { _ in 1.6 * (2 / fanIn).squareRoot() * normal() }
            }
        }
        let model = ModelFile(
            spec: spec, classNames: ["blast", "lymphocyte", "neutro,phil"], weights: weights,
            provenance: ["seed": "15"])
        try model.write(to: url)
        return model
    }

    /// Synthetic cells (`cytocl synth`, PNGs written by libpng with its adaptive
    /// filters), then `cytocl predict` as CSV; returns the CSV's path.
    func predictOnSynthCells(model: String) throws -> URL {
        let data = dir.appendingPathComponent("cells").path
        let synth = try Interop.cytocl(["synth", "--out", data, "--layout", "folders", "--count", "6", "--size", "96", "--seed", "4"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let images = try FileManager.default.subpathsOfDirectory(atPath: data).filter { $0.hasSuffix(".png") }.sorted()
            .map { data + "/" + $0 }
        XCTAssertEqual(images.count, 6)
        let predicted = try Interop.cytocl(["predict", "--model", model] + images)
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        let rows = Interop.parsePredictions(predicted.stdout).rows
        let all = rows.flatMap(\.1)
        XCTAssertGreaterThan((all.max() ?? 0) - (all.min() ?? 0), 0.3, "probabilities spread enough to test anything: \(predicted.stdout)")
        let csv = dir.appendingPathComponent("predictions.csv")
        try predicted.stdout.write(to: csv, atomically: true, encoding: .utf8)
        return csv
    }

    func testONNXRuntimeAgreesWithPredictAndTheCheckerAcceptsTheFile() throws {
        let python = try Interop.python(needing: ["numpy", "safetensors", "onnx", "onnxruntime"])
        let model = dir.appendingPathComponent("model.safetensors")
        _ = try makeModel(at: model)
        let onnx = dir.appendingPathComponent("model.onnx")
        let export = try Interop.cytocl(["export", "--model", model.path, "--format", "onnx", "--out", onnx.path])
        XCTAssertEqual(export.status, 0, export.stderr)
        let csv = try predictOnSynthCells(model: model.path)
        let check = try Interop.run(python, [Interop.root.appendingPathComponent("python/tests/check_onnx.py").path, onnx.path, csv.path])
        XCTAssertEqual(check.status, 0, check.stderr + check.stdout)
        XCTAssertTrue(check.stdout.contains("check_onnx: OK"), check.stdout)
    }

    func testPythonLoaderWithNumPyOnlyAgreesWithPredict() throws {
        let python = try Interop.python(needing: ["numpy", "safetensors"])
        let model = dir.appendingPathComponent("model.safetensors")
        _ = try makeModel(at: model)
        let csv = try predictOnSynthCells(model: model.path)
        let check = try Interop.run(
            python, [Interop.root.appendingPathComponent("python/tests/check_loader.py").path, model.path, csv.path])
        XCTAssertEqual(check.status, 0, check.stderr + check.stdout)
        XCTAssertTrue(check.stdout.contains("check_loader: OK"), check.stdout)
    }

    /// A calibrated model (temperature 2.5, as `train --calibrate` stores it): the ONNX
    /// graph's Div before the Softmax and the Python loader give predict's probabilities.
    func testCalibratedModelONNXAndPythonLoaderAgreeWithPredict() throws {
        let python = try Interop.python(needing: ["numpy", "safetensors", "onnx", "onnxruntime"])
        let model = dir.appendingPathComponent("model.safetensors")
        var m = try makeModel(at: model)
        m.temperature = 2.5
        try m.write(to: model)
        XCTAssertEqual(try ModelFile.read(from: model).temperature, 2.5)
        let onnx = dir.appendingPathComponent("model.onnx")
        let export = try Interop.cytocl(["export", "--model", model.path, "--format", "onnx", "--out", onnx.path])
        XCTAssertEqual(export.status, 0, export.stderr)
        let csv = try predictOnSynthCells(model: model.path)
        let check = try Interop.run(python, [Interop.root.appendingPathComponent("python/tests/check_onnx.py").path, onnx.path, csv.path])
        XCTAssertEqual(check.status, 0, check.stderr + check.stdout)
        XCTAssertTrue(check.stdout.contains("check_onnx: OK"), check.stdout)
        let loader = try Interop.run(
            python, [Interop.root.appendingPathComponent("python/tests/check_loader.py").path, model.path, csv.path])
        XCTAssertEqual(loader.status, 0, loader.stderr + loader.stdout)
        XCTAssertTrue(loader.stdout.contains("check_loader: OK"), loader.stdout)
    }

    func testExportCommandErrorsNameTheProblem() throws {
        let model = dir.appendingPathComponent("model.safetensors")
        _ = try makeModel(at: model)
        let out = dir.appendingPathComponent("m.onnx").path
        let format = try Interop.cytocl(["export", "--model", model.path, "--format", "tflite", "--out", out])
        XCTAssertNotEqual(format.status, 0)
        XCTAssertTrue(format.stderr.contains("--format") && format.stderr.contains("'onnx'"), format.stderr)
        let missing = try Interop.cytocl(["export", "--model", dir.appendingPathComponent("nope.safetensors").path, "--out", out])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nope.safetensors"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testExportRefusesNonFiniteWeightsAndWritesNothing() throws {
        let url = dir.appendingPathComponent("model.safetensors")
        var model = try makeModel(at: url)
        model.weights["dense1.bias"]![3] = .nan
        let out = dir.appendingPathComponent("bad.onnx")
        XCTAssertThrowsError(try ONNXExport.write(model, to: out)) { XCTAssertTrue("\($0)".contains("dense1.bias"), "\($0)") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }
}

/// The wire encoding itself, against bytes worked out by hand from the protobuf
/// encoding rules (https://protobuf.dev/programming-guides/encoding/).
final class ProtobufEncodingTests: XCTestCase {
    func encoded(_ body: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var w = ProtobufWriter()
        body(&w)
        return w.bytes
    }

    func testVarintsKeysAndLengthDelimitedFields() {
        XCTAssertEqual(encoded { $0.int(1, 150) }, [0x08, 0x96, 0x01])  // the protobuf docs' example
        XCTAssertEqual(encoded { $0.int(1, 300) }, [0x08, 0xAC, 0x02])
        XCTAssertEqual(encoded { $0.int(2, -1) }, [0x10] + [UInt8](repeating: 0xFF, count: 9) + [0x01])  // 10-byte two's complement
        XCTAssertEqual(encoded { $0.string(2, "testing") }, [0x12, 0x07] + Array("testing".utf8))
        XCTAssertEqual(encoded { $0.float(2, 1.0) }, [0x15, 0x00, 0x00, 0x80, 0x3F])
        XCTAssertEqual(encoded { $0.int(20, 7) }, [0xA0, 0x01, 0x07])  // field 20: a two-byte key
        XCTAssertEqual(encoded { w in w.message(3) { $0.int(1, 150) } }, [0x1A, 0x03, 0x08, 0x96, 0x01])
    }

    /// A whole exported model for a tiny network, decoded field by field.
    func testExportedModelStartsWithIRVersionAndProducer() throws {
        let spec = ModelSpec(inputHeight: 6, inputWidth: 6, convFilters: [1], denseUnits: [], classes: 2)
        var weights: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes { weights[name] = [Float](repeating: 0.5, count: shape.reduce(1, *)) }
        let bytes = try ONNXExport.serialized(ModelFile(spec: spec, classNames: ["a", "b"], weights: weights), producerVersion: "9")
        // ir_version = 7 (field 1, varint), producer_name = "cytocl" (field 2), producer_version = "9" (field 3).
        XCTAssertEqual(Array(bytes.prefix(13)), [0x08, 0x07, 0x12, 0x06] + Array("cytocl".utf8) + [0x1A, 0x01, 0x39])
        // The opset import (field 8) holds domain "" and version 13.
        let opset: [UInt8] = [0x42, 0x04, 0x0A, 0x00, 0x10, 0x0D]
        XCTAssertNotNil(bytes.indices.first { Array(bytes[$0..<min($0 + opset.count, bytes.count)]) == opset })
    }
}
