import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?,
        metrics: any DeviceBuffer
    ) {
        let p = buf(probabilities).mem
        launch(
            "softmax_xent", "loss.cl",
            [
                .mem(buf(logits).mem), .mem(buf(labels).mem), .mem(p), .mem(gradLogits.map { buf($0).mem } ?? p),
                .mem(buf(metrics).mem), .int(batch), .int(classes), .int(gradLogits == nil ? 0 : 1),
            ],
            global: [1], local: [1])
    }

    public func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer) {
        launch(
            "softmax_rows", "loss.cl", [.mem(buf(logits).mem), .mem(buf(probabilities).mem), .int(batch), .int(classes)],
            global: [batch])
    }

    /// One launch of one work-group: the output layer is small (classes x hidden
    /// features), so its forward, loss and backward cost less than a launch each.
    public func denseSoftmaxCrossEntropyStep(
        _ g: DenseGeometry, input: any DeviceBuffer, weight: any DeviceBuffer,
        bias: any DeviceBuffer, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: any DeviceBuffer,
        metrics: any DeviceBuffer, gradWeight: any DeviceBuffer,
        gradBias: any DeviceBuffer, gradInput: any DeviceBuffer, inputIsReLU: Bool
    ) {
        let l = powerOfTwoGroup(tuning.groupSize, "dense_xent_step", "loss.cl")
        launch(
            "dense_xent_step", "loss.cl",
            [
                .mem(buf(input).mem), .mem(buf(weight).mem), .mem(buf(bias).mem), .mem(buf(logits).mem),
                .mem(buf(labels).mem), .mem(buf(probabilities).mem), .mem(buf(gradLogits).mem), .mem(buf(metrics).mem),
                .mem(buf(gradWeight).mem), .mem(buf(gradBias).mem), .mem(buf(gradInput).mem),
                .int(g.batch), .int(g.inFeatures), .int(g.outFeatures), .int(inputIsReLU ? 1 : 0),
            ],
            global: [l], local: [l], tag: "dense_xent_step \(g.inFeatures)->\(g.outFeatures)")
    }
}
