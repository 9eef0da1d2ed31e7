/// Where a saliency map may differ from another float32 implementation's (Keras) for a
/// reason no rule can remove: max-pool windows whose two largest inputs are *nearly*
/// tied.
///
/// Exact ties are not the problem: TensorFlow 2.21's max-pool gradient (eager and
/// `tf.function`, oneDNN on and off; checked on 2x2 windows of equal positive values,
/// zeros, negatives, and -0 against +0) goes to the first maximum in row-major order,
/// as CytoCL's kernels do, and identical patches give bitwise equal activations in both.
/// A window whose two largest inputs differ by less than the float32 rounding of the
/// convolution sums, though, is ordered by the last bits of those sums, which depend on
/// each implementation's summation order (TensorFlow's own float32 and float64 passes
/// route such a window differently on one of the project's reference files). The
/// window's whole gradient then lands on the other input, and every input pixel under
/// those two positions gets a different saliency: a difference of the saliency's own
/// size (1e-5 to 1e-4) at a handful of pixels, while everything else agrees to 1e-7.
///
/// The allowance is derived from those windows, per pixel, and nowhere else: a window
/// of block k is near-tied when its two largest distinct inputs differ by at most twice
/// `differences[k]`, the largest |ours - reference| of that block's pooled activations
/// measured against the file (each of the two inputs can be off by that much). Inputs
/// exactly equal to the maximum count too, unless they are computed from bitwise equal
/// inputs (an exact tie, routed by the rule alike everywhere): two different sums can
/// round to the same float here and not in another implementation. The
/// same holds for a window maximum within `differences[k]` of 0, where the other
/// implementation's ReLU may have cut it. Such a window's gradient g may move from its
/// maximum to any input within the gap (or vanish): a change of at most |g| at each of
/// those positions. Back-propagated with the absolute weights through the layers below, along
/// this network's own routing, that bounds the change of |d score / d x| at every
/// pixel (the saliency's maximum over channels moves by at most the largest channel's
/// bound). Windows whose inputs ReLU cut to exactly 0 have no measurable gap and get no
/// allowance.
public struct NearTieAllowance: Sendable {
    /// Extra allowance per saliency element, [N, H, W] like the saliency.
    public var extra: [Float]
    /// Near-tied windows per block (summed over the batch).
    public var windows: [Int]
    /// The gap under which a window of each block counts as near-tied.
    public var thresholds: [Float]
    /// Pixels with an extra allowance.
    public var pixels: Int { extra.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
}

extension Network {
    /// The near-tie allowance for the saliency of the last forward pass (which must have
    /// kept its activations) of the first `n` images, explaining class `chosen[i]` of
    /// image i, with `differences[k]` the measured activation difference of block k.
    /// Recomputes the score's gradient on the host (plain loops; a few seconds at
    /// 400x400) so it needs nothing from the backend but the kept activations and weights.
    public func nearTieAllowance(batch n: Int, classes chosen: [Int], differences: [Float]) throws -> NearTieAllowance {
        precondition(chosen.count == n && differences.count == spec.convFilters.count)
        let weights = try self.weights()
        let geometries = spec.convGeometries(batch: 1)
        let thresholds = differences.map { 2 * $0 }
        let hw = spec.inputHeight * spec.inputWidth
        var extra = [Float](repeating: 0, count: n * hw)
        var windows = [Int](repeating: 0, count: geometries.count)
        let denses = spec.denseShapes
        for i in 0..<n {
            // Dense layers, top down: the signed gradient only (the bound starts at the pools).
            var g = [Float](repeating: 0, count: spec.classes)
            g[chosen[i]] = 1
            for j in stride(from: denses.count - 1, through: 0, by: -1) {
                let d = denses[j]
                let w = weights["dense\(j + 1).weight"]!  // [out, in]
                var gi = [Float](repeating: 0, count: d.inFeatures)
                for o in 0..<d.outFeatures where g[o] != 0 {
                    for f in 0..<d.inFeatures { gi[f] += w[o * d.inFeatures + f] * g[o] }
                }
                if j > 0 {
                    let a = try backend.read(denseOut[j - 1], offset: i * d.inFeatures, count: d.inFeatures)
                    for f in 0..<d.inFeatures where !(a[f] > 0) { gi[f] = 0 }
                }
                g = gi
            }
            var bound = [Float](repeating: 0, count: g.count)
            for k in stride(from: geometries.count - 1, through: 0, by: -1) {
                let geo = geometries[k]
                let C = geo.outChannels, H = geo.outHeight, W = geo.outWidth, Hp = H / 2, Wp = W / 2
                let act = try backend.read(convOut[k], offset: i * C * H * W, count: C * H * W)
                let Ci = geo.inChannels, Hi = geo.inHeight, Wi = geo.inWidth
                let x = try backend.read(k == 0 ? input : pooled[k - 1], offset: i * Ci * Hi * Wi, count: Ci * Hi * Wi)
                /// Whether conv outputs p and q (indices into `act`) read bitwise equal inputs.
                func samePatch(_ p: Int, _ q: Int) -> Bool {
                    let (py, px) = ((p / W) % H, p % W), (qy, qx) = ((q / W) % H, q % W)
                    for ci in 0..<Ci {
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let base = ci * Hi * Wi + ky * Wi + kx
                                if x[base + py * Wi + px].bitPattern != x[base + qy * Wi + qx].bitPattern { return false }
                            }
                        }
                    }
                    return true
                }
                var gz = [Float](repeating: 0, count: C * H * W), bz = gz
                let t = thresholds[k]
                for c in 0..<C {
                    for py in 0..<Hp {
                        for px in 0..<Wp {
                            let top = (c * H + 2 * py) * W + 2 * px
                            let pos = [top, top + 1, top + W, top + W + 1]
                            var a = pos[0]
                            for p in pos.dropFirst() where act[p] > act[a] { a = p }
                            let m1 = act[a]
                            guard m1 > 0 else { continue }  // ReLU cut the whole window
                            let q = (c * Hp + py) * Wp + px
                            let gw = g[q], bw = bound[q]
                            gz[a] = gw; bz[a] = bw
                            // Every other input within the gap may win elsewhere, an equal one too
                            // unless it reads the same inputs (an exact tie every implementation
                            // computes alike and routes to the first maximum).
                            let rivals = pos.filter {
                                $0 != a && act[$0] > 0 && m1 - act[$0] <= t && (act[$0] < m1 || !samePatch($0, a))
                            }
                            if !rivals.isEmpty {
                                windows[k] += 1
                                bz[a] += abs(gw)
                                for b in rivals { bz[b] += abs(gw) + bw }
                            } else if m1 <= differences[k] {
                                windows[k] += 1
                                bz[a] += abs(gw)
                            }
                        }
                    }
                }
                // Data gradient of the valid 3x3 convolution, signed and with |w|.
                let w = weights["conv\(k + 1).weight"]!  // [O, I, 3, 3]
                var gi = [Float](repeating: 0, count: Ci * Hi * Wi), bi = gi
                gz.withUnsafeBufferPointer { gzp in
                    bz.withUnsafeBufferPointer { bzp in
                        gi.withUnsafeMutableBufferPointer { gip in
                            bi.withUnsafeMutableBufferPointer { bip in
                                for o in 0..<C {
                                    for y in 0..<H {
                                        for x in 0..<W {
                                            let gv = gzp[(o * H + y) * W + x], bv = bzp[(o * H + y) * W + x]
                                            if gv == 0 && bv == 0 { continue }
                                            for ci in 0..<Ci {
                                                for ky in 0..<3 {
                                                    let row = (ci * Hi + y + ky) * Wi + x
                                                    for kx in 0..<3 {
                                                        let wv = w[((o * Ci + ci) * 3 + ky) * 3 + kx]
                                                        gip[row + kx] += wv * gv
                                                        bip[row + kx] += abs(wv) * bv
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                g = gi; bound = bi
            }
            let channels = spec.inputChannels
            for p in 0..<hw {
                var m: Float = 0
                for c in 0..<channels { m = max(m, bound[c * hw + p]) }
                extra[i * hw + p] = m
            }
        }
        return NearTieAllowance(extra: extra, windows: windows, thresholds: thresholds)
    }
}
