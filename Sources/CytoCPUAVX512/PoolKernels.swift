// Shared source: see Vector.swift.

/// 2x2 stride-2 max-pooling. The loops are scalar but branch-free: the first version
/// chose the maximum with `if`, and mispredicted comparisons on noisy activations
/// cost more than the arithmetic. (SIMD16 even/odd splitting compiles to per-lane
/// moves in Swift 6.3 and was slower still.)
public enum PoolKernels {
    public static func forwardPlane(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, W: Int, Ho: Int, Wo: Int) {
        for y in 0..<Ho {
            let r0 = src + 2 * y * W, r1 = r0 + W, o = dst + y * Wo
            for x in 0..<Wo {
                o[x] = max(max(r0[2 * x], r0[2 * x + 1]), max(r1[2 * x], r1[2 * x + 1]))
            }
        }
    }

    /// A signed integer with the same order as the float (for non-NaN values). Adding
    /// +0 turns -0 into +0 first, so the two zeros compare equal as floats do.
    @inline(__always) static func key(_ f: Float) -> Int64 {
        let b = Int64(Int32(bitPattern: (f + 0).bitPattern))
        return b ^ ((b >> 63) & 0x7FFF_FFFF)
    }

    /// 1 when x < y, else 0, without a comparison instruction LLVM could turn into a branch.
    @inline(__always) static func less(_ x: Int64, _ y: Int64) -> Int64 { ((x &- y) >> 63) & 1 }

    /// Zeroes the plane, then writes each window's gradient at its first maximum
    /// (row-major). The index is computed with integer arithmetic on order-preserving
    /// keys: LLVM turns float compares and selects into branches, which mispredict
    /// about once per window on noisy activations (measured 20x slower than forward).
    public static func backwardPlane(
        _ src: UnsafePointer<Float>, _ grad: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
        H: Int, W: Int, Ho: Int, Wo: Int
    ) {
        dst.update(repeating: 0, count: H * W)
        let w64 = Int64(W)
        for y in 0..<Ho {
            let r0 = src + 2 * y * W
            let g = grad + y * Wo
            let out = dst + 2 * y * W
            for x in 0..<Wo {
                let i = 2 * x
                let ka = key(r0[i]), kb = key(r0[i + 1]), kc = key(r0[W + i]), kd = key(r0[W + i + 1])
                let ab = less(ka, kb)  // right beats left only if strictly greater
                let kab = ka ^ ((ka ^ kb) & (0 &- ab))
                let cd = less(kc, kd)
                let kcd = kc ^ ((kc ^ kd) & (0 &- cd))
                let bottom = less(kab, kcd)  // bottom row wins only if strictly greater
                let offset = ab &+ bottom &* (w64 &+ cd &- ab)
                out[i + Int(offset)] = g[x]
            }
        }
    }
}

/// Elementwise loops of the backward pass.
public enum ElementwiseKernels {
    /// `grad[i] = 0` where `activation[i] <= 0` (or NaN), for i in `range`.
    public static func reluBackward(_ a: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        var i = range.lowerBound
        let zero = FV(repeating: 0)
        while i + L <= range.upperBound {
            var v = loadV(g + i)
            v.replace(with: zero, where: .!(loadV(a + i) .> zero))
            storeV(v, g + i); i += L
        }
        while i < range.upperBound { if !(a[i] > 0) { g[i] = 0 }; i += 1 }
    }
}
