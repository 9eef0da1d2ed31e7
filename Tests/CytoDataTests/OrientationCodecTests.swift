import Foundation
import XCTest

@testable import CytoData

/// Files as phones, cameras and print workflows write them: pixels stored sideways with an
/// EXIF / TIFF Orientation tag, and CMYK JPEGs. Each reads as a viewer shows it.
final class OrientationCodecTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    /// A 3x2 image whose six pixels are told apart by their red value: a b c / d e f.
    let stored: RGBImage = {
        var p: [UInt8] = []
        for v: UInt8 in [10, 20, 30, 40, 50, 60] { p += [v, 255 - v, 7] }
        return RGBImage(width: 3, height: 2, pixels: p)
    }()

    /// Every orientation of a TIFF (libtiff used to apply the mirrors but not the quarter
    /// turns, so 5 to 8 came out wrong), spelt out row by row in red values.
    func testTIFFOrientationsAreShownAsAViewerShowsThem() throws {
        let a = 10, b = 20, c = 30, d = 40, e = 50, f = 60
        let expected: [Int: [[Int]]] = [
            1: [[a, b, c], [d, e, f]], 2: [[c, b, a], [f, e, d]], 3: [[f, e, d], [c, b, a]], 4: [[d, e, f], [a, b, c]],
            5: [[a, d], [b, e], [c, f]], 6: [[d, a], [e, b], [f, c]], 7: [[f, c], [e, b], [d, a]], 8: [[c, f], [b, e], [a, d]],
        ]
        for (o, rows) in expected.sorted(by: { $0.key < $1.key }) {
            var spec = TIFFSpec(width: 3, height: 2, samplesPerPixel: 3)
            spec.orientation = o
            let url = dir.appendingPathComponent("o\(o).tif")
            try stored.pixels.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
            let img = try ImageCodec.decode(path: url.path)
            let got = (0..<img.height).map { y in (0..<img.width).map { x in Int(img[x, y].0) } }
            XCTAssertEqual(got, rows, "orientation \(o)")
            XCTAssertEqual(img[0, 0].1, 255 - img[0, 0].0, "orientation \(o): channels moved together")
            let info = try ImageCodec.readInfo(path: url.path)
            XCTAssertEqual([info.width, info.height, info.orientation], [rows[0].count, rows.count, o], "orientation \(o)")
        }
    }

    /// A JPEG with an APP1 EXIF block (big- or little-endian) saying "turn 90 degrees
    /// clockwise", as a phone writes a photograph taken upright.
    func testAPhoneJPEGIsTurnedByItsEXIFOrientation() throws {
        // 32x16: left half red, right half blue, a green 8x8 block in the top-left corner.
        var img = RGBImage(width: 32, height: 16)
        for y in 0..<16 {
            for x in 0..<32 {
                let i = (y * 32 + x) * 3
                let px: [UInt8] = x < 8 && y < 8 ? [0, 255, 0] : x < 16 ? [255, 0, 0] : [0, 0, 255]
                img.pixels.replaceSubrange(i..<i + 3, with: px)
            }
        }
        let plain = try ImageCodec.encodeJPEG(img, quality: 95)
        for bigEndian in [true, false] {
            let jpeg = Self.withEXIFOrientation(6, plain, bigEndian: bigEndian)
            XCTAssertEqual(ImageOrientation.jpegOrientation(jpeg), 6)
            let info = try ImageCodec.readInfo(bytes: jpeg, name: "phone.jpg")
            XCTAssertEqual([info.width, info.height], [16, 32], "the header's size is the shown one")
            let turned = try ImageCodec.decode(bytes: jpeg, name: "phone.jpg")
            XCTAssertEqual([turned.width, turned.height], [16, 32])
            // Turned clockwise: the stored left edge is the top, so the green corner is top right.
            func near(_ p: (UInt8, UInt8, UInt8), _ q: (Int, Int, Int)) -> Bool {
                abs(Int(p.0) - q.0) < 40 && abs(Int(p.1) - q.1) < 40 && abs(Int(p.2) - q.2) < 40
            }
            XCTAssertTrue(near(turned[12, 3], (0, 255, 0)), "\(turned[12, 3])")
            XCTAssertTrue(near(turned[3, 3], (255, 0, 0)), "\(turned[3, 3])")
            XCTAssertTrue(near(turned[8, 28], (0, 0, 255)), "\(turned[8, 28])")
        }
        // No EXIF, or a damaged one, reads as stored.
        XCTAssertNil(ImageOrientation.jpegOrientation(plain))
        var damaged = Self.withEXIFOrientation(6, plain, bigEndian: true)
        damaged[12] = 0x58  // "MX": not a byte order
        XCTAssertNil(ImageOrientation.jpegOrientation(damaged))
        XCTAssertEqual(try ImageCodec.decode(bytes: damaged, name: "d.jpg").width, 32)
    }

    /// A PNG with an eXIf chunk (phones' screenshots, browsers' "save image") is turned by
    /// its orientation like a JPEG: every orientation, either byte order, with the stray
    /// `Exif\0\0` some writers keep; an eXIf after the image data is not read (browsers
    /// ignore it too), and a PNG without one reads as stored.
    func testAPNGIsTurnedByItsEXIfOrientation() throws {
        let a = 10, b = 20, c = 30, d = 40, e = 50, f = 60
        let expected: [Int: [[Int]]] = [
            1: [[a, b, c], [d, e, f]], 2: [[c, b, a], [f, e, d]], 3: [[f, e, d], [c, b, a]], 4: [[d, e, f], [a, b, c]],
            5: [[a, d], [b, e], [c, f]], 6: [[d, a], [e, b], [f, c]], 7: [[f, c], [e, b], [d, a]], 8: [[c, f], [b, e], [a, d]],
        ]
        let plain = try ImageCodec.encodePNG(stored)
        for (o, rows) in expected.sorted(by: { $0.key < $1.key }) {
            for (bigEndian, exifHeader) in [(true, false), (false, false), (false, true)] {
                let png = Self.withEXIfOrientation(UInt16(o), plain, bigEndian: bigEndian, exifHeader: exifHeader)
                let what = "orientation \(o), big-endian \(bigEndian), Exif header \(exifHeader)"
                let img = try ImageCodec.decode(bytes: png, name: "o.png")
                let got = (0..<img.height).map { y in (0..<img.width).map { x in Int(img[x, y].0) } }
                XCTAssertEqual(got, rows, what)
                XCTAssertEqual(img[0, 0].1, 255 - img[0, 0].0, "\(what): channels moved together")
                let info = try ImageCodec.readInfo(bytes: png, name: "o.png")
                XCTAssertEqual([info.width, info.height, info.orientation], [rows[0].count, rows.count, o], what)
            }
        }
        XCTAssertNil(ImageOrientation.pngOrientation(plain))
        XCTAssertEqual(try ImageCodec.decode(bytes: plain, name: "p.png"), stored)
        // The chunk moved after IDAT (just before IEND): not read.
        let late = Self.withEXIfOrientation(6, plain, bigEndian: true, exifHeader: false, at: plain.count - 12)
        XCTAssertEqual(try ImageCodec.decode(bytes: late, name: "late.png"), stored)
    }

    /// `plain` (a PNG) with an eXIf chunk holding one Orientation entry, inserted at byte
    /// `at` (default: right after IHDR), its CRC computed as libpng checks it.
    static func withEXIfOrientation(_ o: UInt16, _ plain: [UInt8], bigEndian: Bool, exifHeader: Bool, at: Int = 33) -> [UInt8] {
        // The TIFF structure of the JPEG helper's APP1 block, after its `Exif\0\0`.
        let app1 = Array(withEXIFOrientation(o, [0xFF, 0xD8], bigEndian: bigEndian).dropFirst(4))
        let data = exifHeader ? Array(app1.dropFirst(2)) : Array(app1.dropFirst(8))
        let typed = Array("eXIf".utf8) + data
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in typed {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        let chunk = be32(UInt32(data.count)) + typed + be32(crc)
        return Array(plain[..<at]) + chunk + Array(plain[at...])
    }

    /// Photoshop's CMYK JPEG (inverted inks, Adobe marker): was refused as "not supported".
    func testACMYKJPEGIsReadAsRGB() throws {
        let w = 16, h = 8
        var cmyk = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h {
            for x in 0..<w {
                // Left: full cyan ink. Right: half black ink. Stored inverted, as Adobe does.
                let ink: [UInt8] = x < 8 ? [255, 0, 0, 0] : [0, 0, 0, 128]
                for k in 0..<4 { cmyk[(y * w + x) * 4 + k] = 255 - ink[k] }
            }
        }
        let jpeg = try ImageCodec.encodeCMYKJPEG(cmyk, width: w, height: h)
        XCTAssertEqual(try ImageCodec.readInfo(bytes: jpeg, name: "print.jpg").channels, 4)
        let img = try ImageCodec.decode(bytes: jpeg, name: "print.jpg")
        XCTAssertEqual([img.width, img.height], [w, h])
        let cyan = img[3, 4], grey = img[12, 4]
        XCTAssertLessThan(Int(cyan.0), 20, "cyan has no red: \(cyan)")
        XCTAssertGreaterThan(Int(cyan.1), 235, "\(cyan)")
        XCTAssertGreaterThan(Int(cyan.2), 235, "\(cyan)")
        for v in [grey.0, grey.1, grey.2] { XCTAssertEqual(Double(v), 127, accuracy: 8, "half black is mid grey: \(grey)") }
    }

    /// `plain` (a JPEG) with an APP1 EXIF block holding one Orientation entry after SOI.
    static func withEXIFOrientation(_ o: UInt16, _ plain: [UInt8], bigEndian: Bool) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) -> [UInt8] { bigEndian ? u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) : u16(UInt16(v & 0xFFFF)) + u16(UInt16(v >> 16)) }
        var tiff: [UInt8] = bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        tiff += u16(42) + u32(8) + u16(2)
        tiff += u16(0x010F) + u16(2) + u32(4) + Array("Cam\0".utf8)  // Make, an entry before it
        tiff += u16(274) + u16(3) + u32(1) + u16(o) + [0, 0]
        tiff += u32(0)
        let body = Array("Exif".utf8) + [0, 0] + tiff
        let length = body.count + 2
        return [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + body + plain.dropFirst(2)
    }
}
