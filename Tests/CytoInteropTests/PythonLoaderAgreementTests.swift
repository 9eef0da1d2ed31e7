import CytoCore
import CytoData
import Foundation
import XCTest

/// python/cytocl_model.py must decode and predict as `cytocl` does, and refuse what it
/// refuses. The images are of every kind the CLI tests and users feed `predict` (PNG
/// 8/16-bit grey, grey+alpha, RGB, RGBA, palette; TIFF uncompressed, LZW, Deflate,
/// PackBits, JPEG, tiled, predictor, grey 8/16-bit, RGB 16-bit, RGBA with unassociated
/// and associated alpha, palette; JPEG), written by the project's own writers.
final class PythonLoaderAgreementTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Interop.temporaryDirectory() }
    override func tearDown() {
        // On failure the images stay, for a look with the Python loader.
        if (testRun?.failureCount ?? 0) > 0 { print("kept \(dir.path)") } else { try? FileManager.default.removeItem(at: dir) }
    }

    static let side = 64

    /// name -> file bytes, every kind at 64x64 with varied content (16-bit samples use
    /// the whole range, so a clipping or rounding decoder shows).
    func images() throws -> [(String, [UInt8])] {
        let n = Self.side
        var out: [(String, [UInt8])] = []
        func samples8(_ count: Int, _ seed: Int) -> [UInt8] {
            (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761 &+ seed) >> 7) }
        }
        func samples16(_ count: Int, _ seed: Int) -> [UInt16] {
            (0..<count).map { UInt16(truncatingIfNeeded: ($0 &* 2_654_435_761 &+ seed) >> 5) }
        }
        func png(_ name: String, _ raw: [UInt8], _ type: Int, palette: [UInt8] = []) throws {
            out.append(
                (
                    name,
                    try raw.withUnsafeBytes {
                        try ImageCodec.encodePNG(raw: $0.baseAddress!, width: n, height: n, colorType: type, bitDepth: 8, palette: palette)
                    }
                ))
        }
        func png16(_ name: String, _ raw: [UInt16], _ type: Int) throws {
            out.append(
                (
                    name,
                    try raw.withUnsafeBytes {
                        try ImageCodec.encodePNG(raw: $0.baseAddress!, width: n, height: n, colorType: type, bitDepth: 16)
                    }
                ))
        }
        try png("rgb8.png", samples8(n * n * 3, 1), 2)
        try png("grey8.png", samples8(n * n, 2), 0)
        try png("greyalpha8.png", samples8(n * n * 2, 3), 4)
        try png("rgba8.png", samples8(n * n * 4, 4), 6)
        try png("palette8.png", samples8(n * n, 5).map { $0 % 16 }, 3, palette: samples8(16 * 3, 6))
        try png16("rgb16.png", samples16(n * n * 3, 7), 2)
        try png16("rgba16.png", samples16(n * n * 4, 8), 6)
        try png16("grey16.png", samples16(n * n, 9), 0)
        var picture = RGBImage(width: n, height: n, fill: (0, 0, 0))
        picture.pixels = samples8(n * n * 3, 10).enumerated().map { UInt8((Int($0.element) + $0.offset / 40) & 0xFF) }
        out.append(("rgb.jpg", try ImageCodec.encodeJPEG(picture, quality: 85)))
        func tiff(_ name: String, _ spec: TIFFSpec, _ bytes: [UInt8]) throws {
            let url = dir.appendingPathComponent("w-" + name)
            try bytes.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
            out.append((name, [UInt8](try Data(contentsOf: url))))
            try FileManager.default.removeItem(at: url)
        }
        func tiff16(_ name: String, _ spec: TIFFSpec, _ values: [UInt16]) throws {
            try tiff(name, spec, values.withUnsafeBytes { [UInt8]($0) })
        }
        for c in TIFFCompression.allCases {
            var spec = TIFFSpec(width: n, height: n, samplesPerPixel: 3)
            spec.compression = c
            try tiff("rgb8-\(c).tif", spec, samples8(n * n * 3, 11))
        }
        var spec = TIFFSpec(width: n, height: n, samplesPerPixel: 3)
        spec.tileSize = 16; spec.compression = .lzw; spec.horizontalPredictor = true
        try tiff("rgb8-tiled-predictor.tif", spec, samples8(n * n * 3, 12))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 1); spec.photometric = .minIsBlack
        try tiff("grey8.tif", spec, samples8(n * n, 13))
        spec.bitsPerSample = 16
        try tiff16("grey16.tif", spec, samples16(n * n, 14))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 3); spec.bitsPerSample = 16
        try tiff16("rgb16.tif", spec, samples16(n * n * 3, 15))
        spec.compression = .lzw; spec.tileSize = 16; spec.horizontalPredictor = true
        try tiff16("rgb16-lzw-tiled-predictor.tif", spec, samples16(n * n * 3, 20))
        spec.compression = .deflate; spec.tileSize = 0; spec.horizontalPredictor = false
        try tiff16("rgb16-deflate.tif", spec, samples16(n * n * 3, 21))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 1); spec.photometric = .minIsBlack; spec.bitsPerSample = 16
        spec.compression = .lzw
        try tiff16("grey16-lzw.tif", spec, samples16(n * n, 22))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 4); spec.alpha = 2; spec.compression = .lzw
        try tiff("rgba8-associated-lzw.tif", spec, samples8(n * n * 4, 23))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 4); spec.alpha = 1
        try tiff("rgba8-unassociated.tif", spec, samples8(n * n * 4, 16))
        spec.alpha = 2
        try tiff("rgba8-associated.tif", spec, samples8(n * n * 4, 17))
        spec = TIFFSpec(width: n, height: n, samplesPerPixel: 1); spec.photometric = .palette
        spec.colormap = samples16(3 * 256, 18)
        try tiff("palette8.tif", spec, samples8(n * n, 19))
        return out
    }

    func testReadImageDecodesEveryKindAsCytoclAndPredictsTheSame() throws {
        let python = try Interop.python(needing: ["numpy", "PIL"])
        let folder = dir.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var paths: [String] = []
        for (name, bytes) in try images() {
            let url = folder.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            let decoded = try ImageCodec.decode(path: url.path)
            try Data(decoded.pixels).write(to: URL(fileURLWithPath: url.path + ".rgb"))
            try Data("[\(decoded.height), \(decoded.width)]".utf8).write(to: URL(fileURLWithPath: url.path + ".rgb.json"))
            paths.append(url.path)
        }
        let check = Interop.root.appendingPathComponent("python/tests/check_decoding.py").path
        let decoding = try Interop.run(python, [check, folder.path])
        XCTAssertEqual(decoding.status, 0, decoding.stderr)
        XCTAssertTrue(decoding.stdout.contains("\(paths.count) images decode exactly"), decoding.stdout + decoding.stderr)

        // End to end: the same CSV from `cytocl predict` and `python3 cytocl_model.py`.
        let model = dir.appendingPathComponent("model.safetensors").path
        let imported = try Interop.cytocl([
            "import", Interop.fixtures.appendingPathComponent("keras3-softmax-64.h5").path, "--out", model, "--classes", "a,b,c",
        ])
        XCTAssertEqual(imported.status, 0, imported.stderr)
        let cytocl = try Interop.cytocl(["predict", "--model", model] + paths)
        XCTAssertEqual(cytocl.status, 0, cytocl.stderr)
        let loader = Interop.root.appendingPathComponent("python/cytocl_model.py").path
        let py = try Interop.run(python, [loader, model] + paths)
        XCTAssertEqual(py.status, 0, py.stderr)
        let expected = Interop.parsePredictions(cytocl.stdout), got = Interop.parsePredictions(py.stdout)
        XCTAssertEqual(got.header, expected.header)
        XCTAssertEqual(got.rows.map(\.0), expected.rows.map(\.0))
        for (g, e) in zip(got.rows, expected.rows) {
            XCTAssertEqual(g.1.count, 3)
            for (a, b) in zip(g.1, e.1) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(g.0): Python \(g.1) vs cytocl \(e.1)") }
        }
    }

    /// A small model file in safetensors form, with the header fields given: the
    /// Python loader and `cytocl` must refuse the same files.
    func modelFile(
        _ name: String, classes: String, dtype: (String) -> String = { _ in "F32" }, value: (String, Float)? = nil,
        metadata: [String: String] = [:]
    ) throws -> String {
        let spec = ModelSpec(inputHeight: 16, inputWidth: 16, convFilters: [2], denseUnits: [4], classes: 2)
        var entries: [String] = []
        var payload = Data()
        for (tensor, shape) in spec.parameterShapes {
            let n = shape.reduce(1, *)
            var values = (0..<n).map { Float(($0 * 37) % 11 - 5) / 20 }
            if let (t, v) = value, t == tensor { values[0] = v }
            entries.append(
                "\"\(tensor)\":{\"dtype\":\"\(dtype(tensor))\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(payload.count),\(payload.count + 4 * n)]}"
            )
            values.withUnsafeBytes { payload.append(contentsOf: $0) }
        }
        let meta = ["cytocl.classes": classes, "cytocl.input": "16x16x3", "cytocl.scale": "1/255"].merging(metadata) { $1 }
        let metaJSON = String(decoding: try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys]), as: UTF8.self)
        let header = Array(("{\"__metadata__\":\(metaJSON)," + entries.joined(separator: ",") + "}").utf8)
        var file = Data((0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * UInt64($0))) })
        file.append(contentsOf: header)
        file.append(payload)
        let url = dir.appendingPathComponent(name)
        try file.write(to: url)
        return url.path
    }

    /// Files `cytocl` refuses that the Python loader accepted: I32 weights (read as
    /// floats: confident garbage), `cytocl.classes` = "abc" (three classes a, b, c),
    /// duplicate, empty and look-alike names (é precomposed and decomposed), a weight
    /// of 3e38. Both refuse each with one line naming the file, exit 1; the library
    /// raises ModelFileError. And the Python CSV quotes a CR in a class name.
    func testPythonLoaderRefusesWhatCytoclRefuses() throws {
        let python = try Interop.python(needing: ["numpy"])
        let image = dir.appendingPathComponent("cell.png").path
        try ImageCodec.writePNG(RGBImage(width: 16, height: 16, fill: (200, 120, 180)), to: URL(fileURLWithPath: image))
        let loader = Interop.root.appendingPathComponent("python/cytocl_model.py").path
        let cases: [(String, String)] = [
            (
                try modelFile("i32.safetensors", classes: #"["a","b"]"#, dtype: { $0 == "dense1.weight" ? "I32" : "F32" }),
                "dense1.weight is I32, expected F32"
            ),
            (try modelFile("abc.safetensors", classes: "abc"), "cytocl.classes must be a JSON array of class names"),
            (try modelFile("string.safetensors", classes: #""ab""#), "cytocl.classes must be a JSON array of class names"),
            (try modelFile("dup.safetensors", classes: #"["a","a"]"#), "names class 'a' twice"),
            (try modelFile("empty.safetensors", classes: #"["a",""]"#), "class 1 has an empty name"),
            (try modelFile("lookalike.safetensors", classes: "[\"caf\u{E9}\",\"cafe\u{301}\"]"), "twice"),
            (try modelFile("huge.safetensors", classes: #"["a","b"]"#, value: ("conv1.weight", 3e38)), "beyond float32's range"),
        ]
        for (path, expected) in cases {
            let name = (path as NSString).lastPathComponent
            let cytocl = try Interop.cytocl(["predict", "--model", path, image])
            XCTAssertEqual(cytocl.status, 1, "\(name): cytocl \(cytocl.stdout)")
            XCTAssertTrue(cytocl.stderr.contains(expected), "\(name): cytocl says \(cytocl.stderr)")
            let py = try Interop.run(python, [loader, path, image])
            XCTAssertEqual(py.status, 1, "\(name): Python \(py.stdout) \(py.stderr)")
            XCTAssertEqual(py.stdout, "", name)
            XCTAssertTrue(py.stderr.hasPrefix("Error: \(path): "), "\(name): Python says \(py.stderr)")
            XCTAssertTrue(py.stderr.contains(expected), "\(name): Python says \(py.stderr)")
            XCTAssertEqual(py.stderr.split(separator: "\n").count, 1, "\(name): one line, no traceback: \(py.stderr)")
            let library = try Interop.run(
                python,
                [
                    "-c",
                    "import sys; sys.path.insert(0, sys.argv[1]); import cytocl_model as m\ntry:\n m.load(sys.argv[2])\nexcept m.ModelFileError as e: print('refused')",
                    Interop.root.appendingPathComponent("python").path, path,
                ])
            XCTAssertEqual(library.stdout, "refused\n", "\(name): \(library.stderr)")
        }
        // A class name with a CR is quoted in both CSVs (RFC 4180), and they agree.
        let cr = try modelFile("cr.safetensors", classes: #"["a\rb","c"]"#)
        let cytocl = try Interop.cytocl(["predict", "--model", cr, image])
        XCTAssertEqual(cytocl.status, 0, cytocl.stderr)
        let py = try Interop.run(python, [loader, cr, image])
        XCTAssertEqual(py.status, 0, py.stderr)
        XCTAssertTrue(py.stdout.hasPrefix("path,predicted,\"prob_a\rb\",prob_c\n"), py.stdout.debugDescription)
        XCTAssertEqual(py.stdout.split(separator: "\n").first, cytocl.stdout.split(separator: "\n").first)
    }

    /// A hand-edited `cytocl.temperature` (`train --calibrate`) that no validation set
    /// can give — negative, NaN, 1e9, not a number — is refused by predict and by the
    /// Python loader alike, one line naming the key; 2.5 is accepted by both and both
    /// give the same probabilities.
    func testPredictAndPythonLoaderRefuseAnImpossibleTemperature() throws {
        let python = try Interop.python(needing: ["numpy"])
        let image = dir.appendingPathComponent("cell.png").path
        try ImageCodec.writePNG(RGBImage(width: 16, height: 16, fill: (200, 120, 180)), to: URL(fileURLWithPath: image))
        let loader = Interop.root.appendingPathComponent("python/cytocl_model.py").path
        for (k, bad) in ["-1", "NaN", "nan", "1e9", "inf", "0", " 2", "2.5x", ""].enumerated() {
            let path = try modelFile("t\(k).safetensors", classes: #"["a","b"]"#, metadata: ["cytocl.temperature": bad])
            let cytocl = try Interop.cytocl(["predict", "--model", path, image])
            XCTAssertEqual(cytocl.status, 1, "T '\(bad)': cytocl \(cytocl.stdout)")
            XCTAssertEqual(cytocl.stdout, "")
            XCTAssertTrue(cytocl.stderr.contains("cytocl.temperature must be a number between 0.05 and 20"), "T '\(bad)': \(cytocl.stderr)")
            XCTAssertTrue(cytocl.stderr.contains(path), cytocl.stderr)
            let py = try Interop.run(python, [loader, path, image])
            XCTAssertEqual(py.status, 1, "T '\(bad)': Python \(py.stdout) \(py.stderr)")
            XCTAssertTrue(py.stderr.hasPrefix("Error: \(path): cytocl.temperature must be a number between 0.05 and 20"), py.stderr)
            XCTAssertEqual(py.stderr.split(separator: "\n").count, 1, py.stderr)
        }
        let plain = try modelFile("plain.safetensors", classes: #"["a","b"]"#)
        let good = try modelFile("good.safetensors", classes: #"["a","b"]"#, metadata: ["cytocl.temperature": "2.5"])
        func probabilities(_ output: String) -> [Double] {
            output.split(separator: "\n")[1].split(separator: ",").dropFirst(2).map { Double($0)! }
        }
        let p1 = try Interop.cytocl(["predict", "--model", plain, image]), p25 = try Interop.cytocl(["predict", "--model", good, image])
        XCTAssertEqual(p25.status, 0, p25.stderr)
        let py25 = try Interop.run(python, [loader, good, image])
        XCTAssertEqual(py25.status, 0, py25.stderr)
        let (a, b, c) = (probabilities(p1.stdout), probabilities(p25.stdout), probabilities(py25.stdout))
        // softmax(z / 2.5) from softmax(z): the log-odds shrink by 2.5.
        XCTAssertGreaterThan(abs(log(a[0] / a[1])), 0.05, "the test model's classes differ: \(a)")
        XCTAssertEqual(log(b[0] / b[1]), log(a[0] / a[1]) / 2.5, accuracy: 1e-4)
        for (x, y) in zip(b, c) { XCTAssertEqual(x, y, accuracy: 1e-6) }
    }
}
