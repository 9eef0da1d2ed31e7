import XCTest

@testable import CytoData

final class FitTests: XCTestCase {
    func testResizeKeepsUniformAndLinear() {
        let flat = RGBImage(width: 37, height: 23, fill: (10, 200, 99))
        let r = resize(flat, height: 64, width: 64)
        XCTAssertEqual(r.width, 64); XCTAssertEqual(r.height, 64)
        XCTAssertTrue(r.pixels.enumerated().allSatisfy { [10, 200, 99][$0.offset % 3] == Int($0.element) })
        // Downscale by 2: a triangle filter 2 source pixels wide, renormalised at the edges (as PIL).
        var ramp = RGBImage(width: 8, height: 2, fill: (0, 0, 0))
        for x in 0..<8 { for y in 0..<2 { ramp.pixels[(y * 8 + x) * 3] = UInt8(x * 20) } }
        let half = resize(ramp, height: 1, width: 4)
        XCTAssertEqual((0..<4).map { half.pixels[$0 * 3] }, [14, 50, 90, 126])
        // Upscale by 2: half-pixel centres, edges clamped
        var two = RGBImage(width: 2, height: 1, fill: (0, 0, 0))
        two.pixels[3] = 100
        let up = resize(two, height: 1, width: 4)
        XCTAssertEqual((0..<4).map { up.pixels[$0 * 3] }, [0, 25, 75, 100])
    }

    func testPadUsesEdgeColourAndKeepsShape() {
        // 40 wide x 20 high, border colour (200, 180, 190), a dark square in the middle.
        var img = RGBImage(width: 40, height: 20, fill: (200, 180, 190))
        for y in 5..<15 { for x in 15..<25 { let i = (y * 40 + x) * 3; img.pixels[i] = 0; img.pixels[i + 1] = 0; img.pixels[i + 2] = 0 } }
        let (out, action) = fitImage(img, height: 40, width: 40, policy: .pad)
        XCTAssertEqual(action, .padded)
        XCTAssertTrue(out[20, 2] == (200, 180, 190), "padding has the edge colour")
        XCTAssertTrue(out[20, 20] == (0, 0, 0), "the square stays in the centre")
        // The square stays square: dark run lengths equal in both directions.
        let darkRow = (0..<40).filter { out[$0, 20].0 < 100 }.count
        let darkCol = (0..<40).filter { out[20, $0].0 < 100 }.count
        XCTAssertEqual(darkRow, darkCol)
        // resize stretches instead
        let (stretched, a2) = fitImage(img, height: 40, width: 40, policy: .resize)
        XCTAssertEqual(a2, .resized)
        XCTAssertNotEqual((0..<40).filter { stretched[$0, 20].0 < 100 }.count, (0..<40).filter { stretched[20, $0].0 < 100 }.count)
        // crop keeps the centre square region
        let (cropped, a3) = fitImage(img, height: 20, width: 20, policy: .crop)
        XCTAssertEqual(a3, .cropped)
        XCTAssertTrue(cropped[10, 10] == (0, 0, 0))
        XCTAssertTrue(cropped[2, 10] == (200, 180, 190))
        // unchanged when the size already fits
        XCTAssertEqual(fitImage(img, height: 20, width: 40).1, .unchanged)
    }
}
