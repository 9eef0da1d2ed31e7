// Shared source: see Vector.swift.
import CytoCore

/// The batch gather with augmentation, vectorised along output rows.
///
/// The source coordinate is affine in the output pixel (`AugmentMap`), so eight
/// consecutive pixels' coordinates come from one vector multiply-add of the row's
/// start, and their byte offsets are computed once for all channels. Only the byte
/// loads are per pixel. Every float operation matches `AugmentTransform.sample` and
/// `augment.cl`, so the CPU and OpenCL batches are identical.
///
/// Swift's generic SIMD rounding and float/int conversions compile to per-lane
/// code (measured 30x slower than this loop), so floors and conversions use the
/// exact magic-number forms below, with adds, compares and a bit cast only. These
/// loops use 8 lanes in every build, except the nearest sampler's three-channel row
/// (`nearestRGBRow`), which takes the module's vector width.
public enum AugmentKernels {
    typealias A8 = SIMD8<Float>
    static let lanes = 8

    /// 1.5 * 2^23: adding and subtracting it rounds any |v| < 2^22 to an integer.
    @inline(__always) static var magic: A8 { A8(repeating: 12_582_912) }

    /// floor(v), exactly, for |v| < 2^22.
    @inline(__always) static func floor(_ v: A8) -> A8 {
        var t = (v + magic) - magic
        t.replace(with: t - 1, where: t .> v)
        return t
    }

    /// An integer-valued float vector (|v| < 2^22) as integers, via the bits of v + magic.
    @inline(__always) static func offsets(_ v: A8) -> SIMD8<UInt32> {
        unsafeBitCast(v + magic, to: SIMD8<UInt32>.self) &- 0x4B40_0000
    }

    @inline(__always) static func clamp(_ v: A8, _ hi: A8) -> A8 {
        var t = v
        t.replace(with: A8(repeating: 0), where: t .< A8(repeating: 0))
        t.replace(with: hi, where: t .> hi)
        return t
    }

    /// Eight bytes at `image + offset[k] + ch`, as floats scaled by 1/255.
    @inline(__always)
    static func gather(_ image: UnsafePointer<UInt8>, _ o: UnsafePointer<UInt32>, _ ch: Int) -> A8 {
        A8(
            Float(image[Int(o[0]) + ch]), Float(image[Int(o[1]) + ch]), Float(image[Int(o[2]) + ch]), Float(image[Int(o[3]) + ch]),
            Float(image[Int(o[4]) + ch]), Float(image[Int(o[5]) + ch]), Float(image[Int(o[6]) + ch]), Float(image[Int(o[7]) + ch]))
    }

    /// Three-channel pixels at `image + offset[k]`, each read as one 32-bit load (the
    /// fourth byte, the next pixel's or the buffer's slack, is masked off), split
    /// into the channel planes with vector shifts and masks, and stored scaled.
    /// Integer to float goes through the exact bit form `(v | 0x4B000000) - 2^23`.
    @inline(__always)
    static func storeRGB(_ image: UnsafePointer<UInt8>, _ o: UnsafePointer<UInt32>, _ dst: UnsafeMutablePointer<Float>, _ plane: Int) {
        @inline(__always) func px(_ k: Int) -> UInt32 { UnsafeRawPointer(image + Int(o[k])).loadUnaligned(as: UInt32.self) }
        let v = SIMD8<UInt32>(px(0), px(1), px(2), px(3), px(4), px(5), px(6), px(7))
        let byte = SIMD8<UInt32>(repeating: 0xFF), bits = SIMD8<UInt32>(repeating: 0x4B00_0000)
        let two23 = A8(repeating: 8_388_608), scale = A8(repeating: 1 / 255)
        @inline(__always) func channel(_ shift: UInt32) -> A8 {
            unsafeBitCast(((v &>> shift) & byte) | bits, to: A8.self) - two23
        }
        store(channel(0) * scale, dst)
        store(channel(8) * scale, dst + plane)
        store(channel(16) * scale, dst + 2 * plane)
    }

    /// The 32-bit pixel loads put channel 0 in the low byte only on little-endian CPUs.
    @inline(__always) static var littleEndian: Bool { 1.littleEndian == 1 }

    @inline(__always) static func store(_ v: A8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: A8.self)
    }

    /// True when the vector path's float offsets are exact for this image size.
    @inline(__always) static func vectorizable(height H: Int, width W: Int, channels C: Int) -> Bool {
        W >= lanes && H * W * C < (1 << 22)
    }

    /// One output row `y` of an augmented image into an NCHW float batch slot
    /// (`out` points at channel 0 of that row; channels are `plane` floats apart).
    public static func row(
        image: UnsafePointer<UInt8>, height H: Int, width W: Int, channels C: Int,
        map: AugmentMap, y: Int, out: UnsafeMutablePointer<Float>, plane: Int
    ) {
        guard vectorizable(height: H, width: W, channels: C) else {
            scalarRow(image: image, height: H, width: W, channels: C, map: map, y: y, out: out, plane: plane, from: 0)
            return
        }
        if W >= L && C == 3 && littleEndian && map.sampler == .nearest {
            nearestRGBRow(image: image, height: H, width: W, map: map, y: y, out: out, plane: plane)
            return
        }
        let start = map.rowStart(y)
        let r0 = A8(repeating: start.row), c0 = A8(repeating: start.column)
        let dr = A8(repeating: map.rowPerX), dc = A8(repeating: map.colPerX)
        let maxR = A8(repeating: Float(H - 1)), maxC = A8(repeating: Float(W - 1))
        let half = A8(repeating: 0.5), one = A8(repeating: 1), scale = A8(repeating: 1 / 255)
        let fW = A8(repeating: Float(W)), fC = A8(repeating: Float(C))
        let iota = A8(0, 1, 2, 3, 4, 5, 6, 7)
        var o00 = SIMD8<UInt32>(), o01 = SIMD8<UInt32>(), o10 = SIMD8<UInt32>(), o11 = SIMD8<UInt32>()
        var x = 0
        while x < W {
            if x + lanes > W { x = W - lanes }  // overlap the last block instead of a scalar tail
            let xs = A8(repeating: Float(x)) + iota
            let sr = r0 + xs * dr, sc = c0 + xs * dc
            let dst = out + x
            switch map.sampler {
            case .nearest:
                // clamp(floor(s + 0.5)) == floor(clamp(s + 0.5)) for integer bounds.
                let fr = floor(clamp(sr + half, maxR)), fc = floor(clamp(sc + half, maxC))
                o00 = offsets((fr * fW + fc) * fC)
                withUnsafeBytes(of: &o00) { raw in
                    let o = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
                    if C == 3 && littleEndian {
                        storeRGB(image, o, dst, plane)
                    } else {
                        for ch in 0..<C { store(gather(image, o, ch) * scale, dst + ch * plane) }
                    }
                }
            case .bilinear:
                let fr = floor(sr), fc = floor(sc)
                let ar = sr - fr, ac = sc - fc
                let ra = clamp(fr, maxR) * fW, rb = clamp(fr + one, maxR) * fW
                let ca = clamp(fc, maxC), cb = clamp(fc + one, maxC)
                o00 = offsets((ra + ca) * fC); o01 = offsets((ra + cb) * fC)
                o10 = offsets((rb + ca) * fC); o11 = offsets((rb + cb) * fC)
                withUnsafeBytes(of: &o00) { b00 in
                    withUnsafeBytes(of: &o01) { b01 in
                        withUnsafeBytes(of: &o10) { b10 in
                            withUnsafeBytes(of: &o11) { b11 in
                                let q00 = b00.baseAddress!.assumingMemoryBound(to: UInt32.self)
                                let q01 = b01.baseAddress!.assumingMemoryBound(to: UInt32.self)
                                let q10 = b10.baseAddress!.assumingMemoryBound(to: UInt32.self)
                                let q11 = b11.baseAddress!.assumingMemoryBound(to: UInt32.self)
                                for ch in 0..<C {
                                    let p00 = gather(image, q00, ch), p01 = gather(image, q01, ch)
                                    let p10 = gather(image, q10, ch), p11 = gather(image, q11, ch)
                                    let top = p00 + ac * (p01 - p00)
                                    let bottom = p10 + ac * (p11 - p10)
                                    store((top + ar * (bottom - top)) * scale, dst + ch * plane)
                                }
                            }
                        }
                    }
                }
            }
            x += lanes
        }
    }

    /// `row` for the nearest sampler (the paper's) on three-channel pixels, with the
    /// module's own vector width (16 pixels per step with AVX-512) and signed 32-bit
    /// pixel offsets, which LLVM turns into one hardware gather per vector with
    /// AVX-512 and into plain loads elsewhere; per image at 257x257, touch included,
    /// 1.3-1.5x faster than `row`'s 8-pixel steps on all three paths (`AugmentKernels`
    /// alone, thread CPU time). Every lane runs the same float operations as `row`,
    /// so the pixels sampled and the values written are identical. Needs `W >= L`
    /// and `vectorizable`.
    static func nearestRGBRow(
        image: UnsafePointer<UInt8>, height H: Int, width W: Int, map: AugmentMap, y: Int,
        out: UnsafeMutablePointer<Float>, plane: Int
    ) {
        @inline(__always) func floorV(_ v: FV) -> FV {
            let magic = FV(repeating: 12_582_912)
            var t = (v + magic) - magic
            t.replace(with: t - 1, where: t .> v)
            return t
        }
        @inline(__always) func clampV(_ v: FV, _ hi: FV) -> FV {
            var t = v
            t.replace(with: FV(repeating: 0), where: t .< FV(repeating: 0))
            t.replace(with: hi, where: t .> hi)
            return t
        }
        let start = map.rowStart(y)
        let r0 = FV(repeating: start.row), c0 = FV(repeating: start.column)
        let dr = FV(repeating: map.rowPerX), dc = FV(repeating: map.colPerX)
        let maxR = FV(repeating: Float(H - 1)), maxC = FV(repeating: Float(W - 1))
        let half = FV(repeating: 0.5), scale = FV(repeating: 1 / 255)
        let fW = FV(repeating: Float(W)), fC = FV(repeating: 3), magic = FV(repeating: 12_582_912)
        let byte = FVBits(repeating: 0xFF), bits = FVBits(repeating: 0x4B00_0000), two23 = FV(repeating: 8_388_608)
        var x = 0
        while x < W {
            if x + L > W { x = W - L }  // overlap the last block instead of a scalar tail
            let xs = FV(repeating: Float(x)) + laneIndex
            let sr = r0 + xs * dr, sc = c0 + xs * dc
            // clamp(floor(s + 0.5)) == floor(clamp(s + 0.5)) for integer bounds.
            let fr = floorV(clampV(sr + half, maxR)), fc = floorV(clampV(sc + half, maxC))
            let o = unsafeBitCast((fr * fW + fc) * fC + magic, to: FVBits.self) &- 0x4B40_0000
            var v = FVBits()
            // Offsets are below 2^22, so as signed 32-bit indices they let one 16-lane
            // gather load the pixels (unsigned ones take two 8-lane gathers).
            for k in 0..<L { v[k] = UnsafeRawPointer(image + Int(Int32(bitPattern: o[k]))).loadUnaligned(as: UInt32.self) }
            @inline(__always) func channel(_ shift: UInt32) -> FV {
                unsafeBitCast(((v &>> shift) & byte) | bits, to: FV.self) - two23
            }
            let dst = out + x
            storeV(channel(0) * scale, dst)
            storeV(channel(8) * scale, dst + plane)
            storeV(channel(16) * scale, dst + 2 * plane)
            x += L
        }
    }

    /// The scalar definition, for rows narrower than one vector or very large images.
    public static func scalarRow(
        image: UnsafePointer<UInt8>, height H: Int, width W: Int, channels C: Int,
        map: AugmentMap, y: Int, out: UnsafeMutablePointer<Float>, plane: Int, from: Int
    ) {
        for x in from..<W {
            let (sr, sc) = map.source(row: y, column: x)
            for ch in 0..<C {
                out[ch * plane + x] = AugmentTransform.sample(
                    image, height: H, width: W, channels: C, channel: ch,
                    row: sr, column: sc, sampler: map.sampler)
            }
        }
    }

    /// One row copied without a transform: uint8 NHWC to float NCHW, scaled by 1/255,
    /// eight pixels at a time for all channels.
    public static func copyRow(
        _ src: UnsafePointer<UInt8>, width W: Int, channels C: Int,
        out: UnsafeMutablePointer<Float>, plane: Int
    ) {
        guard W >= lanes else {
            for ch in 0..<C {
                let dst = out + ch * plane
                for x in 0..<W { dst[x] = Float(src[x * C + ch]) * (1 / 255) }
            }
            return
        }
        let scale = A8(repeating: 1 / 255)
        var x = 0
        if C == 3 && littleEndian {
            var o = SIMD8<UInt32>(0, 3, 6, 9, 12, 15, 18, 21)
            withUnsafeBytes(of: &o) { raw in
                let offsets = raw.baseAddress!.assumingMemoryBound(to: UInt32.self)
                while x < W {
                    if x + lanes > W { x = W - lanes }
                    storeRGB(src + x * 3, offsets, out + x, plane)
                    x += lanes
                }
            }
            return
        }
        while x < W {
            if x + lanes > W { x = W - lanes }
            let p = src + x * C
            for ch in 0..<C {
                let v = A8(
                    Float(p[ch]), Float(p[C + ch]), Float(p[2 * C + ch]), Float(p[3 * C + ch]),
                    Float(p[4 * C + ch]), Float(p[5 * C + ch]), Float(p[6 * C + ch]), Float(p[7 * C + ch]))
                store(v * scale, out + ch * plane + x)
            }
            x += lanes
        }
    }
}
