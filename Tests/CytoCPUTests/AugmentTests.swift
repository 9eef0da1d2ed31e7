import CytoCPU
import CytoCore
import Foundation
import XCTest

/// The CPU batch gather with augmentation against the Keras 2.0.8 formula
/// (scipy `affine_transform(order=0, mode="nearest")` about `size/2 + 0.5`, then the
/// flips) written out independently here, and bilinear against a double-precision
/// evaluation. Widths below and above one vector (8) exercise both code paths.
final class AugmentTests: XCTestCase {
    var backend = CPUBackend(threads: 2)

    /// Distinct values per pixel and channel, so a wrong source pixel cannot hide.
    func image(_ h: Int, _ w: Int, _ c: Int, seed: Int) -> [UInt8] {
        (0..<(h * w * c)).map { UInt8((($0 &* 37) &+ seed &* 11) % 251) }
    }

    /// Runs the gather for one image and returns it NCHW, scaled back to bytes.
    func gather(_ pixels: [UInt8], _ h: Int, _ w: Int, _ c: Int, _ t: AugmentTransform) throws -> [Float] {
        let geo = ImageGeometry(height: h, width: w, channels: c)
        let images = try backend.makeBuffer(.uint8, count: pixels.count, label: "images")
        pixels.withUnsafeBytes { backend.write(bytes: $0, to: images, byteOffset: 0) }
        let out = try backend.makeBuffer(.float32, count: geo.pixelsPerImage, label: "out")
        backend.gatherBatch(images: images, geometry: geo, indices: [0], transforms: [t], output: out)
        return backend.read(out, offset: 0, count: geo.pixelsPerImage).map { $0 * 255 }
    }

    func assertNearest(
        _ h: Int, _ w: Int, _ c: Int, _ t: AugmentTransform,
        expected source: (Int, Int) -> (Int, Int), file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let px = image(h, w, c, seed: h + w)
        let got = try gather(px, h, w, c, t)
        var wrong = 0
        for y in 0..<h {
            for x in 0..<w {
                let (sy, sx) = source(y, x)
                for ch in 0..<c where abs(got[(ch * h + y) * w + x] - Float(px[(sy * w + sx) * c + ch])) > 1e-3 { wrong += 1 }
            }
        }
        XCTAssertEqual(wrong, 0, "\(t) on \(h)x\(w)x\(c): \(wrong) values from the wrong source pixel", file: file, line: line)
    }

    /// Exact rotations: with o = n/2 + 0.5, Keras' 90 degree rotation reads row
    /// `2o - x = n + 1 - x` (clamped to the last row) and column y, so the image moves
    /// one pixel and the edge is replicated. Derived by hand, not from the code.
    func testNearestMatchesKerasAtKnownRotationsAndFlips() throws {
        for (h, w) in [(5, 5), (6, 6), (13, 13), (16, 16)] {
            let n = h
            func cl(_ v: Int) -> Int { min(n - 1, max(0, v)) }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 0, flipHorizontal: false, flipVertical: false)) { ($0, $1) }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 0, flipHorizontal: true, flipVertical: false)) { ($0, w - 1 - $1) }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 0, flipHorizontal: false, flipVertical: true)) { (h - 1 - $0, $1) }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 90, flipHorizontal: false, flipVertical: false)) { (cl(n + 1 - $1), $0) }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 180, flipHorizontal: false, flipVertical: false)) {
                (cl(n + 1 - $0), cl(n + 1 - $1))
            }
            try assertNearest(h, w, 3, AugmentTransform(degrees: 270, flipHorizontal: false, flipVertical: false)) { ($1, cl(n + 1 - $0)) }
            // Flips act on the rotated image: a horizontal flip reads rotated column w-1-x.
            try assertNearest(h, w, 3, AugmentTransform(degrees: 90, flipHorizontal: true, flipVertical: false)) { (cl($1 + 2), $0) }
            try assertNearest(h, w, 1, AugmentTransform(degrees: 180, flipHorizontal: true, flipVertical: true)) {
                (cl($0 + 2), cl($1 + 2))
            }
        }
    }

    /// Any angle: every pixel is the one scipy's order-0 sampling picks, computed in
    /// double precision, except where the source coordinate is within 1e-3 of a
    /// rounding tie (float and double may then round differently).
    func testNearestMatchesKerasFormulaAtRandomAngles() throws {
        var rng = SeededGenerator(seed: 7)
        for (h, w, c) in [(7, 7, 3), (12, 9, 3), (33, 33, 3), (20, 26, 1)] {
            let px = image(h, w, c, seed: 3)
            for _ in 0..<6 {
                let t = AugmentTransform.random(using: &rng, sampler: .nearest)
                let got = try gather(px, h, w, c, t)
                let th = t.degrees * Double.pi / 180
                let oy = Double(h) / 2 + 0.5, ox = Double(w) / 2 + 0.5
                var wrong = 0, ties = 0
                for y in 0..<h {
                    for x in 0..<w {
                        let r = Double(t.flipVertical ? h - 1 - y : y), q = Double(t.flipHorizontal ? w - 1 - x : x)
                        let sr = cos(th) * (r - oy) - sin(th) * (q - ox) + oy
                        let sc = sin(th) * (r - oy) + cos(th) * (q - ox) + ox
                        func nearTie(_ v: Double) -> Bool { abs(v - v.rounded(.down) - 0.5) < 1e-3 }
                        if nearTie(sr) || nearTie(sc) { ties += 1; continue }
                        let iy = min(h - 1, max(0, Int((sr + 0.5).rounded(.down))))
                        let ix = min(w - 1, max(0, Int((sc + 0.5).rounded(.down))))
                        for ch in 0..<c where abs(got[(ch * h + y) * w + x] - Float(px[(iy * w + ix) * c + ch])) > 1e-3 { wrong += 1 }
                    }
                }
                XCTAssertEqual(wrong, 0, "\(t) on \(h)x\(w)x\(c)")
                XCTAssertLessThan(ties, h * w / 5, "too many near-ties to be a meaningful check")
            }
        }
    }

    /// Bilinear about the geometric centre, against the same interpolation in double.
    func testBilinearMatchesDoublePrecisionFormula() throws {
        var rng = SeededGenerator(seed: 9)
        for (h, w, c) in [(7, 7, 3), (31, 46, 3), (10, 17, 1)] {
            let px = image(h, w, c, seed: 5)
            for _ in 0..<4 {
                let t = AugmentTransform.random(using: &rng, sampler: .bilinear)
                let got = try gather(px, h, w, c, t)
                let th = t.degrees * Double.pi / 180
                let oy = Double(h - 1) / 2, ox = Double(w - 1) / 2
                var worst = 0.0
                for y in 0..<h {
                    for x in 0..<w {
                        let r = Double(t.flipVertical ? h - 1 - y : y), q = Double(t.flipHorizontal ? w - 1 - x : x)
                        let sr = cos(th) * (r - oy) - sin(th) * (q - ox) + oy
                        let sc = sin(th) * (r - oy) + cos(th) * (q - ox) + ox
                        let fr = sr.rounded(.down), fc = sc.rounded(.down), ar = sr - fr, ac = sc - fc
                        func ix(_ v: Double, _ n: Int) -> Int { min(n - 1, max(0, Int(v))) }
                        for ch in 0..<c {
                            func p(_ a: Double, _ b: Double) -> Double { Double(px[(ix(a, h) * w + ix(b, w)) * c + ch]) }
                            let top = p(fr, fc) + ac * (p(fr, fc + 1) - p(fr, fc))
                            let bottom = p(fr + 1, fc) + ac * (p(fr + 1, fc + 1) - p(fr + 1, fc))
                            worst = max(worst, abs(Double(got[(ch * h + y) * w + x]) - (top + ar * (bottom - top))))
                        }
                    }
                }
                // Float coordinates are ~1e-5 px off the double ones; values span 0..250.
                XCTAssertLessThan(worst, 0.05, "\(t) on \(h)x\(w)x\(c)")
            }
        }
    }

    /// Every kernel path gives the same augmented batch, bit for bit (the same float
    /// operations in the same order), for both samplers, on a size with a partial
    /// last vector and on the paper's 257.
    func testKernelPathsAgreeExactly() throws {
        for (h, w) in [(31, 46), (257, 257)] {
            let px = image(h, w, 3, seed: 2)
            var rng = SeededGenerator(seed: 3)
            for sampler in AugmentSampler.allCases {
                let ts = (0..<3).map { _ in AugmentTransform.random(using: &rng, sampler: sampler) } + [.identity]
                for t in ts {
                    var results: [[Float]] = []
                    for p in CPUPath.supported {
                        backend = CPUBackend(threads: 2, path: p)
                        results.append(try gather(px, h, w, 3, t))
                    }
                    for r in results.dropFirst() { XCTAssertEqual(r, results[0], "\(t) on \(h)x\(w): paths \(CPUPath.supported) differ") }
                }
            }
        }
    }

    /// The trainer's default and the paper's protocols use the Keras 2.0.8 sampler.
    func testPaperSamplerIsNearest() {
        XCTAssertEqual(AugmentSampler.paper, .nearest)
        var g = SeededGenerator(seed: 1)
        XCTAssertEqual(AugmentTransform.random(using: &g).sampler, .nearest)
    }
}
