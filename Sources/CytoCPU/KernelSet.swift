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

    var kernels: KernelSet {
        switch self {
        case .avx512: return .avx512
        case .avx2: return .avx2
        case .portable: return .portable
        }
    }
}

/// The entry points of one compiled copy of the kernels.
struct KernelSet {
    let convForwardRow:
        (
            UnsafeMutablePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>, Int, Int, Int, Bool
        ) -> Void
    let convBackwardDataPlane:
        (
            UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int, UnsafeMutablePointer<Float>, Int, Int,
            UnsafeMutablePointer<Float>, Int, Int
        ) -> Void
    let convFilterGradient:
        (
            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Range<Int>, Int, Int,
            Int, Int, Int, UnsafeMutablePointer<Float>
        ) -> Void
    let convFilterGradientPair:
        (
            UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Range<Int>,
            Int, Int, Int, Int, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>
        ) -> Void
    /// Four output channels per call (`filterGradientQuad`), where that is the faster
    /// blocking: AVX2's 16 registers, which the pair kernel's 18 sums would overflow.
    /// nil on AVX-512 (the pair kernel fits its 32 registers) and on the portable
    /// path (SSE2 holds an 8-float vector in two registers, so neither fits).
    let convFilterGradientQuad:
        (
            (
                UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Range<Int>, Int, Int,
                Int, Int, Int, UnsafeMutablePointer<Float>, Int
            ) -> Void
        )?
    let poolForwardRow: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void
    let poolReluBackwardRow:
        (
            UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
            UnsafeMutablePointer<Float>, Int, Int
        ) -> Float
    let poolBackwardPlane: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int) -> Void
    let augmentRow: (UnsafePointer<UInt8>, Int, Int, Int, AugmentMap, Int, UnsafeMutablePointer<Float>, Int) -> Void
    let copyRow: (UnsafePointer<UInt8>, Int, Int, UnsafeMutablePointer<Float>, Int) -> Void
    let reluBackward: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void

    static var avx512: KernelSet {
        KernelSet(
            convForwardRow: CytoCPUAVX512.ConvKernels.forwardRow, convBackwardDataPlane: CytoCPUAVX512.ConvKernels.backwardDataPlane,
            convFilterGradient: CytoCPUAVX512.ConvKernels.filterGradient,
            convFilterGradientPair: CytoCPUAVX512.ConvKernels.filterGradientPair,
            convFilterGradientQuad: nil, poolForwardRow: CytoCPUAVX512.PoolKernels.forwardRow,
            poolReluBackwardRow: CytoCPUAVX512.PoolKernels.backwardReluRow,
            poolBackwardPlane: CytoCPUAVX512.PoolKernels.backwardPlane, augmentRow: CytoCPUAVX512.AugmentKernels.row,
            copyRow: CytoCPUAVX512.AugmentKernels.copyRow, reluBackward: CytoCPUAVX512.ElementwiseKernels.reluBackward)
    }
    static var avx2: KernelSet {
        KernelSet(
            convForwardRow: CytoCPUAVX2.ConvKernels.forwardRow, convBackwardDataPlane: CytoCPUAVX2.ConvKernels.backwardDataPlane,
            convFilterGradient: CytoCPUAVX2.ConvKernels.filterGradient,
            convFilterGradientPair: CytoCPUAVX2.ConvKernels.filterGradientPair,
            convFilterGradientQuad: CytoCPUAVX2.ConvKernels.filterGradientQuad, poolForwardRow: CytoCPUAVX2.PoolKernels.forwardRow,
            poolReluBackwardRow: CytoCPUAVX2.PoolKernels.backwardReluRow,
            poolBackwardPlane: CytoCPUAVX2.PoolKernels.backwardPlane, augmentRow: CytoCPUAVX2.AugmentKernels.row,
            copyRow: CytoCPUAVX2.AugmentKernels.copyRow, reluBackward: CytoCPUAVX2.ElementwiseKernels.reluBackward)
    }
    static var portable: KernelSet {
        KernelSet(
            convForwardRow: CytoCPUPortable.ConvKernels.forwardRow, convBackwardDataPlane: CytoCPUPortable.ConvKernels.backwardDataPlane,
            convFilterGradient: CytoCPUPortable.ConvKernels.filterGradient,
            convFilterGradientPair: CytoCPUPortable.ConvKernels.filterGradientPair,
            convFilterGradientQuad: nil, poolForwardRow: CytoCPUPortable.PoolKernels.forwardRow,
            poolReluBackwardRow: CytoCPUPortable.PoolKernels.backwardReluRow,
            poolBackwardPlane: CytoCPUPortable.PoolKernels.backwardPlane, augmentRow: CytoCPUPortable.AugmentKernels.row,
            copyRow: CytoCPUPortable.AugmentKernels.copyRow, reluBackward: CytoCPUPortable.ElementwiseKernels.reluBackward)
    }
}
