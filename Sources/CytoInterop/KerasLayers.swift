import CytoCore
import Foundation

/// One step of a Keras model in the terms of the CytoCL family. A Keras layer gives
/// zero or more: `Conv2D(activation="relu")` is a conv then a ReLU, `Dropout`
/// nothing (it is the identity at inference).
struct KerasOp {
    enum Kind: Equatable { case rescale, conv, dense, relu, softmax, sigmoid, pool, flatten }
    var kind: Kind
    var layer: KerasLayer

    var described: String { "'\(layer.name)' (\(layer.className))" }

    /// The ops of one layer, after checking every config value that would change the
    /// arithmetic (padding, strides, dilation, data format, pool size, ...).
    static func ops(for layer: KerasLayer, path: String) throws -> [KerasOp] {
        let c = layer.config
        func fail(_ what: String) -> CytoError {
            .modelFile(
                path: path,
                reason:
                    "layer '\(layer.name)' (\(layer.className)) \(what); only 3x3 valid convs with ReLU, 2x2 max-pools, a flatten and dense layers ending in softmax or one sigmoid unit can be imported"
            )
        }
        func ints(_ key: String) -> [Int]? { (c[key] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }
        func requireChannelsLast() throws {
            if let f = c["data_format"] as? String, f != "channels_last" { throw fail("uses data_format \(f)") }
        }
        func activation(_ name: String?) throws -> [KerasOp] {
            switch name ?? "linear" {
            case "linear": return []
            case "relu": return [KerasOp(kind: .relu, layer: layer)]
            case "softmax": return [KerasOp(kind: .softmax, layer: layer)]
            case "sigmoid": return [KerasOp(kind: .sigmoid, layer: layer)]
            case let other: throw fail("has activation '\(other)'")
            }
        }
        /// Keras 3 may store an activation as `{"class_name": ..., "config": ...}`.
        func activationName(_ value: Any?) -> String? {
            if let s = value as? String { return s }
            if let d = value as? [String: Any] {
                return (d["config"] as? [String: Any])?["name"] as? String ?? (d["class_name"] as? String)?.lowercased()
            }
            return nil
        }

        switch layer.className {
        case "InputLayer", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization":
            return []
        case "Conv2D":
            // Keras 2 and 3 always write these; without them the arithmetic is unknown.
            guard let k = ints("kernel_size"), let s = ints("strides"), let p = c["padding"] as? String else {
                throw fail("has no kernel_size, strides or padding in its config")
            }
            guard k == [3, 3] else { throw fail("has kernel size \(k)") }
            guard s == [1, 1] else { throw fail("has strides \(s)") }
            guard p == "valid" else { throw fail("has padding '\(p)' (the family uses 'valid')") }
            if let d = ints("dilation_rate"), d != [1, 1] { throw fail("has dilation \(d)") }
            if let g = (c["groups"] as? NSNumber)?.intValue, g != 1 { throw fail("has \(g) groups") }
            try requireChannelsLast()
            return [KerasOp(kind: .conv, layer: layer)] + (try activation(activationName(c["activation"])))
        case "Dense":
            return [KerasOp(kind: .dense, layer: layer)] + (try activation(activationName(c["activation"])))
        case "Activation":
            return try activation(activationName(c["activation"]))
        case "ReLU":
            let maxValue = c["max_value"] as? NSNumber
            let slope = (c["negative_slope"] as? NSNumber)?.doubleValue ?? 0
            let threshold = (c["threshold"] as? NSNumber)?.doubleValue ?? 0
            guard maxValue == nil, slope == 0, threshold == 0 else {
                throw fail("is not a plain ReLU (max_value, negative_slope or threshold set)")
            }
            return [KerasOp(kind: .relu, layer: layer)]
        case "Softmax":
            if let axis = (c["axis"] as? NSNumber)?.intValue, axis != -1 { throw fail("has softmax axis \(axis)") }
            return [KerasOp(kind: .softmax, layer: layer)]
        case "MaxPooling2D", "MaxPool2D":
            guard let pool = ints("pool_size"), let p = c["padding"] as? String else {
                throw fail("has no pool_size or padding in its config")
            }
            guard pool == [2, 2] else { throw fail("has pool size \(pool)") }
            // strides null means strides = pool_size.
            if let s = ints("strides"), s != [2, 2] { throw fail("has strides \(s)") }
            guard p == "valid" else { throw fail("has padding '\(p)'") }
            try requireChannelsLast()
            return [KerasOp(kind: .pool, layer: layer)]
        case "Flatten":
            try requireChannelsLast()
            return [KerasOp(kind: .flatten, layer: layer)]
        case "Rescaling":
            let scale = (c["scale"] as? NSNumber)?.doubleValue ?? .nan
            let offset = (c["offset"] as? NSNumber)?.doubleValue ?? 0
            guard abs(scale * 255 - 1) < 1e-6, offset == 0 else { throw fail("scales by \(scale) with offset \(offset), not 1/255") }
            return [KerasOp(kind: .rescale, layer: layer)]
        default:
            throw fail("is not part of this network family")
        }
    }
}

/// The weighted layers of a model that matched the family's grammar:
/// `rescale? (conv relu pool)+ flatten (dense relu)* dense (softmax | sigmoid)`.
struct KerasNetwork {
    struct WeightedLayer {
        var layer: String
        var kernel: KerasLayer.Weight
        var bias: KerasLayer.Weight?
    }

    var convs: [WeightedLayer] = []
    var dense: [WeightedLayer] = []
    var sigmoidHead = false
    var rescaleInside = false

    static func match(_ ops: [KerasOp], path: String) throws -> KerasNetwork {
        var network = KerasNetwork()
        var i = 0
        func peek() -> KerasOp? { i < ops.count ? ops[i] : nil }
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }
        /// Consumes an op of `kind` or names what stands in its place.
        func expect(_ kind: KerasOp.Kind, after op: KerasOp, _ what: String) throws {
            guard let next = peek() else { throw fail("the model ends after layer \(op.described), which should be followed by \(what)") }
            guard next.kind == kind else {
                let found = next.layer.name == op.layer.name ? "\(kindName(next.kind)) activation" : "layer \(next.described)"
                throw fail(
                    "layer \(op.described) should be followed by \(what), found \(found); only 3x3 valid convs with ReLU, 2x2 max-pools, a flatten and dense layers ending in softmax or one sigmoid unit can be imported"
                )
            }
            i += 1
        }
        if peek()?.kind == .rescale {
            guard i == 0 else { throw fail("Rescaling must be the first layer") }
            network.rescaleInside = true
            i += 1
        }
        while let op = peek(), op.kind == .conv {
            i += 1
            network.convs.append(try weighted(op, rank: 4, path: path))
            try expect(.relu, after: op, "ReLU")
            try expect(.pool, after: op, "a 2x2 max-pool")
        }
        guard !network.convs.isEmpty else {
            throw fail(
                ops.isEmpty
                    ? "the model has no layers"
                    : "the model should start with a 3x3 conv, found layer \(ops[i].described) (\(kindName(ops[i].kind)))")
        }
        guard let flatten = peek() else { throw fail("the model ends after the conv blocks; a Flatten and dense layers are needed") }
        guard flatten.kind == .flatten else {
            throw fail("layer \(flatten.described) (\(kindName(flatten.kind))) follows the conv blocks where a Flatten is needed")
        }
        i += 1
        while let op = peek() {
            guard op.kind == .dense else {
                throw fail("layer \(op.described) (\(kindName(op.kind))) cannot follow the flatten/dense layers")
            }
            i += 1
            let layer = try weighted(op, rank: 2, path: path)
            network.dense.append(layer)
            guard let act = peek() else {
                throw fail(
                    "the last layer \(op.described) has no softmax or sigmoid (a linear output cannot be turned into probabilities the way Keras did)"
                )
            }
            switch act.kind {
            case .relu:
                i += 1
            case .softmax, .sigmoid:
                i += 1
                guard i == ops.count else {
                    throw fail(
                        "layer \(ops[i].described) follows the \(kindName(act.kind)) of \(op.described); the \(kindName(act.kind)) must end the model"
                    )
                }
                let units = layer.kernel.shape[1]
                if act.kind == .sigmoid {
                    guard units == 1 else {
                        throw fail(
                            "layer \(op.described) has \(units) sigmoid units (independent sigmoids are not a softmax); only one sigmoid unit can be imported"
                        )
                    }
                    network.sigmoidHead = true
                } else {
                    guard units >= 2 else { throw fail("layer \(op.described) is a softmax over \(units) unit (always 1)") }
                }
                return network
            default:
                throw fail("layer \(act.described) follows dense layer \(op.described) where ReLU, softmax or sigmoid is needed")
            }
        }
        throw fail("the model has no dense layers after the flatten")
    }

    static func kindName(_ kind: KerasOp.Kind) -> String {
        switch kind {
        case .rescale: return "rescaling"
        case .conv: return "conv"
        case .dense: return "dense"
        case .relu: return "ReLU"
        case .softmax: return "softmax"
        case .sigmoid: return "sigmoid"
        case .pool: return "max-pool"
        case .flatten: return "flatten"
        }
    }

    /// The kernel (rank 4 for a conv, 2 for a dense layer) and optional bias of a layer.
    static func weighted(_ op: KerasOp, rank: Int, path: String) throws -> WeightedLayer {
        let weights = op.layer.weights
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: "layer \(op.described) \(reason)") }
        let kernel = weights.first(where: { $0.role.hasPrefix("kernel") }) ?? weights.first
        guard let kernel else { throw fail("has no weights in the file") }
        guard kernel.shape.count == rank, !(rank == 4 && (kernel.shape[0] != 3 || kernel.shape[1] != 3)) else {
            throw fail("has a kernel of shape \(kernel.shape), expected \(rank == 4 ? "[3, 3, in, out]" : "[in, out]")")
        }
        let rest = weights.filter { $0.name != kernel.name }
        guard rest.count <= 1 else { throw fail("has \(weights.count) weight arrays; a kernel and a bias are expected") }
        // The config must agree with the weights (a weights-only file has no config):
        // a file whose config and weights disagree was edited or mixed up, and which
        // of the two is right cannot be known.
        let config = op.layer.config
        let key = rank == 4 ? "filters" : "units"
        if let declared = config[key] {
            guard let n = declared as? NSNumber, Int(exactly: n.doubleValue) == kernel.shape.last else {
                throw fail(
                    "has \(key) \(KerasH5Contents.jsonText([declared]).dropFirst().dropLast()) in its config but a kernel of shape \(kernel.shape)"
                )
            }
        }
        if let useBias = config["use_bias"] {
            guard let flag = useBias as? Bool else { throw fail("has use_bias \(useBias) in its config, not true or false") }
            if flag != (rest.first != nil) {
                throw fail(
                    flag
                        ? "has use_bias true in its config but no bias in the file"
                        : "has use_bias false in its config but a bias \(rest[0].name) in the file")
            }
        }
        return WeightedLayer(layer: op.layer.name, kernel: kernel, bias: rest.first)
    }
}
