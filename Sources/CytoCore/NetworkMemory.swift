import CytoSupport

/// What a network of this spec needs in memory, checked before anything is allocated.
extension ModelSpec {
    /// Largest accepted input side; keeps every count within the 32-bit sizes kernels use.
    public static let maxInputSide = 32_768
    /// Largest accepted filter, unit or class count.
    public static let maxWidth = 65_536

    /// The memory `Network(spec:backend:maxBatch:)` allocates: parameters with their
    /// gradients and two optimizer slots, the input batch and every activation and
    /// activation gradient, at `maxBatch` images.
    public func networkMemory(maxBatch b: Int) -> MemoryNeed {
        var need = MemoryNeed(what: "the network for input \(inputWidth)x\(inputHeight) at batch \(b)")
        for (name, shape) in parameterShapes {
            need.add("\(name) with its gradient and optimizer state", count: checkedProduct(shape + [4]))
        }
        need.add("input", count: checkedProduct(b, inputChannels, inputHeight, inputWidth))
        need.add("labels", count: b)
        need.add("probabilities", count: checkedProduct(b, classes))
        need.add("metrics", count: 4)
        var h = inputHeight, w = inputWidth
        for (i, o) in convFilters.enumerated() {
            let out = checkedProduct(b, o, h - 2, w - 2)
            need.add("conv\(i + 1).out", count: out)
            need.add("conv\(i + 1).grad", count: out)
            h = (h - 2) / 2; w = (w - 2) / 2
            let pooled = checkedProduct(b, o, h, w)
            need.add("pool\(i + 1).out", count: pooled)
            need.add("pool\(i + 1).grad", count: pooled)
        }
        for (j, d) in denseShapes.enumerated() {
            need.add("dense\(j + 1).out", count: checkedProduct(b, d.outFeatures))
            need.add("dense\(j + 1).grad", count: checkedProduct(b, d.outFeatures))
        }
        return need
    }
}
