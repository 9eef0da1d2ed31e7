// CytoCPUAVX2: the shared kernel sources (CytoCPUAVX512/*.swift, linked)
// compiled for haswell (x86-64-v3: AVX2 + FMA) with 8-float vectors.
typealias FV = SIMD8<Float>
/// FV's lanes as bits, as adjacent lane pairs, and half a vector (one lane per pair):
/// the 2x2 pooling kernels split even and odd lanes through these views.
typealias FVBits = SIMD8<UInt32>
typealias FVPairs = SIMD4<UInt64>
typealias FVHalf = SIMD4<Float>
typealias FVHalfBits = SIMD4<UInt32>
/// One byte per window: the max-pool routes (`PoolKernels.forwardRowRoutes`).
typealias FVHalfBytes = SIMD4<UInt8>

/// What this copy of the kernels was built for.
public enum KernelBuild {
    public static let name = "AVX2"
    public static let lanes = FV.scalarCount
    /// Four output channels per filter-gradient call from this row width on: the pair
    /// kernel's 18 sums overflow AVX2's 16 registers, and under 96 (conv3: 60 wide) the
    /// quad kernel's per-row reload of its 36 sums and masked tail cost more than they
    /// save (scripts/kernel-ab: 0.7-1.0x there, 1.2-2.2x at conv1 and conv2).
    public static let quadFilterMinWidth = 96
}
