// CytoCPUAVX512: the shared kernel sources compiled for skylake-avx512
// (x86-64-v4: AVX-512 F/BW/CD/DQ/VL) with 16-float vectors.
typealias FV = SIMD16<Float>

/// What this copy of the kernels was built for.
public enum KernelBuild {
    public static let name = "AVX-512"
    public static let lanes = FV.scalarCount
}
