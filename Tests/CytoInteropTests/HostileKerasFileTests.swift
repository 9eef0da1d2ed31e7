import CytoCore
import CytoInterop
import Foundation
import XCTest

/// Keras `.h5` files that lie: corrupted lengths, huge declared shapes, configs that
/// contradict their weights. Each must be refused with an error naming the file, never
/// crash the process or allocate what the file cannot hold.
final class HostileKerasFileTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Interop.temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// A copy of a fixture with some bytes replaced.
    func patched(_ fixture: String, _ patches: [Int: UInt8], as name: String) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: Interop.fixtures.appendingPathComponent(fixture)))
        for (offset, value) in patches { bytes[offset] = value }
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// The variable-length string `sequential/conv2d/kernel` (24 bytes) of the
    /// `weight_names` attribute in keras3-softmax-64.h5: its global heap object (index
    /// 17, at byte 8040: index, reference count, reserved, then the 8-byte size) and the
    /// attribute's own copy of its length (byte 11880, then the heap's address 2048 and
    /// the index 17), found with h5py. A corrupt heap-object size made libhdf5 1.10 read
    /// past its buffer (SIGSEGV, exit 139; h5py with libhdf5 1.14 says "ran off end of
    /// input buffer"); a corrupt attribute length made it allocate and touch 4 GB for
    /// half a minute. Each must be an error naming the file, at once.
    func testCorruptVariableLengthStringIsAnErrorNotACrash() throws {
        let original = [UInt8](try Data(contentsOf: Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5")))
        XCTAssertEqual(Array(original[8040..<8056]), [17, 0, 0, 0, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0], "the fixture changed")
        XCTAssertEqual(Array(original[11880..<11892]), [24, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0], "the fixture changed")
        for (k, patch) in [[8051: UInt8(0x7F)], [8055: 0x7F], [11883: 0xFF]].enumerated() {
            let started = Date()
            let path = try patched("keras3-softmax-64.h5", patch, as: "vlen-\(k).h5")
            XCTAssertThrowsError(try KerasImport.read(path: path)) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
            }
            let out = dir.appendingPathComponent("vlen-\(k).safetensors").path
            let run = try Interop.cytocl(["import", path, "--out", out])
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("Error: \(path): "), run.stderr)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, "one line: \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            XCTAssertLessThan(Date().timeIntervalSince(started), 10, "refused at once")
        }
    }

    /// The dataspace of /model_weights/dense/sequential/dense/kernel in
    /// keras3-softmax-64.h5 (shape [288, 16]) sits at byte 29680: version 1, rank 2,
    /// flags 1, then the dimensions and the maximum dimensions, 8 bytes each (found with
    /// h5py). Declaring 2^36 + 288 rows made the importer allocate 4 TB and die
    /// ("failed to allocate ... bytes", exit 134); 288,000 rows (18 MB of floats in an
    /// 87 KB file) allocated and read fill values. Both must be refused before allocating.
    func testHugeDeclaredShapesAreRefusedBeforeAllocating() throws {
        let original = [UInt8](try Data(contentsOf: Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5")))
        XCTAssertEqual(Array(original[29680..<29696]), [1, 2, 1, 0, 0, 0, 0, 0, 32, 1, 0, 0, 0, 0, 0, 0], "the fixture changed")
        func rows(_ n: UInt64) -> [Int: UInt8] {
            var patch: [Int: UInt8] = [:]
            for k in 0..<8 {
                patch[29688 + k] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(k)))
                patch[29704 + k] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(k)))
            }
            return patch
        }
        for (k, (n, expected)) in [((UInt64(1) << 36) + 288, "more than 268435456 values"), (288_000, "more than the")].enumerated() {
            let path = try patched("keras3-softmax-64.h5", rows(n), as: "huge-\(k).h5")
            XCTAssertThrowsError(try KerasImport.read(path: path)) { error in
                let text = "\(error)"
                XCTAssertTrue(
                    text.hasPrefix(path + ": dataset /model_weights/dense/sequential/dense/kernel declares shape [\(n), 16]"), text)
                XCTAssertTrue(text.contains(expected), text)
            }
            let run = try Interop.cytocl(["import", path, "--out", dir.appendingPathComponent("huge-\(k).safetensors").path])
            XCTAssertEqual(run.status, 1, run.stderr)
            XCTAssertTrue(run.stderr.hasPrefix("Error: \(path): dataset "), run.stderr)
        }
    }

    /// A copy of a fixture with `old` replaced by `new` (same length, so every HDF5
    /// size and address stays right): an edited `model_config`.
    func edited(_ fixture: String, _ old: String, _ new: String, as name: String) throws -> String {
        XCTAssertEqual(old.utf8.count, new.utf8.count)
        var bytes = [UInt8](try Data(contentsOf: Interop.fixtures.appendingPathComponent(fixture)))
        let o = Array(old.utf8)
        let at = try XCTUnwrap((0...(bytes.count - o.count)).first { bytes[$0..<($0 + o.count)].elementsEqual(o) }, "\(old) in \(fixture)")
        bytes.replaceSubrange(at..<(at + o.count), with: Array(new.utf8))
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Configs that contradict their weights were imported as if the weights were
    /// right (or, for batch_shape 64.5, truncated to 64); each must be refused, naming
    /// the file and what disagrees.
    func testConfigsThatContradictTheirWeightsAreRefused() throws {
        let cases: [(String, String, String, String)] = [
            (
                "keras3-softmax-64.h5", #""filters": 4"#, #""filters": 5"#,
                "layer 'conv2d' (Conv2D) has filters 5 in its config but a kernel of shape [3, 3, 3, 4]"
            ),
            (
                "keras3-softmax-64.h5", #""units": 16"#, #""units": 17"#,
                "layer 'dense' (Dense) has units 17 in its config but a kernel of shape [288, 16]"
            ),
            (
                "keras3-softmax-64.h5", #""batch_shape": [null, 64, 64, 3]"#, #""batch_shape": [null,64.5,64, 3]"#,
                "batch_shape [null,64.5,64,3] has a dimension that is not a whole positive number"
            ),
            (
                "keras3-softmax-64.h5", #""use_bias": true"#, #""use_bias":false"#,
                "layer 'conv2d' (Conv2D) has use_bias false in its config but a bias"
            ),
            (
                "keras3-functional-sigmoid-64.h5", #""output_layers": ["activation_1", 0, 0]"#, #""output_layers": ["activation", 0,   0]"#,
                "the model's output_layers is activation but its last layer is 'activation_1'"
            ),
        ]
        for (k, (fixture, old, new, expected)) in cases.enumerated() {
            let path = try edited(fixture, old, new, as: "config-\(k).h5")
            XCTAssertThrowsError(try KerasImport.read(path: path), new) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(path + ": "), text)
                XCTAssertTrue(text.contains(expected), "expected '\(expected)' in: \(text)")
            }
        }
        // The unedited fixtures still import.
        XCTAssertNoThrow(try KerasImport.read(path: Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5").path))
        XCTAssertNoThrow(try KerasImport.read(path: Interop.fixtures.appendingPathComponent("keras3-functional-sigmoid-64.h5").path))
    }

    /// A finite weight of 3e38 overflows float32 on the first multiply-add: predict
    /// refused such a model only when its output came out NaN, while import wrote it and
    /// export turned it into an ONNX model that prints NaN. All three refuse it now,
    /// with the same check.
    func testWeightsThatOverflowFloat32AreRefusedByImportExportAndPredict() throws {
        // The dense kernel of keras3-softmax-64.h5 is stored contiguously at byte 30256
        // as little-endian float32 (h5py: dataset.id.get_offset()).
        let huge = Float(3e38).bitPattern
        var patch: [Int: UInt8] = [:]
        for k in 0..<4 { patch[30256 + k] = UInt8(truncatingIfNeeded: huge >> (8 * UInt32(k))) }
        let path = try patched("keras3-softmax-64.h5", patch, as: "huge-weight.h5")
        XCTAssertThrowsError(try KerasImport.read(path: path)) { error in
            XCTAssertTrue("\(error)".contains("beyond float32's range"), "\(error)")
        }
        let refusedOut = dir.appendingPathComponent("huge.safetensors").path
        let imported = try Interop.cytocl(["import", path, "--out", refusedOut])
        XCTAssertEqual(imported.status, 1, imported.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: refusedOut))

        // A model file with such a weight (written by the library, as a hand-edited or
        // foreign file would be): export and predict refuse it alike, before any output.
        let good = try KerasImport.read(path: Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5").path).model
        var bad = good
        bad.weights["dense1.weight"]![0] = 3e38
        let modelURL = dir.appendingPathComponent("overflow.safetensors")
        try bad.write(to: modelURL)
        let onnx = dir.appendingPathComponent("overflow.onnx").path
        let exported = try Interop.cytocl(["export", "--model", modelURL.path, "--out", onnx])
        XCTAssertEqual(exported.status, 1, exported.stderr)
        XCTAssertTrue(exported.stderr.hasPrefix("Error: \(modelURL.path): dense1 can reach"), exported.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: onnx), "no ONNX model that prints NaN")
        let image = Interop.fixtures.appendingPathComponent("images").path
        let firstImage = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: image).sorted().first)
        let predicted = try Interop.cytocl(["predict", "--model", modelURL.path, image + "/" + firstImage])
        XCTAssertEqual(predicted.status, 1, predicted.stdout)
        XCTAssertTrue(predicted.stderr.contains("\(modelURL.path): dense1 can reach"), predicted.stderr)
        XCTAssertThrowsError(try ONNXExport.serialized(bad))
        XCTAssertNoThrow(try ONNXExport.serialized(good))
    }

    /// `import` silently replaced an existing `--out` model (train refused without
    /// `--overwrite`); import and export now follow train's rule.
    func testImportAndExportRefuseAnExistingOutputUnlessOverwrite() throws {
        let keras = Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5").path
        let other = Interop.fixtures.appendingPathComponent("keras2-checkpoint-sigmoid-64.hdf5").path
        let model = dir.appendingPathComponent("model.safetensors").path
        XCTAssertEqual(try Interop.cytocl(["import", keras, "--out", model]).status, 0)
        let first = try Data(contentsOf: URL(fileURLWithPath: model))
        let again = try Interop.cytocl(["import", other, "--out", model])
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertEqual(again.stderr, "Error: --out \(model): already exists; choose another path or give --overwrite to replace it\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: model)), first, "import replaced the model without --overwrite")
        let replaced = try Interop.cytocl(["import", other, "--out", model, "--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: model)), first)

        let onnx = dir.appendingPathComponent("model.onnx").path
        try Data("an earlier result".utf8).write(to: URL(fileURLWithPath: onnx))
        let exported = try Interop.cytocl(["export", "--model", model, "--out", onnx])
        XCTAssertEqual(exported.status, 1, exported.stderr)
        XCTAssertTrue(exported.stderr.hasPrefix("Error: --out \(onnx): already exists"), exported.stderr)
        XCTAssertEqual(try String(contentsOfFile: onnx, encoding: .utf8), "an earlier result")
        XCTAssertEqual(try Interop.cytocl(["export", "--model", model, "--out", onnx, "--overwrite"]).status, 0)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: onnx)), Data("an earlier result".utf8))
    }
}
