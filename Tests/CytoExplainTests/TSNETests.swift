import CytoCore
import XCTest

@testable import CytoExplain

final class TSNETests: XCTestCase {
    /// `clusters` Gaussian blobs in `dims` dimensions, centres 10 apart on the axes, s.d. 1.
    static func blobs(perCluster: Int, clusters: Int, dims: Int, seed: UInt64) -> ([[Float]], [Int]) {
        var rng = SeededGenerator(seed: seed)
        func gauss() -> Float {
            let u1 = max(rng.nextUnitFloat(), 1e-7), u2 = rng.nextUnitFloat()
            return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
        }
        var x: [[Float]] = [], labels: [Int] = []
        for c in 0..<clusters {
            for _ in 0..<perCluster {
                var p = (0..<dims).map { _ in gauss() }
                p[c % dims] += 10 * Float(1 + c / dims)
                x.append(p); labels.append(c)
            }
        }
        return (x, labels)
    }

    /// Fraction of points whose nearest neighbour in the embedding has the same label.
    static func nnAgreement(_ e: [[Double]], _ labels: [Int]) -> Double {
        var agree = 0
        for i in e.indices {
            var best = -1, bestD = Double.infinity
            for j in e.indices where j != i {
                let d = (e[i][0] - e[j][0]) * (e[i][0] - e[j][0]) + (e[i][1] - e[j][1]) * (e[i][1] - e[j][1])
                if d < bestD { bestD = d; best = j }
            }
            if labels[best] == labels[i] { agree += 1 }
        }
        return Double(agree) / Double(e.count)
    }

    func checkSeparated(method: TSNE.Method, perCluster: Int, iterations: Int) throws {
        let (x, labels) = Self.blobs(perCluster: perCluster, clusters: 4, dims: 10, seed: 7)
        var t = TSNE(perplexity: 15, iterations: iterations, seed: 1, method: method)
        t.klEvery = 25
        let r = try t.embed(x)
        XCTAssertEqual(r.method, method)
        XCTAssertEqual(r.embedding.count, x.count)
        XCTAssertTrue(r.embedding.allSatisfy { $0.count == 2 && $0[0].isFinite && $0[1].isFinite })
        let agreement = Self.nnAgreement(r.embedding, labels)
        XCTAssertGreaterThan(agreement, 0.95, "\(method)")
        // KL falls: the final value is well below the first, and after the exaggeration
        // phase it does not go up by more than noise.
        let h = r.klHistory
        XCTAssertEqual(h.first?.iteration, 0)
        XCTAssertEqual(h.last?.iteration, iterations)
        XCTAssertLessThan(r.klDivergence, 0.5 * h[0].kl, "\(h)")
        let late = h.filter { $0.iteration >= 300 }.map(\.kl)
        for (a, b) in zip(late, late.dropFirst()) { XCTAssertLessThanOrEqual(b, a * 1.01 + 1e-3, "\(h)") }
        XCTAssertGreaterThan(r.klDivergence, 0)
    }

    func testExactKeepsClustersSeparate() throws {
        try checkSeparated(method: .exact, perCluster: 40, iterations: 500)
    }

    func testBarnesHutKeepsClustersSeparate() throws {
        try checkSeparated(method: .barnesHut, perCluster: 60, iterations: 500)
    }

    func testBarnesHutAgreesWithExactGradient() throws {
        // The same input through both methods: the final KL values are close.
        let (x, _) = Self.blobs(perCluster: 30, clusters: 3, dims: 5, seed: 3)
        let e = try TSNE(perplexity: 10, iterations: 400, seed: 2, method: .exact).embed(x)
        let b = try TSNE(perplexity: 10, iterations: 400, seed: 2, method: .barnesHut).embed(x)
        XCTAssertEqual(e.klDivergence, b.klDivergence, accuracy: 0.25 * e.klDivergence + 0.05)
    }

    func testSameSeedSameOutput() throws {
        let (x, _) = Self.blobs(perCluster: 25, clusters: 3, dims: 8, seed: 11)
        for m in [TSNE.Method.exact, .barnesHut] {
            let a = try TSNE(perplexity: 10, iterations: 200, seed: 42, method: m).embed(x)
            let b = try TSNE(perplexity: 10, iterations: 200, seed: 42, method: m).embed(x)
            XCTAssertEqual(a.embedding, b.embedding)
            XCTAssertEqual(a.klHistory, b.klHistory)
            let c = try TSNE(perplexity: 10, iterations: 200, seed: 43, method: m).embed(x)
            XCTAssertNotEqual(a.embedding, c.embedding)
        }
    }

    func testAutoLearningRateAndMethod() throws {
        let (x, _) = Self.blobs(perCluster: 10, clusters: 2, dims: 3, seed: 1)
        let r = try TSNE(iterations: 10).embed(x)
        XCTAssertEqual(r.method, .exact)
        XCTAssertEqual(r.learningRate, 50)
        XCTAssertEqual(r.effectivePerplexity, 19.0 / 3, accuracy: 1e-12)  // clamped for 20 points
        var t = TSNE(iterations: 0)
        t.exactLimit = 5
        XCTAssertEqual(try t.embed(x).method, .barnesHut)
    }

    func testBadInput() {
        XCTAssertThrowsError(try TSNE().embed([[1, 2], [3]] as [[Float]]))
        XCTAssertThrowsError(try TSNE().embed([[1, .nan], [3, 4], [5, 6]] as [[Float]]))
        XCTAssertThrowsError(try TSNE(perplexity: -1).embed([[1], [2], [3]] as [[Float]]))
        XCTAssertEqual(try TSNE().embed([] as [[Float]]).embedding.count, 0)
        XCTAssertEqual(try TSNE().embed([[1, 2]] as [[Float]]).embedding, [[0, 0]])
    }

    /// Wall time of the default settings on 250 and 2,000 points of 32 dims
    /// (run in release: `swift test -c release --filter TSNETests/testTiming`).
    func testTiming() throws {
        guard ProcessInfo.processInfo.environment["CYTOCL_TSNE_TIMING"] != nil else {
            throw XCTSkip("set CYTOCL_TSNE_TIMING=1 to time t-SNE")
        }
        for n in [250, 2000] {
            let (x, labels) = Self.blobs(perCluster: n / 5, clusters: 5, dims: 32, seed: 5)
            let r = try TSNE(seed: 1).embed(x)
            print(
                "t-SNE n=\(n) d=32 method=\(r.method.rawValue) iterations=1000: "
                    + String(format: "%.2f s, KL %.4f, NN agreement %.3f", r.seconds, r.klDivergence, Self.nnAgreement(r.embedding, labels))
            )
            XCTAssertLessThan(r.seconds, 60)
            if n == 2000 {
                // The exact gradient on the same input, to see what Barnes–Hut costs in accuracy.
                let e = try TSNE(seed: 1, method: .exact).embed(x)
                print(String(format: "  exact gradient on the same 2,000 points: %.2f s, KL %.4f", e.seconds, e.klDivergence))
            }
        }
    }
}
