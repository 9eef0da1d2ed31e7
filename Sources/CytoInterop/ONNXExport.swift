import CytoCore
import Foundation

/// Writes a CytoCL model as a standard ONNX graph (opset 13, IR version 7), so that
/// onnxruntime, OpenCV's dnn module, TensorRT and friends run it unchanged.
///
/// The graph is the whole of `cytocl predict` after decoding: input `image`, float32
/// NCHW [batch, 3, H, W] with RGB pixel values 0..255 and a symbolic batch size;
/// `Mul` by 1/255 (the same float32 constant CytoCL uses), then per block `Conv`
/// (3x3, no padding) -> `Relu` -> `MaxPool` (2x2, stride 2, floor), `Flatten` (which
/// gives the (C, H, W) order CytoCL's dense1 columns use), `Gemm` (transB = 1, since
/// the weights are stored [out, in]) -> `Relu` per hidden layer, and the output
/// `Gemm` -> `Softmax(axis=1)` as `probabilities` [batch, classes]; a calibrated model
/// (`train --calibrate`, temperature T != 1) has `Div` by the scalar `temperature`
/// between the output `Gemm` and the `Softmax`, as predict does. The initializers
/// keep the model file's tensor names. The model file's metadata (`cytocl.classes`,
/// `cytocl.input`, ...) goes into the ONNX `metadata_props`.
public enum ONNXExport {
    public static let opsetVersion: Int64 = 13
    /// IR version 7 is the one released with opset 13; every runtime that reads opset 13 reads it.
    public static let irVersion: Int64 = 7
    public static let inputName = "image"
    public static let outputName = "probabilities"

    public static func serialized(_ model: ModelFile, producerVersion: String = "") throws -> [UInt8] {
        let spec = model.spec
        guard !spec.convFilters.isEmpty else { throw CytoError.invalidModel("a CytoCL network needs at least one conv block") }
        guard model.classNames.count == spec.classes else {
            throw CytoError.invalidModel("\(model.classNames.count) class names for \(spec.classes) outputs")
        }
        var initializers: [ONNX.Tensor] = []
        for (name, shape) in spec.parameterShapes {
            guard let values = model.weights[name], values.count == shape.reduce(1, *) else {
                throw CytoError.invalidModel("tensor \(name) is missing or has the wrong size")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw CytoError.invalidModel("tensor \(name) holds a non-finite value \(values[bad]) at index \(bad)")
            }
            initializers.append(ONNX.Tensor(name: name, dims: shape.map(Int64.init), values: values))
        }
        // What predict refuses (ModelFile.read), export refuses: an ONNX runtime would
        // print NaN probabilities for these weights.
        if let why = model.arithmeticOverflow() { throw CytoError.invalidModel(why) }
        let scaleName = "input_scale"
        initializers.append(ONNX.Tensor(name: scaleName, dims: [], values: [Float(1) / Float(255)]))

        var nodes: [ONNX.Node] = []
        nodes.append(ONNX.Node(inputs: [inputName, scaleName], outputs: ["scaled"], name: "scale", opType: "Mul"))
        var current = "scaled"
        for k in 1...spec.convFilters.count {
            nodes.append(
                ONNX.Node(
                    inputs: [current, "conv\(k).weight", "conv\(k).bias"], outputs: ["conv\(k)"],
                    name: "conv\(k)", opType: "Conv",
                    attributes: [
                        .init(name: "dilations", value: .ints([1, 1])),
                        .init(name: "group", value: .int(1)),
                        .init(name: "kernel_shape", value: .ints([3, 3])),
                        .init(name: "pads", value: .ints([0, 0, 0, 0])),
                        .init(name: "strides", value: .ints([1, 1])),
                    ]))
            nodes.append(ONNX.Node(inputs: ["conv\(k)"], outputs: ["relu\(k)"], name: "relu\(k)", opType: "Relu"))
            nodes.append(
                ONNX.Node(
                    inputs: ["relu\(k)"], outputs: ["pool\(k)"], name: "pool\(k)", opType: "MaxPool",
                    attributes: [
                        .init(name: "kernel_shape", value: .ints([2, 2])),
                        .init(name: "pads", value: .ints([0, 0, 0, 0])),
                        .init(name: "strides", value: .ints([2, 2])),
                    ]))
            current = "pool\(k)"
        }
        nodes.append(
            ONNX.Node(
                inputs: [current], outputs: ["flatten"], name: "flatten", opType: "Flatten",
                attributes: [.init(name: "axis", value: .int(1))]))
        current = "flatten"
        let denseCount = spec.denseShapes.count
        for j in 1...denseCount {
            let last = j == denseCount
            let out = last ? "logits" : "dense\(j)"
            nodes.append(
                ONNX.Node(
                    inputs: [current, "dense\(j).weight", "dense\(j).bias"], outputs: [out],
                    name: "dense\(j)", opType: "Gemm", attributes: [.init(name: "transB", value: .int(1))]))
            current = out
            if !last {
                nodes.append(ONNX.Node(inputs: [out], outputs: ["dense\(j)_relu"], name: "dense\(j)_relu", opType: "Relu"))
                current = "dense\(j)_relu"
            }
        }
        if model.temperature != 1 {
            guard model.temperature.isFinite, ModelFile.temperatureRange.contains(model.temperature) else {
                throw CytoError.invalidModel("temperature \(model.temperature) is outside \(ModelFile.temperatureRange)")
            }
            initializers.append(ONNX.Tensor(name: "temperature", dims: [], values: [Float(model.temperature)]))
            nodes.append(ONNX.Node(inputs: [current, "temperature"], outputs: ["scaled_logits"], name: "temperature", opType: "Div"))
            current = "scaled_logits"
        }
        nodes.append(
            ONNX.Node(
                inputs: [current], outputs: [outputName], name: "softmax", opType: "Softmax",
                attributes: [.init(name: "axis", value: .int(1))]))

        let input = ONNX.ValueInfo(
            name: inputName,
            dims: [.param("batch"), .value(Int64(spec.inputChannels)), .value(Int64(spec.inputHeight)), .value(Int64(spec.inputWidth))],
            docString: "RGB pixel values 0..255 as float32, NCHW; the graph scales them by 1/255")
        let output = ONNX.ValueInfo(
            name: outputName, dims: [.param("batch"), .value(Int64(spec.classes))],
            docString: "class probabilities (softmax), in the order of metadata cytocl.classes")
        let graph = ONNX.Graph(
            nodes: nodes, name: "cytocl", initializers: initializers,
            docString: "CytoCL network: \(architecture(spec))",
            inputs: [input], outputs: [output])
        var metadata: [(key: String, value: String)] = [
            ("cytocl.classes", "[" + model.classNames.map(jsonString).joined(separator: ",") + "]"),
            ("cytocl.input", "\(spec.inputHeight)x\(spec.inputWidth)x\(spec.inputChannels)"),
            ("cytocl.scale", "1/255"),
            ("cytocl.format", ModelFile.formatVersion),
            ("cytocl.architecture", architecture(spec)),
        ]
        if model.temperature != 1 { metadata.append(("cytocl.temperature", "\(model.temperature)")) }
        for key in model.provenance.keys.sorted() { metadata.append(("cytocl.provenance.\(key)", model.provenance[key]!)) }
        let onnx = ONNX.Model(
            irVersion: irVersion, opsetVersion: opsetVersion, producerName: "cytocl",
            producerVersion: producerVersion,
            docString:
                "Input '\(inputName)': float32 [batch, \(spec.inputChannels), \(spec.inputHeight), \(spec.inputWidth)], RGB 0..255. Output '\(outputName)': [batch, \(spec.classes)] softmax over \(model.classNames.joined(separator: ", ")).",
            graph: graph, metadata: metadata)
        return onnx.encode()
    }

    /// Writes atomically.
    public static func write(_ model: ModelFile, to url: URL, producerVersion: String = "") throws {
        try writeAtomically(Data(try serialized(model, producerVersion: producerVersion)), to: url)
    }

    static func architecture(_ spec: ModelSpec) -> String {
        "conv3x3-relu-maxpool2x2 filters=\(spec.convFilters.map(String.init).joined(separator: ",")); dense relu units=\(spec.denseUnits.map(String.init).joined(separator: ",")); softmax \(spec.classes)"
    }
}
