// Shared source: see Vector.swift.

/// The inner loops of the 3x3 valid convolution, vectorised along image rows.
///
/// The paper's network has few channels (3..16) and large images, so im2col + GEMM
/// would mostly move memory. These loops instead keep vector accumulators for a row
/// segment of several output channels at once and stream the input rows through
/// them, which keeps conv1 (3 -> 4 channels at 255x255) compute-bound. Loops are
/// written for `L` lanes, so the AVX-512 build walks 16 pixels per vector.
public enum ConvKernels {
    /// One vector of output pixels (starting at `src`'s column) of four output channels,
    /// with bias and optional ReLU: every input load feeds four FMAs. Shared by the row
    /// tail and by rows narrower than a vector.
    @inline(__always)
    static func fourChannels(
        _ src: UnsafeMutablePointer<Float>, inPlane: Int, inRow: Int, channels C: Int,
        weights w: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>),
        bias: UnsafeMutablePointer<Float>, relu: Bool
    ) -> (FV, FV, FV, FV) {
        let (w0, w1, w2, w3) = w
        var a0 = FV(repeating: bias[0]), a1 = FV(repeating: bias[1])
        var a2 = FV(repeating: bias[2]), a3 = FV(repeating: bias[3])
        for c in 0..<C {
            let plane = src + c * inPlane
            let k = c * 9
            for ky in 0..<3 {
                let r = plane + ky * inRow
                let v0 = loadV(r), v1 = loadV(r + 1), v2 = loadV(r + 2)
                let kk = k + ky * 3
                a0.addProduct(v0, w0[kk]); a0.addProduct(v1, w0[kk + 1]); a0.addProduct(v2, w0[kk + 2])
                a1.addProduct(v0, w1[kk]); a1.addProduct(v1, w1[kk + 1]); a1.addProduct(v2, w1[kk + 2])
                a2.addProduct(v0, w2[kk]); a2.addProduct(v1, w2[kk + 1]); a2.addProduct(v2, w2[kk + 2])
                a3.addProduct(v0, w3[kk]); a3.addProduct(v1, w3[kk + 1]); a3.addProduct(v2, w3[kk + 2])
            }
        }
        if relu {
            let zero = FV(repeating: 0)
            a0.replace(with: zero, where: a0 .< zero); a1.replace(with: zero, where: a1 .< zero)
            a2.replace(with: zero, where: a2 .< zero); a3.replace(with: zero, where: a3 .< zero)
        }
        return (a0, a1, a2, a3)
    }

    /// One output row of every output channel: `out[o][x] = bias[o] + sum w * in`, x in 0..<width.
    /// Output channels are taken four at a time so each input load feeds four FMAs.
    public static func forwardRow(
        inBase: UnsafeMutablePointer<Float>, inPlane: Int, inRow: Int, channels C: Int,
        weights: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
        outBase: UnsafeMutablePointer<Float>, outPlane: Int, outChannels O: Int,
        width: Int, relu: Bool
    ) {
        var o = 0
        let zero = FV(repeating: 0)
        while o < O {
            let block = min(4, O - o)
            if block == 4 && width < L {
                // Rows narrower than a vector (conv5 and conv6 with AVX-512, conv6 with AVX2:
                // 12, 4 and 8 wide) take one vector per input row and keep `width` lanes: the
                // loads read up to L - width floats past the row, inside the next row or the
                // buffer's 64 zeroed bytes of slack (every CPUBuffer and segment has them).
                // Scalar, these layers cost as much as conv3 (scripts/kernel-ab/winograd).
                let w0 = weights + o * C * 9, w1 = w0 + C * 9, w2 = w1 + C * 9, w3 = w2 + C * 9
                let (a0, a1, a2, a3) = fourChannels(
                    inBase, inPlane: inPlane, inRow: inRow, channels: C, weights: (w0, w1, w2, w3), bias: bias + o, relu: relu)
                let dst = outBase + o * outPlane
                for x in 0..<width {
                    dst[x] = a0[x]; dst[outPlane + x] = a1[x]; dst[2 * outPlane + x] = a2[x]; dst[3 * outPlane + x] = a3[x]
                }
                o += 4
            } else if block == 4 {
                let w0 = weights + o * C * 9, w1 = w0 + C * 9, w2 = w1 + C * 9, w3 = w2 + C * 9
                var x = 0
                // With 16 registers (AVX2) 3L pixels x 4 channels per step: 12 sums, the
                // three input vectors and one broadcast weight fill them exactly, and
                // each x step is 7 loads for 12 FMAs (2L: 6 loads for 8 FMAs on 8 sums,
                // which wait on FMA latency). The sums run in the same order as below.
                while forwardThreeVectors && x + 3 * L <= width {
                    var a0 = FV(repeating: bias[o]), a1 = FV(repeating: bias[o + 1])
                    var a2 = FV(repeating: bias[o + 2]), a3 = FV(repeating: bias[o + 3])
                    var b0 = a0, b1 = a1, b2 = a2, b3 = a3
                    var e0 = a0, e1 = a1, e2 = a2, e3 = a3
                    for c in 0..<C {
                        let src = inBase + c * inPlane + x
                        for ky in 0..<3 {
                            let r = src + ky * inRow
                            let kk = c * 9 + ky * 3
                            for kx in 0..<3 {
                                let u = loadV(r + kx), v = loadV(r + kx + L), t = loadV(r + kx + 2 * L)
                                var s = w0[kk + kx]
                                a0.addProduct(u, s); b0.addProduct(v, s); e0.addProduct(t, s)
                                s = w1[kk + kx]
                                a1.addProduct(u, s); b1.addProduct(v, s); e1.addProduct(t, s)
                                s = w2[kk + kx]
                                a2.addProduct(u, s); b2.addProduct(v, s); e2.addProduct(t, s)
                                s = w3[kk + kx]
                                a3.addProduct(u, s); b3.addProduct(v, s); e3.addProduct(t, s)
                            }
                        }
                    }
                    if relu {
                        a0.replace(with: zero, where: a0 .< zero); a1.replace(with: zero, where: a1 .< zero)
                        a2.replace(with: zero, where: a2 .< zero); a3.replace(with: zero, where: a3 .< zero)
                        b0.replace(with: zero, where: b0 .< zero); b1.replace(with: zero, where: b1 .< zero)
                        b2.replace(with: zero, where: b2 .< zero); b3.replace(with: zero, where: b3 .< zero)
                        e0.replace(with: zero, where: e0 .< zero); e1.replace(with: zero, where: e1 .< zero)
                        e2.replace(with: zero, where: e2 .< zero); e3.replace(with: zero, where: e3 .< zero)
                    }
                    let dst = outBase + o * outPlane + x
                    storeV(a0, dst); storeV(a1, dst + outPlane); storeV(a2, dst + 2 * outPlane); storeV(a3, dst + 3 * outPlane)
                    storeV(b0, dst + L); storeV(b1, dst + outPlane + L); storeV(b2, dst + 2 * outPlane + L);
                    storeV(b3, dst + 3 * outPlane + L)
                    storeV(e0, dst + 2 * L); storeV(e1, dst + outPlane + 2 * L); storeV(e2, dst + 2 * outPlane + 2 * L);
                    storeV(e3, dst + 3 * outPlane + 2 * L)
                    x += 3 * L
                }
                // 2L pixels x 4 channels per step: each broadcast weight feeds two FMAs.
                while x + 2 * L <= width {
                    var a0 = FV(repeating: bias[o]), a1 = FV(repeating: bias[o + 1])
                    var a2 = FV(repeating: bias[o + 2]), a3 = FV(repeating: bias[o + 3])
                    var b0 = a0, b1 = a1, b2 = a2, b3 = a3
                    for c in 0..<C {
                        let src = inBase + c * inPlane + x
                        for ky in 0..<3 {
                            let r = src + ky * inRow
                            let kk = c * 9 + ky * 3
                            for kx in 0..<3 {
                                let u = loadV(r + kx), v = loadV(r + kx + L)
                                let s0 = w0[kk + kx], s1 = w1[kk + kx], s2 = w2[kk + kx], s3 = w3[kk + kx]
                                a0.addProduct(u, s0); b0.addProduct(v, s0)
                                a1.addProduct(u, s1); b1.addProduct(v, s1)
                                a2.addProduct(u, s2); b2.addProduct(v, s2)
                                a3.addProduct(u, s3); b3.addProduct(v, s3)
                            }
                        }
                    }
                    if relu {
                        a0.replace(with: zero, where: a0 .< zero); a1.replace(with: zero, where: a1 .< zero)
                        a2.replace(with: zero, where: a2 .< zero); a3.replace(with: zero, where: a3 .< zero)
                        b0.replace(with: zero, where: b0 .< zero); b1.replace(with: zero, where: b1 .< zero)
                        b2.replace(with: zero, where: b2 .< zero); b3.replace(with: zero, where: b3 .< zero)
                    }
                    let dst = outBase + o * outPlane + x
                    storeV(a0, dst); storeV(a1, dst + outPlane); storeV(a2, dst + 2 * outPlane); storeV(a3, dst + 3 * outPlane)
                    storeV(b0, dst + L); storeV(b1, dst + outPlane + L); storeV(b2, dst + 2 * outPlane + L);
                    storeV(b3, dst + 3 * outPlane + L)
                    x += 2 * L
                }
                while x < width {
                    if x + L > width { x = width - L }  // overlap the last block instead of a scalar tail
                    let (a0, a1, a2, a3) = fourChannels(
                        inBase + x, inPlane: inPlane, inRow: inRow, channels: C, weights: (w0, w1, w2, w3), bias: bias + o,
                        relu: relu)
                    let dst = outBase + o * outPlane + x
                    storeV(a0, dst); storeV(a1, dst + outPlane); storeV(a2, dst + 2 * outPlane); storeV(a3, dst + 3 * outPlane)
                    x += L
                }
                o += 4
            } else {
                // Generic scalar path: fewer than four output channels left.
                for oo in o..<(o + block) {
                    let wo = weights + oo * C * 9
                    let dst = outBase + oo * outPlane
                    for x in 0..<width {
                        var acc = bias[oo]
                        for c in 0..<C {
                            let src = inBase + c * inPlane + x
                            for ky in 0..<3 {
                                let r = src + ky * inRow
                                let k = c * 9 + ky * 3
                                acc += r[0] * wo[k] + r[1] * wo[k + 1] + r[2] * wo[k + 2]
                            }
                        }
                        dst[x] = relu ? max(acc, 0) : acc
                    }
                }
                o += block
            }
        }
    }

    /// The input gradient of one (image, input channel) plane:
    /// `gradIn[yi][xo+kx] += sum_{o,ky} w[o][c][ky][kx] * gradOut[o][yi-ky][xo]`, with
    /// `outRow` floats per gradient row and `outPlane` per gradient plane.
    /// For each input row and each kx the sum over ky and o stays in registers, so the
    /// plane is read-modified-written only three times per row.
    public static func backwardDataPlane(
        gradOut: UnsafeMutablePointer<Float>, outPlane: Int, outRow: Int, outChannels O: Int,
        outHeight Ho: Int, outWidth Wo: Int,
        weights: UnsafeMutablePointer<Float>, channel c: Int, channels C: Int,
        gradIn: UnsafeMutablePointer<Float>, inHeight H: Int, inWidth W: Int
    ) {
        gradIn.update(repeating: 0, count: H * W)
        let vecEnd = Wo - Wo % L
        for yi in 0..<H {
            let kyLo = max(0, yi - (Ho - 1)), kyHi = min(2, yi)
            if kyLo > kyHi { continue }
            let dstRow = gradIn + yi * W
            for kx in 0..<3 {
                var x = 0
                while x < vecEnd {
                    var acc = FV(repeating: 0)
                    for ky in kyLo...kyHi {
                        let src = gradOut + (yi - ky) * outRow + x
                        let wk = weights + c * 9 + ky * 3 + kx
                        for o in 0..<O { acc.addProduct(loadV(src + o * outPlane), wk[o * C * 9]) }
                    }
                    let d = dstRow + x + kx
                    storeV(loadV(d) + acc, d)
                    x += L
                }
                while x < Wo {
                    var acc: Float = 0
                    for ky in kyLo...kyHi {
                        let src = gradOut + (yi - ky) * outRow + x
                        let wk = weights + c * 9 + ky * 3 + kx
                        for o in 0..<O { acc += src[o * outPlane] * wk[o * C * 9] }
                    }
                    dstRow[x + kx] += acc
                    x += 1
                }
            }
        }
    }

    /// The nine weight gradients of one (output channel, input channel) pair over the
    /// output rows `rows` of image `n`, summed in a fixed order. `gradPlane` is the
    /// output channel's gradient plane of image `n`, `gradRow` floats per row (`Wo`
    /// when compact, more when the plane sits inside a zero border).
    ///
    /// The last partial vector of each row is done with the gradient lanes past the
    /// row's end set to zero, so no scalar tail runs: its input loads read at most
    /// L - 1 floats past the row, inside the next row or the buffer's zeroed slack.
    public static func filterGradient(
        input: UnsafeMutablePointer<Float>, gradPlane g: UnsafeMutablePointer<Float>, gradRow: Int,
        n: Int, rows: Range<Int>, c: Int, channels C: Int,
        inHeight H: Int, inWidth W: Int, outWidth Wo: Int,
        result: UnsafeMutablePointer<Float>
    ) {
        var a00 = FV(repeating: 0), a01 = FV(repeating: 0), a02 = FV(repeating: 0)
        var a10 = FV(repeating: 0), a11 = FV(repeating: 0), a12 = FV(repeating: 0)
        var a20 = FV(repeating: 0), a21 = FV(repeating: 0), a22 = FV(repeating: 0)
        let zero = FV(repeating: 0)
        // Lanes at or past the row's end in the last vector of a row.
        let tailLanes = laneIndex .>= FV(repeating: Float(Wo % L == 0 ? L : Wo % L))
        let inp = input + (n * C + c) * H * W
        var y = rows.lowerBound
        // Two output rows at a time share three of their four input rows, so each
        // input vector loaded feeds up to six FMAs instead of three.
        while y + 2 <= rows.upperBound {
            let gr = g + y * gradRow, gs = gr + gradRow
            let r0 = inp + y * W, r1 = r0 + W, r2 = r1 + W, r3 = r2 + W
            var x = 0
            while x < Wo {
                var d = loadV(gr + x), e = loadV(gs + x)
                if x + L > Wo { d.replace(with: zero, where: tailLanes); e.replace(with: zero, where: tailLanes) }
                var v0 = loadV(r0 + x), v1 = loadV(r0 + x + 1), v2 = loadV(r0 + x + 2)
                a00.addProduct(d, v0); a01.addProduct(d, v1); a02.addProduct(d, v2)
                v0 = loadV(r1 + x); v1 = loadV(r1 + x + 1); v2 = loadV(r1 + x + 2)
                a10.addProduct(d, v0); a11.addProduct(d, v1); a12.addProduct(d, v2)
                a00.addProduct(e, v0); a01.addProduct(e, v1); a02.addProduct(e, v2)
                v0 = loadV(r2 + x); v1 = loadV(r2 + x + 1); v2 = loadV(r2 + x + 2)
                a20.addProduct(d, v0); a21.addProduct(d, v1); a22.addProduct(d, v2)
                a10.addProduct(e, v0); a11.addProduct(e, v1); a12.addProduct(e, v2)
                v0 = loadV(r3 + x); v1 = loadV(r3 + x + 1); v2 = loadV(r3 + x + 2)
                a20.addProduct(e, v0); a21.addProduct(e, v1); a22.addProduct(e, v2)
                x += L
            }
            y += 2
        }
        while y < rows.upperBound {
            let gr = g + y * gradRow
            let r0 = inp + y * W, r1 = r0 + W, r2 = r1 + W
            var x = 0
            while x < Wo {
                var d = loadV(gr + x)
                if x + L > Wo { d.replace(with: zero, where: tailLanes) }
                a00.addProduct(d, loadV(r0 + x)); a01.addProduct(d, loadV(r0 + x + 1)); a02.addProduct(d, loadV(r0 + x + 2))
                a10.addProduct(d, loadV(r1 + x)); a11.addProduct(d, loadV(r1 + x + 1)); a12.addProduct(d, loadV(r1 + x + 2))
                a20.addProduct(d, loadV(r2 + x)); a21.addProduct(d, loadV(r2 + x + 1)); a22.addProduct(d, loadV(r2 + x + 2))
                x += L
            }
            y += 1
        }
        result[0] = a00.sum(); result[1] = a01.sum(); result[2] = a02.sum()
        result[3] = a10.sum(); result[4] = a11.sum(); result[5] = a12.sum()
        result[6] = a20.sum(); result[7] = a21.sum(); result[8] = a22.sum()
    }

    /// `filterGradient` for two output channels (gradient planes `g0`, `g1`) and one
    /// input channel at once: each input vector loaded feeds up to four FMAs instead of
    /// two. It needs 18 accumulators plus the gradients in registers, which the 32
    /// AVX-512 registers hold; with 16 registers (AVX2, baseline) it would spill, so
    /// there it runs the one-channel kernel twice. Sums are taken in the same order
    /// as `filterGradient`, so the results are identical.
    public static func filterGradientPair(
        input: UnsafeMutablePointer<Float>, gradPlanes g0: UnsafeMutablePointer<Float>, _ g1: UnsafeMutablePointer<Float>,
        gradRow: Int, n: Int, rows: Range<Int>, c: Int, channels C: Int,
        inHeight H: Int, inWidth W: Int, outWidth Wo: Int,
        results r0: UnsafeMutablePointer<Float>, _ r1: UnsafeMutablePointer<Float>
    ) {
        guard L >= 16 else {
            filterGradient(input: input, gradPlane: g0, gradRow: gradRow, n: n, rows: rows, c: c, channels: C, inHeight: H, inWidth: W, outWidth: Wo, result: r0)
            filterGradient(input: input, gradPlane: g1, gradRow: gradRow, n: n, rows: rows, c: c, channels: C, inHeight: H, inWidth: W, outWidth: Wo, result: r1)
            return
        }
        var a00 = FV(repeating: 0), a01 = FV(repeating: 0), a02 = FV(repeating: 0)
        var a10 = FV(repeating: 0), a11 = FV(repeating: 0), a12 = FV(repeating: 0)
        var a20 = FV(repeating: 0), a21 = FV(repeating: 0), a22 = FV(repeating: 0)
        var b00 = FV(repeating: 0), b01 = FV(repeating: 0), b02 = FV(repeating: 0)
        var b10 = FV(repeating: 0), b11 = FV(repeating: 0), b12 = FV(repeating: 0)
        var b20 = FV(repeating: 0), b21 = FV(repeating: 0), b22 = FV(repeating: 0)
        let zero = FV(repeating: 0)
        let tailLanes = laneIndex .>= FV(repeating: Float(Wo % L == 0 ? L : Wo % L))
        let inp = input + (n * C + c) * H * W
        var y = rows.lowerBound
        while y + 2 <= rows.upperBound {
            let gr = g0 + y * gradRow, gs = gr + gradRow, hr = g1 + y * gradRow, hs = hr + gradRow
            let q0 = inp + y * W, q1 = q0 + W, q2 = q1 + W, q3 = q2 + W
            var x = 0
            while x < Wo {
                var d = loadV(gr + x), e = loadV(gs + x), f = loadV(hr + x), h = loadV(hs + x)
                if x + L > Wo {
                    d.replace(with: zero, where: tailLanes); e.replace(with: zero, where: tailLanes)
                    f.replace(with: zero, where: tailLanes); h.replace(with: zero, where: tailLanes)
                }
                var v0 = loadV(q0 + x), v1 = loadV(q0 + x + 1), v2 = loadV(q0 + x + 2)
                a00.addProduct(d, v0); a01.addProduct(d, v1); a02.addProduct(d, v2)
                b00.addProduct(f, v0); b01.addProduct(f, v1); b02.addProduct(f, v2)
                v0 = loadV(q1 + x); v1 = loadV(q1 + x + 1); v2 = loadV(q1 + x + 2)
                a10.addProduct(d, v0); a11.addProduct(d, v1); a12.addProduct(d, v2)
                b10.addProduct(f, v0); b11.addProduct(f, v1); b12.addProduct(f, v2)
                a00.addProduct(e, v0); a01.addProduct(e, v1); a02.addProduct(e, v2)
                b00.addProduct(h, v0); b01.addProduct(h, v1); b02.addProduct(h, v2)
                v0 = loadV(q2 + x); v1 = loadV(q2 + x + 1); v2 = loadV(q2 + x + 2)
                a20.addProduct(d, v0); a21.addProduct(d, v1); a22.addProduct(d, v2)
                b20.addProduct(f, v0); b21.addProduct(f, v1); b22.addProduct(f, v2)
                a10.addProduct(e, v0); a11.addProduct(e, v1); a12.addProduct(e, v2)
                b10.addProduct(h, v0); b11.addProduct(h, v1); b12.addProduct(h, v2)
                v0 = loadV(q3 + x); v1 = loadV(q3 + x + 1); v2 = loadV(q3 + x + 2)
                a20.addProduct(e, v0); a21.addProduct(e, v1); a22.addProduct(e, v2)
                b20.addProduct(h, v0); b21.addProduct(h, v1); b22.addProduct(h, v2)
                x += L
            }
            y += 2
        }
        while y < rows.upperBound {
            let gr = g0 + y * gradRow, hr = g1 + y * gradRow
            let q0 = inp + y * W, q1 = q0 + W, q2 = q1 + W
            var x = 0
            while x < Wo {
                var d = loadV(gr + x), f = loadV(hr + x)
                if x + L > Wo { d.replace(with: zero, where: tailLanes); f.replace(with: zero, where: tailLanes) }
                var v0 = loadV(q0 + x), v1 = loadV(q0 + x + 1), v2 = loadV(q0 + x + 2)
                a00.addProduct(d, v0); a01.addProduct(d, v1); a02.addProduct(d, v2)
                b00.addProduct(f, v0); b01.addProduct(f, v1); b02.addProduct(f, v2)
                v0 = loadV(q1 + x); v1 = loadV(q1 + x + 1); v2 = loadV(q1 + x + 2)
                a10.addProduct(d, v0); a11.addProduct(d, v1); a12.addProduct(d, v2)
                b10.addProduct(f, v0); b11.addProduct(f, v1); b12.addProduct(f, v2)
                v0 = loadV(q2 + x); v1 = loadV(q2 + x + 1); v2 = loadV(q2 + x + 2)
                a20.addProduct(d, v0); a21.addProduct(d, v1); a22.addProduct(d, v2)
                b20.addProduct(f, v0); b21.addProduct(f, v1); b22.addProduct(f, v2)
                x += L
            }
            y += 1
        }
        r0[0] = a00.sum(); r0[1] = a01.sum(); r0[2] = a02.sum()
        r0[3] = a10.sum(); r0[4] = a11.sum(); r0[5] = a12.sum()
        r0[6] = a20.sum(); r0[7] = a21.sum(); r0[8] = a22.sum()
        r1[0] = b00.sum(); r1[1] = b01.sum(); r1[2] = b02.sum()
        r1[3] = b10.sum(); r1[4] = b11.sum(); r1[5] = b12.sum()
        r1[6] = b20.sum(); r1[7] = b21.sum(); r1[8] = b22.sum()
    }

    /// `filterGradient` for four output channels (gradient planes `g`, `g + gradPlaneStride`,
    /// ...) and one input channel, for 16-register instruction sets (AVX2). Two channels'
    /// nine taps (18 accumulators, `filterGradientPair`) do not fit 16 registers, so this
    /// blocks the other way: per output row and kernel row `ky`, the three taps
    /// `(ky, 0..2)` of four channels (12 accumulators) take the three shifted input
    /// vectors (3 registers) and one gradient vector at a time (1 register). Each x step
    /// is 7 loads for 12 FMAs with 12 independent sums (the one-channel kernel: 14 loads
    /// for 18 FMAs on 9 sums, so it waits on FMA latency). The three `ky` passes run per
    /// output row on the same four gradient rows and three input rows, so they come from
    /// L1; the 36 sums live in a small stack array between rows.
    ///
    /// The shifted loads go through `overlapStep` (1, but not a constant to the
    /// optimizer): with `p + 1` and `p + 2` LLVM sees three overlapping loads and
    /// rebuilds one of them from scalar loads and shuffles, which costs more than the
    /// load. Results go to `results + k * resultStride + tap` for channel k = 0..3.
    public static func filterGradientQuad(
        input: UnsafeMutablePointer<Float>, gradPlanes g: UnsafeMutablePointer<Float>, gradPlaneStride gp: Int,
        gradRow: Int, n: Int, rows: Range<Int>, c: Int, channels C: Int,
        inHeight H: Int, inWidth W: Int, outWidth Wo: Int,
        results: UnsafeMutablePointer<Float>, resultStride rs: Int
    ) {
        let zero = FV(repeating: 0)
        let keep = laneIndex .< FV(repeating: Float(Wo % L == 0 ? L : Wo % L))
        let full = Wo - Wo % L
        let inp = input + (n * C + c) * H * W
        let one = overlapStep
        withUnsafeTemporaryAllocation(of: FV.self, capacity: 36) { sums in
            let s = sums.baseAddress!
            s.initialize(repeating: zero, count: 36)
            for y in rows {
                let d0 = g + y * gradRow, d1 = d0 + gp, d2 = d1 + gp, d3 = d2 + gp
                for ky in 0..<3 {
                    let a = s + ky * 12
                    var a00 = a[0], a01 = a[1], a02 = a[2], a10 = a[3], a11 = a[4], a12 = a[5]
                    var a20 = a[6], a21 = a[7], a22 = a[8], a30 = a[9], a31 = a[10], a32 = a[11]
                    let p0 = inp + (y + ky) * W, p1 = p0 + one, p2 = p1 + one
                    var x = 0
                    while x < full {
                        let v0 = loadV(p0 + x), v1 = loadV(p1 + x), v2 = loadV(p2 + x)
                        var d = loadV(d0 + x)
                        a00.addProduct(d, v0); a01.addProduct(d, v1); a02.addProduct(d, v2)
                        d = loadV(d1 + x)
                        a10.addProduct(d, v0); a11.addProduct(d, v1); a12.addProduct(d, v2)
                        d = loadV(d2 + x)
                        a20.addProduct(d, v0); a21.addProduct(d, v1); a22.addProduct(d, v2)
                        d = loadV(d3 + x)
                        a30.addProduct(d, v0); a31.addProduct(d, v1); a32.addProduct(d, v2)
                        x += L
                    }
                    if x < Wo {
                        // The last partial vector: gradient lanes past the row's end count as zero.
                        let v0 = loadV(p0 + x), v1 = loadV(p1 + x), v2 = loadV(p2 + x)
                        var d = zero
                        d.replace(with: loadV(d0 + x), where: keep)
                        a00.addProduct(d, v0); a01.addProduct(d, v1); a02.addProduct(d, v2)
                        d = zero
                        d.replace(with: loadV(d1 + x), where: keep)
                        a10.addProduct(d, v0); a11.addProduct(d, v1); a12.addProduct(d, v2)
                        d = zero
                        d.replace(with: loadV(d2 + x), where: keep)
                        a20.addProduct(d, v0); a21.addProduct(d, v1); a22.addProduct(d, v2)
                        d = zero
                        d.replace(with: loadV(d3 + x), where: keep)
                        a30.addProduct(d, v0); a31.addProduct(d, v1); a32.addProduct(d, v2)
                    }
                    a[0] = a00; a[1] = a01; a[2] = a02; a[3] = a10; a[4] = a11; a[5] = a12
                    a[6] = a20; a[7] = a21; a[8] = a22; a[9] = a30; a[10] = a31; a[11] = a32
                }
            }
            for ky in 0..<3 {
                for k in 0..<4 {
                    for kx in 0..<3 { results[k * rs + ky * 3 + kx] = s[ky * 12 + k * 3 + kx].sum() }
                }
            }
        }
    }
}

/// Whether `forwardRow` takes 3L pixels per step: with 8-float vectors in 16 registers
/// (AVX2). Not on AVX-512 (the 2L step is measured there) nor in the baseline x86-64
/// copy, where an 8-float vector takes two of SSE2's 16 registers and 12 sums spill.
#if CYTOCL_NO_FMA
    @inline(__always) var forwardThreeVectors: Bool { false }
#else
    @inline(__always) var forwardThreeVectors: Bool { L < 16 }
#endif

/// 1, read from a public variable so that the optimizer cannot fold it into the
/// address of a load (see `filterGradientQuad`). Never written.
nonisolated(unsafe) public var overlapStep = 1
