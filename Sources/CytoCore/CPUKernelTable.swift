/// The entry points of one compiled copy of the CPU backend's heavy loops.
///
/// The loops have one source (Sources/CytoCPUAVX512, linked into CytoCPUAVX2 and
/// CytoCPUPortable) compiled three times, for three instruction sets and vector
/// widths. Each copy's `KernelBuild` conforms to this protocol once, in that shared
/// source (KernelTable.swift), so the table cannot drift between copies; CytoCPU
/// picks a conforming type at run time (`CPUPath`). The protocol lives here
/// because CytoCore is the one module every copy and CytoCPU share. Arguments are
/// positional, as the loops' doc comments in ConvKernels, PoolKernels and
/// AugmentKernels name them.
public protocol CPUKernelTable {
    /// The instruction set it was built for ("AVX-512", "AVX2", "portable") and its floats per vector.
    static var name: String { get }
    static var lanes: Int { get }

    /// `ConvKernels.forwardRow`: one output row of every output channel.
    static func convForwardRow(
        _ inBase: UnsafeMutablePointer<Float>, _ inPlane: Int, _ inRow: Int, _ channels: Int,
        _ weights: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>,
        _ outBase: UnsafeMutablePointer<Float>, _ outPlane: Int, _ outChannels: Int, _ width: Int, _ relu: Bool)
    /// `ConvKernels.backwardDataPlane`: one input channel's plane of the data gradient.
    static func convBackwardDataPlane(
        _ gradOut: UnsafeMutablePointer<Float>, _ outPlane: Int, _ outRow: Int, _ outChannels: Int,
        _ outHeight: Int, _ outWidth: Int, _ weights: UnsafeMutablePointer<Float>, _ channel: Int, _ channels: Int,
        _ gradIn: UnsafeMutablePointer<Float>, _ inHeight: Int, _ inWidth: Int)
    /// `ConvKernels.filterGradient`: the nine filter-gradient sums of one channel pair over `rows`.
    static func convFilterGradient(
        _ input: UnsafeMutablePointer<Float>, _ gradPlane: UnsafeMutablePointer<Float>, _ gradRow: Int,
        _ n: Int, _ rows: Range<Int>, _ c: Int, _ channels: Int, _ inHeight: Int, _ inWidth: Int, _ outWidth: Int,
        _ result: UnsafeMutablePointer<Float>)
    /// `ConvKernels.filterGradientPair`: the same for two output channels at once.
    static func convFilterGradientPair(
        _ input: UnsafeMutablePointer<Float>, _ gradPlane0: UnsafeMutablePointer<Float>,
        _ gradPlane1: UnsafeMutablePointer<Float>, _ gradRow: Int, _ n: Int, _ rows: Range<Int>, _ c: Int,
        _ channels: Int, _ inHeight: Int, _ inWidth: Int, _ outWidth: Int,
        _ result0: UnsafeMutablePointer<Float>, _ result1: UnsafeMutablePointer<Float>)
    /// The narrowest conv output rows for which `convFilterGradientQuad` is the faster
    /// blocking on this copy (`Int.max`: never). AVX2 (16 registers, which the pair
    /// kernel's 18 sums overflow): rows of 96 and more. AVX-512: only wide rows (conv1,
    /// and conv2 at 400x400), where the pair kernel's eight row streams per pass run
    /// slower than the quad kernel's five. Portable: never (SSE2 holds an 8-float
    /// vector in two registers, so neither kernel fits).
    static var quadFilterMinWidth: Int { get }
    /// `ConvKernels.filterGradientQuad`: four output channels at once.
    static func convFilterGradientQuad(
        _ input: UnsafeMutablePointer<Float>, _ gradPlanes: UnsafeMutablePointer<Float>, _ gradPlaneStride: Int,
        _ gradRow: Int, _ n: Int, _ rows: Range<Int>, _ c: Int, _ channels: Int, _ inHeight: Int, _ inWidth: Int,
        _ outWidth: Int, _ results: UnsafeMutablePointer<Float>, _ resultStride: Int)
    /// `PoolKernels.forwardRow`: one row of 2x2 windows.
    static func poolForwardRow(
        _ row0: UnsafePointer<Float>, _ row1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outWidth: Int)
    /// `PoolKernels.forwardRowRoutes`: `poolForwardRow` that also writes each window's route (one byte).
    static func poolForwardRowRoutes(
        _ row0: UnsafePointer<Float>, _ row1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        _ routes: UnsafeMutablePointer<UInt8>, _ outWidth: Int)
    /// `PoolKernels.backwardRoutesRow`: one window row of max-pool + ReLU backward from
    /// the routes; returns the gradient's sum.
    static func poolReluBackwardRoutesRow(
        _ routes: UnsafePointer<UInt8>, _ grad: UnsafePointer<Float>,
        _ dest0: UnsafeMutablePointer<Float>, _ dest1: UnsafeMutablePointer<Float>, _ width: Int, _ outWidth: Int
    ) -> Float
    /// `PoolKernels.backwardPlane`: max-pool backward of one plane.
    static func poolBackwardPlane(
        _ source: UnsafePointer<Float>, _ grad: UnsafePointer<Float>, _ dest: UnsafeMutablePointer<Float>,
        _ height: Int, _ width: Int, _ outHeight: Int, _ outWidth: Int)
    /// `AugmentKernels.row`: one output row of an augmented image.
    static func augmentRow(
        _ image: UnsafePointer<UInt8>, _ height: Int, _ width: Int, _ channels: Int, _ map: AugmentMap, _ y: Int,
        _ out: UnsafeMutablePointer<Float>, _ plane: Int)
    /// `AugmentKernels.copyRow`: one row of an image, unchanged, into channel planes.
    static func copyRow(
        _ source: UnsafePointer<UInt8>, _ width: Int, _ channels: Int, _ out: UnsafeMutablePointer<Float>, _ plane: Int)
    /// `ElementwiseKernels.reluBackward`: grad = activation > 0 ? grad : 0 over `range`.
    static func reluBackward(_ activation: UnsafeMutablePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ range: Range<Int>)
}
