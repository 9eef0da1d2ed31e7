import CytoCore
import CytoExplain
import Foundation

/// The normalised-temperature cross-entropy of SimCLR (Chen et al., ICML 2020): rows
/// `2k` and `2k + 1` of a batch are two views of the same image; each row's loss is
/// the cross-entropy of picking its partner among all other rows by cosine similarity
/// over a temperature. Computed on the host in double precision: at tens of rows of
/// 16 numbers it costs nothing beside the network, and it needs no new device op.
public enum NTXent {
    /// Mean loss over the `rows` rows of `z` (row-major, `dimension` wide) and its
    /// gradient with respect to `z`. `rows` must be even and at least 4 (two images).
    public static func lossAndGradient(_ z: [Double], rows n: Int, dimension d: Int, temperature t: Double) -> (
        loss: Double, gradient: [Double]
    ) {
        precondition(n >= 4 && n % 2 == 0 && z.count == n * d && t > 0)
        // u = z / |z| (a tiny floor keeps a zero row finite).
        var norm = [Double](repeating: 0, count: n), u = [Double](repeating: 0, count: n * d)
        for i in 0..<n {
            var s = 0.0
            for j in 0..<d { s += z[i * d + j] * z[i * d + j] }
            norm[i] = max(s.squareRoot(), 1e-12)
            for j in 0..<d { u[i * d + j] = z[i * d + j] / norm[i] }
        }
        // Similarities over the temperature, and each row's softmax over the other rows.
        var p = [Double](repeating: 0, count: n * n)
        var loss = 0.0
        for i in 0..<n {
            var sims = [Double](repeating: -.infinity, count: n)
            for k in 0..<n where k != i {
                var s = 0.0
                for j in 0..<d { s += u[i * d + j] * u[k * d + j] }
                sims[k] = s / t
            }
            let m = sims.max()!
            var sum = 0.0
            for k in 0..<n where k != i { sum += exp(sims[k] - m) }
            for k in 0..<n where k != i { p[i * n + k] = exp(sims[k] - m) / sum }
            loss += -(sims[i ^ 1] - m - log(sum))
        }
        loss /= Double(n)
        // dL/du_i = (sum_k (P_ik + P_ki) u_k - 2 u_partner) / (n t); then through the
        // normalisation: dL/dz_i = (g - (g . u_i) u_i) / |z_i|.
        var grad = [Double](repeating: 0, count: n * d)
        for i in 0..<n {
            var g = [Double](repeating: 0, count: d)
            for k in 0..<n where k != i {
                let w = p[i * n + k] + p[k * n + i] - (k == (i ^ 1) ? 2 : 0)
                for j in 0..<d { g[j] += w * u[k * d + j] }
            }
            var dot = 0.0
            for j in 0..<d { g[j] /= Double(n) * t; dot += g[j] * u[i * d + j] }
            for j in 0..<d { grad[i * d + j] = (g[j] - dot * u[i * d + j]) / norm[i] }
        }
        return (loss, grad)
    }
}

/// How the two views of a pool image differ: the engine's training augmentation
/// (`AugmentTransform`: any rotation, both flips) composed with a random zoom into
/// part of the frame, then a colour jitter. Rotations and flips alone keep every
/// image's colour histogram exactly, so a network could match the two views by
/// colour alone and learn nothing about shape; the jitter (contrast about the
/// image's mean and a shift per channel) and the zoom take that shortcut away, as
/// colour distortion and cropping do in SimCLR.
public struct ContrastiveView: Sendable, Equatable {
    public var transform: AugmentTransform
    /// Side of the sampled square as a fraction of the frame (1: the whole frame).
    public var scale: Float
    /// Top-left corner of the sampled square, in output pixels.
    public var rowOffset: Float, columnOffset: Float
    /// Multiplies each value's distance from the view's mean (1: unchanged).
    public var contrast: Float
    /// Added to each channel after the contrast, in [0, 1] units.
    public var shift: [Float]

    public init(transform: AugmentTransform, scale: Float = 1, rowOffset: Float = 0, columnOffset: Float = 0, contrast: Float = 1, shift: [Float] = [0, 0, 0]) {
        self.transform = transform; self.scale = scale; self.rowOffset = rowOffset; self.columnOffset = columnOffset
        self.contrast = contrast; self.shift = shift
    }

    /// A random view: rotation and flips as in training (bilinear, so zoomed views are
    /// smooth), a square of 70-100% of the side anywhere in the frame, contrast
    /// 0.7-1.3 and a shift of up to 0.08 per channel (drawn, and then left out, without
    /// `colourJitter`, so that the other draws stay the same).
    public static func random<G: RandomNumberGenerator>(
        height: Int, width: Int, colourJitter: Bool = true, using rng: inout G
    ) -> ContrastiveView {
        let transform = AugmentTransform.random(using: &rng, sampler: .bilinear)
        let scale = Float.random(in: 0.7...1, using: &rng)
        let rowOffset = Float.random(in: 0...1, using: &rng) * (1 - scale) * Float(height - 1)
        let columnOffset = Float.random(in: 0...1, using: &rng) * (1 - scale) * Float(width - 1)
        let contrast = Float.random(in: 0.7...1.3, using: &rng)
        let shift = (0..<3).map { _ in Float.random(in: -0.08...0.08, using: &rng) }
        return ContrastiveView(
            transform: transform, scale: scale, rowOffset: rowOffset, columnOffset: columnOffset,
            contrast: colourJitter ? contrast : 1, shift: colourJitter ? shift : [0, 0, 0])
    }

    /// The view of one HWC uint8 image as CHW floats scaled by 1/255 (what the network
    /// sees). Output pixel (y, x) samples the engine's augmentation map at
    /// (rowOffset + scale*y, columnOffset + scale*x), so at scale 1 and offset 0 it is
    /// exactly `Backend.gatherBatch`'s augmented image, before the jitter.
    public func render(_ image: UnsafeBufferPointer<UInt8>, height h: Int, width w: Int, channels: Int = 3) -> [Float] {
        let map = transform.map(height: h, width: w)
        var out = [Float](repeating: 0, count: channels * h * w)
        let base = image.baseAddress!
        for y in 0..<h {
            let fy = rowOffset + scale * Float(y)
            let r0 = map.rowBase + fy * map.rowPerY, c0 = map.colBase + fy * map.colPerY
            for x in 0..<w {
                let fx = columnOffset + scale * Float(x)
                let sr = r0 + fx * map.rowPerX, sc = c0 + fx * map.colPerX
                for c in 0..<channels {
                    out[(c * h + y) * w + x] = AugmentTransform.sample(
                        base, height: h, width: w, channels: channels, channel: c, row: sr, column: sc, sampler: map.sampler)
                }
            }
        }
        guard contrast != 1 || shift.contains(where: { $0 != 0 }) else { return out }
        let mean = out.reduce(0, +) / Float(out.count)
        let plane = h * w
        for c in 0..<channels {
            let add = c < shift.count ? shift[c] : 0
            for k in (c * plane)..<((c + 1) * plane) { out[k] = min(1, max(0, mean + (out[k] - mean) * contrast + add)) }
        }
        return out
    }
}

/// Settings of the self-supervised pre-training. The defaults bound its cost: at most
/// `maxSteps` steps of `pairsPerStep` images (two views each), whatever the pool's size
/// (about 20 s of CPU time on Zen 4 at 64x64). 1,000 steps selected better than 300 on
/// the six PBC leukocyte classes and no worse elsewhere (docs/selection.md).
public struct ContrastiveOptions: Sendable, Equatable {
    /// Passes over the pool (fewer when `maxSteps` comes first).
    public var epochs = 100
    public var maxSteps = 1_000
    /// Images per step; the batch holds two views of each.
    public var pairsPerStep = 32
    /// NT-Xent temperature (SimCLR's 0.5 for small batches).
    public var temperature = 0.5
    /// Adam's learning rate.
    public var learningRate: Float = 0.001
    /// Whether the views' colours are jittered (`ContrastiveView.random`). Without it the
    /// selections measured no better (docs/selection.md): colour is much of what tells
    /// leukocytes apart, but views matched by colour alone teach no shape.
    public var colourJitter = true
    /// Width of the linear projection the loss sees (the embedding is the layer below it).
    public var projection = 16
    /// Weights, batches and views: fixed, so embeddings (and picks) are reproducible.
    public var seed: UInt64 = 20_230_101

    public init() {}
}

/// The paper's network pre-trained on the unlabelled images themselves (SimCLR): its
/// conv blocks and 32-unit dense layer learn to give two augmented views of an image
/// nearby outputs and other images' views distant ones, through a linear projection
/// that the loss sees and the embedding does not (the layer below a projection keeps
/// more of what the augmentation changes, and transfers better, as Chen et al.
/// found). The projection is the network's output layer, so pre-training is the
/// ordinary forward and backward of `Network` on any backend, with the loss's
/// gradient written where the cross-entropy's would be. No label is read.
public enum ContrastiveFeatures {
    /// Units of the encoder's dense layer (the paper's).
    public static let units = 32

    /// The paper's conv blocks (as many as the input size carries), one dense layer of
    /// `units`, and the projection as the output layer.
    public static func spec(height: Int, width: Int, options: ContrastiveOptions = ContrastiveOptions()) throws -> ModelSpec {
        try RandomNetworkFeatures.paperPrefixSpec(
            height: height, width: width, units: units, classes: options.projection, embedding: "contrastive")
    }

    /// Pre-trains a network on `count` HWC images; returns it and the mean loss of each step.
    public static func pretrain(
        pixels: [UInt8], count: Int, height: Int, width: Int, backend: any Backend,
        options o: ContrastiveOptions = ContrastiveOptions()
    ) throws -> (network: Network, losses: [Double]) {
        guard count >= 2 else {
            throw CytoError.invalidArgument("a contrastive embedding needs at least 2 images (got \(count))")
        }
        let pairs = max(2, min(o.pairsPerStep, count))
        let net = try Network(spec: try spec(height: height, width: width, options: o), backend: backend, maxBatch: 2 * pairs)
        net.initialize(seed: o.seed)
        let optimizer = OptimizerConfig(kind: .adam, learningRate: o.learningRate)
        var rng = SeededGenerator.stream(seed: o.seed, "contrastive")
        let perEpoch = (count + pairs - 1) / pairs
        let steps = max(1, min(o.maxSteps, o.epochs * perEpoch))
        var order = Array(0..<count).shuffled(using: &rng), next = 0
        var losses: [Double] = []
        for _ in 0..<steps {
            // A fresh shuffle when fewer than two images are left in this pass.
            if count - next < 2 {
                order = Array(0..<count).shuffled(using: &rng); next = 0
            }
            let batch = Array(order[next..<min(count, next + pairs)])
            next += batch.count
            let views = twoViews(of: batch.count, height: height, width: width, options: o, using: &rng)
            let (loss, _) = try step(net, views: views, images: batch.flatMap { [$0, $0] }, pixels: pixels, height: height, width: width, options: o, train: optimizer)
            losses.append(loss)
        }
        return (net, losses)
    }

    /// The mean NT-Xent of `network` on fixed views of the images (seeded by `seed`),
    /// in batches of `pairsPerStep`: what pre-training lowers, measured without training.
    public static func loss(
        of network: Network, pixels: [UInt8], count: Int, height: Int, width: Int, seed: UInt64,
        options o: ContrastiveOptions = ContrastiveOptions()
    ) throws -> Double {
        var rng = SeededGenerator.stream(seed: seed, "contrastive.eval")
        let pairs = max(2, min(o.pairsPerStep, network.maxBatch / 2))
        var total = 0.0, batches = 0, start = 0
        while count - start >= 2 {
            let end = min(count, start + pairs)
            let batch = Array(start..<end)
            let views = twoViews(of: batch.count, height: height, width: width, options: o, using: &rng)
            let (l, _) = try step(network, views: views, images: batch.flatMap { [$0, $0] }, pixels: pixels, height: height, width: width, options: o, train: nil)
            total += l; batches += 1; start = end
        }
        return total / Double(max(1, batches))
    }

    /// Two random views of each of `count` images, in the rows NT-Xent pairs (2k, 2k+1).
    static func twoViews<G: RandomNumberGenerator>(
        of count: Int, height: Int, width: Int, options o: ContrastiveOptions, using rng: inout G
    ) -> [ContrastiveView] {
        (0..<(2 * count)).map { _ in
            ContrastiveView.random(height: height, width: width, colourJitter: o.colourJitter, using: &rng)
        }
    }

    /// Forward (and, with an optimizer, backward and update) on one batch of views.
    static func step(
        _ net: Network, views: [ContrastiveView], images: [Int], pixels: [UInt8], height: Int, width: Int,
        options o: ContrastiveOptions, train optimizer: OptimizerConfig?
    ) throws -> (loss: Double, gradient: [Double]) {
        let per = height * width * 3, n = views.count
        precondition(n <= net.maxBatch)
        let rendered = Parallel.map(n, chunk: 4) { k in
            pixels.withUnsafeBufferPointer { all in
                views[k].render(UnsafeBufferPointer(rebasing: all[(images[k] * per)..<((images[k] + 1) * per)]), height: height, width: width)
            }
        }
        net.backend.write(rendered.flatMap { $0 }, to: net.input, offset: 0)
        net.forward(batch: n, keepingActivations: optimizer != nil)
        let d = net.spec.classes
        let z = try net.backend.read(net.logits, offset: 0, count: n * d)
        guard z.allSatisfy(\.isFinite) else {
            throw CytoError.invalidModel("contrastive pre-training diverged: the projection's outputs are not finite")
        }
        let r = NTXent.lossAndGradient(z.map(Double.init), rows: n, dimension: d, temperature: o.temperature)
        if let optimizer {
            net.backend.write(r.gradient.map(Float.init), to: net.logitGradient, offset: 0)
            try net.backward(batch: n)
            net.applyGradients(optimizer)
            try net.backend.checkErrors()
        }
        return r
    }

    /// The encoder's output (the dense layer below the projection) for every image,
    /// after pre-training on those same images.
    public static func rows(
        pixels: [UInt8], count: Int, height: Int, width: Int, backend: any Backend,
        options: ContrastiveOptions = ContrastiveOptions()
    ) throws -> [[Float]] {
        let net = try pretrain(pixels: pixels, count: count, height: height, width: width, backend: backend, options: options).network
        return try RandomNetworkFeatures.hiddenRows(of: net, pixels: pixels, count: count, height: height, width: width)
    }
}
