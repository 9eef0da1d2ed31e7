import CytoCore

extension OpenCLBackend {
    public func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer,
        gradients: any DeviceBuffer, state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        launch(
            OptimizerLaunch(
                update: update, parameters: buf(parameters).mem, gradients: buf(gradients).mem,
                state1: buf(state1).mem, state2: buf(state2).mem, count: count))
    }
}
