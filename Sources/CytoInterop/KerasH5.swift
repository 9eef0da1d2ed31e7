import CytoCore
import Foundation

/// One layer of a Keras model as stored in an `.h5` file: its name, class and
/// config (from the `model_config` attribute, when the file has one) and its
/// weight arrays in the file's order.
struct KerasLayer {
    struct Weight {
        /// The name in `weight_names` (`conv2d_1/kernel:0`, `sequential/dense/bias`, ...).
        var name: String
        var shape: [Int]
        var values: [Float]
        /// The last path component without the `:0` suffix: `kernel`, `bias`, ...
        var role: String {
            let last = name.split(separator: "/").last.map(String.init) ?? name
            return last.split(separator: ":").first.map(String.init) ?? last
        }
    }

    var name: String
    /// `Conv2D`, `Dense`, ...; empty for a weights-only file, which has no config.
    var className: String
    var config: [String: Any]
    var weights: [Weight]
    /// Names of the layers that feed this one (functional models only).
    var inbound: [String]?
}

/// What a Keras `.h5` file holds: the model config (if any) and every layer's weights.
struct KerasH5Contents {
    var path: String
    var layers: [KerasLayer]
    /// False for a weights-only file (`save_weights`, `ModelCheckpoint(save_weights_only=True)`).
    var hasConfig: Bool
    /// [height, width, channels] from the config, with nil for a dimension left open.
    var inputShape: [Int?]?
    var kerasVersion: String?
    var backend: String?
    /// `Sequential`, `Model`, `Functional`.
    var modelClass: String?
    /// A functional model's `input_layers` and `output_layers` (layer names), nil for Sequential.
    var inputLayers: [String]?
    var outputLayers: [String]?

    /// Reads the layout Keras 2 (`model.save`, `ModelCheckpoint`, `save_weights`) and
    /// Keras 3 (`model.save("x.h5")`, the legacy HDF5 format) write:
    ///
    ///     /                    attrs keras_version, backend, model_config (JSON)
    ///     /model_weights       attrs layer_names = [conv2d_1, max_pooling2d_1, ...]
    ///     /model_weights/L     attrs weight_names = [conv2d_1/kernel:0, conv2d_1/bias:0]
    ///     /model_weights/L/W   one float dataset per weight name (W may contain '/')
    ///
    /// A weights-only file has `layer_names` on the root group and no `model_config`.
    static func read(path: String) throws -> KerasH5Contents {
        if let handle = FileHandle(forReadingAtPath: path) {
            let magic = (try? handle.read(upToCount: 4)) ?? Data()
            try? handle.close()
            if magic == Data([0x50, 0x4B, 0x03, 0x04]) {
                throw CytoError.modelFile(
                    path: path,
                    reason:
                        "this is a zip archive (a Keras 3 .keras file?), not HDF5; save the model with model.save(\"model.h5\") and import that"
                )
            }
        }
        // libhdf5 runs in a child process (see IsolatedRead); only plain values come back.
        let raw = try IsolatedRead.run(path: path) { try KerasH5Raw.read(path: path) }
        var contents = KerasH5Contents(path: path, layers: [], hasConfig: false)
        contents.kerasVersion = raw.kerasVersion
        contents.backend = raw.backend
        if let v = contents.kerasVersion, let major = Int(v.prefix { $0.isNumber }), major < 2 {
            throw CytoError.modelFile(
                path: path,
                reason:
                    "written by Keras \(v); only Keras 2 and 3 files can be imported (Keras 1 used other layer settings and kernel layouts)"
            )
        }
        var stored: [String: [KerasLayer.Weight]] = [:]
        var storedOrder: [String] = []
        for layer in raw.layers {
            guard stored[layer.name] == nil else {
                throw CytoError.modelFile(path: path, reason: "layer_names lists '\(layer.name)' twice")
            }
            stored[layer.name] = layer.weights.map { KerasLayer.Weight(name: $0.name, shape: $0.shape, values: $0.floats) }
            storedOrder.append(layer.name)
        }
        if let text = raw.modelConfig {
            try contents.parseConfig(text)
            contents.hasConfig = true
            let configured = Set(contents.layers.map(\.name))
            if let orphan = storedOrder.first(where: { !configured.contains($0) && !(stored[$0] ?? []).isEmpty }) {
                throw CytoError.modelFile(path: path, reason: "layer '\(orphan)' has weights but is not in the model config")
            }
            for i in contents.layers.indices { contents.layers[i].weights = stored[contents.layers[i].name] ?? [] }
        } else {
            contents.layers = storedOrder.map { KerasLayer(name: $0, className: "", config: [:], weights: stored[$0] ?? []) }
        }
        return contents
    }

    private func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }

    /// Parses `model_config`: `{"class_name": "Sequential", "config": [...]}` (Keras
    /// 2.0), `{"class_name": "Sequential", "config": {"layers": [...]}}` (Keras 2.2+,
    /// 3) or a functional `Model`/`Functional` whose layers list `inbound_nodes`.
    private mutating func parseConfig(_ text: String) throws {
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw fail("the model_config attribute is not a JSON object")
        }
        modelClass = json["class_name"] as? String
        let config = json["config"]
        let layerList: [Any]
        if let list = config as? [Any] {
            layerList = list
        } else if let dict = config as? [String: Any], let list = dict["layers"] as? [Any] {
            layerList = list
            if let build = dict["build_input_shape"] as? [Any] { inputShape = try spatialShape(build, key: "build_input_shape") }
            if modelClass != "Sequential" {
                if let v = dict["input_layers"] { inputLayers = Self.inboundNames(v) }
                if let v = dict["output_layers"] { outputLayers = Self.inboundNames(v) }
            }
        } else {
            throw fail("model_config has no layer list (class \(modelClass ?? "?"))")
        }
        let functional = modelClass != "Sequential"
        for item in layerList {
            guard let entry = item as? [String: Any], let className = entry["class_name"] as? String else {
                throw fail("model_config: a layer entry has no class_name")
            }
            let layerConfig = entry["config"] as? [String: Any] ?? [:]
            guard let name = (entry["name"] as? String) ?? (layerConfig["name"] as? String) else {
                throw fail("model_config: a \(className) layer has no name")
            }
            var layer = KerasLayer(name: name, className: className, config: layerConfig, weights: [])
            if functional { layer.inbound = Self.inboundNames(entry["inbound_nodes"]) }
            for key in ["batch_input_shape", "batch_shape"] {
                if let shape = layerConfig[key] as? [Any] { inputShape = try spatialShape(shape, key: "\(name).\(key)") }
            }
            layers.append(layer)
        }
    }

    /// `[null, H, W, C]` -> `[H, W, C]` with nil for open dimensions. A dimension that
    /// is not a whole positive number (64.5, -3, "64") is refused, not truncated.
    private func spatialShape(_ batchShape: [Any], key: String) throws -> [Int?] {
        try batchShape.dropFirst().map { value in
            if value is NSNull { return nil }
            guard let n = value as? NSNumber, let whole = Int(exactly: n.doubleValue), whole > 0
            else {
                throw fail("model_config: \(key) \(Self.jsonText(batchShape)) has a dimension that is not a whole positive number")
            }
            return whole
        }
    }

    static func jsonText(_ value: Any) -> String {
        guard JSONSerialization.isValidJSONObject(value), let data = try? JSONSerialization.data(withJSONObject: value) else {
            return "\(value)"
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Layer names in `inbound_nodes`: Keras 2 writes `[[["conv2d_1", 0, 0, {}]]]`,
    /// Keras 3 `[{"args": [{"config": {"keras_history": ["conv2d", 0, 0]}}]}]`.
    static func inboundNames(_ nodes: Any?) -> [String] {
        var names: [String] = []
        func walk(_ value: Any) {
            if let dict = value as? [String: Any] {
                if let history = dict["keras_history"] as? [Any], let name = history.first as? String {
                    names.append(name)
                    return
                }
                for key in dict.keys.sorted() { walk(dict[key]!) }
            } else if let list = value as? [Any] {
                if list.count >= 3, let name = list[0] as? String, list[1] is NSNumber, list[2] is NSNumber {
                    names.append(name)
                    return
                }
                for v in list { walk(v) }
            }
        }
        if let nodes { walk(nodes) }
        return names
    }
}

/// Everything the importer takes from a Keras `.h5` file as plain values: what the
/// child process of `IsolatedRead` reads with libhdf5 and sends back.
struct KerasH5Raw: Codable {
    struct Weight: Codable {
        var name: String
        var shape: [Int]
        /// The values as Float32 bytes in the machine's order (the child is a fork of this
        /// process), compact in the JSON reply.
        var bytes: Data
        var floats: [Float] {
            bytes.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
            }
        }
    }
    struct Layer: Codable {
        var name: String
        var weights: [Weight]
    }
    var kerasVersion: String?
    var backend: String?
    var modelConfig: String?
    var layers: [Layer] = []

    /// Reads the file with libhdf5 (in the calling process: `KerasH5Contents.read`
    /// calls this in a child).
    static func read(path: String) throws -> KerasH5Raw {
        try HDF5File.withFile(path) { file in
            let root = try file.root()
            let weightsGroup: HDF5Group
            if root.has("model_weights") {
                weightsGroup = try root.group("model_weights")
            } else if root.hasAttribute("layer_names") || root.hasAttribute("layer_names0") {
                weightsGroup = root
            } else if root.has("layers") || root.has("vars") {
                throw CytoError.modelFile(
                    path: path,
                    reason:
                        "this is a Keras 3 weights file (.weights.h5), which holds no layer names; save the model with model.save(\"model.h5\") and import that"
                )
            } else {
                throw CytoError.modelFile(path: path, reason: "not a Keras model file: no model_weights group and no layer_names attribute")
            }
            var raw = KerasH5Raw()
            raw.kerasVersion = try? root.stringAttribute("keras_version")
            if raw.kerasVersion == nil { raw.kerasVersion = try? weightsGroup.stringAttribute("keras_version") }
            raw.backend = try? root.stringAttribute("backend")
            for layerName in try weightsGroup.stringsAttribute("layer_names") {
                let group = try weightsGroup.group(layerName)
                let names = group.hasAttribute("weight_names") ? try group.stringsAttribute("weight_names") : []
                let weights = try names.map { name -> Weight in
                    let (shape, values) = try group.floatDataset(name)
                    let bytes = values.withUnsafeBufferPointer { Data(buffer: $0) }
                    return Weight(name: name, shape: shape, bytes: bytes)
                }
                raw.layers.append(Layer(name: layerName, weights: weights))
            }
            if root.hasAttribute("model_config") { raw.modelConfig = try root.stringAttribute("model_config") }
            return raw
        }
    }
}
