import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    func gemm(
        m: Int, n: Int, k: Int, a: cl_mem, sam: Int, sak: Int, b: cl_mem, sbk: Int, sbn: Int,
        bias: cl_mem?, c: cl_mem, relu: Bool, tag: String
    ) {
        let ts = tuning.gemmTile
        launch(
            "gemm", "dense.cl",
            [
                .mem(a), .mem(b), .mem(bias ?? a), .mem(c), .int(m), .int(n), .int(k),
                .int(sam), .int(sak), .int(sbk), .int(sbn), .int(bias == nil ? 0 : 1), .int(relu ? 1 : 0),
            ],
            global: [(n + ts - 1) / ts * ts, (m + ts - 1) / ts * ts], local: [ts, ts], tag: tag)
    }

    public func denseForward(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, output: any DeviceBuffer, relu: Bool
    ) {
        gemm(
            m: g.batch, n: g.outFeatures, k: g.inFeatures, a: buf(input).mem, sam: g.inFeatures, sak: 1,
            b: buf(weight).mem, sbk: 1, sbn: g.inFeatures, bias: buf(bias).mem, c: buf(output).mem, relu: relu,
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
        let ts = tuning.gemmTile
        let gi = gradInput.map { buf($0).mem }
        let rows = gi == nil ? g.outFeatures : max(g.outFeatures, g.batch)
        launch(
            "dense_backward", "dense.cl",
            [
                .mem(buf(gradOutput).mem), .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(gradWeight).mem),
                .mem(buf(gradBias).mem), .mem(gi ?? buf(gradWeight).mem),
                .int(g.batch), .int(g.inFeatures), .int(g.outFeatures), .int(inputIsReLU ? 1 : 0),
            ],
            global: [(g.inFeatures + ts - 1) / ts * ts, (rows + ts - 1) / ts * ts, gi == nil ? 1 : 2],
            local: [ts, ts, 1], tag: "dense_bwd \(g.inFeatures)->\(g.outFeatures)")
    }
}
