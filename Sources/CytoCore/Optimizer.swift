/// Optimizer settings with Keras 3 defaults, turned into one `OptimizerUpdate` per
/// step. The host tracks the step count, so Adam's bias correction never needs a
/// value from the device.
public struct OptimizerConfig: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case rmsprop, adam, sgd }

    public var kind: Kind
    public var learningRate: Float
    public var rho: Float = 0.9
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-7
    public var momentum: Float = 0

    public init(kind: Kind, learningRate: Float? = nil) {
        self.kind = kind
        self.learningRate = learningRate ?? OptimizerConfig.defaultLearningRate(kind)
    }

    /// The paper's binary setting: RMSprop, lr 0.001, rho 0.9.
    public static let paperBinary = OptimizerConfig(kind: .rmsprop, learningRate: 0.001)
    /// The paper's multiclass setting: Adam, lr 0.0001.
    public static let paperMulticlass = OptimizerConfig(kind: .adam, learningRate: 0.0001)

    public static func defaultLearningRate(_ kind: Kind) -> Float {
        switch kind {
        case .rmsprop: return 0.001
        case .adam: return 0.0001
        case .sgd: return 0.01
        }
    }

    /// The update for step `t` (1-based).
    public func update(step t: Int) -> OptimizerUpdate {
        switch kind {
        case .sgd: return .sgd(learningRate: learningRate, momentum: momentum)
        case .rmsprop: return .rmsprop(learningRate: learningRate, rho: rho, epsilon: epsilon)
        case .adam:
            let tt = Double(t)
            let step = Double(learningRate) * (1 - pow(Double(beta2), tt)).squareRoot() / (1 - pow(Double(beta1), tt))
            return .adam(stepSize: Float(step), beta1: beta1, beta2: beta2, epsilon: epsilon)
        }
    }
}

import Foundation
