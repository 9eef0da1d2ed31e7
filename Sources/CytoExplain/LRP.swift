import CytoCore

/// The LRP propagation rule used for every conv and dense layer.
public enum LRPRule: Sendable, Equatable, CustomStringConvertible {
    /// `R_i = sum_j a_i w_ij / (z_j + eps * sign(z_j)) * R_j` (the paper uses eps = 1).
    case epsilon(Double)
    /// The z-rule: the epsilon rule with eps -> 0 (a 1e-9 stabiliser keeps 0/0 finite).
    case z

    public var stabiliser: Double {
        switch self {
        case .epsilon(let e): return e
        case .z: return 1e-9
        }
    }

    public var description: String {
        switch self {
        case .epsilon(let e): return "lrp-epsilon(\(e))"
        case .z: return "lrp-z"
        }
    }
}

/// Layer-wise relevance propagation (Bach et al. 2015) for a CytoCL network, computed
/// on the host in double precision from the model's weights: the network is tiny, so
/// a host pass takes a few tens of milliseconds per image and needs nothing from the
/// backend. The explained score is the chosen class's pre-softmax logit; relevance is
/// propagated through conv and dense layers with `rule` (biases take part in z and so
/// absorb their share), passes ReLUs unchanged, goes winner-take-all through max-pooling
/// (to the first maximum, as the backends route gradients), and is summed over the
/// colour channels at the input.
public struct LRP: Sendable {
    public let spec: ModelSpec
    let convW: [[Double]], convB: [[Double]]
    let denseW: [[Double]], denseB: [[Double]]

    /// Relevances for one image.
    public struct Result: Sendable {
        /// [H * W]: input relevance summed over colour channels.
        public var map: [Float]
        /// [C * H * W]: input relevance per channel.
        public var inputRelevance: [Double]
        /// The explained score (the class's logit).
        public var score: Double
        public var classIndex: Int
        public var logits: [Double]
        /// Sum of `inputRelevance`.
        public var relevanceSum: Double { inputRelevance.reduce(0, +) }
    }

    /// - Parameter weights: host tensors in the model-file layout (e.g. `Network.weights()`).
    public init(spec: ModelSpec, weights: [String: [Float]]) throws {
        try spec.validate()
        self.spec = spec
        func get(_ name: String, _ count: Int) throws -> [Double] {
            guard let v = weights[name] else { throw CytoError.invalidModel("missing tensor \(name)") }
            guard v.count == count else { throw CytoError.invalidModel("tensor \(name) has \(v.count) values, expected \(count)") }
            return v.map(Double.init)
        }
        var cw: [[Double]] = [], cb: [[Double]] = []
        for (i, g) in spec.convGeometries(batch: 1).enumerated() {
            cw.append(try get("conv\(i + 1).weight", g.weightCount))
            cb.append(try get("conv\(i + 1).bias", g.outChannels))
        }
        var dw: [[Double]] = [], db: [[Double]] = []
        for (j, d) in spec.denseShapes.enumerated() {
            dw.append(try get("dense\(j + 1).weight", d.inFeatures * d.outFeatures))
            db.append(try get("dense\(j + 1).bias", d.outFeatures))
        }
        convW = cw; convB = cb; denseW = dw; denseB = db
    }

    /// Everything the relevance pass needs from the forward pass.
    struct Trace {
        var convInputs: [[Double]] = []  // input of conv i (image, or pool i-1 output)
        var convPre: [[Double]] = []  // pre-activation of conv i
        var poolArg: [[Int]] = []  // flat index into conv i's output plane set, per pooled value
        var denseInputs: [[Double]] = []
        var densePre: [[Double]] = []
    }

    /// Logits of one image ([C, H, W], 1/255-scaled), computed on the host.
    public func logits(input: [Float]) -> [Double] { forward(input.map(Double.init)).densePre.last! }

    func forward(_ x0: [Double]) -> Trace {
        var t = Trace()
        var x = x0
        for (i, g) in spec.convGeometries(batch: 1).enumerated() {
            precondition(x.count == g.inputCount, "input has \(x.count) values, expected \(g.inputCount)")
            let z = LRP.conv(x, g, convW[i], convB[i])
            t.convInputs.append(x); t.convPre.append(z)
            // ReLU + 2x2 max-pool (floor), remembering the first maximum.
            let oh = g.outHeight, ow = g.outWidth, ph = oh / 2, pw = ow / 2
            var pooled = [Double](repeating: 0, count: g.outChannels * ph * pw)
            var arg = [Int](repeating: 0, count: pooled.count)
            for o in 0..<g.outChannels {
                for py in 0..<ph {
                    for px in 0..<pw {
                        var bestI = o * oh * ow + 2 * py * ow + 2 * px
                        var best = max(z[bestI], 0)
                        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                            let j = o * oh * ow + (2 * py + dy) * ow + 2 * px + dx
                            let v = max(z[j], 0)
                            if v > best { best = v; bestI = j }
                        }
                        let k = (o * ph + py) * pw + px
                        pooled[k] = best; arg[k] = bestI
                    }
                }
            }
            t.poolArg.append(arg)
            x = pooled
        }
        let shapes = spec.denseShapes
        for (j, d) in shapes.enumerated() {
            t.denseInputs.append(x)
            var z = denseB[j]
            denseW[j].withUnsafeBufferPointer { w in
                for o in 0..<d.outFeatures {
                    var s = 0.0
                    let row = o * d.inFeatures
                    for i in 0..<d.inFeatures { s += w[row + i] * x[i] }
                    z[o] += s
                }
            }
            t.densePre.append(z)
            x = j < shapes.count - 1 ? z.map { max($0, 0) } : z
        }
        return t
    }

    /// Relevance of every input pixel for the score of `classIndex` (nil: the predicted class).
    public func explain(input: [Float], classIndex: Int? = nil, rule: LRPRule) -> Result {
        let t = forward(input.map(Double.init))
        let logits = t.densePre.last!
        var c = 0
        if let ci = classIndex { c = ci } else { for k in logits.indices where logits[k] > logits[c] { c = k } }
        precondition(c >= 0 && c < spec.classes, "class \(c) outside 0..<\(spec.classes)")
        let eps = rule.stabiliser
        func stabilise(_ z: Double) -> Double { z + (z >= 0 ? eps : -eps) }

        // Dense layers, last to first.
        var r = [Double](repeating: 0, count: spec.classes)
        r[c] = logits[c]
        let shapes = spec.denseShapes
        for j in stride(from: shapes.count - 1, through: 0, by: -1) {
            let d = shapes[j]
            let a = t.denseInputs[j], z = t.densePre[j]
            var s = [Double](repeating: 0, count: d.outFeatures)
            for o in 0..<d.outFeatures where r[o] != 0 { s[o] = r[o] / stabilise(z[o]) }
            var rin = [Double](repeating: 0, count: d.inFeatures)
            denseW[j].withUnsafeBufferPointer { w in
                for o in 0..<d.outFeatures where s[o] != 0 {
                    let row = o * d.inFeatures, so = s[o]
                    for i in 0..<d.inFeatures { rin[i] += w[row + i] * so }
                }
            }
            for i in 0..<d.inFeatures { rin[i] *= a[i] }
            r = rin
        }
        // Conv blocks, last to first: un-pool (winner takes all), then the conv rule.
        let convs = spec.convGeometries(batch: 1)
        for i in stride(from: convs.count - 1, through: 0, by: -1) {
            let g = convs[i]
            let z = t.convPre[i]
            var s = [Double](repeating: 0, count: z.count)
            let arg = t.poolArg[i]
            for k in 0..<arg.count where r[k] != 0 {
                let j = arg[k]
                s[j] = r[k] / stabilise(z[j])
            }
            var rin = LRP.convTranspose(s, g, convW[i])
            let a = t.convInputs[i]
            for k in 0..<rin.count { rin[k] *= a[k] }
            r = rin
        }
        let hw = spec.inputHeight * spec.inputWidth
        var map = [Float](repeating: 0, count: hw)
        // Sum per pixel in double, then round once.
        for p in 0..<hw {
            var sum = 0.0
            for ch in 0..<spec.inputChannels { sum += r[ch * hw + p] }
            map[p] = Float(sum)
        }
        return Result(map: map, inputRelevance: r, score: logits[c], classIndex: c, logits: logits)
    }

    /// 3x3 valid convolution of one image [C, H, W] -> [O, H-2, W-2] plus bias.
    static func conv(_ x: [Double], _ g: ConvGeometry, _ w: [Double], _ b: [Double]) -> [Double] {
        let plane = g.outHeight * g.outWidth
        var out = [Double](repeating: 0, count: g.outChannels * plane)
        for o in 0..<g.outChannels {
            for k in 0..<plane { out[o * plane + k] = b[o] }
        }
        accumulateTaps(from: x, into: &out, g, w, transposed: false)
        return out
    }

    /// Transposed 3x3 valid convolution: [O, H-2, W-2] -> [C, H, W].
    static func convTranspose(_ s: [Double], _ g: ConvGeometry, _ w: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: g.inChannels * g.inHeight * g.inWidth)
        accumulateTaps(from: s, into: &out, g, w, transposed: true)
        return out
    }

    /// The loop `conv` and `convTranspose` share. Every nonzero weight w[o][c][ky][kx]
    /// joins row y of output plane o ([O, H-2, W-2]) with row y+ky, from column kx, of
    /// image plane c ([C, H, W]): the convolution adds weight x image row into the output
    /// row, the transposed one weight x output row into the image row. Either way each
    /// destination value sums its terms in the order (source plane, ky, kx).
    private static func accumulateTaps(
        from source: [Double], into destination: inout [Double], _ g: ConvGeometry, _ w: [Double], transposed: Bool
    ) {
        let wd = g.inWidth, oh = g.outHeight, ow = g.outWidth
        let imagePlane = g.inHeight * wd, outputPlane = oh * ow
        source.withUnsafeBufferPointer { sp in
            w.withUnsafeBufferPointer { wp in
                destination.withUnsafeMutableBufferPointer { dp in
                    let ss = sp.baseAddress!, ws = wp.baseAddress!, ds = dp.baseAddress!
                    for o in 0..<g.outChannels {
                        for c in 0..<g.inChannels {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let wv = ws[((o * g.inChannels + c) * 3 + ky) * 3 + kx]
                                    if wv == 0 { continue }
                                    for y in 0..<oh {
                                        let imageRow = c * imagePlane + (y + ky) * wd + kx, outputRow = o * outputPlane + y * ow
                                        let s = ss + (transposed ? outputRow : imageRow)
                                        let d = ds + (transposed ? imageRow : outputRow)
                                        for xx in 0..<ow { d[xx] += wv * s[xx] }
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
