// Winograd F(2x2,3x3) convolution for the paper's network, written in the style of
// Sources/CytoCPUAVX512/ConvKernels.swift (FV, L, loadV, storeV from Vector.swift and
// the path's Lanes.swift) so that it compiles for either ISA path. It lives in the
// measurement harness, not in Sources: it did not pay (docs/speed.md, "Winograd
// F(2x2,3x3)"); scripts/kernel-ab/winograd reruns the comparison.
//
// Each 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A over the 4x4 input tile d:
// 16 multiplies per (tile, input, output channel) instead of 36. Tiles are vectorised
// along x (L tiles per vector); the input rows are first split into even and odd
// columns so that tile t's four columns 2t..2t+3 are E[t], O[t], E[t+1], O[t+1],
// contiguous loads. Per band of tile rows: the input transform of every channel into
// `v` ([16][C][Pb]), then 16 small matrix products M_k = U_k V_k (O x C times C x
// tiles) into `m` ([16][O][Pb]), then the output transform, bias and ReLU, and (the
// fused block's epilogue) the 2x2 max-pool: a 2x2 tile is exactly one pooling window.
enum Winograd {
    /// `u[(k * O + o) * C + c]` = (G g G^T)[k] of filter (o, c), k = 4 * row + column.
    /// Filters are stored [o][c][ky][kx], as the direct kernels read them.
    static func transformFilters(
        _ w: UnsafePointer<Float>, outChannels O: Int, channels C: Int, into u: UnsafeMutablePointer<Float>
    ) {
        for o in 0..<O {
            for c in 0..<C {
                let g = w + (o * C + c) * 9
                var t = [Float](repeating: 0, count: 12)  // G g, 4 x 3
                for j in 0..<3 {
                    let a = g[j], b = g[3 + j], d = g[6 + j]
                    t[j] = a; t[3 + j] = 0.5 * (a + b + d); t[6 + j] = 0.5 * (a - b + d); t[9 + j] = d
                }
                for r in 0..<4 {
                    let a = t[r * 3], b = t[r * 3 + 1], d = t[r * 3 + 2]
                    let row = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d]
                    for q in 0..<4 { u[((r * 4 + q) * O + o) * C + c] = row[q] }
                }
            }
        }
    }

    /// Even and odd columns of `rows` rows of `C` planes (`plane` floats apart, rows `W`
    /// long): row r of channel c goes to `eo + (c * rows + r) * 2 * stride` (even) and
    /// `stride` floats further (odd), `half` floats each. Reads up to 2L floats past a
    /// row's end (inside the next row or the buffer's slack).
    static func split(
        _ src: UnsafePointer<Float>, plane: Int, rowLength W: Int, rows H: Int, channels C: Int,
        half Wh: Int, stride S: Int, into eo: UnsafeMutablePointer<Float>
    ) {
        for c in 0..<C {
            for r in 0..<H {
                let s = src + c * plane + r * W
                let e = eo + (c * H + r) * 2 * S, od = e + S
                var j = 0
                while j < Wh {
                    let (e0, o0) = PoolKernels.evenOdd(loadV(s + 2 * j))
                    let (e1, o1) = PoolKernels.evenOdd(loadV(s + 2 * j + L))
                    storeV(FV(lowHalf: e0, highHalf: e1), e + j)
                    storeV(FV(lowHalf: o0, highHalf: o1), od + j)
                    j += L
                }
            }
        }
    }

    /// B^T d B of the tiles of tile rows i0..<i1 (tiles t = 0..<Wt per row), every
    /// channel, into `v + (k * C + c) * Pb + (i - i0) * Wt + t`. Lanes past a row's end
    /// land in the next row's slots, which are written afterwards (or `v`'s slack of L).
    static func inputTransform(
        _ eo: UnsafePointer<Float>, stride S: Int, rows H: Int, channels C: Int,
        tileRows: Range<Int>, tiles Wt: Int, into v: UnsafeMutablePointer<Float>, bandStride Pb: Int
    ) {
        for c in 0..<C {
            for i in tileRows {
                let base = eo + (c * H + 2 * i) * 2 * S
                var t = 0
                while t < Wt {
                    if t + L > Wt && Wt >= L { t = Wt - L }
                    let p = (i - tileRows.lowerBound) * Wt + t
                    // Along x per input row r: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
                    var r = base + t
                    var e0 = loadV(r), o0 = loadV(r + S), e1 = loadV(r + 1), o1 = loadV(r + S + 1)
                    let c00 = e0 - e1, c01 = o0 + e1, c02 = e1 - o0, c03 = o0 - o1
                    r += 2 * S
                    e0 = loadV(r); o0 = loadV(r + S); e1 = loadV(r + 1); o1 = loadV(r + S + 1)
                    let c10 = e0 - e1, c11 = o0 + e1, c12 = e1 - o0, c13 = o0 - o1
                    r += 2 * S
                    e0 = loadV(r); o0 = loadV(r + S); e1 = loadV(r + 1); o1 = loadV(r + S + 1)
                    let c20 = e0 - e1, c21 = o0 + e1, c22 = e1 - o0, c23 = o0 - o1
                    r += 2 * S
                    e0 = loadV(r); o0 = loadV(r + S); e1 = loadV(r + 1); o1 = loadV(r + S + 1)
                    let c30 = e0 - e1, c31 = o0 + e1, c32 = e1 - o0, c33 = o0 - o1
                    // Along y, the same combination of rows.
                    let d = v + c * Pb + p, k = C * Pb
                    storeV(c00 - c20, d); storeV(c01 - c21, d + k); storeV(c02 - c22, d + 2 * k); storeV(c03 - c23, d + 3 * k)
                    storeV(c10 + c20, d + 4 * k); storeV(c11 + c21, d + 5 * k)
                    storeV(c12 + c22, d + 6 * k); storeV(c13 + c23, d + 7 * k)
                    storeV(c20 - c10, d + 8 * k); storeV(c21 - c11, d + 9 * k)
                    storeV(c22 - c12, d + 10 * k); storeV(c23 - c13, d + 11 * k)
                    storeV(c10 - c30, d + 12 * k); storeV(c11 - c31, d + 13 * k)
                    storeV(c12 - c32, d + 14 * k); storeV(c13 - c33, d + 15 * k)
                    t += L
                }
            }
        }
    }

    /// M_k = U_k V_k for k = 0..<16: `m + (k * O + o) * Pb + p` = sum over c of
    /// `u[(k * O + o) * C + c] * v[(k * C + c) * Pb + p]`, p in 0..<count (rounded up to
    /// 3L; `v` and `m` have that slack). Blocked as the direct forward row kernel:
    /// 4 output channels x 3L tiles of sums (12 registers), so each input vector
    /// loaded feeds four FMAs and each broadcast weight three.
    static func multiply(
        _ u: UnsafePointer<Float>, outChannels O: Int, channels C: Int, _ v: UnsafePointer<Float>,
        into m: UnsafeMutablePointer<Float>, bandStride Pb: Int, count: Int
    ) {
        @inline(__always) func block(_ chunk: Int, _ first: Bool, _ w: UnsafePointer<Float>, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
            let zero = FV(repeating: 0)
            var a0 = first ? zero : loadV(dst), a1 = first ? zero : loadV(dst + Pb)
            var a2 = first ? zero : loadV(dst + 2 * Pb), a3 = first ? zero : loadV(dst + 3 * Pb)
            var b0 = first ? zero : loadV(dst + L), b1 = first ? zero : loadV(dst + Pb + L)
            var b2 = first ? zero : loadV(dst + 2 * Pb + L), b3 = first ? zero : loadV(dst + 3 * Pb + L)
            var e0 = first ? zero : loadV(dst + 2 * L), e1 = first ? zero : loadV(dst + Pb + 2 * L)
            var e2 = first ? zero : loadV(dst + 2 * Pb + 2 * L), e3 = first ? zero : loadV(dst + 3 * Pb + 2 * L)
            for c in 0..<chunk {
                let r = src + c * Pb
                let x = loadV(r), y = loadV(r + L), z = loadV(r + 2 * L)
                var s = w[c]
                a0.addProduct(x, s); b0.addProduct(y, s); e0.addProduct(z, s)
                s = w[C + c]
                a1.addProduct(x, s); b1.addProduct(y, s); e1.addProduct(z, s)
                s = w[2 * C + c]
                a2.addProduct(x, s); b2.addProduct(y, s); e2.addProduct(z, s)
                s = w[3 * C + c]
                a3.addProduct(x, s); b3.addProduct(y, s); e3.addProduct(z, s)
            }
            storeV(a0, dst); storeV(a1, dst + Pb); storeV(a2, dst + 2 * Pb); storeV(a3, dst + 3 * Pb)
            storeV(b0, dst + L); storeV(b1, dst + Pb + L); storeV(b2, dst + 2 * Pb + L); storeV(b3, dst + 3 * Pb + L)
            storeV(e0, dst + 2 * L); storeV(e1, dst + Pb + 2 * L); storeV(e2, dst + 2 * Pb + 2 * L); storeV(e3, dst + 3 * Pb + 2 * L)
        }
        precondition(O % 4 == 0, "Winograd.multiply: output channels in fours")
        for k in 0..<16 {
            let uk = u + k * O * C, vk = v + k * C * Pb, mk = m + k * O * Pb
            var c0 = 0
            while c0 < C {
                let chunk = min(8, C - c0), first = c0 == 0
                var p = 0
                while p < count {
                    var o = 0
                    while o < O {
                        let w = uk + o * C + c0, src = vk + c0 * Pb + p, dst = mk + o * Pb + p
                        if chunk == 8 { block(8, first, w, src, dst) } else if chunk == 4 { block(4, first, w, src, dst) } else {
                            block(chunk, first, w, src, dst)
                        }
                        o += 4
                    }
                    p += 3 * L
                }
                c0 += chunk
            }
        }
    }

    /// The first `n` lanes of `x` to `p`.
    @inline(__always) static func storeFirst(_ x: FV, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n >= L { storeV(x, p); return }
        for j in 0..<n { p[j] = x[j] }
    }

    /// Lanes of `a` and `b` interleaved (a0 b0 a1 b1 ...), 2L floats to `p`; the first `n` only.
    @inline(__always) static func storeInterleaved(_ a: FV, _ b: FV, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
        @inline(__always) func zip(_ x: FVHalf, _ y: FVHalf) -> FV {
            let lo = FVPairs(truncatingIfNeeded: unsafeBitCast(x, to: FVHalfBits.self))
            let hi = FVPairs(truncatingIfNeeded: unsafeBitCast(y, to: FVHalfBits.self))
            return unsafeBitCast(lo | (hi &<< 32), to: FV.self)
        }
        storeFirst(zip(a.lowHalf, b.lowHalf), p, n)
        if n > L { storeFirst(zip(a.highHalf, b.highHalf), p + L, n - L) }
    }

    /// A^T M A + bias (and ReLU) of tile rows `tileRows` for every output channel:
    /// conv output rows 2i, 2i + 1 go to `out + o * outPlane + (2i + dy) * outRow` when
    /// `out` is given; the 2x2 max of each tile to `pooled + o * pooledPlane + i * Wt + t`
    /// when `pooled` is given (the fused block's pooling, Wq = Wt).
    static func outputTransform(
        _ m: UnsafePointer<Float>, bandStride Pb: Int, outChannels O: Int, tileRows: Range<Int>, tiles Wt: Int,
        bias: UnsafePointer<Float>, relu: Bool,
        out: UnsafeMutablePointer<Float>?, outPlane: Int, outRow: Int,
        pooled: UnsafeMutablePointer<Float>?, pooledPlane: Int
    ) {
        let zero = FV(repeating: 0)
        for o in 0..<O {
            let b = FV(repeating: bias[o])
            for i in tileRows {
                var t = 0
                while t < Wt {
                    if t + L > Wt && Wt >= L { t = Wt - L }
                    let n = min(L, Wt - t)
                    let s = m + o * Pb + (i - tileRows.lowerBound) * Wt + t, k = O * Pb
                    // Along y: (m0 + m1 + m2, m1 - m2 - m3) per column.
                    var m0 = loadV(s), m1 = loadV(s + 4 * k), m2 = loadV(s + 8 * k), m3 = loadV(s + 12 * k)
                    let s00 = m0 + m1 + m2, s10 = m1 - m2 - m3
                    m0 = loadV(s + k); m1 = loadV(s + 5 * k); m2 = loadV(s + 9 * k); m3 = loadV(s + 13 * k)
                    let s01 = m0 + m1 + m2, s11 = m1 - m2 - m3
                    m0 = loadV(s + 2 * k); m1 = loadV(s + 6 * k); m2 = loadV(s + 10 * k); m3 = loadV(s + 14 * k)
                    let s02 = m0 + m1 + m2, s12 = m1 - m2 - m3
                    m0 = loadV(s + 3 * k); m1 = loadV(s + 7 * k); m2 = loadV(s + 11 * k); m3 = loadV(s + 15 * k)
                    let s03 = m0 + m1 + m2, s13 = m1 - m2 - m3
                    var y00 = b + s00 + s01 + s02, y01 = b + s01 - s02 - s03
                    var y10 = b + s10 + s11 + s12, y11 = b + s11 - s12 - s13
                    if relu {
                        y00.replace(with: zero, where: y00 .< zero); y01.replace(with: zero, where: y01 .< zero)
                        y10.replace(with: zero, where: y10 .< zero); y11.replace(with: zero, where: y11 .< zero)
                    }
                    if let out {
                        let d = out + o * outPlane + 2 * i * outRow + 2 * t
                        storeInterleaved(y00, y01, d, 2 * n)
                        storeInterleaved(y10, y11, d + outRow, 2 * n)
                    }
                    if let pooled {
                        let top = y00.replacing(with: y10, where: y10 .> y00), bottom = y01.replacing(with: y11, where: y11 .> y01)
                        storeFirst(top.replacing(with: bottom, where: bottom .> top), pooled + o * pooledPlane + i * Wt + t, n)
                    }
                    t += L
                }
            }
        }
    }

    /// Scratch for one image of a layer: the split input, the band's transformed input
    /// and products, and the transformed filters.
    struct Plan {
        let C: Int, O: Int, H: Int, W: Int, Ht: Int, Wt: Int, Wh: Int, S: Int, bandRows: Int, Pb: Int
        let eo: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>
        let u: UnsafeMutablePointer<Float>

        /// A valid 3x3 convolution of C x H x W images to O channels; tiles cover the
        /// even part of the (H - 2) x (W - 2) output.
        init(channels C: Int, outChannels O: Int, height H: Int, width W: Int) {
            self.C = C; self.O = O; self.H = H; self.W = W
            Ht = (H - 2) / 2; Wt = (W - 2) / 2; Wh = Wt + 1
            S = (Wh + 2 * L + 15) / 16 * 16
            // About 64 KB of transformed input and of products per band (L2-resident).
            bandRows = max(1, min(Ht, 1024 / max(1, (C + O) / 2) / Wt))
            Pb = bandRows * Wt + 4 * L
            eo = .allocate(capacity: C * H * 2 * S + 4 * L)
            eo.initialize(repeating: 0, count: C * H * 2 * S + 4 * L)
            v = .allocate(capacity: 16 * C * Pb + L); v.initialize(repeating: 0, count: 16 * C * Pb + L)
            m = .allocate(capacity: 16 * O * Pb + L); m.initialize(repeating: 0, count: 16 * O * Pb + L)
            u = .allocate(capacity: 16 * O * C)
        }

        func setFilters(_ w: UnsafePointer<Float>) { Winograd.transformFilters(w, outChannels: O, channels: C, into: u) }

        /// One image: conv (+ bias, ReLU) rows to `out` (row `outRow`, plane `outPlane`) and/or
        /// its 2x2 max-pool to `pooled` (plane Ht * Wt).
        func run(
            image: UnsafePointer<Float>, bias: UnsafePointer<Float>, relu: Bool,
            out: UnsafeMutablePointer<Float>?, outPlane: Int, outRow: Int, pooled: UnsafeMutablePointer<Float>?
        ) {
            split(image, plane: H * W, rowLength: W, rows: H, channels: C, half: Wh, stride: S, into: eo)
            var i0 = 0
            while i0 < Ht {
                let rows = i0..<min(Ht, i0 + bandRows)
                inputTransform(eo, stride: S, rows: H, channels: C, tileRows: rows, tiles: Wt, into: v, bandStride: Pb)
                multiply(u, outChannels: O, channels: C, v, into: m, bandStride: Pb, count: rows.count * Wt)
                outputTransform(
                    m, bandStride: Pb, outChannels: O, tileRows: rows, tiles: Wt, bias: bias, relu: relu,
                    out: out, outPlane: outPlane, outRow: outRow, pooled: pooled, pooledPlane: Ht * Wt)
                i0 = rows.upperBound
            }
        }
    }
}
