import CytoCore

/// Activations of a hidden dense layer for many images, computed on the network's
/// backend in batches (the input to t-SNE in `embed` and in sweep reports).
public enum HiddenActivations {
    /// - Parameters:
    ///   - count: number of images.
    ///   - input: image `i` as [C, H, W], 1/255-scaled (built on demand, so large sets
    ///     never exist as floats all at once).
    ///   - layer: hidden dense layer index (0 = dense1).
    public static func compute(
        network net: Network, count: Int, layer: Int = 0,
        progress: ((Int) -> Void)? = nil, input: (Int) -> [Float]
    ) throws -> [[Float]] {
        let units = net.spec.denseUnits[layer]
        var points: [[Float]] = []
        points.reserveCapacity(count)
        var start = 0
        while start < count {
            let n = min(net.maxBatch, count - start)
            var flat: [Float] = []
            for i in start..<start + n { flat += input(i) }
            net.backend.write(flat, to: net.input, offset: 0)
            net.forward(batch: n, keepingActivations: false)
            let a = try net.backend.read(net.hiddenActivations(layer), offset: 0, count: n * units)
            guard a.allSatisfy(\.isFinite) else {
                throw CytoError.invalidModel(
                    "the model's dense\(layer + 1) activations are not finite (NaN or Inf): its weights overflow float32 arithmetic")
            }
            for i in 0..<n { points.append(Array(a[i * units..<(i + 1) * units])) }
            start += n
            progress?(start)
        }
        return points
    }
}
