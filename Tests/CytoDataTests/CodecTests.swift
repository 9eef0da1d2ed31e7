import Foundation
import XCTest
@testable import CytoData

final class CodecTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testPNGRoundTripRGB() throws {
        let img = TestSupport.gradient(width: 37, height: 23)
        let url = dir.appendingPathComponent("a.png")
        try ImageCodec.writePNG(img, to: url)
        let back = try ImageCodec.decode(path: url.path)
        XCTAssertEqual(back, img)
        let info = try ImageCodec.readInfo(path: url.path)
        XCTAssertEqual(info, ImageInfo(format: .png, width: 37, height: 23, channels: 3, bitsPerSample: 8))
    }

    func testPNGPixelFormats() throws {
        let w = 9, h = 5
        // grey 8-bit
        let grey: [UInt8] = (0..<(w * h)).map { UInt8($0 * 5) }
        var bytes = try grey.withUnsafeBytes { try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 0, bitDepth: 8) }
        var img = try ImageCodec.decode(bytes: bytes, name: "grey.png")
        XCTAssertEqual(img.width, w); XCTAssertEqual(img.height, h)
        XCTAssertTrue(img[3, 2] == (grey[2 * w + 3], grey[2 * w + 3], grey[2 * w + 3]))
        // RGBA: alpha dropped, colours kept unpremultiplied
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        for i in 0..<(w * h) { rgba[i * 4] = 200; rgba[i * 4 + 1] = UInt8(i); rgba[i * 4 + 2] = 7; rgba[i * 4 + 3] = UInt8(i * 3) }
        bytes = try rgba.withUnsafeBytes { try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 6, bitDepth: 8) }
        img = try ImageCodec.decode(bytes: bytes, name: "rgba.png")
        XCTAssertTrue(img[4, 1] == (200, UInt8(w + 4), 7))
        XCTAssertTrue(img[0, 0] == (200, 0, 7), "alpha 0 must not blacken the colour")
        // 16-bit RGB: high byte kept
        var rgb16 = [UInt16](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h * 3) { rgb16[i] = UInt16(i * 1000 % 65536) }
        bytes = try rgb16.withUnsafeBytes { try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 2, bitDepth: 16) }
        img = try ImageCodec.decode(bytes: bytes, name: "16.png")
        for i in 0..<(w * h * 3) { XCTAssertEqual(img.pixels[i], UInt8(rgb16[i] >> 8), "sample \(i)") }
        // palette
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let idx: [UInt8] = (0..<(w * h)).map { UInt8($0 % 4) }
        bytes = try idx.withUnsafeBytes { try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 3, bitDepth: 8, palette: palette) }
        img = try ImageCodec.decode(bytes: bytes, name: "pal.png")
        XCTAssertTrue(img[3, 0] == (10, 20, 30))
        XCTAssertTrue(img[1, 0] == (0, 255, 0))
    }
}
