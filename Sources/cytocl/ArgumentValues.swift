import ArgumentParser
import CytoBackends
import CytoCore
import CytoData
import CytoExplain
import CytoSelect
import CytoSweep
import CytoTrain

// The library's enums as command-line values: swift-argument-parser then lists the
// accepted values in `--help` and rejects anything else with one line naming the
// option, before a command runs.

extension DatasetLayout: ExpressibleByArgument {}
extension FitPolicy: ExpressibleByArgument {}
extension OptimizerConfig.Kind: ExpressibleByArgument {}
extension OptimizerConfig.Form: ExpressibleByArgument {}
extension SelectionStrategy: ExpressibleByArgument {}
extension EmbeddingKind: ExpressibleByArgument {}
extension ClassBalance: ExpressibleByArgument {}
extension ColdStart: ExpressibleByArgument {}
extension ActiveRounds: ExpressibleByArgument {}

/// `sweep --metric`: what each cell reports (the protocol's `metric`).
enum SweepMetric: String, CaseIterable, ExpressibleByArgument {
    case rocAUC = "roc_auc"
    case f1Weighted = "f1_weighted"
}

/// `--format` of commands that print results.
enum OutputFormat: String, CaseIterable, ExpressibleByArgument {
    case csv, json
}

/// `--tsne-method`: the t-SNE gradient.
enum TSNEMethodArgument: String, CaseIterable, ExpressibleByArgument {
    case auto, exact
    case barnesHut = "barnes-hut"

    var method: TSNE.Method {
        switch self {
        case .auto: return .auto
        case .exact: return .exact
        case .barnesHut: return .barnesHut
        }
    }
}

/// `--method` of `explain`: one method, `all`, or a comma-separated list.
struct ExplainMethodList: ExpressibleByArgument {
    var methods: [ExplainMethod]

    init?(argument: String) {
        guard let m = try? ExplainMethod.parse(argument) else { return nil }
        methods = m
    }
    init(_ methods: [ExplainMethod]) { self.methods = methods }

    static var allValueStrings: [String] { ExplainMethod.allCases.map(\.rawValue) + ["all"] }
    var defaultValueDescription: String { methods.map(\.rawValue).joined(separator: ",") }
}

/// `--augment-sampler nearest|bilinear`.
extension AugmentSampler: ExpressibleByArgument {}

/// `--backend auto|cpu|opencl|opencl:N|opencl:P.D`, parsed once into the selector the
/// library uses; a typo is refused as a usage error naming the forms.
extension BackendSelector: ExpressibleByArgument {
    public init?(argument: String) {
        guard let s = try? BackendSelector(parsing: argument) else { return nil }
        self = s
    }
    public static var allValueStrings: [String] { ["auto", "cpu", "opencl", "opencl:N", "opencl:P.D"] }
    public var defaultValueDescription: String { description }
}

/// `--protocol all-idb-binary|aml-binary|multiclass|custom`: a sweep protocol by name.
struct SweepProtocolArgument: ExpressibleByArgument {
    var value: SweepProtocol

    init?(argument: String) {
        guard let p = try? SweepProtocol.named(argument) else { return nil }
        value = p
    }
    static var allValueStrings: [String] { SweepProtocol.names }
    var defaultValueDescription: String { value.name }
}
