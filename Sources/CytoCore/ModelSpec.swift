/// The architecture of a sequential CytoCL network: blocks of 3x3 valid conv + ReLU
/// + 2x2 max-pool, a flatten in (C, H, W) order, dense layers with ReLU, and a final
/// dense layer with softmax. The paper's network is `ModelSpec.paper(...)`.
public struct ModelSpec: Sendable, Equatable, Codable {
    public var inputHeight: Int
    public var inputWidth: Int
    public var inputChannels: Int
    /// Output channels of conv1, conv2, ...
    public var convFilters: [Int]
    /// Units of the hidden dense layers (dense1 ... ), each followed by ReLU.
    public var denseUnits: [Int]
    /// Units of the last dense layer (softmax output).
    public var classes: Int

    public init(
        inputHeight: Int, inputWidth: Int, inputChannels: Int = 3,
        convFilters: [Int], denseUnits: [Int], classes: Int
    ) {
        self.inputHeight = inputHeight; self.inputWidth = inputWidth; self.inputChannels = inputChannels
        self.convFilters = convFilters; self.denseUnits = denseUnits; self.classes = classes
    }

    /// Schouten et al. 2021: filters 4, 8, 8, 8, 16, 16; dense 32; softmax.
    public static func paper(height: Int = 257, width: Int = 257, classes: Int = 2) -> ModelSpec {
        ModelSpec(
            inputHeight: height, inputWidth: width, convFilters: [4, 8, 8, 8, 16, 16],
            denseUnits: [32], classes: classes)
    }

    /// Geometry of every conv block for a given batch size.
    public func convGeometries(batch: Int) -> [ConvGeometry] {
        var h = inputHeight, w = inputWidth, c = inputChannels
        var result: [ConvGeometry] = []
        for o in convFilters {
            result.append(ConvGeometry(batch: batch, inChannels: c, outChannels: o, inHeight: h, inWidth: w))
            h = (h - 2) / 2; w = (w - 2) / 2; c = o
        }
        return result
    }

    /// Spatial size and channels after the last pooling layer.
    public var featureShape: (channels: Int, height: Int, width: Int) {
        var h = inputHeight, w = inputWidth
        for _ in convFilters { h = (h - 2) / 2; w = (w - 2) / 2 }
        return (convFilters.last ?? inputChannels, h, w)
    }

    public var flattenedFeatures: Int {
        let f = featureShape
        return f.channels * f.height * f.width
    }

    /// Every dense layer's (in, out), hidden layers first, the output layer last.
    public var denseShapes: [(inFeatures: Int, outFeatures: Int)] {
        var result: [(Int, Int)] = []
        var f = flattenedFeatures
        for u in denseUnits + [classes] { result.append((f, u)); f = u }
        return result
    }

    /// Checks that every layer has a positive output size and that every size is
    /// within bounds that keep the arithmetic on counts exact (no overflow, no
    /// truncation to the 32-bit sizes the kernels take).
    public func validate() throws {
        guard inputHeight > 0, inputWidth > 0, inputChannels > 0, classes >= 2 else {
            throw CytoError.invalidModel(
                "input \(inputWidth)x\(inputHeight)x\(inputChannels) with \(classes) classes is not a valid network (need at least 2 classes)"
            )
        }
        guard inputHeight <= Self.maxInputSide, inputWidth <= Self.maxInputSide else {
            throw CytoError.invalidModel("input \(inputWidth)x\(inputHeight) is larger than \(Self.maxInputSide) pixels on a side")
        }
        let widths = [inputChannels, classes] + convFilters + denseUnits
        guard widths.allSatisfy({ $0 > 0 && $0 <= Self.maxWidth }), convFilters.count <= 32, denseUnits.count <= 32 else {
            throw CytoError.invalidModel(
                "channels, filters, units and classes must be between 1 and \(Self.maxWidth), with at most 32 conv and 32 dense layers "
                    + "(input channels \(inputChannels), filters \(convFilters), units \(denseUnits), classes \(classes))")
        }
        var h = inputHeight, w = inputWidth
        for (i, _) in convFilters.enumerated() {
            guard h >= 4, w >= 4 else {
                throw CytoError.invalidModel(
                    "input \(inputWidth)x\(inputHeight) is too small: conv\(i + 1) would see \(w)x\(h), and a 3x3 conv + 2x2 pool needs at least 4x4"
                )
            }
            h = (h - 2) / 2; w = (w - 2) / 2
        }
    }

    /// Parameter names and shapes in model-file order (the safetensors contract).
    public var parameterShapes: [(name: String, shape: [Int])] {
        var result: [(String, [Int])] = []
        var c = inputChannels
        for (i, o) in convFilters.enumerated() {
            result.append(("conv\(i + 1).weight", [o, c, 3, 3]))
            result.append(("conv\(i + 1).bias", [o]))
            c = o
        }
        for (i, d) in denseShapes.enumerated() {
            result.append(("dense\(i + 1).weight", [d.outFeatures, d.inFeatures]))
            result.append(("dense\(i + 1).bias", [d.outFeatures]))
        }
        return result
    }

    public var parameterCount: Int {
        parameterShapes.reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// Approximate floating-point operations of one training step per image
    /// (forward + backward-data + backward-filter), used by the benchmark.
    public var trainingFLOPsPerImage: Double {
        var flops = 0.0
        for (i, g) in convGeometries(batch: 1).enumerated() {
            let macs = Double(g.outChannels * g.outHeight * g.outWidth * g.inChannels * 9)
            flops += 2 * macs * (i == 0 ? 2 : 3)
        }
        for d in denseShapes { flops += 2 * 3 * Double(d.inFeatures * d.outFeatures) }
        return flops
    }

    /// A Keras-style `model.summary()` table.
    public func summary() -> String {
        var rows: [(String, String, Int)] = []
        var h = inputHeight, w = inputWidth, c = inputChannels
        for (i, o) in convFilters.enumerated() {
            h -= 2; w -= 2
            rows.append(("conv\(i + 1) (Conv2D 3x3, ReLU)", "(None, \(h), \(w), \(o))", o * c * 9 + o))
            h /= 2; w /= 2
            rows.append(("pool\(i + 1) (MaxPooling2D 2x2)", "(None, \(h), \(w), \(o))", 0))
            c = o
        }
        rows.append(("flatten (Flatten, C-H-W order)", "(None, \(flattenedFeatures))", 0))
        for (i, d) in denseShapes.enumerated() {
            let last = i == denseShapes.count - 1
            rows.append(
                (
                    "dense\(i + 1) (Dense, \(last ? "softmax" : "ReLU"))", "(None, \(d.outFeatures))",
                    d.inFeatures * d.outFeatures + d.outFeatures
                ))
        }
        let w0 = max(34, rows.map { $0.0.count }.max()! + 2)
        let w1 = max(22, rows.map { $0.1.count }.max()! + 2)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        var out = "Model: \"cytocl\" (input \(inputHeight)x\(inputWidth)x\(inputChannels), \(classes) classes)\n"
        let rule = String(repeating: "─", count: w0 + w1 + 12)
        out += rule + "\n" + pad("Layer (type)", w0) + pad("Output Shape", w1) + "Param #\n" + rule + "\n"
        for r in rows { out += pad(r.0, w0) + pad(r.1, w1) + formatThousands(r.2) + "\n" }
        out += rule + "\n"
        out += " Total params: \(formatThousands(parameterCount))\n"
        out += " Trainable params: \(formatThousands(parameterCount))\n"
        out += " Non-trainable params: 0\n"
        return out
    }
}
