import COpenCL
import CytoCore
import Foundation

extension OpenCLBackend {
    public func softmaxCrossEntropy(
        batch: Int, classes: Int, logits: any DeviceBuffer, labels: any DeviceBuffer,
        probabilities: any DeviceBuffer, gradLogits: (any DeviceBuffer)?,
        metrics: any DeviceBuffer
    ) {
        launch(
            SoftmaxCrossEntropyLaunch(
                logits: buf(logits).mem, labels: buf(labels).mem, probabilities: buf(probabilities).mem,
                gradLogits: gradLogits.map { buf($0).mem }, metrics: buf(metrics).mem, batch: batch, classes: classes))
    }

    public func softmax(batch: Int, classes: Int, logits: any DeviceBuffer, probabilities: any DeviceBuffer) {
        launch(SoftmaxLaunch(logits: buf(logits).mem, probabilities: buf(probabilities).mem, batch: batch, classes: classes))
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
        launch(
            DenseCrossEntropyStepLaunch(
                input: buf(input).mem, weight: buf(weight).mem, bias: buf(bias).mem, logits: buf(logits).mem,
                labels: buf(labels).mem, probabilities: buf(probabilities).mem, gradLogits: buf(gradLogits).mem,
                metrics: buf(metrics).mem, gradWeight: buf(gradWeight).mem, gradBias: buf(gradBias).mem,
                gradInput: buf(gradInput).mem, batch: g.batch, inFeatures: g.inFeatures, classes: g.outFeatures,
                inputIsReLU: inputIsReLU, groupWidth: powerOfTwoGroup(tuning.groupSize, .denseCrossEntropyStep)),
            tag: "dense_xent_step \(g.inFeatures)->\(g.outFeatures)")
    }
}
