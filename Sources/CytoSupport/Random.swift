/// A small, fast, seedable generator (SplitMix64). Swift's default generator is not
/// seedable; every random choice in CytoCL (initialisation, shuffling, folds,
/// augmentation, synthetic images) draws from this so that a seed reproduces a run
/// exactly on any machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for a named sub-stream, so that e.g. adding a shuffle does not
    /// change the initial weights drawn from the same seed.
    public static func stream(seed: UInt64, _ name: String) -> SeededGenerator {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return SeededGenerator(seed: seed ^ h)
    }

    /// Uniform float in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }
}
