import Foundation

/// One random training augmentation, with the semantics of the Keras
/// `ImageDataGenerator(rotation_range=359, horizontal_flip=True, vertical_flip=True,
/// fill_mode="nearest")` the paper used: a rotation about the image centre sampled
/// bilinearly (scipy `order=1`) with edge pixels replicated outside the image, then
/// the flips.
///
/// The transform is drawn on the host from a seeded generator and handed to the
/// backend, so the CPU reference and the OpenCL kernel produce the same batch for
/// the same seed.
public struct AugmentTransform: Sendable, Equatable {
    public var cosTheta: Float
    public var sinTheta: Float
    public var flipHorizontal: Bool
    public var flipVertical: Bool

    public init(degrees: Float, flipHorizontal: Bool, flipVertical: Bool) {
        let radians = Double(degrees) * Double.pi / 180
        self.cosTheta = Float(cos(radians))
        self.sinTheta = Float(sin(radians))
        self.flipHorizontal = flipHorizontal
        self.flipVertical = flipVertical
    }

    public static let identity = AugmentTransform(degrees: 0, flipHorizontal: false, flipVertical: false)

    /// Rotation uniform in [0, 359] degrees, each flip with probability 1/2.
    public static func random<G: RandomNumberGenerator>(using rng: inout G) -> AugmentTransform {
        let degrees = Float.random(in: 0...359, using: &rng)
        let h = Bool.random(using: &rng)
        let v = Bool.random(using: &rng)
        return AugmentTransform(degrees: degrees, flipHorizontal: h, flipVertical: v)
    }

    /// The source coordinate (row, column) sampled for output pixel (row, column).
    /// Written with the exact operation order of the OpenCL kernel in `augment.cl`.
    @inline(__always)
    public func sourceCoordinate(row: Int, column: Int, height: Int, width: Int) -> (Float, Float) {
        let r = Float(flipVertical ? height - 1 - row : row)
        let c = Float(flipHorizontal ? width - 1 - column : column)
        let cy = Float(height - 1) * 0.5
        let cx = Float(width - 1) * 0.5
        let dy = r - cy
        let dx = c - cx
        let sr = (cosTheta * dy - sinTheta * dx) + cy
        let sc = (sinTheta * dy + cosTheta * dx) + cx
        return (sr, sc)
    }

    /// Samples one channel of an NHWC uint8 image bilinearly with edge replication
    /// and returns the value scaled to [0, 1].
    @inline(__always)
    public static func sample(_ image: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int,
                              channel: Int, row sr: Float, column sc: Float) -> Float {
        let fr = sr.rounded(.down), fc = sc.rounded(.down)
        let ar = sr - fr, ac = sc - fc
        let r0 = clampIndex(fr, height), r1 = clampIndex(fr + 1, height)
        let c0 = clampIndex(fc, width), c1 = clampIndex(fc + 1, width)
        @inline(__always) func px(_ r: Int, _ c: Int) -> Float {
            Float(image[(r * width + c) * channels + channel])
        }
        let top = px(r0, c0) + ac * (px(r0, c1) - px(r0, c0))
        let bottom = px(r1, c0) + ac * (px(r1, c1) - px(r1, c0))
        return (top + ar * (bottom - top)) * (1 / 255)
    }

    @inline(__always)
    static func clampIndex(_ v: Float, _ size: Int) -> Int {
        if v <= 0 { return 0 }
        let i = Int(v)
        return i >= size ? size - 1 : i
    }
}
