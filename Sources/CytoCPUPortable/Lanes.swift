// CytoCPUPortable: the shared kernel sources (CytoCPUAVX512/*.swift, linked)
// compiled for the baseline of the target architecture (SSE2 on x86-64) with
// 8-float vectors.
typealias FV = SIMD8<Float>

/// What this copy of the kernels was built for.
public enum KernelBuild {
    public static let name = "portable"
    public static let lanes = FV.scalarCount
}
