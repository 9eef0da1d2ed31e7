// CytoCPUPortable: the shared kernel sources (CytoCPUAVX512/*.swift, linked)
// compiled for the baseline of the target architecture (SSE2 on x86-64) with
// 8-float vectors.
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
    public static let name = "portable"
    public static let lanes = FV.scalarCount
    /// Four output channels per filter-gradient call: never (SSE2 holds an 8-float vector in two registers, so neither the pair nor the quad kernel fits).
    public static let quadFilterMinWidth = Int.max
}
