import CytoCore
import Foundation
import XCTest

@testable import CytoExplain

/// t-SNE on small sets (20-50 points, the size of a report panel at small training
/// sizes) against scikit-learn's results on the same points
/// (Tests/Fixtures/tsne/sklearn-small.json, written by python/tsne_reference.py): at
/// least its neighbourhood preservation (trustworthiness, k = 5) and cluster
/// separation, coordinates as bounded, and failures said instead of plotted.
final class TSNEReferenceTests: XCTestCase {
    struct Fixture: Decodable {
        struct Set: Decodable {
            var name: String
            var points: [[Double]]
            var labels: [Int]
            var perplexity: Double
            var minTrustworthiness: Double
            var minAgreement: Double
            var maxExtent: Double
        }
        var k: Int
        var sets: [Set]
    }

    static func fixture() throws -> Fixture {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Tests/Fixtures/tsne/sklearn-small.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    static func sqdist(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }

    /// scikit-learn's `trustworthiness`: 1 − 2/(n k (2n − 3k − 1)) Σ_i Σ_{j in the k
    /// nearest in the embedding but not in the input} (rank of j among i's input neighbours − k).
    static func trustworthiness(_ x: [[Double]], _ e: [[Double]], k: Int) -> Double {
        let n = x.count
        var sum = 0.0
        for i in 0..<n {
            let inputOrder = (0..<n).filter { $0 != i }.sorted { (sqdist(x[i], x[$0]), $0) < (sqdist(x[i], x[$1]), $1) }
            var rank = [Int](repeating: 0, count: n)
            for (r, j) in inputOrder.enumerated() { rank[j] = r + 1 }
            let embedded = (0..<n).filter { $0 != i }.sorted { (sqdist(e[i], e[$0]), $0) < (sqdist(e[i], e[$1]), $1) }.prefix(k)
            for j in embedded where rank[j] > k { sum += Double(rank[j] - k) }
        }
        return 1 - 2 / (Double(n * k) * Double(2 * n - 3 * k - 1)) * sum
    }

    func testSmallSetsMatchScikitLearn() throws {
        let f = try Self.fixture()
        XCTAssertEqual(f.sets.count, 4)
        for s in f.sets {
            let n = s.points.count
            for seed in UInt64(0)..<3 {
                let r = try TSNE(perplexity: s.perplexity, iterations: 1000, seed: seed).embed(s.points)
                XCTAssertEqual(r.effectivePerplexity, min(30, Double(n - 1) / 3))
                XCTAssertNil(r.failure, "\(s.name) seed \(seed)")
                let extent = r.embedding.flatMap { $0 }.map(abs).max()!
                XCTAssertLessThanOrEqual(
                    extent, max(3 * s.maxExtent, 100), "\(s.name) seed \(seed): scikit-learn stays within ±\(s.maxExtent)")
                let t = Self.trustworthiness(s.points, r.embedding, k: f.k)
                XCTAssertGreaterThanOrEqual(t, s.minTrustworthiness - 0.03, "\(s.name) seed \(seed)")
                if s.name.hasPrefix("blobs") {
                    XCTAssertEqual(TSNETests.nnAgreement(r.embedding, s.labels), s.minAgreement, "\(s.name) seed \(seed)")
                }
            }
        }
    }

    func testFailedEmbeddingsAreSaid() throws {
        let same = Array(repeating: [0.0, 1.0, 2.0], count: 20)
        XCTAssertEqual(
            try TSNE(perplexity: 6, seed: 0).embed(same).failure, "the 20 points have only 1 distinct value (constant activations)")
        let t = TSNE()
        XCTAssertEqual(
            t.failure(embedding: Array(repeating: [8000, -8000], count: 35), points: (0..<35).map { [Double($0)] }),
            "the layout diverged: coordinates reach ±8000 (more than 592 for 35 points)")
        XCTAssertEqual(
            t.failure(embedding: [[.nan, 0], [1, 1], [2, 2]], points: (0..<3).map { [Double($0)] }),
            "the layout has non-finite coordinates")
        XCTAssertNil(t.failure(embedding: [[-30, 4], [1, 1], [25, 2]], points: (0..<3).map { [Double($0)] }))
    }
}
