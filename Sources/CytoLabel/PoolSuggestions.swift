import CytoCore
import CytoSelect

/// CytoSelect's pool as the session's suggestion source: decoded and embedded once at
/// the start, asked again after every retraining with the newest model.
public struct PoolSuggestions: SuggestionSource {
    public let pool: SuggestionPool
    public let strategy: SelectionStrategy
    public let embedding: EmbeddingKind
    public let seed: UInt64

    public init(pool: SuggestionPool, strategy: SelectionStrategy = .active, embedding: EmbeddingKind = .stain, seed: UInt64) {
        self.pool = pool; self.strategy = strategy; self.embedding = embedding; self.seed = seed
    }

    public func suggest(labelled: [String: String], model: ModelFile?, count: Int, backend: any Backend) throws -> [LabelSuggestion] {
        try pool.suggest(
            labelled: labelled, model: model, strategy: strategy, embedding: embedding, count: count, seed: seed, backend: backend
        ).map {
            LabelSuggestion(path: $0.path, score: $0.score, reason: $0.reason)
        }
    }
}
