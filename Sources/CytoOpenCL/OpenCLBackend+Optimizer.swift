import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func optimizerStep(
        _ update: OptimizerUpdate, count: Int, parameters: any DeviceBuffer,
        gradients: any DeviceBuffer, state1: any DeviceBuffer, state2: any DeviceBuffer
    ) {
        let p = buf(parameters).mem, g = buf(gradients).mem, s1 = buf(state1).mem, s2 = buf(state2).mem
        switch update {
        case .sgd(let lr, let momentum):
            launch("sgd", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(momentum), .int(count)], global: [count])
        case .rmsprop(let lr, let rho, let eps):
            launch(
                "rmsprop", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(rho), .float(eps), .int(count)],
                global: [count])
        case .rmspropKeras2(let lr, let rho, let eps):
            launch(
                "rmsprop_keras2", "optim.cl", [.mem(p), .mem(g), .mem(s1), .float(lr), .float(rho), .float(eps), .int(count)],
                global: [count])
        case .adam(let step, let b1, let b2, let eps):
            launch(
                "adam", "optim.cl",
                [
                    .mem(p), .mem(g), .mem(s1), .mem(s2), .float(step), .float(b1), .float(b2),
                    .float(eps), .int(count),
                ], global: [count])
        }
    }
}
