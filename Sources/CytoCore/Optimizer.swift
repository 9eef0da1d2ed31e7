import Foundation

/// Optimizer settings, turned into one `OptimizerUpdate` per step. The host tracks the
/// step count, so Adam's bias correction never needs a value from the device.
///
/// `form` chooses which Keras release's formulas are followed. The paper used Keras
/// 2.0.8, whose RMSprop adds epsilon (1e-8) outside the square root; Keras 3 adds it
/// (1e-7) inside, which takes steps several times smaller for gradients below ~3e-4
/// and so trains differently. Adam has the same formula in both and differs only in
/// epsilon. SGD is the same in both.
public struct OptimizerConfig: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case rmsprop, adam, sgd }

    /// Which Keras release's optimizer formulas to follow.
    public enum Form: String, Sendable, Codable, CaseIterable {
        /// Keras 2.0.8 (the paper's): RMSprop `p -= lr*g/(sqrt(v)+1e-8)`, Adam epsilon 1e-8.
        case keras2
        /// Keras 3 / TF 2: RMSprop `p -= lr*g/sqrt(v+1e-7)`, Adam epsilon 1e-7.
        case keras3

        /// The release's default epsilon.
        public var defaultEpsilon: Float {
            switch self {
            case .keras2: return 1e-8
            case .keras3: return 1e-7
            }
        }
    }

    public var kind: Kind
    public var learningRate: Float
    /// Setting the form also resets `epsilon` to that form's default.
    public var form: Form { didSet { epsilon = form.defaultEpsilon } }
    public var rho: Float = 0.9
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    /// The form's default unless set explicitly after initialisation.
    public var epsilon: Float
    public var momentum: Float = 0

    /// - Parameter form: Keras 2.0.8 by default, the version the paper used.
    public init(kind: Kind, learningRate: Float? = nil, form: Form = .keras2) {
        self.kind = kind
        self.learningRate = learningRate ?? OptimizerConfig.defaultLearningRate(kind)
        self.form = form
        self.epsilon = form.defaultEpsilon
    }

    /// The paper's binary setting: RMSprop, lr 0.001, rho 0.9, Keras 2.0.8 form.
    public static let paperBinary = OptimizerConfig(kind: .rmsprop, learningRate: 0.001, form: .keras2)
    /// The paper's multiclass setting: Adam, lr 0.0001, Keras 2.0.8 form.
    public static let paperMulticlass = OptimizerConfig(kind: .adam, learningRate: 0.0001, form: .keras2)

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
        case .rmsprop:
            switch form {
            case .keras2: return .rmspropKeras2(learningRate: learningRate, rho: rho, epsilon: epsilon)
            case .keras3: return .rmsprop(learningRate: learningRate, rho: rho, epsilon: epsilon)
            }
        case .adam:
            let tt = Double(t)
            let step = Double(learningRate) * (1 - pow(Double(beta2), tt)).squareRoot() / (1 - pow(Double(beta1), tt))
            return .adam(stepSize: Float(step), beta1: beta1, beta2: beta2, epsilon: epsilon)
        }
    }

    /// One line for model files, sweep records and reports, e.g.
    /// `rmsprop lr=0.001 rho=0.9 epsilon=1e-08 form=keras2`.
    public var summary: String {
        var s = "\(kind.rawValue) lr=\(learningRate)"
        switch kind {
        case .rmsprop: s += " rho=\(rho) epsilon=\(epsilon)"
        case .adam: s += " beta1=\(beta1) beta2=\(beta2) epsilon=\(epsilon)"
        case .sgd: s += " momentum=\(momentum)"
        }
        return s + " form=\(form.rawValue)"
    }

    enum CodingKeys: String, CodingKey { case kind, learningRate, form, rho, beta1, beta2, epsilon, momentum }

    /// Settings saved before `form` existed were trained with the Keras 3 formulas, so a
    /// missing `form` decodes as `.keras3` (and a missing epsilon as its default).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        form = try c.decodeIfPresent(Form.self, forKey: .form) ?? .keras3
        rho = try c.decodeIfPresent(Float.self, forKey: .rho) ?? 0.9
        beta1 = try c.decodeIfPresent(Float.self, forKey: .beta1) ?? 0.9
        beta2 = try c.decodeIfPresent(Float.self, forKey: .beta2) ?? 0.999
        epsilon = try c.decodeIfPresent(Float.self, forKey: .epsilon) ?? form.defaultEpsilon
        momentum = try c.decodeIfPresent(Float.self, forKey: .momentum) ?? 0
    }
}
