import CytoTestSupport
import Foundation
import XCTest

@testable import CytoData

/// Helpers shared by the CytoData tests.
enum TestSupport {
    /// The package root, found from this file's path (Tests/CytoDataTests/...).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A small blood-smear JPEG set the tests paint themselves, laid out like the
    /// public PBC set: one folder per class, 360 wide x 363 high baseline JPEGs
    /// (smooth background, red cells, one stained leukocyte), plus two byte-identical
    /// copies (`duplicates`, [original, copy] paths). Written once per test process.
    static let smearJPEGs: (folder: URL, classes: [String], perClass: Int, duplicates: [[String]]) = {
        let root = makeProcessTemporaryFolder("smear-jpegs")
        let classes: [(String, CellKind)] = [
            ("basophil", .basophil), ("eosinophil", .eosinophil),
            ("lymphocyte", .lymphocyte), ("neutrophil", .segmentedNeutrophil),
        ]
        let perClass = 5
        for (k, (name, kind)) in classes.enumerated() {
            for j in 0..<perClass {
                let square = SyntheticCells.render(kind: kind, size: 363, seed: UInt64(100 * k + j))
                // Crop to 360 x 363 (width x height), the PBC set's most common size.
                var pixels: [UInt8] = []
                pixels.reserveCapacity(360 * 363 * 3)
                for y in 0..<363 { pixels += square.pixels[(y * 363 + 1) * 3..<(y * 363 + 361) * 3] }
                let img = RGBImage(width: 360, height: 363, pixels: pixels)
                let url = root.appendingPathComponent("\(name)/\(name.prefix(2).uppercased())_\(1000 + j).jpg")
                try! ImageCodec.writeJPEG(img, to: url, quality: 92)
            }
        }
        var duplicates: [[String]] = []
        for (cls, from, to) in [("lymphocyte", "LY_1000.jpg", "LY_9000.jpg"), ("neutrophil", "NE_1003.jpg", "NE_9003.jpg")] {
            let a = root.appendingPathComponent("\(cls)/\(from)"), b = root.appendingPathComponent("\(cls)/\(to)")
            try! FileManager.default.copyItem(at: a, to: b)
            duplicates.append([a.path, b.path])
        }
        return (root, classes.map(\.0), perClass, duplicates)
    }()

    /// A fresh temporary folder, removed by the caller's teardown.
    static func tempDir(_ name: String = #function) -> URL { makeTemporaryFolder("cytodata-\(name)") }

    /// A deterministic test picture with distinct values in every channel.
    static func gradient(width: Int, height: Int) -> RGBImage {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                p[i] = UInt8((x * 255) / max(1, width - 1))
                p[i + 1] = UInt8((y * 255) / max(1, height - 1))
                p[i + 2] = UInt8((x * 7 + y * 13) & 0xFF)
            }
        }
        return RGBImage(width: width, height: height, pixels: p)
    }

    static func write(_ text: String, to url: URL) {
        try! Data(text.utf8).write(to: url)
    }

    /// Compares two images and reports the first differing pixel instead of dumping arrays.
    static func assertSame(_ a: RGBImage, _ b: RGBImage, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        guard a.width == b.width, a.height == b.height else {
            XCTFail("size \(a.width)x\(a.height) != \(b.width)x\(b.height) \(message)", file: file, line: line); return
        }
        if let i = (0..<a.pixels.count).first(where: { a.pixels[$0] != b.pixels[$0] }) {
            let p = i / 3
            XCTFail(
                "pixel (\(p % a.width), \(p / a.width)) channel \(i % 3): \(a.pixels[i]) != \(b.pixels[i]) \(message)", file: file,
                line: line)
        }
    }
}
