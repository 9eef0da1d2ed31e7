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

    /// Where a window's gradient goes (`forwardRowRoutes`): 0, 1 = the top row's left
    /// and right position, 2, 3 = the bottom row's, the first (row-major) holding the
    /// window's maximum; `noRoute` where that maximum is not > 0 (ReLU backward then
    /// zeroes the whole window).
    public static let noRoute: UInt8 = 4

    /// The route of one window from its four values and their maximum `p`.
    @inline(__always) static func route(_ v: (Float, Float, Float, Float), _ p: Float) -> UInt8 {
        if !(p > 0) { return noRoute }
        return v.0 == p ? 0 : v.1 == p ? 1 : v.2 == p ? 2 : 3
    }

    /// `forwardRow`, also writing each window's route (one byte per window) to `routes`,
    /// so that the backward pass reads one byte per window instead of the four floats
    /// of `relu(z)` under it: at conv1 (257x257) that read was 1 MB per image, and it
    /// ran from memory, not cache (the forward pass wrote it long before).
    public static func forwardRowRoutes(
        _ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        _ routes: UnsafeMutablePointer<UInt8>, Wo: Int
    ) {
        let n = 2 * Wo
        guard n >= L else {
            for x in 0..<Wo {
                let p = windowMax(r0, r1, x)
                out[x] = p
                routes[x] = route((r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1]), p)
            }
            return
        }
        let zero = FVHalf(repeating: 0)
        var x = 0
        while x < n {
            if x + L > n { x = n - L }  // overlap the last block (n and L are even, so x stays a window start)
            let a = loadV(r0 + x), b = loadV(r1 + x)
            let (even, odd) = evenOdd(larger(a, b))
            let p = even.replacing(with: odd, where: odd .> even)
            let (ae, ao) = evenOdd(a), (be, _) = evenOdd(b)
            var r = FVHalfBits(repeating: 3)
            r.replace(with: 2, where: be .== p)
            r.replace(with: 1, where: ao .== p)
            r.replace(with: 0, where: ae .== p)
            r.replace(with: FVHalfBits(repeating: UInt32(noRoute)), where: .!(p .> zero))
            UnsafeMutableRawPointer(out + x / 2).storeBytes(of: p, as: FVHalf.self)
            UnsafeMutableRawPointer(routes + x / 2).storeBytes(of: FVHalfBytes(truncatingIfNeeded: r), as: FVHalfBytes.self)
            x += L
        }
    }

    /// The gradient of `relu(z)` through the pooling, for the two activation rows (width
    /// `W`) under pooled row `g` (`Wo` gradients), from the windows' `routes`: each
    /// window's gradient goes to its first position (row-major) holding the window's
    /// maximum when that maximum is > 0, and every other position of `d0`, `d1`
    /// (including an odd last column) is set to 0. This equals max-pool backward (first
    /// maximum, as TensorFlow routes ties) followed by ReLU backward (zero where the
    /// activation is <= 0). Returns the sum of what it wrote (the bias gradient).
    public static func backwardRoutesRow(
        _ routes: UnsafePointer<UInt8>, _ g: UnsafePointer<Float>,
        _ d0: UnsafeMutablePointer<Float>, _ d1: UnsafeMutablePointer<Float>, W: Int, Wo: Int
    ) -> Float {
        let n = 2 * Wo
        var x = 0
        var sum = FV(repeating: 0)
        let ones = FVBits(repeating: ~0), none = FVBits(repeating: 0)
        let halfOnes = FVHalfBits(repeating: ~0), halfNone = FVHalfBits(repeating: 0)
        let noRoutes = FVHalfBits(repeating: UInt32(noRoute))
        // 0, 1, 0, 1, ...: the route of each lane's position in the top row (a lane pair
        // is one 64-bit lane, the left position in its low half); + 2 in the bottom row.
        let top = unsafeBitCast(FVPairs(repeating: 1 << 32), to: FVBits.self)
        let bottom = top &+ 2
        // Writes the windows of lanes x..<x+L, returns what it wrote.
        @inline(__always) func windows(_ x: Int) -> FV {
            let r = FVHalfBits(truncatingIfNeeded: UnsafeRawPointer(routes + x / 2).loadUnaligned(as: FVHalfBytes.self))
            let gh = UnsafeRawPointer(g + x / 2).loadUnaligned(as: FVHalfBits.self)
            let gradient = unsafeBitCast(duplicated(gh & halfOnes.replacing(with: halfNone, where: r .== noRoutes)), to: FVBits.self)
            let lane = unsafeBitCast(duplicated(r), to: FVBits.self)
            let outA = unsafeBitCast(gradient & none.replacing(with: ones, where: lane .== top), to: FV.self)
            let outB = unsafeBitCast(gradient & none.replacing(with: ones, where: lane .== bottom), to: FV.self)
            storeV(outA, d0 + x); storeV(outB, d1 + x)
            return outA + outB
        }
        while x + L <= n {
            sum += windows(x)
            x += L
        }
        if x < n && n >= L {
            // The last partial vector is redone from n - L (a window start: n and L are
            // even); its lanes before x are rewritten with the values they hold and left
            // out of the sum.
            let from = n - L
            sum += windows(from).replacing(with: 0, where: laneIndex .< FV(repeating: Float(x - from)))
            x = n
        }
        var total = sum.sum()
        while x < n {
            let w = x / 2
            let r = routes[w]
            let grad: Float = r == noRoute ? 0 : g[w]
            d0[x] = r == 0 ? grad : 0
            d0[x + 1] = r == 1 ? grad : 0
            d1[x] = r == 2 ? grad : 0
            d1[x + 1] = r == 3 ? grad : 0
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
