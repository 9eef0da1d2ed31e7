import Foundation

/// A trained model as stored on disk: one safetensors file.
///
/// The tensor names and layouts are a contract other tools rely on (`convN.weight`
/// [out, in, 3, 3], `convN.bias`, `denseN.weight` [out, in] with dense1's columns in
/// the (C, H, W) flatten order of an NCHW activation, `denseN.bias`). The metadata
/// keys `cytocl.classes`, `cytocl.input` and `cytocl.scale` are required; the
/// architecture is inferred from the tensors, so a file written by another tool with
/// only those loads too.
public struct ModelFile {
    public static let formatVersion = "1"

    public var spec: ModelSpec
    public var classNames: [String]
    public var weights: [String: [Float]]
    /// Free-form provenance (training data, seed, backend, epochs...), stored as metadata.
    public var provenance: [String: String]
    /// Softmax temperature T fitted by `train --calibrate` (Guo et al. 2017): every reader
    /// computes probabilities as softmax(logits / T). Stored as `cytocl.temperature` only
    /// when it is not 1, so an uncalibrated file is unchanged; a file without it has T = 1.
    public var temperature: Double = 1

    /// The temperatures a file may hold: a finite T outside this range is no calibration a
    /// validation set can support (T -> 0 makes every output one-hot, T -> inf uniform) and
    /// is taken for a corrupt or hand-edited file.
    public static let temperatureRange = 0.05...20.0

    public init(spec: ModelSpec, classNames: [String], weights: [String: [Float]], provenance: [String: String] = [:]) {
        self.spec = spec; self.classNames = classNames; self.weights = weights; self.provenance = provenance
    }

    public func write(to url: URL) throws {
        guard classNames.count == spec.classes else {
            throw CytoError.invalidModel("\(classNames.count) class names for \(spec.classes) outputs")
        }
        if let dup = Self.firstDuplicate(classNames) {
            throw CytoError.invalidModel("class name '\(dup)' appears twice in \(classNames)")
        }
        var st = SafeTensors()
        for (name, shape) in spec.parameterShapes {
            guard let v = weights[name], v.count == shape.reduce(1, *) else {
                throw CytoError.invalidModel("tensor \(name) is missing or has the wrong size")
            }
            // A model with NaN or Inf weights predicts nonsense; never write one.
            if let bad = Self.nonFinite(v) {
                throw CytoError.modelFile(
                    path: url.path,
                    reason:
                        "refusing to save: tensor \(name) has \(bad.count) non-finite values (NaN or Inf), the first at index \(bad.first)")
            }
            st.tensors[name] = .init(floats: v, shape: shape)
        }
        let classesJSON = "[" + classNames.map(jsonString).joined(separator: ",") + "]"
        st.metadata["cytocl.classes"] = classesJSON
        st.metadata["cytocl.input"] = "\(spec.inputHeight)x\(spec.inputWidth)x\(spec.inputChannels)"
        st.metadata["cytocl.scale"] = "1/255"
        st.metadata["cytocl.format"] = ModelFile.formatVersion
        st.metadata["cytocl.architecture"] =
            "conv3x3-relu-maxpool2x2 filters=\(spec.convFilters.map(String.init).joined(separator: ",")); dense relu units=\(spec.denseUnits.map(String.init).joined(separator: ",")); softmax \(spec.classes)"
        for (k, v) in provenance { st.metadata["cytocl.provenance.\(k)"] = v }
        guard Self.temperatureRange.contains(temperature) else {
            throw CytoError.invalidModel("temperature \(temperature) is outside \(Self.temperatureRange)")
        }
        // Round-trip exact: Swift's description of a Double parses back to the same Double.
        if temperature != 1 { st.metadata["cytocl.temperature"] = "\(temperature)" }
        try st.write(to: url, order: spec.parameterShapes.map { $0.name })
    }

    public static func read(from url: URL) throws -> ModelFile {
        let st = try SafeTensors.read(contentsOf: url)
        return try from(st, path: url.path)
    }

    /// Validates a parsed file and infers its architecture.
    public static func from(_ st: SafeTensors, path: String) throws -> ModelFile {
        func fail(_ r: String) -> CytoError { .modelFile(path: path, reason: r) }
        guard let classesText = st.metadata["cytocl.classes"] else { throw fail("metadata key cytocl.classes is missing") }
        guard let data = classesText.data(using: .utf8),
            let classes = (try? JSONSerialization.jsonObject(with: data)) as? [String], !classes.isEmpty
        else {
            throw fail("cytocl.classes must be a JSON array of class names, found \(classesText)")
        }
        if let empty = classes.firstIndex(of: "") { throw fail("cytocl.classes: class \(empty) has an empty name") }
        if let dup = firstDuplicate(classes) { throw fail("cytocl.classes names class '\(dup)' twice: \(classesText)") }
        guard let inputText = st.metadata["cytocl.input"] else { throw fail("metadata key cytocl.input is missing") }
        let dims = inputText.split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw fail("cytocl.input must look like 257x257x3, found \(inputText)")
        }
        guard let scale = st.metadata["cytocl.scale"] else { throw fail("metadata key cytocl.scale is missing") }
        guard scale.replacingOccurrences(of: " ", with: "") == "1/255" else {
            throw fail("cytocl.scale is \(scale); only 1/255 is supported")
        }
        // Architecture from tensor names and shapes.
        var convFilters: [Int] = []
        var channels = dims[2]
        var k = 1
        while let w = st.tensors["conv\(k).weight"] {
            guard w.dtype == .f32 else { throw fail("conv\(k).weight is \(w.dtype.rawValue), expected F32") }
            guard w.shape.count == 4, w.shape[2] == 3, w.shape[3] == 3 else {
                throw fail("conv\(k).weight has shape \(w.shape), expected [out, in, 3, 3]")
            }
            guard w.shape[1] == channels else {
                throw fail("conv\(k).weight expects \(w.shape[1]) input channels but the previous layer gives \(channels)")
            }
            convFilters.append(w.shape[0]); channels = w.shape[0]; k += 1
        }
        guard !convFilters.isEmpty else { throw fail("no conv1.weight tensor: not a CytoCL model") }
        var spec = ModelSpec(
            inputHeight: dims[0], inputWidth: dims[1], inputChannels: dims[2],
            convFilters: convFilters, denseUnits: [], classes: classes.count)
        do { try spec.validate() } catch let e as CytoError {
            if case .invalidModel(let m) = e { throw fail(m) }
            throw fail("\(e)")
        }
        var features = spec.flattenedFeatures
        var units: [Int] = []
        var j = 1
        while let w = st.tensors["dense\(j).weight"] {
            guard w.dtype == .f32 else { throw fail("dense\(j).weight is \(w.dtype.rawValue), expected F32") }
            guard w.shape.count == 2 else { throw fail("dense\(j).weight has shape \(w.shape), expected [out, in]") }
            guard w.shape[1] == features else {
                throw fail("dense\(j).weight has \(w.shape[1]) input features, but the layer before gives \(features) (input \(inputText))")
            }
            units.append(w.shape[0]); features = w.shape[0]; j += 1
        }
        guard let last = units.popLast() else { throw fail("no dense1.weight tensor: not a CytoCL model") }
        guard last == classes.count else {
            throw fail("the output layer dense\(j - 1) has \(last) units but cytocl.classes names \(classes.count) classes")
        }
        spec.denseUnits = units
        var weights: [String: [Float]] = [:]
        for (name, shape) in spec.parameterShapes {
            guard let t = st.tensors[name] else { throw fail("tensor \(name) is missing") }
            guard t.dtype == .f32 else { throw fail("\(name) is \(t.dtype.rawValue), expected F32") }
            guard t.shape == shape else { throw fail("\(name) has shape \(t.shape), expected \(shape)") }
            let values = t.floats()
            if let bad = nonFinite(values) {
                throw fail(
                    "tensor \(name) has \(bad.count) non-finite values (NaN or Inf), the first at index \(bad.first); the model is unusable"
                )
            }
            weights[name] = values
        }
        let known = Set(spec.parameterShapes.map { $0.name })
        if let extra = st.tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("unexpected tensor \(extra) for the inferred architecture")
        }
        var provenance: [String: String] = [:]
        for (key, v) in st.metadata where key.hasPrefix("cytocl.provenance.") {
            provenance[String(key.dropFirst("cytocl.provenance.".count))] = v
        }
        var model = ModelFile(spec: spec, classNames: classes, weights: weights, provenance: provenance)
        if let text = st.metadata["cytocl.temperature"] {
            // Strict: a plain decimal number (no "nan", "inf", hex or spaces) inside the range.
            let plain = text.range(of: #"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil
            guard plain, let t = Double(text), t.isFinite, temperatureRange.contains(t) else {
                throw fail(
                    "cytocl.temperature must be a number between \(temperatureRange.lowerBound) and \(temperatureRange.upperBound), found '\(text)'"
                )
            }
            model.temperature = t
        }
        if let overflow = model.arithmeticOverflow() { throw fail(overflow) }
        return model
    }

    /// How many values are NaN or infinite and where the first one is; nil when all are finite.
    static func nonFinite(_ values: [Float]) -> (count: Int, first: Int)? {
        guard let first = values.firstIndex(where: { !$0.isFinite }) else { return nil }
        return (values[first...].lazy.filter { !$0.isFinite }.count, first)
    }

    static func firstDuplicate(_ names: [String]) -> String? {
        var seen = Set<String>()
        return names.first { !seen.insert($0).inserted }
    }
}

extension ModelFile {
    /// Why some input in 0..255 can drive the network's float32 arithmetic out of
    /// range, or nil when no input can. Finite weights are not enough: weights of 3e38
    /// overflow on the first multiply-add, and the prediction is NaN. This is the one
    /// check every reader of a model shares (`ModelFile.read`, so predict, evaluate,
    /// explain and export refuse alike; `import` before it writes).
    ///
    /// The bound is interval arithmetic on absolute values: after the 1/255 scaling an
    /// input is at most 1; a conv or dense output is at most |bias| + sum |w| * bound of
    /// its input; ReLU and max-pool keep the bound. Every partial sum is within it too.
    /// Half of float32's largest value is the limit, so the softmax's differences of
    /// logits stay finite as well.
    public func arithmeticOverflow() -> String? {
        let limit = Double(Float.greatestFiniteMagnitude) / 2
        var bound = [Double](repeating: 1, count: spec.inputChannels)
        func layer(_ name: String, outputs: Int, inputs: Int, perInput: Int, inputBound: (Int) -> Double) -> String? {
            guard let w = weights[name + ".weight"], let b = weights[name + ".bias"], w.count == outputs * inputs * perInput,
                b.count == outputs
            else { return nil }
            var next = [Double](repeating: 0, count: outputs)
            for o in 0..<outputs {
                var sum = Double(abs(b[o]))
                for i in 0..<inputs {
                    let m = inputBound(i)
                    var row = 0.0
                    for k in 0..<perInput { row += Double(abs(w[(o * inputs + i) * perInput + k])) }
                    sum += row * m
                }
                guard sum <= limit else {
                    return
                        "\(name) can reach \(String(format: "%.3g", sum)) for an input in 0..255, beyond float32's range: the weights overflow float32 arithmetic (the predictions would be NaN)"
                }
                next[o] = sum
            }
            bound = next
            return nil
        }
        var channels = spec.inputChannels
        for (k, filters) in spec.convFilters.enumerated() {
            let previous = bound
            if let why = layer("conv\(k + 1)", outputs: filters, inputs: channels, perInput: 9, inputBound: { previous[$0] }) { return why }
            channels = filters
        }
        let f = spec.featureShape
        let plane = f.height * f.width
        var features = spec.flattenedFeatures
        for (k, units) in (spec.denseUnits + [spec.classes]).enumerated() {
            let previous = bound
            let perChannel = k == 0 ? plane : 1
            if let why = layer("dense\(k + 1)", outputs: units, inputs: features, perInput: 1, inputBound: { previous[$0 / perChannel] }) {
                return why
            }
            features = units
        }
        return nil
    }
}
