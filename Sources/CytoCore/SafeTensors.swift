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
                case .f64:
                    return (0..<n).map {
                        Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self).littleEndian))
                    }
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
        // `--model RUN_DIR` (the folder `train --out` made) is the common slip: Foundation
        // said only "The operation could not be completed. (NSCocoaErrorDomain error 256.)".
        if OSPath.isDirectory(url.path) == true {
            let inside = url.appendingPathComponent("model.safetensors")
            let hint = OSPath.isDirectory(inside.path) == false ? "give its model file, \(inside.path)" : "give a .safetensors file"
            throw CytoError.modelFile(path: url.path, reason: "a folder, not a model file: \(hint)")
        }
        // A named pipe or a device read as "permission denied" (Foundation's reason).
        var st = stat()
        if stat(url.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            let kind = (st.st_mode & S_IFMT) == S_IFIFO ? "a named pipe (FIFO)" : "a device or another special file"
            throw CytoError.modelFile(path: url.path, reason: "cannot read the file (it is \(kind), not a file)")
        }
        let data: Data
        do { data = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            // The reason alone: `describeFileError` starts with the path, which the error names already.
            let reason = describeFileError(error)
            let prefix = url.path + ": "
            throw CytoError.modelFile(
                path: url.path, reason: "cannot read the file (\(reason.hasPrefix(prefix) ? String(reason.dropFirst(prefix.count)) : reason))")
        }
        return try parse(data, path: url.path)
    }

    /// Largest header accepted (the format's own readers use 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// Parses and validates a whole file. Every field of the header is checked before
    /// a byte of tensor data is touched: the header length against the file, the JSON
    /// (no duplicate names), each dtype, each shape (non-negative integers whose
    /// product and byte size do not overflow), each `data_offsets` pair (non-negative
    /// integers, begin <= end, byte length = shape x dtype size), and the data section
    /// as a whole (tensors neither overlap nor leave gaps, and cover it to its end, as
    /// the format requires). Errors are one line: the file, the field, what is wrong.
    public static func parse(_ data: Data, path: String) throws -> SafeTensors {
        func fail(_ reason: String) -> CytoError { .modelFile(path: path, reason: reason) }
        guard data.count >= 8 else {
            throw fail("not a safetensors file: \(data.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength > 0, headerLength <= UInt64(data.count - 8) else {
            throw fail(
                "not a safetensors file or truncated: the header length field says \(headerLength) bytes, but only \(data.count - 8) bytes follow it"
            )
        }
        guard headerLength <= UInt64(maxHeaderBytes) else {
            throw fail("header length \(headerLength) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let headerBytes = [UInt8](data.subdata(in: data.startIndex + 8..<data.startIndex + headerEnd))
        let json: StrictJSON
        do { json = try StrictJSON.parse(headerBytes) } catch {
            throw fail("the safetensors header is not valid JSON: \(error)")
        }
        guard case .object(let members) = json else { throw fail("the safetensors header is not a JSON object") }
        var result = SafeTensors()
        let payloadSize = data.count - headerEnd
        var spans: [(name: String, begin: Int, end: Int)] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let meta) = value else { throw fail("__metadata__ is not an object of strings") }
                for (k, v) in meta {
                    guard case .string(let text) = v else { throw fail("__metadata__ value of \(k) is \(v.brief), not a string") }
                    result.metadata[k] = text
                }
                continue
            }
            guard !name.isEmpty else { throw fail("a tensor has an empty name") }
            guard case .object(let entryMembers) = value else {
                throw fail("tensor \(name): header entry is \(value.brief), not an object")
            }
            let entry = Dictionary(entryMembers.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard let dtypeValue = entry["dtype"], let shapeValue = entry["shape"], let offsetsValue = entry["data_offsets"] else {
                throw fail("tensor \(name): header entry needs dtype, shape and data_offsets")
            }
            guard case .string(let dtypeName) = dtypeValue else { throw fail("tensor \(name): dtype is \(dtypeValue.brief), not a string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("tensor \(name): unsupported dtype \(dtypeName)")
            }
            guard case .array(let shapeItems) = shapeValue else { throw fail("tensor \(name): shape is \(shapeValue.brief), not an array") }
            var shape: [Int] = []
            for d in shapeItems {
                guard let n = d.integer, n >= 0 else {
                    throw fail("tensor \(name): shape \(shapeValue.brief) has \(d.brief), not a non-negative integer")
                }
                shape.append(n)
            }
            guard case .array(let offsetItems) = offsetsValue, offsetItems.count == 2 else {
                throw fail("tensor \(name): data_offsets is \(offsetsValue.brief), not a pair [begin, end]")
            }
            guard let begin = offsetItems[0].integer, let end = offsetItems[1].integer, begin >= 0, end >= 0 else {
                throw fail("tensor \(name): data_offsets \(offsetsValue.brief) are not non-negative integers")
            }
            guard begin <= end else { throw fail("tensor \(name): data_offsets \(offsetsValue.brief) end before they begin") }
            guard let expected = byteCount(shape: shape, dtype: dtype) else {
                throw fail("tensor \(name): shape \(shapeValue.brief) of \(dtype.rawValue) is too large (its byte size overflows)")
            }
            guard end - begin == expected else {
                throw fail(
                    "tensor \(name): data_offsets \(begin)..\(end) hold \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(expected)"
                )
            }
            guard end <= payloadSize else {
                throw fail("truncated: tensor \(name) ends at byte \(end) of the data section, which has only \(payloadSize) bytes")
            }
            spans.append((name, begin, end))
            result.tensors[name] = Tensor(dtype: dtype, shape: shape, data: Data())
        }
        // The data section must be covered exactly: no overlap, no gap, nothing after the last tensor.
        var position = 0
        for s in spans.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            if s.begin < position {
                let other = spans.first { $0.name != s.name && $0.begin < s.end && s.begin < $0.end }?.name ?? "another tensor"
                throw fail("tensor \(s.name): data_offsets \(s.begin)..\(s.end) overlap \(other)")
            }
            if s.begin > position {
                throw fail(
                    "tensor \(s.name): data_offsets begin at \(s.begin), leaving bytes \(position)..\(s.begin) of the data section unused")
            }
            position = s.end
        }
        guard position == payloadSize else {
            throw fail(
                "the data section has \(payloadSize) bytes but the tensors cover only \(position) (\(payloadSize - position) bytes after the last tensor)"
            )
        }
        for s in spans {
            result.tensors[s.name]!.data = data.subdata(in: (data.startIndex + headerEnd + s.begin)..<(data.startIndex + headerEnd + s.end))
        }
        return result
    }

    /// Bytes of a tensor of `shape` and `dtype`, or nil when the count overflows `Int`.
    public static func byteCount(shape: [Int], dtype: DType) -> Int? {
        var n = 1
        for d in shape {
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = m
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: dtype.size)
        return overflow ? nil : bytes
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
            parts.append(
                "\(jsonString(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}"
            )
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
