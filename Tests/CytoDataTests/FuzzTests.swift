import CytoTestSupport
import Foundation
import XCTest

@testable import CytoData

/// Mutated PNG, TIFF and JPEG bytes must decode or throw a DataError, never crash.
final class FuzzTests: XCTestCase {
    func seeds() throws -> [(String, [UInt8])] {
        let img = TestSupport.gradient(width: 24, height: 20)
        var out: [(String, [UInt8])] = [("png", try ImageCodec.encodePNG(img))]
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        for c in [TIFFCompression.none, .lzw, .deflate, .packbits, .jpeg] {
            let url = dir.appendingPathComponent("\(c).tif")
            try ImageCodec.writeTIFF(img, to: url, compression: c)
            out.append(("tiff-\(c)", [UInt8](try Data(contentsOf: url))))
        }
        out.append(("jpeg", try ImageCodec.encodeJPEG(img, quality: 85)))
        return out
    }

    func testMutatedImagesNeverCrash() throws {
        var rng = SplitMix(seed: 12345)
        var decoded = 0, rejected = 0
        for (name, original) in try seeds() {
            let rounds = name == "jpeg" ? 60 : 70
            for round in 0..<rounds {
                var b = original
                switch round % 4 {
                case 0:  // flip 1-8 random bits
                    for _ in 0..<(1 + Int(rng.next() % 8)) {
                        let i = Int(rng.next() % UInt64(b.count)); b[i] ^= UInt8(1 << (rng.next() % 8))
                    }
                case 1:  // truncate anywhere
                    b = Array(b.prefix(Int(rng.next() % UInt64(b.count))))
                case 2:  // overwrite a run in the first 200 bytes (headers, IFDs, markers)
                    let start = Int(rng.next() % UInt64(min(200, b.count)))
                    for i in start..<min(b.count, start + 1 + Int(rng.next() % 6)) { b[i] = UInt8(truncatingIfNeeded: rng.next()) }
                default:  // random bytes anywhere, plus a cut
                    for _ in 0..<4 { let i = Int(rng.next() % UInt64(b.count)); b[i] = UInt8(truncatingIfNeeded: rng.next()) }
                    if rng.next() % 2 == 0 { b = Array(b.prefix(max(1, b.count - Int(rng.next() % 64)))) }
                }
                do {
                    let img = try ImageCodec.decode(bytes: b, name: "\(name)#\(round)")
                    XCTAssertEqual(img.pixels.count, img.width * img.height * 3)
                    decoded += 1
                } catch let e as DataError {
                    XCTAssertTrue(e.description.contains("\(name)#\(round)"))
                    rejected += 1
                }
                _ = try? ImageCodec.readInfo(bytes: b, name: name)
            }
        }
        XCTAssertGreaterThan(decoded + rejected, 300)
        XCTAssertGreaterThan(rejected, 50, "most mutations must be detected")
    }
}
