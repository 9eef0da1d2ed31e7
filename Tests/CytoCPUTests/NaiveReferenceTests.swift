import CytoCPU
import CytoCore
import XCTest

/// The CPU backend's vectorised ops against direct loops in Double, on odd and even
/// shapes (SIMD tails, overlapping last blocks, dropped pooling rows and columns),
/// once for every kernel path (AVX-512, AVX2, portable) this CPU can run.
final class NaiveReferenceTests: XCTestCase {
    var backend = CPUBackend(threads: 2)

    /// Runs `body` with `backend` on each supported kernel path.
    func forEachPath(_ body: () throws -> Void) rethrows {
        XCTAssertTrue(CPUPath.supported.contains(.portable))
        for p in CPUPath.supported {
            backend = CPUBackend(threads: 2, path: p)
            XCTAssertEqual(backend.path, p)
            try body()
        }
    }

    func upload(_ v: [Float]) throws -> any DeviceBuffer {
        let b = try backend.makeBuffer(.float32, count: v.count, label: "t"); backend.write(v, to: b, offset: 0); return b
    }

    func testConvolutionOpsMatchDirectLoops() throws {
        try forEachPath {
            for (N, C, O, H, W) in [(3, 3, 3, 22, 19), (2, 4, 8, 40, 33), (2, 3, 4, 30, 30), (1, 8, 16, 12, 12), (2, 3, 4, 9, 7), (2, 16, 16, 6, 6), (1, 8, 4, 5, 4)] {
                let g = ConvGeometry(batch: N, inChannels: C, outChannels: O, inHeight: H, inWidth: W)
                var rng = SeededGenerator(seed: UInt64(H * W))
                let x = (0..<g.inputCount).map { _ in rng.nextUnitFloat() - 0.5 }
                let go = (0..<g.outputCount).map { _ in rng.nextUnitFloat() - 0.5 }
                let w = (0..<g.weightCount).map { _ in rng.nextUnitFloat() - 0.5 }
                let bias = (0..<O).map { _ in rng.nextUnitFloat() - 0.5 }
                let xb = try upload(x), gb = try upload(go), wb = try upload(w), bb = try upload(bias)
                let gw = try upload(w), gx = try upload(x), y = try upload(go), gbias = try upload(bias)
                backend.conv2dBackwardFilter(g, input: xb, gradOutput: gb, gradWeight: gw)
                backend.conv2dBackwardData(g, gradOutput: gb, weight: wb, gradInput: gx)
                backend.conv2dBackwardBias(g, gradOutput: gb, gradBias: gbias)
                backend.conv2dForward(g, input: xb, weight: wb, bias: bb, output: y, relu: true)
                let Ho = H - 2, Wo = W - 2
                var rw = [Double](repeating: 0, count: w.count), rx = [Double](repeating: 0, count: x.count)
                var ry = [Double](repeating: 0, count: go.count), rb = [Double](repeating: 0, count: O)
                for n in 0..<N {
                    for o in 0..<O {
                        for yy in 0..<Ho {
                            for xx in 0..<Wo {
                                let gi = ((n * O + o) * Ho + yy) * Wo + xx
                                rb[o] += Double(go[gi]); ry[gi] += Double(bias[o])
                                for c in 0..<C {
                                    for ky in 0..<3 {
                                        for kx in 0..<3 {
                                            let ii = ((n * C + c) * H + yy + ky) * W + xx + kx, wi = ((o * C + c) * 3 + ky) * 3 + kx
                                            rw[wi] += Double(go[gi]) * Double(x[ii]); rx[ii] += Double(go[gi]) * Double(w[wi])
                                            ry[gi] += Double(w[wi]) * Double(x[ii])
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                ry = ry.map { max($0, 0) }
                func check(_ name: String, _ ours: [Float], _ ref: [Double]) {
                    let err = zip(ours, ref).map { abs(Double($0) - $1) }.max()!
                    let scale = ref.map(abs).max()!
                    XCTAssertLessThan(err, 1e-5 * max(1, scale), "\(name) \(g) \(backend.path): max error \(err)")
                }
                check("backward-filter", backend.read(gw, offset: 0, count: w.count), rw)
                check("backward-data", backend.read(gx, offset: 0, count: x.count), rx)
                check("backward-bias", backend.read(gbias, offset: 0, count: O), rb)
                check("forward+relu", backend.read(y, offset: 0, count: go.count), ry)
            }
        }
    }

    func testPoolingMatchesDirectLoops() throws {
        try forEachPath {
            for (N, C, H, W) in [(2, 3, 20, 17), (1, 4, 7, 9), (2, 2, 16, 16)] {
                let g = PoolGeometry(batch: N, channels: C, inHeight: H, inWidth: W)
                var rng = SeededGenerator(seed: UInt64(H + W))
                // Some exact ties, including -0 against +0, which compare equal.
                let x = (0..<g.inputCount).map { _ -> Float in
                    let v = Float(Int(rng.nextUnitFloat() * 6)) - 2
                    return v == 0 && rng.nextUnitFloat() < 0.5 ? -0.0 : v
                }
                let go = (0..<g.outputCount).map { _ in rng.nextUnitFloat() + 0.5 }
                let xb = try upload(x), gb = try upload(go), y = try upload(go), gx = try upload(x)
                backend.maxPoolForward(g, input: xb, output: y)
                backend.maxPoolBackward(g, input: xb, gradOutput: gb, gradInput: gx)
                var ry = [Float](repeating: 0, count: go.count), rx = [Float](repeating: 0, count: x.count)
                let Ho = H / 2, Wo = W / 2
                for p in 0..<(N * C) {
                    for yy in 0..<Ho {
                        for xx in 0..<Wo {
                            let idx = [0, 1, W, W + 1].map { p * H * W + 2 * yy * W + 2 * xx + $0 }
                            var best = idx[0]
                            for i in idx.dropFirst() where x[i] > x[best] { best = i }
                            ry[p * Ho * Wo + yy * Wo + xx] = x[best]
                            rx[best] = go[p * Ho * Wo + yy * Wo + xx]
                        }
                    }
                }
                XCTAssertEqual(backend.read(y, offset: 0, count: go.count), ry, "forward \(g)")
                XCTAssertEqual(backend.read(gx, offset: 0, count: x.count), rx, "backward \(g) \(backend.path)")
            }
        }
    }
}
