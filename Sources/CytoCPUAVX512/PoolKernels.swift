// Shared source: see Vector.swift.

/// 2x2 stride-2 max-pooling, forward and (fused with the ReLU before it) backward.
///
/// The vector loops take `L` adjacent activations of two rows (`L/2` windows) and split
/// even and odd lanes by viewing each lane pair as one 64-bit lane: truncating to 32
/// bits keeps the even lane, shifting right by 32 first keeps the odd one (one
/// `vpmovqd` each with AVX-512). Duplicating a half vector back into pairs is the
/// reverse (zero-extend, then OR with itself shifted left). No branches: on noisy
/// activations a data-dependent branch mispredicts about once per window.
public enum PoolKernels {
    /// `b > a ? b : a`: the maximum the vector and scalar paths both compute.
    @inline(__always) static func larger(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
    @inline(__always) static func larger(_ a: FV, _ b: FV) -> FV { a.replacing(with: b, where: b .> a) }

    /// The even lanes and the odd lanes of `v`.
    @inline(__always) static func evenOdd(_ v: FV) -> (even: FVHalf, odd: FVHalf) {
        let q = unsafeBitCast(v, to: FVPairs.self)
        let even = unsafeBitCast(FVHalfBits(truncatingIfNeeded: q), to: FVHalf.self)
        let odd = unsafeBitCast(FVHalfBits(truncatingIfNeeded: q &>> 32), to: FVHalf.self)
        return (even, odd)
    }

    /// Each lane of `h` twice: [h0, h0, h1, h1, ...].
    @inline(__always) static func duplicated(_ h: FVHalfBits) -> FVPairs {
        let w = FVPairs(truncatingIfNeeded: h)
        return w | (w &<< 32)
    }

    /// The maximum of each 2x2 window whose top-left corner is an even lane: the
    /// vertical maximum first, then the horizontal one (the scalar tail does the same).
    @inline(__always) static func windowMax(_ top: FV, _ bottom: FV) -> FVHalf {
        let (even, odd) = evenOdd(larger(top, bottom))
        return even.replacing(with: odd, where: odd .> even)
    }

    @inline(__always) static func windowMax(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ x: Int) -> Float {
        larger(larger(r0[2 * x], r1[2 * x]), larger(r0[2 * x + 1], r1[2 * x + 1]))
    }

    /// One pooled row (`Wo` outputs) from the two activation rows `r0`, `r1` under it.
    public static func forwardRow(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, Wo: Int) {
        let n = 2 * Wo
        guard n >= L else {
            for x in 0..<Wo { out[x] = windowMax(r0, r1, x) }
            return
        }
        var x = 0
        while x < n {
            if x + L > n { x = n - L }  // overlap the last block (n and L are even, so x stays a window start)
            let m = windowMax(loadV(r0 + x), loadV(r1 + x))
            UnsafeMutableRawPointer(out + x / 2).storeBytes(of: m, as: FVHalf.self)
            x += L
        }
    }

    /// The gradient of `relu(z)` through the pooling, for the two activation rows
    /// `a0`, `a1` (width `W`, holding `relu(z)`) under pooled row `g` (`Wo` gradients):
    /// each window's gradient goes to its first position (row-major) holding the
    /// window's maximum when that maximum is > 0, and every other position of `d0`,
    /// `d1` (including an odd last column) is set to 0. This equals max-pool backward
    /// (first maximum, as TensorFlow routes ties) followed by ReLU backward (zero
    /// where the activation is <= 0). Returns the sum of what it wrote (the bias gradient).
    public static func backwardReluRow(
        _ a0: UnsafePointer<Float>, _ a1: UnsafePointer<Float>, _ g: UnsafePointer<Float>,
        _ d0: UnsafeMutablePointer<Float>, _ d1: UnsafeMutablePointer<Float>, W: Int, Wo: Int
    ) -> Float {
        let n = 2 * Wo
        var x = 0
        var sum = FV(repeating: 0)
        let ones = FVBits(repeating: ~0), none = FVBits(repeating: 0)
        let halfOnes = FVHalfBits(repeating: ~0), halfNone = FVHalfBits(repeating: 0)
        while x + L <= n {
            let a = loadV(a0 + x), b = loadV(a1 + x)
            // windowMax(a, b), written out: the call was not inlined here (Swift 6.3).
            let (even, odd) = evenOdd(larger(a, b))
            let p = even.replacing(with: odd, where: odd .> even)
            let gh = UnsafeRawPointer(g + x / 2).loadUnaligned(as: FVHalfBits.self)
            let gradient = duplicated(gh & halfNone.replacing(with: halfOnes, where: p .> 0))
            let P = unsafeBitCast(duplicated(unsafeBitCast(p, to: FVHalfBits.self)), to: FV.self)
            let eqA = unsafeBitCast(none.replacing(with: ones, where: a .== P), to: FVPairs.self)
            let eqB = unsafeBitCast(none.replacing(with: ones, where: b .== P), to: FVPairs.self)
            // Per lane pair (low half = left, high half = right): the first match of the
            // top row; the bottom row only where the top row has none.
            let firstA = eqA & ~(eqA &<< 32)
            let anyA = eqA | (eqA &<< 32) | (eqA &>> 32)
            let firstB = eqB & ~(eqB &<< 32) & ~anyA
            let outA = unsafeBitCast(gradient & firstA, to: FV.self)
            let outB = unsafeBitCast(gradient & firstB, to: FV.self)
            storeV(outA, d0 + x); storeV(outB, d1 + x)
            sum += outA + outB
            x += L
        }
        var total = sum.sum()
        while x < n {
            let w = x / 2
            let v = (a0[x], a0[x + 1], a1[x], a1[x + 1])
            let p = windowMax(a0, a1, w)
            let grad: Float = p > 0 ? g[w] : 0
            d0[x] = v.0 == p ? grad : 0
            d0[x + 1] = v.0 != p && v.1 == p ? grad : 0
            d1[x] = v.0 != p && v.1 != p && v.2 == p ? grad : 0
            d1[x + 1] = v.0 != p && v.1 != p && v.2 != p && v.3 == p ? grad : 0
            total += d0[x] + d0[x + 1] + d1[x] + d1[x + 1]
            x += 2
        }
        if W > n { d0[n] = 0; d1[n] = 0 }
        return total
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
