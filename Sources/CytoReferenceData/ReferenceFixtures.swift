import CReferenceFixtures
import CytoCore
import Foundation

/// The project's own Keras reference vectors (Tests/Fixtures/reference, written by
/// scripts/make-reference), compiled into the binary so that `cytocl verify` and the
/// test suite check every backend against Keras with no file beside the program.
public enum ReferenceFixtures {
    /// File name and bytes of every embedded reference file, in a fixed order.
    public static var files: [(name: String, data: Data)] {
        (0..<cytocl_reference_fixture_count()).map { i in
            let f = cytocl_reference_fixture_at(i)
            return (String(cString: f.name), Data(bytes: f.bytes, count: f.size))
        }
    }

    /// The embedded file called `name` (e.g. `keras_2class_257.safetensors`), parsed.
    public static func reference(_ name: String) throws -> KerasReference {
        guard let f = files.first(where: { $0.name == name }) else {
            throw CytoError.invalidArgument("no embedded reference file \(name); have \(files.map(\.name).joined(separator: ", "))")
        }
        return try KerasReference(data: f.data, path: "embedded:\(f.name)")
    }

    /// Every embedded file, parsed.
    public static func all() throws -> [KerasReference] {
        try files.map { try KerasReference(data: $0.data, path: "embedded:\($0.name)") }
    }
}
