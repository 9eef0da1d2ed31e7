// Shared by CytoCPUAVX512, CytoCPUAVX2 and CytoCPUPortable (the same file,
// compiled once per instruction set; the real files are in CytoCPUAVX512, the other two modules link to them). `FV` is
// the module's float vector (Lanes.swift): SIMD16 with AVX-512, SIMD8 otherwise.

/// Lanes per float vector in this module (a constant after inlining).
@inline(__always) var L: Int { FV.scalarCount }

@inline(__always) func loadV(_ p: UnsafePointer<Float>) -> FV {
    UnsafeRawPointer(p).loadUnaligned(as: FV.self)
}
@inline(__always) func loadV(_ p: UnsafeMutablePointer<Float>) -> FV {
    UnsafeRawPointer(p).loadUnaligned(as: FV.self)
}
@inline(__always) func storeV(_ v: FV, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: FV.self)
}

/// 0, 1, 2, ... in every lane.
let laneIndex: FV = {
    var v = FV()
    for i in 0..<FV.scalarCount { v[i] = Float(i) }
    return v
}()

/// Elementwise `a += b * c`: one FMA where the instruction set has it; a multiply and
/// an add in the baseline x86-64 copy (CYTOCL_NO_FMA), where `addingProduct` would
/// call the software `fmaf` per lane.
extension SIMD where Scalar == Float {
    #if CYTOCL_NO_FMA
        @inline(__always) mutating func addProduct(_ b: Self, _ c: Self) { self = self + b * c }
        @inline(__always) mutating func addProduct(_ b: Self, _ c: Float) { self = self + b * c }
    #else
        @inline(__always) mutating func addProduct(_ b: Self, _ c: Self) { self = self.addingProduct(b, c) }
        @inline(__always) mutating func addProduct(_ b: Self, _ c: Float) { self = self.addingProduct(b, c) }
    #endif
}
