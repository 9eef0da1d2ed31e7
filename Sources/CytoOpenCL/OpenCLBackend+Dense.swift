import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        // output [batch][out] = input [batch][in] x weight^T, weight [out][in].
        launch(
            GemmLaunch(
                a: StridedMatrix(mem: buf(input).mem, rowStride: g.inFeatures, columnStride: 1),
                b: StridedMatrix(mem: buf(weight).mem, rowStride: 1, columnStride: g.inFeatures),
                bias: buf(bias).mem, c: buf(output).mem, m: g.batch, n: g.outFeatures, k: g.inFeatures,
                relu: relu, tile: tuning.gemmTile),
            tag: "dense_fwd \(g.inFeatures)->\(g.outFeatures)")
    }

    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer
    ) {
        denseBackward(
            g, input: input, weight: weight, gradOutput: gradOutput, gradInput: gradInput,
            gradWeight: gradWeight, gradBias: gradBias, inputIsReLU: false)
    }

    /// One launch: weight gradient with the bias gradient as its row sums, and the
    /// (ReLU-masked) input gradient, in the two halves of the grid.
    public func denseBackward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        gradOutput: any DeviceBuffer, gradInput: (any DeviceBuffer)?,
        gradWeight: any DeviceBuffer, gradBias: any DeviceBuffer, inputIsReLU: Bool
    ) {
        launch(
            DenseBackwardLaunch(
                gradOutput: buf(gradOutput).mem, input: buf(input).mem, weight: buf(weight).mem,
                gradWeight: buf(gradWeight).mem, gradBias: buf(gradBias).mem, gradInput: gradInput.map { buf($0).mem },
                batch: g.batch, inFeatures: g.inFeatures, outFeatures: g.outFeatures, inputIsReLU: inputIsReLU,
                tile: tuning.gemmTile),
            tag: "dense_bwd \(g.inFeatures)->\(g.outFeatures)")
    }
}
