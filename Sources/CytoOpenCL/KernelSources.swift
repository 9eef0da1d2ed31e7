import CytoKernels
import Foundation

/// Where kernel sources come from: Kernels/*.cl as embedded in the binary at build
/// time (`CytoKernels`), or a folder named by CYTOCL_KERNELS (kernel development).
public enum KernelSources {
    /// Every kernel file CytoCL builds.
    public static let files = KernelFiles.sources.keys.sorted()

    /// The embedded source of `file`, or nil.
    public static func embedded(_ file: String) -> String? { KernelFiles.sources[file] }

    /// The source of `file`, from `directory` when given (CYTOCL_KERNELS) or embedded.
    public static func source(_ file: String, directory: String?) throws -> String {
        if let dir = directory, !dir.isEmpty {
            let url = URL(fileURLWithPath: dir).appendingPathComponent(file)
            do {
                return try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw OpenCLError.missingSource(
                    file: file, detail: "cannot read \(url.path) (CYTOCL_KERNELS=\(dir)): \(error.localizedDescription)")
            }
        }
        guard let s = KernelFiles.sources[file] else {
            throw OpenCLError.missingSource(
                file: file, detail: "not among the embedded kernels (\(KernelFiles.sources.keys.sorted().joined(separator: ", ")))")
        }
        return s
    }
}
