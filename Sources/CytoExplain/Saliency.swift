import CytoCore

/// Gradient saliency (Simonyan et al. 2014) on any backend: the absolute gradient of
/// one class's pre-softmax score with respect to the 1/255-scaled input pixels, maximum
/// over the colour channels. Runs `forward` and `backward(inputGradient: true)` of the
/// network on its own backend, so it works on the CPU and through OpenCL alike.
public enum Saliency {
    /// One saliency map per image.
    public struct Result: Sendable {
        /// [H * W] per image, row-major.
        public var maps: [[Float]]
        /// [classes] per image: the logits of the forward pass.
        public var logits: [[Float]]
        /// The class whose score was explained, per image.
        public var classes: [Int]
    }

    /// Explains the first `batch` images already in `network.input`.
    /// - Parameter classIndex: the class to explain for image `i`, given its logits
    ///   (e.g. `{ $1.argmaxIndex }` for the predicted class).
    public static func compute(
        network net: Network, batch n: Int,
        classIndex: (_ image: Int, _ logits: [Float]) -> Int
    ) throws -> Result {
        let spec = net.spec
        let k = spec.classes
        net.forward(batch: n)
        let logits = try net.backend.read(net.logits, offset: 0, count: n * k)
        guard logits.allSatisfy(\.isFinite) else {
            throw CytoError.invalidModel("the model's scores are not finite (NaN or Inf): its weights overflow float32 arithmetic")
        }
        var oneHot = [Float](repeating: 0, count: n * k)
        var chosen: [Int] = []
        var perImage: [[Float]] = []
        for i in 0..<n {
            let l = Array(logits[i * k..<(i + 1) * k])
            let c = classIndex(i, l)
            precondition(c >= 0 && c < k, "class \(c) outside 0..<\(k)")
            oneHot[i * k + c] = 1
            chosen.append(c); perImage.append(l)
        }
        net.backend.write(oneHot, to: net.logitGradient, offset: 0)
        try net.backward(batch: n, inputGradient: true)
        guard let gBuffer = net.inputGradient else { throw CytoError.invalidModel("no input gradient buffer") }
        let c = spec.inputChannels, hw = spec.inputHeight * spec.inputWidth
        let g = try net.backend.read(gBuffer, offset: 0, count: n * c * hw)
        var maps: [[Float]] = []
        for i in 0..<n {
            var m = [Float](repeating: 0, count: hw)
            for ch in 0..<c {
                let base = (i * c + ch) * hw
                for p in 0..<hw { m[p] = max(m[p], abs(g[base + p])) }
            }
            maps.append(m)
        }
        return Result(maps: maps, logits: perImage, classes: chosen)
    }

    /// Uploads `inputs` (each [C, H, W], 1/255-scaled) and explains them in batches of
    /// at most `network.maxBatch`.
    public static func compute(
        network net: Network, inputs: [[Float]],
        classIndex: (_ image: Int, _ logits: [Float]) -> Int
    ) throws -> Result {
        var result = Result(maps: [], logits: [], classes: [])
        var start = 0
        while start < inputs.count {
            let n = min(net.maxBatch, inputs.count - start)
            var flat: [Float] = []
            flat.reserveCapacity(n * (inputs.first?.count ?? 0))
            for i in start..<start + n { flat += inputs[i] }
            net.backend.write(flat, to: net.input, offset: 0)
            let r = try compute(network: net, batch: n) { classIndex(start + $0, $1) }
            result.maps += r.maps; result.logits += r.logits; result.classes += r.classes
            start += n
        }
        return result
    }
}

/// Input conversion shared by saliency, LRP and the commands.
public enum ExplainInput {
    /// NHWC uint8 pixels of one image to CHW floats scaled by 1/255 (what the network sees).
    public static func chw(hwc pixels: ArraySlice<UInt8>, height: Int, width: Int, channels: Int = 3) -> [Float] {
        precondition(pixels.count == height * width * channels)
        var out = [Float](repeating: 0, count: pixels.count)
        let base = pixels.startIndex
        let hw = height * width
        for p in 0..<hw {
            for c in 0..<channels { out[c * hw + p] = Float(pixels[base + p * channels + c]) * (1 / 255) }
        }
        return out
    }

    public static func chw(hwc pixels: [UInt8], height: Int, width: Int, channels: Int = 3) -> [Float] {
        chw(hwc: pixels[...], height: height, width: width, channels: channels)
    }
}

extension Array where Element == Float {
    /// Index of the first maximum (0 for an empty array).
    public var argmaxIndex: Int {
        var best = 0
        for i in indices where self[i] > self[best] { best = i }
        return best
    }
}
