import CytoCore
import Foundation

/// Turns a Keras `.h5` model of the CytoCL family — blocks of 3x3 valid conv + ReLU
/// + 2x2 max-pool, a flatten, dense ReLU layers and a softmax (or one sigmoid unit)
/// — into a CytoCL model file.
///
/// Keras stores conv kernels as [3, 3, in, out] (HWIO) and flattens an NHWC
/// activation in (H, W, C) order; CytoCL stores [out, in, 3, 3] (OIHW) and flattens
/// NCHW in (C, H, W) order, so conv kernels are transposed and dense1's input
/// columns permuted. A single sigmoid unit `p = σ(z)` becomes a two-class softmax
/// over the logits `[0, z]`, whose second probability is exactly `σ(z)`.
public enum KerasImport {
    public struct Options: Sendable {
        /// Class names in output order; default `class0`, `class1`, ...
        public var classNames: [String]?
        /// Input (height, width), needed when the file does not say (weights-only
        /// files, or a model built with open spatial dimensions).
        public var inputSize: (height: Int, width: Int)?

        public init(classNames: [String]? = nil, inputSize: (height: Int, width: Int)? = nil) {
            self.classNames = classNames; self.inputSize = inputSize
        }
    }

    public struct Result {
        public var model: ModelFile
        /// What the import assumed or changed, for the user (the CLI prints these on stderr).
        public var notes: [String]
    }

    public static func read(path: String, options: Options = .init()) throws -> Result {
        let contents = try KerasH5Contents.read(path: path)
        return try convert(contents, options: options)
    }

    static func convert(_ contents: KerasH5Contents, options: Options) throws -> Result {
        var notes: [String] = []
        let path = contents.path
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }

        let ops: [KerasOp]
        if contents.hasConfig {
            try checkChain(contents)
            ops = try contents.layers.flatMap { try KerasOp.ops(for: $0, path: path) }
        } else {
            ops = try weightsOnlyOps(contents)
            notes.append(
                "\(path) has no model config (a weights-only file): assuming every conv is followed by ReLU and a 2x2 max-pool, hidden dense layers by ReLU, and the last dense layer by \(ops.last.map { $0.kind == .sigmoid ? "a sigmoid" : "a softmax" } ?? "a softmax")"
            )
        }
        let network = try KerasNetwork.match(ops, path: path)

        // Input size: the config's, unless open there; --input must agree with it.
        let channels = network.convs[0].kernel.shape[2]
        var size: (height: Int, width: Int)?
        if let shape = contents.inputShape, shape.count == 3 {
            if let c = shape[2], c != channels {
                throw fail("the model input has \(c) channels but layer '\(network.convs[0].layer)' takes \(channels)")
            }
            if let h = shape[0], let w = shape[1] { size = (h, w) }
        }
        if let given = options.inputSize {
            if let s = size, s != given {
                throw fail("the model's input is \(s.width)x\(s.height) but --input says \(given.width)x\(given.height)")
            }
            size = given
        }
        guard let size else {
            throw fail("the file does not record the input size; give it with --input WxH")
        }

        // Class names.
        let classCount = network.sigmoidHead ? 2 : network.dense.last!.kernel.shape[1]
        let names: [String]
        if let given = options.classNames {
            guard given.count == classCount else {
                throw CytoError.invalidArgument(
                    "--classes names \(given.count) classes but the model has \(classCount) outputs\(network.sigmoidHead ? " (a sigmoid unit imports as 2 classes: negative, positive)" : "")"
                )
            }
            names = given
        } else {
            names = (0..<classCount).map { "class\($0)" }
            notes.append(
                "class names are not stored in Keras files: using \(names.joined(separator: ",")) (give --classes to name them\(network.sigmoidHead ? "; the sigmoid's 0 comes first" : ""))"
            )
        }

        let spec = ModelSpec(
            inputHeight: size.height, inputWidth: size.width, inputChannels: channels,
            convFilters: network.convs.map { $0.kernel.shape[3] },
            denseUnits: network.dense.dropLast().map { $0.kernel.shape[1] },
            classes: classCount)
        do { try spec.validate() } catch {
            throw fail("input \(size.width)x\(size.height) is too small for \(network.convs.count) conv blocks")
        }

        let weights = try cytoclWeights(network, spec: spec, path: path)
        if network.sigmoidHead {
            notes.append(
                "layer '\(network.dense.last!.layer)' is one sigmoid unit p = sigmoid(z): imported as a two-class softmax over the logits [0, z], whose probabilities are [1 - p, p]"
            )
        }
        if network.rescaleInside {
            notes.append("the model starts with Rescaling(1/255), which becomes CytoCL's own 1/255 input scaling")
        } else {
            notes.append(
                "assuming the Keras model was fed pixels scaled by 1/255 (ImageDataGenerator(rescale=1./255), as in the paper's scripts), as CytoCL does"
            )
        }
        var provenance = [
            "imported_from": (path as NSString).lastPathComponent,
            "imported_format": "keras-h5",
        ]
        if let v = contents.kerasVersion { provenance["keras_version"] = v }
        if let b = contents.backend { provenance["keras_backend"] = b }
        if network.sigmoidHead { provenance["head"] = "sigmoid unit mapped to a two-class softmax over [0, z]" }
        let model = ModelFile(spec: spec, classNames: names, weights: weights, provenance: provenance)
        // The same check every reader of the written file makes: nothing is written
        // that predict and export would refuse.
        if let why = model.arithmeticOverflow() { throw fail("the Keras weights as CytoCL tensors: " + why) }
        return Result(model: model, notes: notes)
    }

    /// The Keras kernels and biases in CytoCL's names and layouts, checked against
    /// the shapes `spec` implies.
    static func cytoclWeights(_ network: KerasNetwork, spec: ModelSpec, path: String) throws -> [String: [Float]] {
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }
        var weights: [String: [Float]] = [:]
        var inChannels = spec.inputChannels
        for (k, conv) in network.convs.enumerated() {
            let s = conv.kernel.shape
            guard s[2] == inChannels else {
                throw fail("layer '\(conv.layer)' expects \(s[2]) input channels but the layer before gives \(inChannels)")
            }
            weights["conv\(k + 1).weight"] = hwioToOIHW(conv.kernel.values, in: s[2], out: s[3])
            weights["conv\(k + 1).bias"] = try bias(conv, units: s[3], path: path)
            inChannels = s[3]
        }
        let feature = spec.featureShape
        var features = spec.flattenedFeatures
        for (k, dense) in network.dense.enumerated() {
            let s = dense.kernel.shape
            guard s[0] == features else {
                if k == 0 {
                    throw fail(
                        "layer '\(dense.layer)' takes \(s[0]) inputs, but a \(spec.inputWidth)x\(spec.inputHeight) input gives \(feature.channels)x\(feature.height)x\(feature.width) = \(features) features after the last pool (wrong --input?)"
                    )
                }
                throw fail("layer '\(dense.layer)' takes \(s[0]) inputs but the layer before gives \(features)")
            }
            var w = transposeDense(dense.kernel.values, in: s[0], out: s[1])
            if k == 0 { w = nhwcToNCHWColumns(w, out: s[1], channels: feature.channels, height: feature.height, width: feature.width) }
            var b = try bias(dense, units: s[1], path: path)
            if k == network.dense.count - 1 && network.sigmoidHead {
                // softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: a zero row and a zero bias first.
                w = [Float](repeating: 0, count: s[0]) + w
                b = [0] + b
            }
            weights["dense\(k + 1).weight"] = w
            weights["dense\(k + 1).bias"] = b
            features = s[1]
        }
        for name in weights.keys.sorted() {
            let values = weights[name]!
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw fail("\(name) (from the Keras file) holds a non-finite value \(values[bad]) at index \(bad)")
            }
        }
        return weights
    }

    /// In a functional model, every layer after the input must take exactly the layer
    /// listed before it: a plain chain, as a Sequential model is.
    static func checkChain(_ contents: KerasH5Contents) throws {
        // The model's declared output must be the end of the chain (a model whose
        // output_layers names a hidden layer computes something else than the chain).
        if let outputs = contents.outputLayers, let last = contents.layers.last?.name, outputs != [last] {
            throw CytoError.modelFile(
                path: contents.path,
                reason:
                    "the model's output_layers is \(outputs.isEmpty ? "empty" : outputs.joined(separator: ", ")) but its last layer is '\(last)': only a plain chain ending in its output can be imported"
            )
        }
        if let inputs = contents.inputLayers, let first = contents.layers.first, first.className == "InputLayer", inputs != [first.name] {
            throw CytoError.modelFile(
                path: contents.path,
                reason:
                    "the model's input_layers is \(inputs.isEmpty ? "empty" : inputs.joined(separator: ", ")) but its input layer is '\(first.name)'"
            )
        }
        var previous: String?
        for layer in contents.layers {
            if let inbound = layer.inbound, layer.className != "InputLayer", let p = previous, inbound != [p] {
                throw CytoError.modelFile(
                    path: contents.path,
                    reason:
                        "layer '\(layer.name)' (\(layer.className)) takes \(inbound.isEmpty ? "no input" : inbound.joined(separator: ", ")) instead of just '\(p)': only a plain chain of layers can be imported"
                )
            }
            previous = layer.name
        }
    }

    /// Without a config, the layers with weights decide: 4-D kernels are convs, 2-D
    /// kernels dense layers.
    static func weightsOnlyOps(_ contents: KerasH5Contents) throws -> [KerasOp] {
        var ops: [KerasOp] = []
        let weighted = contents.layers.filter { !$0.weights.isEmpty }
        for (i, layer) in weighted.enumerated() {
            let rank = layer.weights.first(where: { $0.role.hasPrefix("kernel") })?.shape.count ?? layer.weights[0].shape.count
            var guessed = layer
            if rank == 4 {
                guessed.className = "Conv2D"
                ops += [KerasOp(kind: .conv, layer: guessed), KerasOp(kind: .relu, layer: guessed), KerasOp(kind: .pool, layer: guessed)]
            } else if rank == 2 {
                guessed.className = "Dense"
                if !ops.contains(where: { $0.kind == .flatten }) { ops.append(KerasOp(kind: .flatten, layer: guessed)) }
                ops.append(KerasOp(kind: .dense, layer: guessed))
                if i == weighted.count - 1 {
                    let units = layer.weights[0].shape.last ?? 0
                    ops.append(KerasOp(kind: units == 1 ? .sigmoid : .softmax, layer: guessed))
                } else {
                    ops.append(KerasOp(kind: .relu, layer: guessed))
                }
            } else {
                throw CytoError.modelFile(
                    path: contents.path,
                    reason: "layer '\(layer.name)' has a weight of shape \(layer.weights[0].shape), neither a conv nor a dense kernel")
            }
        }
        return ops
    }

    static func bias(_ layer: KerasNetwork.WeightedLayer, units: Int, path: String) throws -> [Float] {
        guard let b = layer.bias else { return [Float](repeating: 0, count: units) }
        guard b.shape == [units] else {
            throw CytoError.modelFile(path: path, reason: "layer '\(layer.layer)' has a bias of shape \(b.shape), expected [\(units)]")
        }
        return b.values
    }
}

/// [3, 3, in, out] -> [out, in, 3, 3].
func hwioToOIHW(_ k: [Float], in inChannels: Int, out outChannels: Int) -> [Float] {
    var result = [Float](repeating: 0, count: k.count)
    for kh in 0..<3 {
        for kw in 0..<3 {
            for i in 0..<inChannels {
                for o in 0..<outChannels {
                    result[((o * inChannels + i) * 3 + kh) * 3 + kw] = k[((kh * 3 + kw) * inChannels + i) * outChannels + o]
                }
            }
        }
    }
    return result
}

/// [in, out] -> [out, in].
func transposeDense(_ k: [Float], in inFeatures: Int, out outFeatures: Int) -> [Float] {
    var result = [Float](repeating: 0, count: k.count)
    for i in 0..<inFeatures {
        for o in 0..<outFeatures { result[o * inFeatures + i] = k[i * outFeatures + o] }
    }
    return result
}

/// Permutes the columns of an [out, C*H*W] matrix from Keras' (H, W, C) flatten order
/// to CytoCL's (C, H, W) order.
func nhwcToNCHWColumns(_ w: [Float], out: Int, channels: Int, height: Int, width: Int) -> [Float] {
    let features = channels * height * width
    var result = [Float](repeating: 0, count: w.count)
    for o in 0..<out {
        for h in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    result[o * features + (c * height + h) * width + x] = w[o * features + (h * width + x) * channels + c]
                }
            }
        }
    }
    return result
}
