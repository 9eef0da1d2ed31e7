// CytoCPUAVX512: the shared kernel sources compiled for skylake-avx512
// (x86-64-v4: AVX-512 F/BW/CD/DQ/VL) with 16-float vectors.
typealias FV = SIMD16<Float>
/// FV's lanes as bits, as adjacent lane pairs, and half a vector (one lane per pair):
/// the 2x2 pooling kernels split even and odd lanes through these views.
typealias FVBits = SIMD16<UInt32>
typealias FVPairs = SIMD8<UInt64>
typealias FVHalf = SIMD8<Float>
typealias FVHalfBits = SIMD8<UInt32>
/// One byte per window: the max-pool routes (`PoolKernels.forwardRowRoutes`).
typealias FVHalfBytes = SIMD8<UInt8>

/// What this copy of the kernels was built for.
public enum KernelBuild {
    public static let name = "AVX-512"
    public static let lanes = FV.scalarCount
    /// Four output channels per filter-gradient call from this row width on: the pair
    /// kernel (which fits AVX-512's 32 registers) wins on narrower rows (125 wide and
    /// less: 1.1-1.9x), the quad kernel on conv1 (255 and 398 wide: 1.1-1.4x) and, less
    /// clearly, conv2 at 400x400 (197 wide: 0.95-1.2x); docs/speed.md, 2026-12-07.
    public static let quadFilterMinWidth = 160
}
