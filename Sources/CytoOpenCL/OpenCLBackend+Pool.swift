import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch(
            "maxpool_fwd", "pool.cl",
            [
                .mem(buf(input).mem), .mem(buf(output).mem),
                .int(g.batch * g.channels), .int(g.inHeight), .int(g.inWidth),
            ],
            global: [(g.outWidth + 7) / 8, g.outHeight, g.batch * g.channels], tag: "maxpool_fwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func maxPoolBackward(
        _ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        launch(
            "maxpool_bwd", "pool.cl",
            [
                .mem(buf(input).mem), .mem(buf(gradOutput).mem), .mem(buf(gradInput).mem),
                .int(g.batch * g.channels), .int(g.inHeight), .int(g.inWidth),
                .int(0), .int(g.inWidth), .int(g.inHeight * g.inWidth), .int(0),
            ],
            global: [(g.inWidth + 15) / 16, (g.inHeight + 1) / 2, g.batch * g.channels],
            tag: "maxpool_bwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch("relu_fwd", "elementwise.cl", [.mem(buf(input).mem), .mem(buf(output).mem), .int(count)], global: [(count + 7) / 8])
    }

    public func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer) {
        launch(
            "relu_bwd", "elementwise.cl", [.mem(buf(activation).mem), .mem(buf(grad).mem), .int(count)], global: [(count + 7) / 8],
            tag: "relu_bwd \(count)")
    }
}
