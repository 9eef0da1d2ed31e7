import Foundation

/// How an augmented image is resampled.
///
/// - `nearest`: what the paper's Keras 2.0.8 `ImageDataGenerator` does: scipy
///   `affine_transform(order=0, mode="nearest")` about the centre `size/2 + 0.5`
///   (Keras' `transform_matrix_offset_center`), i.e. the source pixel
///   `floor(s + 0.5)` with edge replication. The paper's protocols use it.
/// - `bilinear`: scipy `order=1` about the geometric centre `(size - 1)/2`, with edge
///   replication: smoother, and what CytoCL used before the Keras 2.0.8 form was known.
public enum AugmentSampler: String, Sendable, Codable, CaseIterable, Equatable {
    case nearest
    case bilinear

    /// The paper's sampler (Keras 2.0.8).
    public static let paper = AugmentSampler.nearest
}

/// The affine map from an output pixel (row y, column x) to the source coordinate
/// sampled for it: `sr = (rowBase + y*rowPerY) + x*rowPerX`, and likewise for the
/// column. Rotation and both flips fold into these six numbers, so a row is walked
/// with one multiply and one add per coordinate, and the CPU loop and the OpenCL
/// kernel (`augment.cl`) evaluate exactly the same float operations.
public struct AugmentMap: Sendable, Equatable {
    public var rowBase: Float, rowPerY: Float, rowPerX: Float
    public var colBase: Float, colPerY: Float, colPerX: Float
    public var sampler: AugmentSampler

    /// The source coordinates of the start of output row `y` (the per-row constants).
    @inline(__always)
    public func rowStart(_ y: Int) -> (row: Float, column: Float) {
        let fy = Float(y)
        return (rowBase + fy * rowPerY, colBase + fy * colPerY)
    }

    /// The source coordinate (row, column) sampled for output pixel (y, x).
    @inline(__always)
    public func source(row y: Int, column x: Int) -> (Float, Float) {
        let (r0, c0) = rowStart(y)
        let fx = Float(x)
        return (r0 + fx * rowPerX, c0 + fx * colPerX)
    }
}

/// One random training augmentation, with the semantics of the Keras
/// `ImageDataGenerator(rotation_range=359, horizontal_flip=True, vertical_flip=True,
/// fill_mode="nearest")` the paper used: a rotation about the image centre with edge
/// pixels replicated outside the image, then the flips. `sampler` chooses Keras
/// 2.0.8's nearest-neighbour resampling (the paper's) or bilinear.
///
/// The transform is drawn on the host from a seeded generator and handed to the
/// backend, so the CPU reference and the OpenCL kernel produce the same batch for
/// the same seed.
public struct AugmentTransform: Sendable, Equatable {
    public var degrees: Double
    public var flipHorizontal: Bool
    public var flipVertical: Bool
    public var sampler: AugmentSampler

    public init(degrees: Float, flipHorizontal: Bool, flipVertical: Bool, sampler: AugmentSampler = .paper) {
        self.degrees = Double(degrees)
        self.flipHorizontal = flipHorizontal
        self.flipVertical = flipVertical
        self.sampler = sampler
    }

    public static let identity = AugmentTransform(degrees: 0, flipHorizontal: false, flipVertical: false)

    /// True when the transform leaves every pixel where it is (either sampler: at 0
    /// degrees both centres map pixel centres onto themselves).
    public var isIdentity: Bool { degrees == 0 && !flipHorizontal && !flipVertical }

    /// Rotation uniform in [0, 359] degrees, each flip with probability 1/2.
    public static func random<G: RandomNumberGenerator>(
        using rng: inout G,
        sampler: AugmentSampler = .paper
    ) -> AugmentTransform {
        let degrees = Float.random(in: 0...359, using: &rng)
        let h = Bool.random(using: &rng)
        let v = Bool.random(using: &rng)
        return AugmentTransform(degrees: degrees, flipHorizontal: h, flipVertical: v, sampler: sampler)
    }

    /// The centre of rotation along an axis of `size` pixels: Keras 2.0.8's
    /// `size/2 + 0.5` for the nearest sampler, the geometric centre for bilinear.
    public static func centre(_ size: Int, _ sampler: AugmentSampler) -> Double {
        sampler == .nearest ? Double(size) / 2 + 0.5 : Double(size - 1) / 2
    }

    /// The affine map for an image of the given size, computed in double precision:
    /// un-flip the output pixel (flips come after the rotation in Keras), then
    /// `source = R (p - o) + o` with `R = [[cos, -sin], [sin, cos]]` (scipy's
    /// `affine_transform(x, R, o - R o)` with Keras' rotation matrix).
    public func map(height: Int, width: Int) -> AugmentMap {
        let radians = degrees * Double.pi / 180
        let c = cos(radians), s = sin(radians)
        let oy = Self.centre(height, sampler), ox = Self.centre(width, sampler)
        // Un-flipped coordinates relative to the centre: r - oy = ry0 + ryY*y, c - ox = cx0 + cxX*x.
        let ry0 = flipVertical ? Double(height - 1) - oy : -oy, ryY: Double = flipVertical ? -1 : 1
        let cx0 = flipHorizontal ? Double(width - 1) - ox : -ox, cxX: Double = flipHorizontal ? -1 : 1
        return AugmentMap(
            rowBase: Float(c * ry0 - s * cx0 + oy), rowPerY: Float(c * ryY), rowPerX: Float(-s * cxX),
            colBase: Float(s * ry0 + c * cx0 + ox), colPerY: Float(s * ryY), colPerX: Float(c * cxX),
            sampler: sampler)
    }

    /// Samples one channel of an NHWC uint8 image at (sr, sc) with edge replication
    /// and returns the value scaled to [0, 1]: the scalar definition the vectorised
    /// loops (`AugmentKernels` in CytoCPU, `augment.cl`) reproduce operation by operation.
    @inline(__always)
    public static func sample(
        _ image: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int,
        channel: Int, row sr: Float, column sc: Float, sampler: AugmentSampler
    ) -> Float {
        @inline(__always) func px(_ r: Int, _ c: Int) -> Float {
            Float(image[(r * width + c) * channels + channel])
        }
        switch sampler {
        case .nearest:
            let r = clampIndex((sr + 0.5).rounded(.down), height), c = clampIndex((sc + 0.5).rounded(.down), width)
            return px(r, c) * (1 / 255)
        case .bilinear:
            let fr = sr.rounded(.down), fc = sc.rounded(.down)
            let ar = sr - fr, ac = sc - fc
            let r0 = clampIndex(fr, height), r1 = clampIndex(fr + 1, height)
            let c0 = clampIndex(fc, width), c1 = clampIndex(fc + 1, width)
            let top = px(r0, c0) + ac * (px(r0, c1) - px(r0, c0))
            let bottom = px(r1, c0) + ac * (px(r1, c1) - px(r1, c0))
            return (top + ar * (bottom - top)) * (1 / 255)
        }
    }

    /// An integer-valued float clamped to [0, size - 1] (clamped as a float first, so
    /// coordinates far outside the image never overflow the conversion).
    @inline(__always)
    public static func clampIndex(_ v: Float, _ size: Int) -> Int {
        Int(min(max(v, 0), Float(size - 1)))
    }
}
