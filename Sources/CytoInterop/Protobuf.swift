/// A minimal, exact encoder for the protobuf wire format
/// (https://protobuf.dev/programming-guides/encoding/): enough to write the proto2
/// messages of an ONNX model.
///
/// Every field is written as `key = (field_number << 3) | wire_type` followed by its
/// payload: varints for integers and enums (wire type 0; negative values as 10-byte
/// two's complement, as protobuf does for int32 and int64), little-endian 4 bytes for
/// `float` (wire type 5), and a varint length then the bytes for strings, bytes and
/// embedded messages (wire type 2). Repeated scalars that the .proto does not mark
/// `[packed = true]` are written one key per element, as proto2 requires. Callers
/// write fields in field-number order, which is what protobuf's own serializers do,
/// so a file round-trips through `onnx.load(...).SerializeToString()` byte for byte.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    enum WireType: UInt64 { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, _ wire: WireType) {
        varint(UInt64(field) << 3 | wire.rawValue)
    }

    /// int64, int32 and enum fields.
    mutating func int(_ field: Int, _ value: Int64) {
        key(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, .fixed32)
        let bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ payload: [UInt8]) {
        key(field, .lengthDelimited)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    /// An embedded message, encoded by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        bytes(field, inner.bytes)
    }
}
