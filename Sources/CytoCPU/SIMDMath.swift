/// Small SIMD8 helpers for the CPU backend's own light loops (bias sums, dense
/// layers). The heavy loops live in the CytoCPUAVX512, CytoCPUAVX2, CytoCPUPortable modules, compiled once per
/// instruction set (see KernelSet.swift).
typealias F8 = SIMD8<Float>

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}
@inline(__always) func load8(_ p: UnsafeMutablePointer<Float>) -> F8 {
    UnsafeRawPointer(p).loadUnaligned(as: F8.self)
}
@inline(__always) func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self)
}

enum SIMDMath {
    @inline(__always) static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F8(repeating: 0), i = 0
        while i + 8 <= n { acc += load8(p + i); i += 8 }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }
    @inline(__always) static func sum(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        sum(UnsafePointer(p), n)
    }
    @inline(__always) static func dot(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var acc = F8(repeating: 0), i = 0
        while i + 8 <= n { acc.addProduct(load8(a + i), load8(b + i)); i += 8 }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
}

/// Elementwise `a += b * c` on SIMD8, unfused: this module is built for baseline
/// x86-64, where a fused multiply-add would be a call to the software `fmaf`.
extension SIMD8 where Scalar == Float {
    @inline(__always) mutating func addProduct(_ b: F8, _ c: F8) { self = self + b * c }
    @inline(__always) mutating func addProduct(_ b: F8, _ c: Float) { self = self + b * c }
}
