/// 2x2 stride-2 max-pooling. The loops are scalar but branch-free: the first version
/// chose the maximum with `if`, and mispredicted comparisons on noisy activations
/// cost more than the arithmetic. (SIMD16 even/odd splitting compiles to per-lane
/// moves in Swift 6.3 and was slower still.)
enum PoolKernels {
    static func forwardPlane(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, W: Int, Ho: Int, Wo: Int) {
        for y in 0..<Ho {
            let r0 = src + 2 * y * W, r1 = r0 + W, o = dst + y * Wo
            for x in 0..<Wo {
                o[x] = max(max(r0[2 * x], r0[2 * x + 1]), max(r1[2 * x], r1[2 * x + 1]))
            }
        }
    }

    @inline(__always) static func mask(_ b: Bool) -> UInt32 { 0 &- UInt32(b ? 1 : 0) }

    /// Writes every input position once: the window's gradient at its first maximum
    /// (row-major), zero elsewhere, and zero for an odd trailing row or column.
    static func backwardPlane(_ src: UnsafePointer<Float>, _ grad: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                              H: Int, W: Int, Ho: Int, Wo: Int) {
        for y in 0..<Ho {
            let r0 = src + 2 * y * W, r1 = r0 + W
            let d0 = dst + 2 * y * W, d1 = d0 + W
            let g = grad + y * Wo
            for x in 0..<Wo {
                let i = 2 * x
                let a = r0[i], b = r0[i + 1], c = r1[i], d = r1[i + 1]
                let m = max(max(a, b), max(c, d))
                let isA = a == m, isB = !isA && b == m, isC = !isA && !isB && c == m
                let isD = !isA && !isB && !isC
                let gv = g[x].bitPattern
                d0[i] = Float(bitPattern: gv & mask(isA)); d0[i + 1] = Float(bitPattern: gv & mask(isB))
                d1[i] = Float(bitPattern: gv & mask(isC)); d1[i + 1] = Float(bitPattern: gv & mask(isD))
            }
            if W % 2 == 1 { d0[W - 1] = 0; d1[W - 1] = 0 }
        }
        if H % 2 == 1 { (dst + (H - 1) * W).update(repeating: 0, count: W) }
    }
}
