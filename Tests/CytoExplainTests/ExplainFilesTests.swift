import CytoCore
import Foundation
import XCTest

@testable import CytoExplain

final class ExplainFilesTests: XCTestCase {
    func testNPYHeaderBytes() throws {
        let values: [Float] = [1, -2, 0.5, 0, 3, 4]
        let data = NPY.encode(values, shape: [2, 3])
        let b = [UInt8](data)
        XCTAssertEqual(Array(b[0..<8]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])  // \x93NUMPY v1.0
        let headerLength = Int(b[8]) | Int(b[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0, "data must start 64-byte aligned")
        let header = String(bytes: b[10..<10 + headerLength], encoding: .ascii)!
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header)
        XCTAssertTrue(header.hasSuffix("\n"))
        XCTAssertEqual(b.count, 10 + headerLength + 4 * values.count)
        // 1.0f = 0x3F800000 and -2.0f = 0xC0000000, little-endian.
        XCTAssertEqual(Array(b[10 + headerLength..<10 + headerLength + 8]), [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])
        let (shape, back) = try NPY.decode(data)
        XCTAssertEqual(shape, [2, 3])
        XCTAssertEqual(back, values)
        XCTAssertTrue(String(decoding: NPY.encode([7], shape: [1]).dropFirst(10).prefix(118), as: UTF8.self).contains("'shape': (1,)"))
        XCTAssertThrowsError(try NPY.decode(Data([1, 2, 3])))
    }

    func testNPYFileWritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-npy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("cell.lrp-z.npy")
        let map = (0..<(5 * 7)).map { Float($0) - 10 }
        try NPY.write(map, shape: [5, 7], to: url)
        let (shape, values) = try NPY.decode(Data(contentsOf: url))
        XCTAssertEqual(shape, [5, 7])
        XCTAssertEqual(values, map)
    }

    func testColormaps() {
        // Diverging: zero is white, negative blue, positive red.
        XCTAssertEqual(Colormap.diverging.color(0.5).0, 255)
        XCTAssertEqual(Colormap.diverging.color(0.5).1, 255)
        XCTAssertEqual(Colormap.diverging.color(0.5).2, 255)
        let neg = Colormap.diverging.color(0), pos = Colormap.diverging.color(1)
        XCTAssertGreaterThan(neg.2, neg.0)
        XCTAssertGreaterThan(pos.0, pos.2)
        // Sequential brightens monotonically.
        func lum(_ c: (UInt8, UInt8, UInt8)) -> Double { 0.299 * Double(c.0) + 0.587 * Double(c.1) + 0.114 * Double(c.2) }
        var last = -1.0
        for t in stride(from: 0.0, through: 1.0, by: 0.05) {
            let l = lum(Colormap.sequential.color(t))
            XCTAssertGreaterThan(l, last); last = l
        }
    }

    func testHeatmapOverlayAndPanel() {
        let map: [Float] = [-2, 0, 1, 2, 0, 0]  // 3x2
        let heat = Heatmap.colorize(map, width: 3, height: 2, colormap: .diverging)
        XCTAssertEqual(heat.pixels.count, 18)
        XCTAssertEqual(Array(heat.pixels[3..<6]), [255, 255, 255])  // 0 -> white
        XCTAssertEqual(Array(heat.pixels[9..<12]), [103, 0, 31])  // +max -> dark red
        XCTAssertEqual(Array(heat.pixels[0..<3]), [5, 48, 97])  // -max -> dark blue
        let image = RGBPixels(width: 3, height: 2, pixels: [UInt8](repeating: 100, count: 18))
        let over = Heatmap.overlay(map, on: image, colormap: .diverging)
        XCTAssertEqual(over.pixels[3], over.pixels[4])  // zero relevance: grey image
        XCTAssertNotEqual(over.pixels[9], over.pixels[10])  // strong relevance: coloured
        let seq = Heatmap.colorize([0, 1, 2, 4], width: 2, height: 2, colormap: .sequential)
        XCTAssertEqual(Array(seq.pixels[0..<3]), [0, 0, 4])
        XCTAssertEqual(Array(seq.pixels[9..<12]), [252, 255, 164])
        let panel = Heatmap.panel([[image, heat], [nil, seq]], gap: 1)
        XCTAssertEqual(panel.width, 2 * 3 + 3)
        XCTAssertEqual(panel.height, 2 * 2 + 3)
        // Tile (0, 1) starts at x = 1 + 3 + 1 = 5, y = 1.
        let o = (1 * panel.width + 5) * 3
        XCTAssertEqual(Array(panel.pixels[o..<o + 3]), Array(heat.pixels[0..<3]))
        // The blank cell keeps the background.
        let blank = ((1 + 2 + 1) * panel.width + 1) * 3
        XCTAssertEqual(Array(panel.pixels[blank..<blank + 3]), [255, 255, 255])
    }
}
