import Foundation

/// Test-only failure injection, so that the handling of device errors can be tested
/// on any driver (PoCL, rusticl, a GPU) without a broken one. Set `CYTOCL_FAULT`:
///
/// - `launch` or `launch:N`: the N-th kernel launch (1-based, default 1) fails as if
///   `clEnqueueNDRangeKernel` had returned `CL_OUT_OF_RESOURCES`;
/// - `read` or `read:N`: the N-th read back fails the same way;
/// - `write:TEXT` is not a device fault: `AtomicFile` fails writes to paths containing
///   TEXT as on a full disk (no device fault is injected then).
///
/// The failure goes through the same path as a real one (recorded, then thrown by
/// `checkErrors` and `read`). Never set it outside tests; an unknown value is an error.
public struct OpenCLFault: Sendable, Equatable {
    public enum Point: String, Sendable { case launch, read }
    public var point: Point
    /// Which occurrence of `point` fails (1 = the first).
    public var occurrence: Int

    public static let variable = "CYTOCL_FAULT"

    public init(point: Point, occurrence: Int = 1) {
        self.point = point; self.occurrence = occurrence
    }

    /// Parses `launch`, `launch:N`, `read` or `read:N`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), let p = Point(rawValue: parts[0].lowercased()) else {
            throw OpenCLError.noDevice(
                "\(Self.variable)=\(text) is not a fault to inject: use launch, launch:N, read or read:N (for tests only)")
        }
        var n = 1
        if parts.count == 2 {
            guard let v = Int(parts[1]), v >= 1 else {
                throw OpenCLError.noDevice("\(Self.variable)=\(text): N must be a positive integer")
            }
            n = v
        }
        self.init(point: p, occurrence: n)
    }

    /// The fault named by `CYTOCL_FAULT`, nil when it is unset or empty.
    static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> OpenCLFault? {
        guard let text = env[variable], !text.isEmpty, !text.hasPrefix("write:") else { return nil }
        return try OpenCLFault(parsing: text)
    }
}
