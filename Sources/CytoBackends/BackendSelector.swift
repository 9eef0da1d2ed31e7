import CytoCore
import CytoOpenCL
import Foundation

/// A backend choice as the user writes it (`--backend`, `--devices`, `CYTOCL_BACKEND`),
/// parsed once: `auto`, `cpu`, `opencl` (the first OpenCL device, GPUs first),
/// `opencl:N` (the N-th device `cytocl devices` lists) or `opencl:P.D` (platform P,
/// device D). A typo is refused while the arguments are read, before anything is
/// written; whether the device exists is only known when the backend is made.
public enum BackendSelector: Hashable, Sendable, CustomStringConvertible {
    case auto
    case cpu
    case opencl(OpenCLDevice)

    /// Which OpenCL device (best, the N-th listed, or platform P's device D).
    public typealias OpenCLDevice = OpenCLDeviceSelector

    /// The forms accepted, for messages.
    public static let forms = "auto, cpu, opencl, opencl:N or opencl:P.D"

    /// Parses a selector, case and surrounding blanks ignored.
    public init(parsing text: String) throws {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch s {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "opencl": self = .opencl(.best)
        default:
            guard s.hasPrefix("opencl:") else {
                throw CytoError.invalidArgument("unknown backend '\(s)': use \(Self.forms)")
            }
            let parts = s.dropFirst("opencl:".count).split(separator: ".", omittingEmptySubsequences: false)
            let numbers = parts.map { p in p.allSatisfy { $0.isASCII && $0.isNumber } ? Int(p) : nil }
            switch (numbers.count, numbers.first ?? nil, numbers.last ?? nil) {
            case (1, let n?, _): self = .opencl(.listed(n))
            case (2, let p?, let d?): self = .opencl(.address(platform: p, device: d))
            default: throw CytoError.invalidArgument("unknown backend '\(s)': use \(Self.forms)")
            }
        }
    }

    /// `CYTOCL_BACKEND`, or `auto` when it is not set.
    public static func fromEnvironment() throws -> BackendSelector {
        guard let text = ProcessInfo.processInfo.environment["CYTOCL_BACKEND"] else { return .auto }
        do { return try BackendSelector(parsing: text) } catch { throw CytoError.invalidArgument("CYTOCL_BACKEND: \(error)") }
    }

    /// The canonical text, which `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case .auto: return "auto"
        case .cpu: return "cpu"
        case .opencl(.best): return "opencl"
        case .opencl(.listed(let n)): return "opencl:\(n)"
        case .opencl(.address(let p, let d)): return "opencl:\(p).\(d)"
        }
    }
}

/// One `--devices` entry of a sweep: a selector and how many cells run on it at once
/// (`opencl:0.0*4`: four cells, each with its own backend on device 0.0).
public struct BackendWorkers: Hashable, Sendable, CustomStringConvertible {
    public var selector: BackendSelector
    /// Cells run at once on it, each with its own backend.
    public var cells: Int
    public init(selector: BackendSelector, cells: Int = 1) { self.selector = selector; self.cells = cells }

    /// The most cells one entry may run at once.
    public static let maxCells = 256

    /// Parses `SELECTOR` or `SELECTOR*N`.
    public init(parsing part: String) throws {
        let pieces = part.split(separator: "*", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard pieces.count <= 2, let sel = pieces.first, !sel.isEmpty else {
            throw CytoError.invalidArgument("'\(part)' is not SELECTOR or SELECTOR*N (e.g. opencl:0.0*4)")
        }
        var cells = 1
        if pieces.count == 2 {
            guard let n = Int(pieces[1]), n >= 1, n <= Self.maxCells else {
                throw CytoError.invalidArgument("'\(part)': the count after * must be a whole number from 1 to \(Self.maxCells)")
            }
            cells = n
        }
        do { selector = try BackendSelector(parsing: sel) } catch {
            throw CytoError.invalidArgument("'\(part)': '\(sel)' is not a backend (use \(BackendSelector.forms))")
        }
        self.cells = cells
    }

    public var description: String { cells == 1 ? "\(selector)" : "\(selector)*\(cells)" }

    /// Parses `SEL[*N],SEL[*N],...` (`--devices`); messages name the option.
    public static func parseList(_ text: String, option: String = "--devices") throws -> [BackendWorkers] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw CytoError.invalidArgument("\(option) is empty") }
        return try parts.map { part in
            do { return try BackendWorkers(parsing: part) } catch let e as CytoError { throw CytoError.invalidArgument("\(option): \(e)") }
        }
    }
}
