import CytoCore
import Foundation
import XCTest

final class ModelFileTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-modelfile-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func sampleModel(classes: Int = 2) -> ModelFile {
        let spec = ModelSpec.paper(classes: classes)
        var rng = SeededGenerator(seed: 1)
        var w: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes { w[name] = (0..<shape.reduce(1, *)).map { _ in rng.nextUnitFloat() } }
        return ModelFile(spec: spec, classNames: (0..<classes).map { "c\($0)" }, weights: w, provenance: ["seed": "1"])
    }

    func testRoundTrip() throws {
        let m = sampleModel(classes: 6)
        let url = dir.appendingPathComponent("m.safetensors")
        try m.write(to: url)
        let back = try ModelFile.read(from: url)
        XCTAssertEqual(back.spec, m.spec)
        XCTAssertEqual(back.classNames, m.classNames)
        XCTAssertEqual(back.weights, m.weights)
        XCTAssertEqual(back.provenance["seed"], "1")
        // No temporary files left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["m.safetensors"])
    }

    /// `train --calibrate`'s temperature survives a round trip exactly; a model without
    /// the key reads as T = 1, and one outside 0.05...20 is not written.
    func testTemperatureRoundTripsAndDefaultsToOne() throws {
        var m = sampleModel()
        let url = dir.appendingPathComponent("m.safetensors")
        try m.write(to: url)
        XCTAssertEqual(try ModelFile.read(from: url).temperature, 1)
        m.temperature = 1.8734592017
        try m.write(to: url)
        XCTAssertEqual(try ModelFile.read(from: url).temperature, 1.8734592017)
        m.temperature = 25
        XCTAssertThrowsError(try m.write(to: dir.appendingPathComponent("hot.safetensors")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("hot.safetensors").path))
    }

    func testHeaderFollowsTheSafetensorsSpec() throws {
        let url = dir.appendingPathComponent("m.safetensors")
        try sampleModel().write(to: url)
        let data = try Data(contentsOf: url)
        let n = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual(n % 8, 0)
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        let conv1 = header["conv1.weight"] as! [String: Any]
        XCTAssertEqual(conv1["dtype"] as? String, "F32")
        XCTAssertEqual(conv1["shape"] as? [Int], [4, 3, 3, 3])
        let meta = header["__metadata__"] as! [String: String]
        XCTAssertEqual(meta["cytocl.input"], "257x257x3")
        XCTAssertEqual(meta["cytocl.scale"], "1/255")
        XCTAssertEqual(meta["cytocl.classes"], "[\"c0\",\"c1\"]")
        XCTAssertEqual((header["dense1.weight"] as! [String: Any])["shape"] as? [Int], [32, 64])
        // Data size = 4 bytes per parameter.
        XCTAssertEqual(data.count - 8 - n, 7_210 * 4)
    }

    func testFileFromAnotherToolWithOnlyRequiredKeysLoads() throws {
        // Another tool: different tensor order, only the three required metadata keys, 400x400.
        let spec = ModelSpec.paper(height: 400, width: 400, classes: 2)
        var st = SafeTensors(metadata: ["cytocl.classes": "[\"other\", \"blast\"]", "cytocl.input": "400x400x3", "cytocl.scale": "1/255"])
        for (name, shape) in spec.parameterShapes.reversed() {
            st.tensors[name] = .init(floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape)
        }
        let url = dir.appendingPathComponent("foreign.safetensors")
        try st.serialized(order: spec.parameterShapes.map(\.name).reversed()).write(to: url)
        let m = try ModelFile.read(from: url)
        XCTAssertEqual(m.spec, spec)
        XCTAssertEqual(m.classNames, ["other", "blast"])
        XCTAssertEqual(m.spec.parameterCount, 13_354)
    }

    func assertLoadFails(_ data: Data, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = dir.appendingPathComponent("bad.safetensors")
        try? data.write(to: url)
        XCTAssertThrowsError(try ModelFile.read(from: url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(url.path), "message does not name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(expected), "expected '\(expected)' in: \(text)", file: file, line: line)
        }
    }

    func testTruncatedFile() throws {
        try sampleModel().write(to: dir.appendingPathComponent("ok.safetensors"))
        let full = try Data(contentsOf: dir.appendingPathComponent("ok.safetensors"))
        assertLoadFails(full.prefix(full.count - 100), "truncated")
        assertLoadFails(full.prefix(5), "shorter than the 8-byte header")
        assertLoadFails(full.prefix(200), "truncated")
    }

    func testMismatchedShapesAndLabels() throws {
        let spec = ModelSpec.paper()
        func file(_ edit: (inout SafeTensors) -> Void) throws -> Data {
            var st = SafeTensors(metadata: ["cytocl.classes": "[\"a\",\"b\"]", "cytocl.input": "257x257x3", "cytocl.scale": "1/255"])
            for (name, shape) in spec.parameterShapes {
                st.tensors[name] = .init(floats: [Float](repeating: 0, count: shape.reduce(1, *)), shape: shape)
            }
            edit(&st)
            return try st.serialized()
        }
        assertLoadFails(try file { $0.metadata["cytocl.classes"] = "[\"a\",\"b\",\"c\"]" }, "names 3 classes")
        assertLoadFails(try file { $0.metadata["cytocl.input"] = "400x400x3" }, "input features")
        assertLoadFails(try file { $0.metadata.removeValue(forKey: "cytocl.scale") }, "cytocl.scale is missing")
        assertLoadFails(
            try file { $0.tensors["conv3.weight"] = .init(floats: [Float](repeating: 0, count: 8 * 4 * 9), shape: [8, 4, 3, 3]) },
            "conv3.weight expects 4 input channels")
        assertLoadFails(try file { $0.tensors.removeValue(forKey: "conv2.bias") }, "conv2.bias is missing")
        assertLoadFails(try file { $0.tensors["extra"] = .init(floats: [1], shape: [1]) }, "unexpected tensor extra")
        assertLoadFails(Data("hello this is not a model file at all".utf8), "not a safetensors file")
    }
}

/// Models whose numbers cannot be trusted are refused on load and never written.
final class ModelFileTrustTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-modeltrust-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func model(classes: [String] = ["a", "b"], poison: (name: String, index: Int, value: Float)? = nil) -> SafeTensors {
        let spec = ModelSpec.paper(classes: classes.count)
        var st = SafeTensors(metadata: [
            "cytocl.classes": "[" + classes.map(jsonString).joined(separator: ",") + "]",
            "cytocl.input": "257x257x3", "cytocl.scale": "1/255",
        ])
        for (name, shape) in spec.parameterShapes {
            var v = [Float](repeating: 0.01, count: shape.reduce(1, *))
            if let p = poison, p.name == name { v[p.index] = p.value }
            st.tensors[name] = .init(floats: v, shape: shape)
        }
        return st
    }

    func assertLoadFails(_ st: SafeTensors, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let url = dir.appendingPathComponent("m.safetensors")
        try st.write(to: url)
        XCTAssertThrowsError(try ModelFile.read(from: url), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(url.path + ": "), "message does not name the file: \(text)", file: file, line: line)
            for e in expected { XCTAssertTrue(text.contains(e), "expected '\(e)' in: \(text)", file: file, line: line) }
        }
    }

    func testNaNAndInfinityWeightsAreRejectedWithTheTensorName() throws {
        try assertLoadFails(model(poison: ("conv3.weight", 17, .nan)), ["tensor conv3.weight", "non-finite", "index 17"])
        try assertLoadFails(model(poison: ("dense2.bias", 1, .infinity)), ["tensor dense2.bias", "non-finite"])
        try assertLoadFails(model(poison: ("conv1.bias", 0, -.infinity)), ["tensor conv1.bias"])
        // The clean file loads.
        let url = dir.appendingPathComponent("ok.safetensors")
        try model().write(to: url)
        XCTAssertNoThrow(try ModelFile.read(from: url))
    }

    func testDuplicateOrEmptyClassNamesAreRejected() throws {
        try assertLoadFails(model(classes: ["blast", "blast"]), ["cytocl.classes", "'blast' twice"])
        try assertLoadFails(model(classes: ["blast", ""]), ["cytocl.classes", "empty name"])
    }

    func testAModelWithNonFiniteWeightsIsNeverWritten() throws {
        let spec = ModelSpec.paper(classes: 2)
        var w: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes { w[name] = [Float](repeating: 0.1, count: shape.reduce(1, *)) }
        w["dense1.weight"]![5] = .nan
        let url = dir.appendingPathComponent("never.safetensors")
        XCTAssertThrowsError(try ModelFile(spec: spec, classNames: ["a", "b"], weights: w).write(to: url)) { error in
            XCTAssertTrue("\(error)".contains("dense1.weight"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [], "no temporary file left")
        XCTAssertThrowsError(try ModelFile(spec: spec, classNames: ["a", "a"], weights: w).write(to: url))
    }
}
