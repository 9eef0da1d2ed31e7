import Foundation

/// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
/// an 8-byte little-endian header length, a JSON header mapping tensor names to
/// `{dtype, shape, data_offsets}` plus an optional `__metadata__` string map, then the
/// raw little-endian tensor bytes.
public struct SafeTensors: Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32", f64 = "F64", u8 = "U8", i32 = "I32", i64 = "I64", f16 = "F16", bf16 = "BF16"
        public var size: Int {
            switch self {
            case .u8: return 1
            case .f16, .bf16: return 2
            case .f32, .i32: return 4
            case .f64, .i64: return 8
            }
        }
    }

    public struct Tensor: Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var data: Data
        public var elementCount: Int { shape.reduce(1, *) }

        public init(dtype: DType, shape: [Int], data: Data) {
            self.dtype = dtype; self.shape = shape; self.data = data
        }
        public init(floats: [Float], shape: [Int]) {
            self.dtype = .f32; self.shape = shape
            self.data = floats.withUnsafeBytes { Data($0) }
        }

        /// The values as Float, converting from any numeric dtype.
        public func floats() -> [Float] {
            let n = elementCount
            return data.withUnsafeBytes { raw -> [Float] in
                switch dtype {
                case .f32: return (0..<n).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
                case .f64: return (0..<n).map { Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian)) }
                case .u8: return (0..<n).map { Float(raw[$0]) }
                case .i32: return (0..<n).map { Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self))) }
                case .i64: return (0..<n).map { Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self))) }
                case .f16, .bf16:
                    return (0..<n).map { i in
                        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))
                        if dtype == .bf16 { return Float(bitPattern: UInt32(bits) << 16) }
                        return halfToFloat(bits)
                    }
                }
            }
        }

        public func bytes() -> [UInt8] { [UInt8](data) }
    }

    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata
    }

    // MARK: Reading

    public static func read(contentsOf url: URL) throws -> SafeTensors {
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw CytoError.modelFile(path: url.path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(data, path: url.path)
    }

    public static func parse(_ data: Data, path: String) throws -> SafeTensors {
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }
        guard data.count >= 8 else {
            throw fail("not a safetensors file: \(data.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength > 0, headerLength <= UInt64(data.count - 8), headerLength < 100_000_000 else {
            throw fail("not a safetensors file or truncated: header length \(headerLength) but the file has \(data.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerData = data.subdata(in: 8..<headerEnd)
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw fail("the safetensors header is not a JSON object")
        }
        var result = SafeTensors()
        let payloadSize = data.count - headerEnd
        for (name, value) in header {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw fail("metadata value for \(k) is not a string") }
                    result.metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw fail("tensor \(name): header entry needs dtype, shape and data_offsets")
            }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor \(name): unsupported dtype \(dtypeName)")
            }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offsets = offsetsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 }), offsets.count == 2 else {
                throw fail("tensor \(name): shape or data_offsets are not non-negative integers")
            }
            let begin = offsets[0], end = offsets[1]
            let expected = shape.reduce(1, *) * dtype.size
            guard begin <= end, end - begin == expected else {
                throw fail("tensor \(name): data_offsets \(begin)..\(end) hold \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(expected)")
            }
            guard end <= payloadSize else {
                throw fail("truncated: tensor \(name) ends at byte \(end) of the data section, which has only \(payloadSize) bytes")
            }
            let tensorData = data.subdata(in: (headerEnd + begin)..<(headerEnd + end))
            result.tensors[name] = Tensor(dtype: dtype, shape: shape, data: tensorData)
        }
        return result
    }

    // MARK: Writing

    /// Serialises with tensors in the given order (default: sorted by name, as the
    /// Python package does) and the header padded with spaces to 8 bytes.
    public func serialized(order: [String]? = nil) throws -> Data {
        let names = order ?? tensors.keys.sorted()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { throw CytoError.invalidArgument("no tensor named \(name)") }
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append("\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}")
            offset += t.data.count
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out = Data()
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for name in names { out.append(tensors[name]!.data) }
        return out
    }

    /// Writes atomically: to a temporary file beside the target, then renamed.
    public func write(to url: URL, order: [String]? = nil) throws {
        try writeAtomically(try serialized(order: order), to: url)
    }
}

/// A JSON string literal with the escapes JSON requires.
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) / 1024 * powf(2, -14)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}
