/// The subset of ONNX's protobuf messages that a CytoCL graph needs, with their
/// encoders. Field numbers are those of onnx/onnx.proto (proto2, package `onnx`,
/// unchanged since IR version 3); each `encode` writes its fields in field-number
/// order, as protobuf's serializers do.
enum ONNX {
    /// TensorProto.DataType.FLOAT.
    static let float: Int64 = 1

    /// ModelProto.
    struct Model {
        var irVersion: Int64
        var opsetVersion: Int64
        var producerName: String
        var producerVersion: String
        var docString: String
        var graph: Graph
        var metadata: [(key: String, value: String)]

        func encode() -> [UInt8] {
            var w = ProtobufWriter()
            w.int(1, irVersion)  // optional int64 ir_version = 1
            w.string(2, producerName)  // optional string producer_name = 2
            w.string(3, producerVersion)  // optional string producer_version = 3
            w.string(6, docString)  // optional string doc_string = 6
            w.message(7) { graph.encode(into: &$0) }  // optional GraphProto graph = 7
            w.message(8) { op in  // repeated OperatorSetIdProto opset_import = 8
                op.string(1, "")  //   optional string domain = 1 ("" = ai.onnx)
                op.int(2, opsetVersion)  //   optional int64 version = 2
            }
            for entry in metadata {  // repeated StringStringEntryProto metadata_props = 14
                w.message(14) { e in
                    e.string(1, entry.key)  //   optional string key = 1
                    e.string(2, entry.value)  //   optional string value = 2
                }
            }
            return w.bytes
        }
    }

    /// GraphProto.
    struct Graph {
        var nodes: [Node]
        var name: String
        var initializers: [Tensor]
        var docString: String
        var inputs: [ValueInfo]
        var outputs: [ValueInfo]

        func encode(into w: inout ProtobufWriter) {
            for n in nodes { w.message(1) { n.encode(into: &$0) } }  // repeated NodeProto node = 1
            w.string(2, name)  // optional string name = 2
            for t in initializers { w.message(5) { t.encode(into: &$0) } }  // repeated TensorProto initializer = 5
            w.string(10, docString)  // optional string doc_string = 10
            for v in inputs { w.message(11) { v.encode(into: &$0) } }  // repeated ValueInfoProto input = 11
            for v in outputs { w.message(12) { v.encode(into: &$0) } }  // repeated ValueInfoProto output = 12
        }
    }

    /// NodeProto.
    struct Node {
        var inputs: [String]
        var outputs: [String]
        var name: String
        var opType: String
        var attributes: [Attribute] = []

        func encode(into w: inout ProtobufWriter) {
            for i in inputs { w.string(1, i) }  // repeated string input = 1
            for o in outputs { w.string(2, o) }  // repeated string output = 2
            w.string(3, name)  // optional string name = 3
            w.string(4, opType)  // optional string op_type = 4
            for a in attributes { w.message(5) { a.encode(into: &$0) } }  // repeated AttributeProto attribute = 5
        }
    }

    /// AttributeProto, with the two kinds of value the graph uses.
    struct Attribute {
        enum Value { case int(Int64), ints([Int64]) }
        var name: String
        var value: Value

        func encode(into w: inout ProtobufWriter) {
            w.string(1, name)  // optional string name = 1
            switch value {
            case .int(let v):
                w.int(3, v)  // optional int64 i = 3
                w.int(20, 2)  // optional AttributeType type = 20 (INT = 2)
            case .ints(let vs):
                for v in vs { w.int(8, v) }  // repeated int64 ints = 8 (not packed)
                w.int(20, 7)  // type = 20 (INTS = 7)
            }
        }
    }

    /// TensorProto holding float32 values in raw_data (little-endian, row-major).
    struct Tensor {
        var name: String
        var dims: [Int64]
        var values: [Float]

        func encode(into w: inout ProtobufWriter) {
            for d in dims { w.int(1, d) }  // repeated int64 dims = 1 (not packed)
            w.int(2, ONNX.float)  // optional int32 data_type = 2 (FLOAT = 1)
            w.string(8, name)  // optional string name = 8
            var raw: [UInt8] = []  // optional bytes raw_data = 9
            raw.reserveCapacity(values.count * 4)
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
            w.bytes(9, raw)
        }
    }

    /// ValueInfoProto of a float tensor; a dimension is a number or a symbolic name.
    struct ValueInfo {
        enum Dim { case value(Int64), param(String) }
        var name: String
        var dims: [Dim]
        var docString: String

        func encode(into w: inout ProtobufWriter) {
            w.string(1, name)  // optional string name = 1
            w.message(2) { type in  // optional TypeProto type = 2
                type.message(1) { tensor in  //   Tensor tensor_type = 1 (oneof value)
                    tensor.int(1, ONNX.float)  //     optional int32 elem_type = 1
                    tensor.message(2) { shape in  //     optional TensorShapeProto shape = 2
                        for d in dims {
                            shape.message(1) { dim in  //       repeated Dimension dim = 1
                                switch d {
                                case .value(let v): dim.int(1, v)  // int64 dim_value = 1 (oneof value)
                                case .param(let p): dim.string(2, p)  // string dim_param = 2 (oneof value)
                                }
                            }
                        }
                    }
                }
            }
            w.string(3, docString)  // optional string doc_string = 3
        }
    }
}
