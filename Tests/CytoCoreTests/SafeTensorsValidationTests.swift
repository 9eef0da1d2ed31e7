import CytoCore
import Foundation
import XCTest

/// Hostile safetensors headers: every one is refused with one line naming the file and
/// the field, and none crashes or reads header bytes as weights.
final class SafeTensorsValidationTests: XCTestCase {
    let path = "/models/hostile.safetensors"

    /// A file with `header` (JSON text) and `payload` bytes of data.
    func file(_ header: String, payload: Int, lengthField: UInt64? = nil) -> Data {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: (lengthField ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        return out
    }

    func assertRejected(_ data: Data, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.parse(data, path: path), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix(path + ": "), "message does not start with the file: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "not one line: \(text)", file: file, line: line)
            for e in expected { XCTAssertTrue(text.contains(e), "expected '\(e)' in: \(text)", file: file, line: line) }
        }
    }

    func testAWellFormedFileParses() throws {
        let st = try SafeTensors.parse(
            file(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[0],"data_offsets":[8,8]},"__metadata__":{"k":"v"}}"#,
                payload: 8), path: path)
        XCTAssertEqual(st.tensors["a"]?.shape, [2])
        XCTAssertEqual(st.tensors["a"]?.data.count, 8)
        XCTAssertEqual(st.tensors["b"]?.data.count, 0)
        XCTAssertEqual(st.metadata, ["k": "v"])
    }

    func testNegativeOffsetsAreRefusedNotReadFromTheHeader() {
        // [-8, 0] used to read the last 8 header bytes as the tensor's values.
        assertRejected(
            file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}"#, payload: 8),
            ["tensor a", "data_offsets [-8, 0]", "non-negative"])
        // [-1e9, ...] used to kill the process.
        assertRejected(
            file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[-1e9,8]}}"#, payload: 8), ["tensor a", "data_offsets", "-1e9"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, payload: 8), ["tensor a", "end before they begin"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, payload: 8), ["tensor a", "not a pair"])
        assertRejected(
            file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,99999999999999999999]}}"#, payload: 8), ["tensor a", "data_offsets"])
    }

    func testOverlapGapsAndOutOfRangeAreRefused() {
        assertRejected(
            file(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                payload: 12),
            ["tensor b", "overlap a"])
        assertRejected(
            file(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, payload: 8),
            ["overlap"])
        assertRejected(
            file(
                #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                payload: 12),
            ["tensor b", "unused"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, payload: 8), ["4 bytes after the last tensor"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"#, payload: 8), ["truncated", "tensor a", "400"])
    }

    func testShapesMustBeNonNegativeIntegersThatFit() {
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, payload: 8), ["tensor a", "shape", "2.5"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, payload: 8), ["tensor a", "shape", "-2"])
        assertRejected(file(#"{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}"#, payload: 8), ["tensor a", "shape"])
        assertRejected(
            file(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}"#, payload: 8),
            ["tensor a", "too large"])
        assertRejected(
            file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: 8), ["tensor a", "hold 8 bytes", "needs 12"])
        assertRejected(file(#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, payload: 8), ["tensor a", "unsupported dtype Q4"])
    }

    func testDuplicateNamesAndBadJSONAreRefused() {
        assertRejected(
            file(
                #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, payload: 8),
            ["duplicate key \"a\""])
        assertRejected(
            file(#"{"__metadata__":{"k":"v","k":"w"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, payload: 4),
            ["duplicate key \"k\""])
        assertRejected(
            file(#"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, payload: 4), ["__metadata__", "k"])
        assertRejected(file(#"[1,2]"#, payload: 0), ["not a JSON object"])
        assertRejected(file(#"{"a":"#, payload: 0), ["not valid JSON"])
        assertRejected(file(String(repeating: "[", count: 5000), payload: 0), ["not valid JSON", "nesting"])
    }

    func testHeaderLengthBeyondTheFileIsRefused() {
        assertRejected(file(#"{}"#, payload: 0, lengthField: 1_000_000), ["header length", "1000000"])
        assertRejected(file(#"{}"#, payload: 0, lengthField: UInt64.max), ["header length"])
        assertRejected(file(#"{}"#, payload: 0, lengthField: 0), ["header length"])
    }

    func testByteCountReportsOverflow() {
        XCTAssertEqual(SafeTensors.byteCount(shape: [2, 3], dtype: .f32), 24)
        XCTAssertEqual(SafeTensors.byteCount(shape: [], dtype: .f64), 8)
        XCTAssertNil(SafeTensors.byteCount(shape: [Int.max / 2, 3], dtype: .u8))
        XCTAssertNil(SafeTensors.byteCount(shape: [Int.max / 2], dtype: .f32))
    }

    /// Seeded mutations of a real model file's header (bytes flipped, digits and signs
    /// changed, truncated): each is loaded or refused with the file's name, none crashes.
    func testMutatedModelHeadersAreLoadedOrRefusedNeverCrash() throws {
        let spec = ModelSpec(inputHeight: 30, inputWidth: 30, convFilters: [2, 4], denseUnits: [4], classes: 2)
        var w: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes { w[name] = [Float](repeating: 0.5, count: shape.reduce(1, *)) }
        var st = SafeTensors(metadata: ["cytocl.classes": "[\"a\",\"b\"]", "cytocl.input": "30x30x3", "cytocl.scale": "1/255"])
        for (name, shape) in spec.parameterShapes { st.tensors[name] = .init(floats: w[name]!, shape: shape) }
        let original = [UInt8](try st.serialized(order: spec.parameterShapes.map(\.name)))
        let headerEnd = 8 + Int(original[0]) + Int(original[1]) << 8
        var rng = SeededGenerator(seed: 2026)
        let tokens: [[UInt8]] = ["-", "1e9", "2.5", "-1", "99999999999999999999", "\"", "{", "]", ",", "0", "\"F64\"", "null"].map {
            Array($0.utf8)
        }
        var refused = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = Int(rng.next() % UInt64(min(headerEnd, bytes.count)))
                switch rng.next() % 4 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.replaceSubrange(at..<min(at + 1, bytes.count), with: tokens[Int(rng.next() % UInt64(tokens.count))])
                case 2: if (48...57).contains(bytes[at]) { bytes[at] = UInt8(48 + rng.next() % 10) }
                default: bytes = Array(bytes.prefix(at + 8))
                }
            }
            do {
                let m = try ModelFile.from(SafeTensors.parse(Data(bytes), path: path), path: path)
                XCTAssertTrue(m.weights.values.allSatisfy { $0.allSatisfy(\.isFinite) })
            } catch {
                refused += 1
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
            }
        }
        XCTAssertGreaterThan(refused, 1500, "the mutations should mostly break the header")
    }

    func testStrictJSONKeepsNumbersAsWritten() throws {
        let v = try StrictJSON.parse(Array(#" {"x": [1, -0, 2.5, 1e3, 99999999999999999999], "s": "a\u00e9\ud83d\ude00\n"} "#.utf8))
        guard case .object(let m) = v, case .array(let xs) = m[0].value, case .string(let s) = m[1].value else {
            return XCTFail("unexpected \(v)")
        }
        XCTAssertEqual(xs.map(\.integer), [1, 0, nil, nil, nil])
        XCTAssertEqual(s, "aé😀\n")
        XCTAssertThrowsError(try StrictJSON.parse(Array(#"{"a":1} x"#.utf8)))
        XCTAssertThrowsError(try StrictJSON.parse(Array(#"{"a":01}"#.utf8)))
        XCTAssertThrowsError(try StrictJSON.parse(Array("\"\\ud800\"".utf8)))
        XCTAssertThrowsError(try StrictJSON.parse([0x22, 0xFF, 0x22]))
    }
}
