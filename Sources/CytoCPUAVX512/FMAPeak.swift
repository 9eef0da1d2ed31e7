// Shared by CytoCPUAVX512, CytoCPUAVX2 and CytoCPUPortable (compiled once per
// instruction set, as the kernels are).

/// The most fused multiply-adds this copy's vectors can do: twelve independent
/// accumulators in registers, no memory traffic. Twelve chains cover the latency
/// (4 cycles) of two FMA pipes with room to spare on every x86-64 seen (Zen 2-4,
/// Skylake and later). `bench` divides a training step's arithmetic by this rate, so
/// the "fraction of the FMA limit" is measured on the CPU it runs on, at the clock
/// it runs at now, rather than computed from a data sheet's nominal frequency.
public enum FMAPeak {
    /// Floating-point operations per `run` iteration (12 vectors x lanes x multiply and add).
    public static let flopsPerIteration = 12 * FV.scalarCount * 2

    /// Runs `iterations` rounds; returns a value the caller must use, so the loop is not
    /// removed as dead code.
    @inline(never)
    public static func run(iterations: Int, seed: Float) -> Float {
        let b = FV(repeating: seed * 1e-7), c = FV(repeating: 1 - seed * 1e-7)
        var a0 = FV(repeating: seed), a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5
        var a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11
        for _ in 0..<iterations {
            a0.addProduct(b, c); a1.addProduct(b, c); a2.addProduct(b, c); a3.addProduct(b, c)
            a4.addProduct(b, c); a5.addProduct(b, c); a6.addProduct(b, c); a7.addProduct(b, c)
            a8.addProduct(b, c); a9.addProduct(b, c); a10.addProduct(b, c); a11.addProduct(b, c)
        }
        let s = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11))
        return s.sum()
    }
}
