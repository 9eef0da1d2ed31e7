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
        TestSupport.assertSame(back, img)
        let info = try ImageCodec.readInfo(path: url.path)
        XCTAssertEqual(info, ImageInfo(format: .png, width: 37, height: 23, channels: 3, bitsPerSample: 8))
    }

    func testPNGPixelFormats() throws {
        let w = 9, h = 5
        // grey 8-bit
        let grey: [UInt8] = (0..<(w * h)).map { UInt8($0 * 5) }
        var bytes = try grey.withUnsafeBytes {
            try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 0, bitDepth: 8)
        }
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
        bytes = try rgb16.withUnsafeBytes {
            try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 2, bitDepth: 16)
        }
        img = try ImageCodec.decode(bytes: bytes, name: "16.png")
        for i in 0..<(w * h * 3) { XCTAssertEqual(img.pixels[i], UInt8(rgb16[i] >> 8), "sample \(i)") }
        // palette
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]
        let idx: [UInt8] = (0..<(w * h)).map { UInt8($0 % 4) }
        bytes = try idx.withUnsafeBytes {
            try ImageCodec.encodePNG(raw: $0.baseAddress!, width: w, height: h, colorType: 3, bitDepth: 8, palette: palette)
        }
        img = try ImageCodec.decode(bytes: bytes, name: "pal.png")
        XCTAssertTrue(img[3, 0] == (10, 20, 30))
        XCTAssertTrue(img[1, 0] == (0, 255, 0))
    }
}

final class TIFFCodecTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// RGB round trips through every lossless compression, with strips and tiles.
    func testTIFFRoundTripLosslessCompressions() throws {
        let img = TestSupport.gradient(width: 45, height: 37)  // not a multiple of the tile or strip size
        for compression in [TIFFCompression.none, .lzw, .deflate, .packbits] {
            for tiled in [false, true] {
                for predictor in [false, true] {
                    var spec = TIFFSpec(width: img.width, height: img.height, samplesPerPixel: 3)
                    spec.compression = compression
                    spec.rowsPerStrip = 5
                    spec.tileSize = tiled ? 16 : 0
                    spec.horizontalPredictor = predictor && (compression == .lzw || compression == .deflate)
                    let url = dir.appendingPathComponent("rgb-\(compression)-\(tiled)-\(predictor).tif")
                    try img.pixels.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
                    let back = try ImageCodec.decode(path: url.path)
                    TestSupport.assertSame(back, img, "\(compression) tiled=\(tiled) predictor=\(predictor)")
                }
            }
        }
        // The plain writer
        let url = dir.appendingPathComponent("plain.tiff")
        try ImageCodec.writeTIFF(img, to: url, compression: .lzw)
        TestSupport.assertSame(try ImageCodec.decode(path: url.path), img)
        XCTAssertEqual(
            try ImageCodec.readInfo(path: url.path),
            ImageInfo(format: .tiff, width: 45, height: 37, channels: 3, bitsPerSample: 8))
    }

    func testTIFFJPEGCompressionIsClose() throws {
        let img = TestSupport.gradient(width: 64, height: 48)
        let url = dir.appendingPathComponent("jpeg.tif")
        try ImageCodec.writeTIFF(img, to: url, compression: .jpeg)
        let back = try ImageCodec.decode(path: url.path)
        XCTAssertEqual(back.width, 64); XCTAssertEqual(back.height, 48)
        var err = 0.0
        for i in 0..<img.pixels.count { err += abs(Double(img.pixels[i]) - Double(back.pixels[i])) }
        let mae = err / Double(img.pixels.count)
        XCTAssertLessThan(mae, 10, "JPEG-in-TIFF mean abs error \(mae)")
        XCTAssertGreaterThan(mae, 0.01, "lossy compression should not be exact")
    }

    func testTIFFPixelFormats() throws {
        let w = 20, h = 11
        // 8-bit grey
        let grey: [UInt8] = (0..<(w * h)).map { UInt8(($0 * 3) & 0xFF) }
        var spec = TIFFSpec(width: w, height: h, samplesPerPixel: 1)
        spec.photometric = .minIsBlack
        spec.compression = .deflate
        var url = dir.appendingPathComponent("grey.tif")
        try grey.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
        var img = try ImageCodec.decode(path: url.path)
        XCTAssertTrue(img[7, 3] == (grey[3 * w + 7], grey[3 * w + 7], grey[3 * w + 7]))

        // RGBA (unassociated alpha): colours unchanged, alpha dropped
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        for i in 0..<(w * h) {
            rgba[i * 4] = UInt8(i & 0xFF); rgba[i * 4 + 1] = 100; rgba[i * 4 + 2] = 200; rgba[i * 4 + 3] = UInt8((i * 7) & 0xFF)
        }
        spec = TIFFSpec(width: w, height: h, samplesPerPixel: 4)
        spec.alpha = 1
        spec.compression = .lzw
        url = dir.appendingPathComponent("rgba.tif")
        try rgba.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
        img = try ImageCodec.decode(path: url.path)
        for i in 0..<(w * h) {
            XCTAssertEqual(img.pixels[i * 3], rgba[i * 4]); XCTAssertEqual(img.pixels[i * 3 + 1], 100)
            XCTAssertEqual(img.pixels[i * 3 + 2], 200)
        }

        // 16-bit RGB, tiled
        var rgb16 = [UInt16](repeating: 0, count: w * h * 3)
        for i in 0..<rgb16.count { rgb16[i] = UInt16((i * 977) % 65536) }
        spec = TIFFSpec(width: w, height: h, samplesPerPixel: 3)
        spec.bitsPerSample = 16
        spec.tileSize = 16
        url = dir.appendingPathComponent("rgb16.tif")
        try rgb16.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
        img = try ImageCodec.decode(path: url.path)
        for i in 0..<rgb16.count {
            let expected = Double(rgb16[i]) * 255 / 65535
            XCTAssertLessThanOrEqual(abs(Double(img.pixels[i]) - expected), 1.0, "sample \(i)")
        }

        // 8-bit palette, PackBits
        var cmap = [UInt16](repeating: 0, count: 3 * 256)
        for k in 0..<256 { cmap[k] = UInt16(k) * 257; cmap[256 + k] = UInt16(255 - k) * 257; cmap[512 + k] = 0x8080 }
        let idx: [UInt8] = (0..<(w * h)).map { UInt8(($0 * 5) & 0xFF) }
        spec = TIFFSpec(width: w, height: h, samplesPerPixel: 1)
        spec.photometric = .palette
        spec.compression = .packbits
        spec.colormap = cmap
        url = dir.appendingPathComponent("palette.tif")
        try idx.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
        img = try ImageCodec.decode(path: url.path)
        let k = Int(idx[4 * w + 9])
        XCTAssertTrue(img[9, 4] == (UInt8(k), UInt8(255 - k), 0x80))
    }
}

final class JPEGCodecTests: XCTestCase {
    /// Smear-like JPEGs (painted, 360 x 363 like the PBC set's): libjpeg's decode
    /// agrees with the painted pixels (so no channel swap, flip or transpose), the
    /// header-only info agrees with the decode, and the background is bright.
    func testDecodesSmearJPEGs() throws {
        let set = TestSupport.smearJPEGs
        var checked = 0
        for cls in set.classes {
            let files = try FileManager.default.contentsOfDirectory(atPath: set.folder.appendingPathComponent(cls).path).sorted()
            for f in files {
                let path = set.folder.appendingPathComponent(cls).appendingPathComponent(f).path
                let img = try ImageCodec.decode(path: path)
                let info = try ImageCodec.readInfo(path: path)
                XCTAssertEqual(info.format, .jpeg)
                XCTAssertEqual(info.channels, 3)
                XCTAssertEqual(info.width, img.width); XCTAssertEqual(info.height, img.height)
                XCTAssertEqual([img.width, img.height], [360, 363], f)
                // The stained leukocyte in the centre is darker than the smear along the border.
                func mean(_ points: [(Int, Int)]) -> Double {
                    Double(
                        points.reduce(0) {
                            let p = img[$1.0, $1.1]; return $0 + Int(p.0) + Int(p.1) + Int(p.2)
                        }) / Double(3 * points.count)
                }
                let border = (0..<360).flatMap { [($0, 0), ($0, 362)] } + (0..<363).flatMap { [(0, $0), (359, $0)] }
                let centre = (150..<210).flatMap { x in (151..<211).map { (x, $0) } }
                XCTAssertGreaterThan(mean(border), mean(centre) + 20, "\(f): centre \(mean(centre)), border \(mean(border))")
                checked += 1
            }
        }
        XCTAssertEqual(checked, set.classes.count * set.perClass + set.duplicates.count)
        // Against the painted pixels: JPEG at quality 92 is off by a few levels on average.
        let square = SyntheticCells.render(kind: .basophil, size: 363, seed: 0)
        let img = try ImageCodec.decode(path: set.folder.appendingPathComponent("basophil/BA_1000.jpg").path)
        var total = 0
        for y in 0..<363 {
            for x in 0..<360 {
                let a = img[x, y], b = square[x + 1, y]
                total += abs(Int(a.0) - Int(b.0)) + abs(Int(a.1) - Int(b.1)) + abs(Int(a.2) - Int(b.2))
            }
        }
        let meanError = Double(total) / Double(3 * 360 * 363)
        XCTAssertLessThan(meanError, 3, "decoded JPEG differs from the painted image by \(meanError) levels on average")
        // Shifted by one pixel the error is larger: the comparison sees the image's detail.
        var shifted = 0
        for y in 0..<363 { for x in 0..<359 { shifted += abs(Int(img[x, y].0) - Int(square[x, y].0)) } }
        XCTAssertGreaterThan(Double(shifted) / Double(359 * 363), meanError)
    }
}
