import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func maxPoolForward(_ g: PoolGeometry, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch(
            MaxPoolForwardLaunch(
                input: buf(input).mem, output: buf(output).mem,
                planes: g.batch * g.channels, inHeight: g.inHeight, inWidth: g.inWidth),
            tag: "maxpool_fwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func maxPoolBackward(
        _ g: PoolGeometry, input: any DeviceBuffer, gradOutput: any DeviceBuffer,
        gradInput: any DeviceBuffer
    ) {
        launch(
            MaxPoolBackwardLaunch(
                input: buf(input).mem, gradOutput: buf(gradOutput).mem,
                gradInput: .dense(buf(gradInput).mem, height: g.inHeight, width: g.inWidth),
                planes: g.batch * g.channels, inHeight: g.inHeight, inWidth: g.inWidth, inputIsReLU: false),
            tag: "maxpool_bwd \(g.channels) \(g.inHeight)x\(g.inWidth)")
    }

    public func relu(count: Int, input: any DeviceBuffer, output: any DeviceBuffer) {
        launch(ReLUForwardLaunch(input: buf(input).mem, output: buf(output).mem, count: count))
    }

    public func reluBackward(count: Int, activation: any DeviceBuffer, grad: any DeviceBuffer) {
        launch(ReLUBackwardLaunch(activation: buf(activation).mem, grad: buf(grad).mem, count: count), tag: "relu_bwd \(count)")
    }
}
