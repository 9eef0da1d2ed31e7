import CytoCore
import CytoTrain
import Foundation

/// How a sweep spreads its cells over devices: `--devices` entries with an optional
/// count (`opencl:0.0*4,cpu*2`), and the CPU backend's default of several cells at
/// once.
public enum SweepDevices {
    public struct Entry: Equatable, Sendable {
        /// A backend selector (`cpu`, `opencl`, `opencl:P.D`), lower-cased.
        public var selector: String
        /// Cells run at once on it, each with its own backend.
        public var cells: Int
        public init(selector: String, cells: Int) { self.selector = selector; self.cells = cells }
    }

    /// Parses `SEL[*N],SEL[*N],...`; a selector listed twice adds its counts' cells.
    public static func parse(_ text: String) throws -> [Entry] {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw CytoError.invalidArgument("--devices is empty") }
        return try parts.map { part in
            let pieces = part.split(separator: "*", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pieces.count <= 2, let sel = pieces.first, !sel.isEmpty else {
                throw CytoError.invalidArgument("--devices: '\(part)' is not SELECTOR or SELECTOR*N (e.g. opencl:0.0*4)")
            }
            var cells = 1
            if pieces.count == 2 {
                guard let n = Int(pieces[1]), n >= 1, n <= 256 else {
                    throw CytoError.invalidArgument("--devices: '\(part)': the count after * must be a whole number from 1 to 256")
                }
                cells = n
            }
            let selector = sel.lowercased()
            guard isSelector(selector) else {
                throw CytoError.invalidArgument(
                    "--devices: '\(part)': '\(sel)' is not a backend (use cpu, auto, opencl, opencl:N or opencl:P.D)")
            }
            return Entry(selector: selector, cells: cells)
        }
    }

    /// Whether `s` (lower-cased) has the form of a backend selector, so that a typo is
    /// refused while the arguments are checked, before anything is written, and not
    /// when the backends are made.
    static func isSelector(_ s: String) -> Bool {
        if ["cpu", "auto", "opencl"].contains(s) { return true }
        guard s.hasPrefix("opencl:") else { return false }
        let parts = s.dropFirst("opencl:".count).split(separator: ".", omittingEmptySubsequences: false)
        return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    }

    /// Threads per cell that gave the most cells per hour on the CPU backend at the
    /// paper's batch 5 (small training sets, 257x257): one cell per core beats one
    /// cell on all cores, because at batch 5 much of a step (dense layers, loss,
    /// optimizer, pooling of the small late layers, thread hand-offs) does not
    /// spread over threads. Measured with `sweep --jobs` side by side; see README.
    public static let defaultThreadsPerCell = 1

    /// Cells run at once by default on `cores` cores (the sweep also caps it at the
    /// cells left to run).
    public static func defaultCPUCells(cores: Int) -> Int { max(1, cores / defaultThreadsPerCell) }
}
