import CytoCore

// The one conformance of each compiled copy to CPUKernelTable: this file is shared
// (linked into CytoCPUAVX2 and CytoCPUPortable), so every copy exposes the same
// entry points; only `quadFilterMinWidth` comes from each copy's Lanes.swift.
extension KernelBuild: CPUKernelTable {
    public static func convForwardRow(
        _ inBase: UnsafeMutablePointer<Float>, _ inPlane: Int, _ inRow: Int, _ channels: Int,
        _ weights: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>,
        _ outBase: UnsafeMutablePointer<Float>, _ outPlane: Int, _ outChannels: Int, _ width: Int, _ relu: Bool
    ) {
        ConvKernels.forwardRow(
            inBase: inBase, inPlane: inPlane, inRow: inRow, channels: channels, weights: weights, bias: bias,
            outBase: outBase, outPlane: outPlane, outChannels: outChannels, width: width, relu: relu)
    }

    public static func convBackwardDataPlane(
        _ gradOut: UnsafeMutablePointer<Float>, _ outPlane: Int, _ outRow: Int, _ outChannels: Int,
        _ outHeight: Int, _ outWidth: Int, _ weights: UnsafeMutablePointer<Float>, _ channel: Int, _ channels: Int,
        _ gradIn: UnsafeMutablePointer<Float>, _ inHeight: Int, _ inWidth: Int
    ) {
        ConvKernels.backwardDataPlane(
            gradOut: gradOut, outPlane: outPlane, outRow: outRow, outChannels: outChannels, outHeight: outHeight,
            outWidth: outWidth, weights: weights, channel: channel, channels: channels, gradIn: gradIn,
            inHeight: inHeight, inWidth: inWidth)
    }

    public static func convFilterGradient(
        _ input: UnsafeMutablePointer<Float>, _ gradPlane: UnsafeMutablePointer<Float>, _ gradRow: Int,
        _ n: Int, _ rows: Range<Int>, _ c: Int, _ channels: Int, _ inHeight: Int, _ inWidth: Int, _ outWidth: Int,
        _ result: UnsafeMutablePointer<Float>
    ) {
        ConvKernels.filterGradient(
            input: input, gradPlane: gradPlane, gradRow: gradRow, n: n, rows: rows, c: c, channels: channels,
            inHeight: inHeight, inWidth: inWidth, outWidth: outWidth, result: result)
    }

    public static func convFilterGradientPair(
        _ input: UnsafeMutablePointer<Float>, _ gradPlane0: UnsafeMutablePointer<Float>,
        _ gradPlane1: UnsafeMutablePointer<Float>, _ gradRow: Int, _ n: Int, _ rows: Range<Int>, _ c: Int,
        _ channels: Int, _ inHeight: Int, _ inWidth: Int, _ outWidth: Int,
        _ result0: UnsafeMutablePointer<Float>, _ result1: UnsafeMutablePointer<Float>
    ) {
        ConvKernels.filterGradientPair(
            input: input, gradPlanes: gradPlane0, gradPlane1, gradRow: gradRow, n: n, rows: rows, c: c,
            channels: channels, inHeight: inHeight, inWidth: inWidth, outWidth: outWidth, results: result0, result1)
    }

    public static func convFilterGradientQuad(
        _ input: UnsafeMutablePointer<Float>, _ gradPlanes: UnsafeMutablePointer<Float>, _ gradPlaneStride: Int,
        _ gradRow: Int, _ n: Int, _ rows: Range<Int>, _ c: Int, _ channels: Int, _ inHeight: Int, _ inWidth: Int,
        _ outWidth: Int, _ results: UnsafeMutablePointer<Float>, _ resultStride: Int
    ) {
        ConvKernels.filterGradientQuad(
            input: input, gradPlanes: gradPlanes, gradPlaneStride: gradPlaneStride, gradRow: gradRow, n: n, rows: rows,
            c: c, channels: channels, inHeight: inHeight, inWidth: inWidth, outWidth: outWidth, results: results,
            resultStride: resultStride)
    }

    public static func poolForwardRow(
        _ row0: UnsafePointer<Float>, _ row1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ outWidth: Int
    ) {
        PoolKernels.forwardRow(row0, row1, out, Wo: outWidth)
    }

    public static func poolForwardRowRoutes(
        _ row0: UnsafePointer<Float>, _ row1: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        _ routes: UnsafeMutablePointer<UInt8>, _ outWidth: Int
    ) {
        PoolKernels.forwardRowRoutes(row0, row1, out, routes, Wo: outWidth)
    }

    public static func poolReluBackwardRoutesRow(
        _ routes: UnsafePointer<UInt8>, _ grad: UnsafePointer<Float>,
        _ dest0: UnsafeMutablePointer<Float>, _ dest1: UnsafeMutablePointer<Float>, _ width: Int, _ outWidth: Int
    ) -> Float {
        PoolKernels.backwardRoutesRow(routes, grad, dest0, dest1, W: width, Wo: outWidth)
    }

    public static func poolBackwardPlane(
        _ source: UnsafePointer<Float>, _ grad: UnsafePointer<Float>, _ dest: UnsafeMutablePointer<Float>,
        _ height: Int, _ width: Int, _ outHeight: Int, _ outWidth: Int
    ) {
        PoolKernels.backwardPlane(source, grad, dest, H: height, W: width, Ho: outHeight, Wo: outWidth)
    }

    public static func augmentRow(
        _ image: UnsafePointer<UInt8>, _ height: Int, _ width: Int, _ channels: Int, _ map: AugmentMap, _ y: Int,
        _ out: UnsafeMutablePointer<Float>, _ plane: Int
    ) {
        AugmentKernels.row(image: image, height: height, width: width, channels: channels, map: map, y: y, out: out, plane: plane)
    }

    public static func copyRow(
        _ source: UnsafePointer<UInt8>, _ width: Int, _ channels: Int, _ out: UnsafeMutablePointer<Float>, _ plane: Int
    ) {
        AugmentKernels.copyRow(source, width: width, channels: channels, out: out, plane: plane)
    }

    public static func reluBackward(
        _ activation: UnsafeMutablePointer<Float>, _ grad: UnsafeMutablePointer<Float>, _ range: Range<Int>
    ) {
        ElementwiseKernels.reluBackward(activation, grad, range)
    }
}
