// CytoCPUAVX2: the shared kernel sources (CytoCPUAVX512/*.swift, linked)
// compiled for haswell (x86-64-v3: AVX2 + FMA) with 8-float vectors.
typealias FV = SIMD8<Float>

/// What this copy of the kernels was built for.
public enum KernelBuild {
    public static let name = "AVX2"
    public static let lanes = FV.scalarCount
}
