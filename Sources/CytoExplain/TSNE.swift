import CytoCore
import Foundation

/// t-distributed stochastic neighbour embedding (van der Maaten & Hinton 2008) into two
/// dimensions, for the paper's Fig. 5 (t-SNE of the 32-d dense1 activations).
///
/// - Input affinities: a Gaussian per point whose precision is found by binary search so
///   that its perplexity equals `perplexity`, over all other points (exact method) or
///   over the `3 * perplexity` nearest neighbours (Barnes–Hut); then symmetrised,
///   `P = (P_{j|i} + P_{i|j}) / sum`.
/// - Output affinities: Student-t with one degree of freedom.
/// - Gradient: exact O(n²) up to `exactLimit` points, else Barnes–Hut (quadtree,
///   opening angle `theta`); both computed on all cores.
/// - Optimiser (as scikit-learn): early exaggeration for the first
///   `exaggerationIterations`, momentum 0.5 then 0.8, per-coordinate adaptive gains
///   (+0.2 / ×0.8, at least 0.01), momentum and gains reset between the two phases;
///   stopped early on a small gradient or no progress (`minGradNorm`,
///   `iterationsWithoutProgress`).
/// - The gradient is the true KL gradient `4 Σ (p_ij − q_ij) w_ij (y_i − y_j)`; with
///   it, the "auto" learning rate `max(n / exaggeration / 4, 50)` is scikit-learn's.
/// - Initialisation: Gaussian with s.d. 1e-4 from `SeededGenerator(seed:)`, so a seed
///   gives bit-identical output on the same machine, regardless of thread timing
///   (every reduction is done in a fixed order).
public struct TSNE: Sendable {
    public enum Method: String, Sendable, Codable { case auto, exact, barnesHut }
    public enum LearningRate: Sendable, Equatable {
        /// `max(n / earlyExaggeration / 4, 50)`.
        case auto
        case fixed(Double)
    }

    public var perplexity: Double = 30
    public var iterations: Int = 1000
    public var earlyExaggeration: Double = 12
    public var exaggerationIterations: Int = 250
    public var learningRate: LearningRate = .auto
    public var initialMomentum: Double = 0.5
    public var finalMomentum: Double = 0.8
    public var method: Method = .auto
    /// `.auto` uses the exact gradient up to this many points, Barnes–Hut above.
    public var exactLimit: Int = 1000
    /// Barnes–Hut opening angle (cell width / distance); 0.5 is the usual trade-off.
    public var theta: Double = 0.5
    public var seed: UInt64 = 0
    /// The KL divergence is recorded every this many iterations (and at the end).
    public var klEvery: Int = 50
    /// Stop (as scikit-learn) when the gain-scaled gradient's norm falls to this at a KL
    /// check: in the exaggeration phase it ends that phase, afterwards the run. Without
    /// it a layout whose P has no structure (duplicate or identical points) keeps
    /// drifting outward for the remaining iterations: the KL is then nearly
    /// scale-invariant, so the gradient never pulls it back.
    public var minGradNorm: Double = 1e-7
    /// Stop when the KL has not improved for this many iterations after the exaggeration
    /// phase (scikit-learn's `n_iter_without_progress`).
    public var iterationsWithoutProgress: Int = 300
    /// An embedding with a coordinate beyond `extentLimitPerRootN * sqrt(n)` is reported
    /// as failed (`Result.failure`): t-SNE's Student-t kernel works at distances of about
    /// one, and scikit-learn's layouts of 20 to 1,000 points stay within ±100.
    public var extentLimitPerRootN: Double = 100

    public init(
        perplexity: Double = 30, iterations: Int = 1000, seed: UInt64 = 0,
        method: Method = .auto, learningRate: LearningRate = .auto
    ) {
        self.perplexity = perplexity
        self.iterations = iterations
        self.seed = seed
        self.method = method
        self.learningRate = learningRate
    }

    /// One recorded value of the objective.
    public struct KLPoint: Sendable, Equatable, Codable {
        /// Iterations completed when it was measured (0 = the initial layout).
        public var iteration: Int
        /// KL(P || Q) with the un-exaggerated P.
        public var kl: Double
    }

    public struct Result: Sendable {
        /// One `[x, y]` per input point, centred on the origin.
        public var embedding: [[Double]]
        /// KL(P || Q) of the final layout (nats).
        public var klDivergence: Double
        /// The objective during optimisation, every `klEvery` iterations.
        public var klHistory: [KLPoint]
        /// `.exact` or `.barnesHut`: what was used.
        public var method: Method
        /// The perplexity used: the requested one, lowered to (n − 1) / 3 for tiny sets.
        public var effectivePerplexity: Double
        public var learningRate: Double
        /// Wall time in seconds.
        public var seconds: Double
        /// Iterations run (fewer than asked when it converged or stopped progressing).
        public var iterationsRun: Int = 0
        /// Why the layout means nothing, or nil: non-finite or runaway coordinates, or
        /// fewer than three distinct input points (e.g. a collapsed network's constant
        /// activations). A caller should say so instead of plotting it.
        public var failure: String?
    }

    /// Why `embedding` of `points` is not a usable layout, or nil.
    public func failure(embedding: [[Double]], points: [[Double]]) -> String? {
        let n = embedding.count
        if embedding.contains(where: { !$0.allSatisfy(\.isFinite) }) { return "the layout has non-finite coordinates" }
        let distinct = Set(points.map { $0.map(\.bitPattern) }).count
        if n >= 3 && distinct < 3 {
            return "the \(n) points have only \(distinct) distinct value\(distinct == 1 ? "" : "s") (constant activations)"
        }
        let extent = embedding.flatMap { $0 }.map(abs).max() ?? 0
        let limit = extentLimitPerRootN * Double(max(n, 1)).squareRoot()
        if extent > limit {
            return String(format: "the layout diverged: coordinates reach ±%.0f (more than %.0f for %d points)", extent, limit, n)
        }
        return nil
    }

    /// Embeds `points` (n rows of d features, all rows the same length) in 2-D.
    /// `progress` is called after every recorded KL value with (iteration, kl).
    /// Throws `CytoError.invalidArgument` for ragged rows, non-finite values or bad options.
    public func embed(_ points: [[Float]], progress: ((Int, Double) -> Void)? = nil) throws -> Result {
        try embed(points.map { $0.map(Double.init) }, progress: progress)
    }

    public func embed(_ points: [[Double]], progress: ((Int, Double) -> Void)? = nil) throws -> Result {
        let start = DispatchTime.now().uptimeNanoseconds
        let n = points.count
        let d = points.first?.count ?? 0
        guard points.allSatisfy({ $0.count == d }) else {
            throw CytoError.invalidArgument("t-SNE: every point needs the same number of features (\(d))")
        }
        guard points.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw CytoError.invalidArgument("t-SNE: the input contains NaN or infinite values")
        }
        guard perplexity > 0, iterations >= 0, theta >= 0, earlyExaggeration > 0, klEvery > 0 else {
            throw CytoError.invalidArgument(
                "t-SNE: perplexity, exaggeration and klEvery must be positive, iterations and theta non-negative")
        }
        if case .fixed(let lr) = learningRate, !(lr > 0) {
            throw CytoError.invalidArgument("t-SNE: the learning rate must be positive")
        }
        let useExact = method == .exact || (method == .auto && n <= exactLimit)
        let lr: Double
        switch learningRate {
        case .auto: lr = max(Double(n) / earlyExaggeration / 4, 50)
        case .fixed(let v): lr = v
        }
        let perp = n > 1 ? min(perplexity, Double(n - 1) / 3) : perplexity
        func seconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        if n < 3 {
            // Nothing to optimise: place the points on a line.
            let e = (0..<n).map { [Double($0), 0] }
            return Result(
                embedding: e, klDivergence: 0, klHistory: [], method: useExact ? .exact : .barnesHut,
                effectivePerplexity: perp, learningRate: lr, seconds: seconds(), failure: nil)
        }
        let x = points.flatMap { $0 }
        let P =
            useExact
            ? Affinities.exact(x: x, n: n, d: d, perplexity: perp)
            : Affinities.nearest(
                x: x, n: n, d: d, perplexity: perp,
                k: min(n - 1, Int(3 * perp + 1)))

        // Initial layout.
        var rng = SeededGenerator(seed: seed)
        var y = [Double](repeating: 0, count: 2 * n)
        var i = 0
        while i < 2 * n {
            // Box–Muller on two open-interval uniforms.
            let u1 = (Double(rng.next() >> 11) + 0.5) / 9_007_199_254_740_992.0
            let u2 = (Double(rng.next() >> 11) + 0.5) / 9_007_199_254_740_992.0
            let r = (-2 * log(u1)).squareRoot()
            y[i] = 1e-4 * r * cos(2 * .pi * u2)
            y[i + 1] = 1e-4 * r * sin(2 * .pi * u2)
            i += 2
        }

        var update = [Double](repeating: 0, count: 2 * n)
        var gains = [Double](repeating: 1, count: 2 * n)
        var grad = [Double](repeating: 0, count: 2 * n)
        var history: [KLPoint] = []
        let gradient = Gradient(P: P, n: n, exact: useExact, theta: theta)

        var exploring = exaggerationIterations > 0
        var reset = false
        var lastGradNorm = Double.infinity
        var bestKL = Double.infinity, bestIteration = 0
        var it = 0
        while true {
            if exploring && it >= exaggerationIterations { exploring = false }
            if !exploring && it > 0 && !reset {
                // scikit-learn runs the two phases as two descents, each starting with
                // no momentum and unit gains: gains grown under the exaggerated P would
                // otherwise fling the layout apart when P drops back (±8,000 on 35 points).
                for k in 0..<(2 * n) { update[k] = 0; gains[k] = 1 }
                reset = true
            }
            let exaggeration = exploring ? earlyExaggeration : 1
            let wantKL = it % klEvery == 0 || it == iterations
            let kl = gradient.compute(y: y, exaggeration: exaggeration, grad: &grad, wantKL: wantKL)
            if wantKL {
                history.append(KLPoint(iteration: it, kl: kl))
                progress?(it, kl)
            }
            if it == iterations { break }
            // scikit-learn's stopping rules, checked where the KL is measured.
            if wantKL && it > 0 {
                if lastGradNorm <= minGradNorm {
                    if exploring { exploring = false } else { break }
                }
                if !exploring {
                    if kl < bestKL {
                        bestKL = kl; bestIteration = it
                    } else if it - bestIteration > iterationsWithoutProgress {
                        break
                    }
                }
            }
            let momentum = exploring ? initialMomentum : finalMomentum
            var mx = 0.0, my = 0.0, norm = 0.0
            for k in 0..<(2 * n) {
                let g = grad[k]
                if (update[k] > 0) != (g > 0) { gains[k] += 0.2 } else { gains[k] = max(gains[k] * 0.8, 0.01) }
                norm += gains[k] * g * gains[k] * g
                update[k] = momentum * update[k] - lr * gains[k] * g
                y[k] += update[k]
                if k & 1 == 0 { mx += y[k] } else { my += y[k] }
            }
            lastGradNorm = norm.squareRoot()
            mx /= Double(n); my /= Double(n)
            for k in stride(from: 0, to: 2 * n, by: 2) { y[k] -= mx; y[k + 1] -= my }
            it += 1
        }
        let embedding = (0..<n).map { [y[2 * $0], y[2 * $0 + 1]] }
        return Result(
            embedding: embedding, klDivergence: history.last?.kl ?? .nan, klHistory: history,
            method: useExact ? .exact : .barnesHut, effectivePerplexity: perp,
            learningRate: lr, seconds: seconds(), iterationsRun: it,
            failure: failure(embedding: embedding, points: points))
    }
}

// MARK: - Parallel helper

/// Runs `body(range)` over `0..<count` split into contiguous chunks on all cores.
/// Each index is handled exactly once, so per-index results are independent of timing.
@inline(__always)
func tsneParallelFor(_ count: Int, minChunk: Int = 16, _ body: (Range<Int>) -> Void) {
    let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
    let chunks = max(1, min(cores * 4, (count + minChunk - 1) / minChunk))
    Parallel.chunked(count, chunks: chunks, body)
}

// MARK: - Input affinities

/// Symmetric joint probabilities P, stored densely (exact) or as sparse rows (CSR).
struct Affinities: @unchecked Sendable {
    var n: Int
    /// Dense n×n (exact) — empty otherwise.
    var dense: [Double] = []
    /// CSR (Barnes–Hut).
    var rowStart: [Int] = []
    var cols: [Int32] = []
    var vals: [Double] = []
    /// Σ p log p, the constant part of KL.
    var entropyTerm: Double = 0

    /// Conditional probabilities of one row from squared distances, calibrated to `perplexity`.
    static func calibrate(_ dist: UnsafeBufferPointer<Double>, perplexity: Double, out: UnsafeMutableBufferPointer<Double>) {
        let m = dist.count
        guard m > 0 else { return }
        let target = log(perplexity)
        var dmin = Double.infinity
        for v in dist where v < dmin { dmin = v }
        var beta = 1.0, lo = -Double.infinity, hi = Double.infinity
        for _ in 0..<200 {
            var sum = 0.0, dsum = 0.0
            for j in 0..<m {
                let dj = dist[j] - dmin
                let p = exp(-dj * beta)
                out[j] = p
                sum += p
                dsum += dj * p
            }
            let h = log(sum) + beta * dsum / sum
            let diff = h - target
            if abs(diff) < 1e-5 { break }
            if diff > 0 {
                lo = beta
                beta = hi == .infinity ? beta * 2 : (beta + hi) / 2
            } else {
                hi = beta
                beta = lo == -.infinity ? beta / 2 : (beta + lo) / 2
            }
        }
        var sum = 0.0
        for j in 0..<m { sum += out[j] }
        for j in 0..<m { out[j] /= sum }
    }

    @inline(__always)
    static func sqdist(_ x: UnsafeBufferPointer<Double>, _ a: Int, _ b: Int, _ d: Int) -> Double {
        var s = 0.0
        let pa = a * d, pb = b * d
        for k in 0..<d { let t = x[pa + k] - x[pb + k]; s += t * t }
        return s
    }

    static func exact(x: [Double], n: Int, d: Int, perplexity: Double) -> Affinities {
        var cond = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { xp in
            cond.withUnsafeMutableBufferPointer { cp in
                let cpp = cp
                tsneParallelFor(n) { rows in
                    var dist = [Double](repeating: 0, count: n - 1)
                    var prob = [Double](repeating: 0, count: n - 1)
                    for i in rows {
                        var k = 0
                        for j in 0..<n where j != i { dist[k] = sqdist(xp, i, j, d); k += 1 }
                        dist.withUnsafeBufferPointer { dp in
                            prob.withUnsafeMutableBufferPointer { pp in calibrate(dp, perplexity: perplexity, out: pp) }
                        }
                        k = 0
                        for j in 0..<n where j != i { cpp[i * n + j] = prob[k]; k += 1 }
                    }
                }
            }
        }
        var P = [Double](repeating: 0, count: n * n)
        var total = 0.0
        for i in 0..<n { for j in 0..<n where j != i { let v = cond[i * n + j] + cond[j * n + i]; P[i * n + j] = v; total += v } }
        total = max(total, .ulpOfOne)
        var ent = 0.0
        for i in 0..<n {
            for j in 0..<n where j != i {
                let v = max(P[i * n + j] / total, .ulpOfOne)
                P[i * n + j] = v
                ent += v * log(v)
            }
        }
        var a = Affinities(n: n)
        a.dense = P
        a.entropyTerm = ent
        return a
    }

    static func nearest(x: [Double], n: Int, d: Int, perplexity: Double, k: Int) -> Affinities {
        var nbr = [Int32](repeating: 0, count: n * k)
        var cond = [Double](repeating: 0, count: n * k)
        x.withUnsafeBufferPointer { xp in
            nbr.withUnsafeMutableBufferPointer { np in
                cond.withUnsafeMutableBufferPointer { cp in
                    let npp = np, cpp = cp
                    tsneParallelFor(n) { rows in
                        var bd = [Double](repeating: 0, count: k)
                        var bi = [Int32](repeating: 0, count: k)
                        var prob = [Double](repeating: 0, count: k)
                        for i in rows {
                            // k nearest by insertion into a sorted list (ties: lower index first).
                            var filled = 0
                            for j in 0..<n where j != i {
                                let dj = sqdist(xp, i, j, d)
                                if filled == k && dj >= bd[k - 1] { continue }
                                var p = filled < k ? filled : k - 1
                                while p > 0 && bd[p - 1] > dj { bd[p] = bd[p - 1]; bi[p] = bi[p - 1]; p -= 1 }
                                bd[p] = dj; bi[p] = Int32(j)
                                if filled < k { filled += 1 }
                            }
                            bd.withUnsafeBufferPointer { dp in
                                prob.withUnsafeMutableBufferPointer { pp in calibrate(dp, perplexity: perplexity, out: pp) }
                            }
                            for q in 0..<k { npp[i * k + q] = bi[q]; cpp[i * k + q] = prob[q] }
                        }
                    }
                }
            }
        }
        // Symmetrise: P_ij = P_{j|i} + P_{i|j}, then normalise to sum 1.
        var counts = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { for q in 0..<k { counts[i] += 1; counts[Int(nbr[i * k + q])] += 1 } }
        var rowStart = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { rowStart[i + 1] = rowStart[i] + counts[i] }
        var fill = rowStart
        var rc = [Int32](repeating: 0, count: rowStart[n])
        var rv = [Double](repeating: 0, count: rowStart[n])
        for i in 0..<n {
            for q in 0..<k {
                let j = Int(nbr[i * k + q]), v = cond[i * k + q]
                rc[fill[i]] = Int32(j); rv[fill[i]] = v; fill[i] += 1
                rc[fill[j]] = Int32(i); rv[fill[j]] = v; fill[j] += 1
            }
        }
        // Sort each row by column and merge duplicates.
        var cols: [Int32] = [], vals: [Double] = []
        cols.reserveCapacity(rc.count); vals.reserveCapacity(rv.count)
        var newStart = [Int](repeating: 0, count: n + 1)
        for i in 0..<n {
            let range = rowStart[i]..<rowStart[i + 1]
            let order = range.sorted { rc[$0] < rc[$1] }
            var last: Int32 = -1
            for o in order {
                if rc[o] == last { vals[vals.count - 1] += rv[o] } else { cols.append(rc[o]); vals.append(rv[o]); last = rc[o] }
            }
            newStart[i + 1] = cols.count
        }
        let total = max(vals.reduce(0, +), .ulpOfOne)
        var ent = 0.0
        for t in vals.indices {
            vals[t] /= total
            if vals[t] > 0 { ent += vals[t] * log(vals[t]) }
        }
        var a = Affinities(n: n)
        a.rowStart = newStart
        a.cols = cols
        a.vals = vals
        a.entropyTerm = ent
        return a
    }
}

// MARK: - Gradient

struct Gradient: @unchecked Sendable {
    let P: Affinities
    let n: Int
    let exact: Bool
    let theta: Double

    /// Fills `grad` (2n) with dKL/dy for P scaled by `exaggeration`; returns KL(P||Q) for
    /// the unscaled P when `wantKL` (else NaN).
    func compute(y: [Double], exaggeration: Double, grad: inout [Double], wantKL: Bool) -> Double {
        // Per-point partial results, reduced serially afterwards for determinism.
        var attr = [Double](repeating: 0, count: 2 * n)
        var rep = [Double](repeating: 0, count: 2 * n)
        var zRow = [Double](repeating: 0, count: n)
        var plogw = [Double](repeating: 0, count: n)
        let n = self.n
        y.withUnsafeBufferPointer { yp in
            attr.withUnsafeMutableBufferPointer { ap in
                rep.withUnsafeMutableBufferPointer { rp in
                    zRow.withUnsafeMutableBufferPointer { zp in
                        plogw.withUnsafeMutableBufferPointer { lp in
                            let ap = ap, rp = rp, zp = zp, lp = lp
                            if exact {
                                P.dense.withUnsafeBufferPointer { pp in
                                    tsneParallelFor(n) { rows in
                                        for i in rows {
                                            let yi0 = yp[2 * i], yi1 = yp[2 * i + 1]
                                            var a0 = 0.0, a1 = 0.0, r0 = 0.0, r1 = 0.0, z = 0.0, pl = 0.0
                                            let base = i * n
                                            for j in 0..<n where j != i {
                                                let d0 = yi0 - yp[2 * j], d1 = yi1 - yp[2 * j + 1]
                                                let w = 1 / (1 + d0 * d0 + d1 * d1)
                                                let p = pp[base + j]
                                                z += w
                                                let pw = p * w, ww = w * w
                                                a0 += pw * d0; a1 += pw * d1
                                                r0 += ww * d0; r1 += ww * d1
                                                if wantKL { pl += p * log(w) }
                                            }
                                            ap[2 * i] = a0; ap[2 * i + 1] = a1
                                            rp[2 * i] = r0; rp[2 * i + 1] = r1
                                            zp[i] = z; lp[i] = pl
                                        }
                                    }
                                }
                            } else {
                                let tree = QuadTree(y: yp, n: n)
                                P.rowStart.withUnsafeBufferPointer { rs in
                                    P.cols.withUnsafeBufferPointer { cs in
                                        P.vals.withUnsafeBufferPointer { vs in
                                            tsneParallelFor(n) { rows in
                                                var stack = [Int32](repeating: 0, count: 512)
                                                for i in rows {
                                                    let yi0 = yp[2 * i], yi1 = yp[2 * i + 1]
                                                    var a0 = 0.0, a1 = 0.0, pl = 0.0
                                                    for t in rs[i]..<rs[i + 1] {
                                                        let j = Int(cs[t])
                                                        let d0 = yi0 - yp[2 * j], d1 = yi1 - yp[2 * j + 1]
                                                        let w = 1 / (1 + d0 * d0 + d1 * d1)
                                                        let pw = vs[t] * w
                                                        a0 += pw * d0; a1 += pw * d1
                                                        if wantKL { pl += vs[t] * log(w) }
                                                    }
                                                    ap[2 * i] = a0; ap[2 * i + 1] = a1; lp[i] = pl
                                                    let (r0, r1, z) = tree.repulsion(point: i, y: yp, theta: self.theta, stack: &stack)
                                                    rp[2 * i] = r0; rp[2 * i + 1] = r1; zp[i] = z
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var Z = 0.0
        for v in zRow { Z += v }
        Z = max(Z, .leastNormalMagnitude)
        for k in 0..<(2 * n) { grad[k] = 4 * (exaggeration * attr[k] - rep[k] / Z) }
        guard wantKL else { return .nan }
        // KL = Σ p log p − Σ p log w + log Z   (Σ p = 1)
        var s = 0.0
        for v in plogw { s += v }
        return P.entropyTerm - s + log(Z)
    }
}

/// A point-region quadtree over the current layout, rebuilt every iteration.
struct QuadTree {
    struct Node {
        var comX: Double, comY: Double
        var count: Int32
        /// Full cell width (the larger side).
        var width: Double
        /// Children are `childList[childStart ..< childStart + childCount]`; 0 for a leaf.
        var childStart: Int32, childCount: Int32
        /// For a leaf: its points are `perm[start ..< end]`.
        var start: Int32, end: Int32
    }
    var nodes: [Node] = []
    var childList: [Int32] = []
    var perm: [Int32]

    init(y: UnsafeBufferPointer<Double>, n: Int) {
        perm = (0..<Int32(n)).map { $0 }
        var minX = Double.infinity, maxX = -Double.infinity, minY = Double.infinity, maxY = -Double.infinity
        for i in 0..<n {
            minX = min(minX, y[2 * i]); maxX = max(maxX, y[2 * i])
            minY = min(minY, y[2 * i + 1]); maxY = max(maxY, y[2 * i + 1])
        }
        let half = max(maxX - minX, maxY - minY) / 2 + 1e-5
        nodes.reserveCapacity(2 * n)
        childList.reserveCapacity(2 * n)
        var scratch = [Int32](repeating: 0, count: n)
        scratch.withUnsafeMutableBufferPointer { tmp in
            _ = build(y, tmp, 0, n, (minX + maxX) / 2, (minY + maxY) / 2, half, 0)
        }
    }

    /// Builds the node for `perm[s..<e]` (cell centre cx, cy, half-width `half`) and,
    /// unless it is a leaf, its children; returns the node's index. No allocation per node.
    private mutating func build(
        _ y: UnsafeBufferPointer<Double>, _ tmp: UnsafeMutableBufferPointer<Int32>,
        _ s: Int, _ e: Int, _ cx: Double, _ cy: Double, _ half: Double, _ depth: Int
    ) -> Int32 {
        var sx = 0.0, sy = 0.0
        var c0 = 0, c1 = 0, c2 = 0
        for t in s..<e {
            let p = Int(perm[t])
            let px = y[2 * p], py = y[2 * p + 1]
            sx += px; sy += py
            switch (px >= cx, py >= cy) {
            case (false, false): c0 += 1
            case (true, false): c1 += 1
            case (false, true): c2 += 1
            case (true, true): break
            }
        }
        let cnt = e - s
        let idx = Int32(nodes.count)
        nodes.append(
            Node(
                comX: sx / Double(cnt), comY: sy / Double(cnt), count: Int32(cnt), width: 2 * half,
                childStart: 0, childCount: 0, start: Int32(s), end: Int32(e)))
        if cnt <= 1 || depth >= 40 { return idx }
        // Counting sort of perm[s..<e] into quadrants 0: (x<cx, y<cy), 1: (x>=cx, y<cy), 2: (x<cx, y>=cy), 3: (x>=cx, y>=cy).
        let b1 = s + c0, b2 = b1 + c1, b3 = b2 + c2
        var n0 = s, n1 = b1, n2 = b2, n3 = b3
        for t in s..<e {
            let p = perm[t]
            let px = y[2 * Int(p)], py = y[2 * Int(p) + 1]
            switch (px >= cx, py >= cy) {
            case (false, false): tmp[n0] = p; n0 += 1
            case (true, false): tmp[n1] = p; n1 += 1
            case (false, true): tmp[n2] = p; n2 += 1
            case (true, true): tmp[n3] = p; n3 += 1
            }
        }
        for t in s..<e { perm[t] = tmp[t] }
        let h = half / 2
        let bounds = (s, b1, b2, b3, e)
        var kids: (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        var k = 0
        for q in 0..<4 {
            let lo: Int, hi: Int
            switch q {
            case 0: (lo, hi) = (bounds.0, bounds.1)
            case 1: (lo, hi) = (bounds.1, bounds.2)
            case 2: (lo, hi) = (bounds.2, bounds.3)
            default: (lo, hi) = (bounds.3, bounds.4)
            }
            guard hi > lo else { continue }
            let child = build(y, tmp, lo, hi, cx + (q & 1 == 1 ? h : -h), cy + (q & 2 == 2 ? h : -h), h, depth + 1)
            switch k {
            case 0: kids.0 = child
            case 1: kids.1 = child
            case 2: kids.2 = child
            default: kids.3 = child
            }
            k += 1
        }
        nodes[Int(idx)].childStart = Int32(childList.count)
        nodes[Int(idx)].childCount = Int32(k)
        if k > 0 { childList.append(kids.0) }
        if k > 1 { childList.append(kids.1) }
        if k > 2 { childList.append(kids.2) }
        if k > 3 { childList.append(kids.3) }
        return idx
    }

    /// Σ_j w_ij² (y_i − y_j) and Σ_j w_ij over j ≠ i, with far cells summarised by their
    /// centre of mass when `width / distance < theta`.
    func repulsion(point i: Int, y: UnsafeBufferPointer<Double>, theta: Double, stack: inout [Int32]) -> (Double, Double, Double) {
        let yi0 = y[2 * i], yi1 = y[2 * i + 1]
        var r0 = 0.0, r1 = 0.0, z = 0.0
        let theta2 = theta * theta
        nodes.withUnsafeBufferPointer { nd in
            childList.withUnsafeBufferPointer { cl in
                perm.withUnsafeBufferPointer { pm in
                    var top = 0
                    stack[0] = 0; top = 1
                    while top > 0 {
                        top -= 1
                        let node = nd[Int(stack[top])]
                        if node.childCount == 0 {
                            // Leaf: its points exactly (usually one), skipping i.
                            for t in Int(node.start)..<Int(node.end) {
                                let j = Int(pm[t])
                                if j == i { continue }
                                let d0 = yi0 - y[2 * j], d1 = yi1 - y[2 * j + 1]
                                let w = 1 / (1 + d0 * d0 + d1 * d1)
                                z += w
                                let ww = w * w
                                r0 += ww * d0; r1 += ww * d1
                            }
                            continue
                        }
                        let d0 = yi0 - node.comX, d1 = yi1 - node.comY
                        let dist2 = d0 * d0 + d1 * d1
                        if node.width * node.width < theta2 * dist2 {
                            let w = 1 / (1 + dist2)
                            let c = Double(node.count)
                            z += c * w
                            let ww = c * w * w
                            r0 += ww * d0; r1 += ww * d1
                        } else {
                            let cs = Int(node.childStart)
                            if top + Int(node.childCount) > stack.count {
                                stack.append(contentsOf: [Int32](repeating: 0, count: stack.count))
                            }
                            for c in 0..<Int(node.childCount) { stack[top] = cl[cs + c]; top += 1 }
                        }
                    }
                }
            }
        }
        return (r0, r1, z)
    }
}
