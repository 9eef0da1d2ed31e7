import CytoCPU
import CytoCore
import CytoData
import CytoInterop
import CytoTrain
import Foundation
import XCTest

/// `cytocl import --from keras`: the fixtures in Tests/Fixtures/interop were written by
/// Keras (scripts/make-interop-fixtures) together with Keras' own predictions; the
/// imported models must reproduce them.
final class KerasImportTests: XCTestCase {
    struct Fixture {
        var file: String
        var size: Int
        var images: [String]
        var expected: [[Double]]
        var sigmoid: Bool
        var needsInput: Bool
    }

    func fixtures() throws -> [Fixture] {
        let data = try Data(contentsOf: Interop.fixtures.appendingPathComponent("predictions.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let models = try XCTUnwrap(json["models"] as? [String: [String: Any]])
        return try models.keys.sorted().map { file in
            let m = models[file]!
            return Fixture(
                file: file, size: try XCTUnwrap((m["input"] as? [Int])?.first),
                images: try XCTUnwrap(m["images"] as? [String]),
                expected: try XCTUnwrap(m["expected"] as? [[Double]]),
                sigmoid: m["sigmoid"] as? Bool ?? false, needsInput: m["needs_input"] as? Bool ?? false)
        }
    }

    func probabilities(_ model: ModelFile, images: [String]) throws -> [[Float]] {
        let net = try Network(spec: model.spec, backend: CPUBackend(threads: 2), maxBatch: 4)
        try net.setWeights(model.weights)
        let items = images.map { DatasetItem(path: Interop.fixtures.appendingPathComponent($0).path, label: 0, className: "") }
        let loaded = try ImageLoader.load(items, height: model.spec.inputHeight, width: model.spec.inputWidth, fit: .pad)
        XCTAssertEqual(loaded.report.padded + loaded.report.resized + loaded.report.cropped, 0, "fixture images have the model's size")
        let set = LabeledImages(
            geometry: ImageGeometry(height: model.spec.inputHeight, width: model.spec.inputWidth),
            pixels: loaded.pixels, labels: loaded.labels, paths: loaded.items.map(\.path))
        return try Predictor(network: net).probabilities(set)
    }

    /// Keras 2.0.8 / 2.2 layouts and Keras 3 legacy h5, Sequential and functional,
    /// softmax and sigmoid heads, 64x64 and the paper's network at 257x257.
    func testImportedModelsPredictWhatKerasPredicted() throws {
        let all = try fixtures()
        XCTAssertGreaterThanOrEqual(all.count, 5)
        for f in all {
            let options = KerasImport.Options(inputSize: f.needsInput ? (f.size, f.size) : nil)
            let result = try KerasImport.read(path: Interop.fixtures.appendingPathComponent(f.file).path, options: options)
            XCTAssertEqual(result.model.spec.inputHeight, f.size, f.file)
            XCTAssertEqual(result.model.spec.classes, f.expected[0].count, f.file)
            XCTAssertEqual(result.notes.contains { $0.contains("two-class softmax") }, f.sigmoid, f.file)
            let got = try probabilities(result.model, images: f.images)
            XCTAssertEqual(got.count, f.expected.count, f.file)
            for (g, e) in zip(got, f.expected) {
                for (a, b) in zip(g, e) {
                    XCTAssertEqual(Double(a), b, accuracy: 1e-5, "\(f.file): CytoCL \(g) vs Keras \(e)")
                }
            }
        }
    }

    func testPaperNetworkFromKeras2FileHasThePaperArchitecture() throws {
        let result = try KerasImport.read(
            path: Interop.fixtures.appendingPathComponent("keras2-paper-257.h5").path,
            options: .init(classNames: ["other", "blast"]))
        XCTAssertEqual(result.model.spec, ModelSpec.paper(height: 257, width: 257, classes: 2))
        XCTAssertEqual(result.model.classNames, ["other", "blast"])
        XCTAssertEqual(result.model.provenance["keras_version"], "2.0.8")
        XCTAssertEqual(result.model.spec.parameterCount, 7_210)
    }

    func testOtherArchitecturesAreRefusedNamingTheLayer() throws {
        let cases = [
            ("wrong-batchnorm.h5", "'batchnorm' (BatchNormalization)"),
            ("wrong-same-padding.h5", "'conv_same' (Conv2D) has padding 'same'"),
        ]
        for (file, expected) in cases {
            let path = Interop.fixtures.appendingPathComponent(file).path
            XCTAssertThrowsError(try KerasImport.read(path: path), file) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(expected), text)
                XCTAssertTrue(text.contains(file), "the message names the file: \(text)")
            }
        }
    }

    func testWeightsOnlyFileNeedsTheInputSizeAndChecksIt() throws {
        let path = Interop.fixtures.appendingPathComponent("keras2-weights-only-64.h5").path
        XCTAssertThrowsError(try KerasImport.read(path: path)) { XCTAssertTrue("\($0)".contains("--input"), "\($0)") }
        // 80x80 gives 8x3x3 = 72 features after four blocks, not the 32 dense1 takes.
        XCTAssertThrowsError(try KerasImport.read(path: path, options: .init(inputSize: (80, 80)))) {
            XCTAssertTrue("\($0)".contains("'dense_1' takes 32 inputs"), "\($0)")
        }
        XCTAssertNoThrow(try KerasImport.read(path: path, options: .init(inputSize: (64, 64))))
    }

    func testFilesThatAreNotKerasModelsGetAClearError() throws {
        let dir = try Interop.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("model.h5")
        try Data("not hdf5".utf8).write(to: text)
        XCTAssertThrowsError(try KerasImport.read(path: text.path)) { XCTAssertTrue("\($0)".contains("not an HDF5 file"), "\($0)") }
        XCTAssertThrowsError(try KerasImport.read(path: dir.appendingPathComponent("missing.h5").path)) {
            XCTAssertTrue("\($0)".contains("missing.h5"), "\($0)")
        }
        let truncated = dir.appendingPathComponent("truncated.h5")
        try Data(try Data(contentsOf: Interop.fixtures.appendingPathComponent("keras2-paper-257.h5")).prefix(40_000)).write(to: truncated)
        XCTAssertThrowsError(try KerasImport.read(path: truncated.path)) {
            XCTAssertTrue("\($0)".contains("truncated.h5: libhdf5 cannot open the file (truncated or corrupt?)"), "\($0)")
        }
        let zip = dir.appendingPathComponent("model.keras")
        try Data([0x50, 0x4B, 0x03, 0x04, 0, 0]).write(to: zip)
        XCTAssertThrowsError(try KerasImport.read(path: zip.path)) { XCTAssertTrue("\($0)".contains("model.save(\"model.h5\")"), "\($0)") }
        let path = Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5").path
        XCTAssertThrowsError(try KerasImport.read(path: path, options: .init(classNames: ["a", "b"]))) {
            XCTAssertTrue("\($0)".contains("3 outputs"), "\($0)")
        }
    }

    /// The command end to end: import, then `cytocl predict` on the imported file.
    func testImportCommandThenPredict() throws {
        let dir = try Interop.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("aml.safetensors").path
        let imported = try Interop.cytocl([
            "import", "--from", "keras", Interop.fixtures.appendingPathComponent("keras2-checkpoint-sigmoid-64.hdf5").path,
            "--out", out, "--classes", "other,blast",
        ])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        XCTAssertTrue(imported.stderr.contains("two-class softmax"), "the sigmoid mapping is said on stderr: \(imported.stderr)")
        XCTAssertEqual(imported.stdout, "")
        let f = try XCTUnwrap(try fixtures().first { $0.file == "keras2-checkpoint-sigmoid-64.hdf5" })
        let predicted = try Interop.cytocl(["predict", "--model", out] + f.images.map { Interop.fixtures.appendingPathComponent($0).path })
        XCTAssertEqual(predicted.status, 0, predicted.stderr)
        let (header, rows) = Interop.parsePredictions(predicted.stdout)
        XCTAssertEqual(header, ["path", "predicted", "prob_other", "prob_blast"])
        XCTAssertEqual(rows.count, f.expected.count)
        for (row, e) in zip(rows, f.expected) {
            for (a, b) in zip(row.1, e) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        }

        let refusedOut = dir.appendingPathComponent("refused.safetensors").path
        let refused = try Interop.cytocl([
            "import", Interop.fixtures.appendingPathComponent("wrong-batchnorm.h5").path, "--out", refusedOut,
        ])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("'batchnorm' (BatchNormalization)"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: refusedOut), "nothing written for a refused file")
    }
}
