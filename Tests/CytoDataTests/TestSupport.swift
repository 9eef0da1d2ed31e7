import Foundation
import XCTest
@testable import CytoData

/// Helpers shared by the CytoData tests.
enum TestSupport {
    /// The package root, found from this file's path (Tests/CytoDataTests/...).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// ../shared/data/pbc beside the package, or nil when the folder is absent.
    /// In CI (env CI set) a missing folder is a failure, not a skip.
    static func pbcFolder() throws -> URL {
        let candidates = [
            packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/pbc"),
            URL(fileURLWithPath: "/work/shared/data/pbc"),
        ]
        for c in candidates where FileManager.default.fileExists(atPath: c.appendingPathComponent("PBC_dataset_normal_DIB").path) {
            return c
        }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("the real-image folder ../shared/data/pbc is missing and CI is set")
            throw XCTSkip("missing pbc data")
        }
        throw XCTSkip("../shared/data/pbc is not present")
    }

    /// A fresh temporary folder, removed by the caller's teardown.
    static func tempDir(_ name: String = #function) -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("cytodata-\(safe)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

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
            XCTFail("pixel (\(p % a.width), \(p / a.width)) channel \(i % 3): \(a.pixels[i]) != \(b.pixels[i]) \(message)", file: file, line: line)
        }
    }
}
