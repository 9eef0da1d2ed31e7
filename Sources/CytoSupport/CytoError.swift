import Foundation

/// Errors raised by every CytoCL library. Every message names what is wrong and, where
/// a file is involved, which file.
public enum CytoError: Error, CustomStringConvertible, Equatable {
    case invalidModel(String)
    case modelFile(path: String, reason: String)
    case backend(String)
    case invalidArgument(String)
    case io(path: String, reason: String)
    /// A run that would need more memory than the host or device has.
    case outOfMemory(String)
    /// The command stopped on SIGINT or SIGTERM after saving what it could (the message
    /// says what); the process exits 128 + `signal`, as the shell expects of an interrupt.
    case interrupted(signal: Int32, String)

    public var description: String {
        switch self {
        case .invalidModel(let m): return "invalid model: \(m)"
        case .modelFile(let p, let r): return "\(p): \(r)"
        case .backend(let m): return m
        case .invalidArgument(let m): return m
        case .io(let p, let r): return "\(p): \(r)"
        case .outOfMemory(let m): return m
        case .interrupted(_, let m): return m
        }
    }
}
