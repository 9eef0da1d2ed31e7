import CCPUFeatures
import CytoCPUAVX2
import CytoCPUAVX512
import CytoCPUPortable
import CytoCore
import Foundation

/// Which compiled copy of the CPU kernels runs. The kernel sources are compiled three
/// times (CytoCPUAVX512, CytoCPUAVX2, CytoCPUPortable: one source, three
/// instruction sets and vector widths), and the best one the CPU supports is chosen
/// when the program starts, so one binary runs on any x86-64 and uses AVX-512 where
/// it exists. Results agree up to float rounding across paths (vector width changes
/// the order of some sums).
public enum CPUPath: String, Sendable, CaseIterable {
    /// x86-64-v4: AVX-512 F/BW/CD/DQ/VL, 16-float vectors.
    case avx512
    /// x86-64-v3: AVX2 + FMA, 8-float vectors.
    case avx2
    /// Baseline x86-64 (SSE2) or any other architecture, 8-float vectors.
    case portable

    /// The best path this CPU supports.
    public static let best: CPUPath = {
        switch cytocl_cpu_level() {
        case 4...: return .avx512
        case 3: return .avx2
        default: return .portable
        }
    }()

    /// The paths this CPU can run, best first.
    public static var supported: [CPUPath] { allCases.filter { $0.isSupported } }

    public var isSupported: Bool {
        switch self {
        case .portable: return true
        case .avx2: return cytocl_cpu_level() >= 3
        case .avx512: return cytocl_cpu_level() >= 4
        }
    }

    /// `CYTOCL_CPU_PATH` (avx512 | avx2 | portable) when set, else the best path.
    public static func fromEnvironment() throws -> CPUPath {
        guard let text = ProcessInfo.processInfo.environment["CYTOCL_CPU_PATH"], !text.isEmpty else { return best }
        guard let p = CPUPath(rawValue: text.lowercased()) else {
            throw CytoError.invalidArgument("CYTOCL_CPU_PATH=\(text): use avx512, avx2 or portable")
        }
        guard p.isSupported else {
            throw CytoError.invalidArgument("CYTOCL_CPU_PATH=\(text): this CPU does not support \(p.displayName)")
        }
        return p
    }

    public var displayName: String {
        switch self {
        case .avx512: return "AVX-512"
        case .avx2: return "AVX2"
        case .portable: return "portable SIMD"
        }
    }

    /// The compiled copy of this path: each copy's `KernelBuild` conforms to
    /// `CPUKernelTable` once, in the copies' shared source.
    var kernels: any CPUKernelTable.Type {
        switch self {
        case .avx512: return CytoCPUAVX512.KernelBuild.self
        case .avx2: return CytoCPUAVX2.KernelBuild.self
        case .portable: return CytoCPUPortable.KernelBuild.self
        }
    }
}
