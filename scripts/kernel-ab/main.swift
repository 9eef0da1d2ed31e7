// Old vs new CPU conv kernels side by side in one process (see scripts/kernel-ab/run).
// Times single-threaded calls by thread CPU time, so other processes on a shared
// machine change the figures less than wall time; old and new alternate per repetition.
import Foundation

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func buffer(_ n: Int, _ seed: inout UInt64) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: n + 256)
    for i in 0..<n {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        p[i] = Float(Int(seed >> 40) % 2001 - 1000) / 1000
    }
    (p + n).initialize(repeating: 0, count: 256)
    return p
}

struct Layer { var C: Int; var O: Int; var H: Int }
// The paper's network at 257x257: conv1..conv3 (the others are under 5% of the work).
let layers = [Layer(C: 3, O: 4, H: 257), Layer(C: 4, O: 8, H: 127), Layer(C: 8, O: 8, H: 62)]
let batch = 5, reps = Int(CommandLine.arguments.dropFirst().first ?? "7") ?? 7
var seed: UInt64 = 1

for layer in layers {
    let C = layer.C, O = layer.O, H = layer.H, W = H, Ho = H - 2, Wo = W - 2
    let input = buffer(batch * C * H * W, &seed), grad = buffer(batch * O * Ho * Wo, &seed)
    let weights = buffer(O * C * 9, &seed), bias = buffer(O, &seed)
    let out = buffer(batch * O * Ho * Wo, &seed)
    let sumsOld = buffer(O * C * 9, &seed), sumsNew = buffer(O * C * 9, &seed)
    // Filter gradient as blockBackward runs it: per (image, 16-row block), every (o, c).
    func filterOld() {
        for n in 0..<batch {
            var y0 = 0
            while y0 < Ho {
                let rows = y0..<min(Ho, y0 + 16)
                var o = 0
                while o + 2 <= O {
                    let g0 = grad + (n * O + o) * Ho * Wo
                    for c in 0..<C {
                        OldConvKernels.filterGradientPair(
                            input: input, gradPlanes: g0, g0 + Ho * Wo, gradRow: Wo, n: n, rows: rows, c: c, channels: C,
                            inHeight: H, inWidth: W, outWidth: Wo, results: sumsOld + (o * C + c) * 9, sumsOld + ((o + 1) * C + c) * 9)
                    }
                    o += 2
                }
                y0 += 16
            }
        }
    }
    func filterNew() {
        for n in 0..<batch {
            var y0 = 0
            while y0 < Ho {
                let rows = y0..<min(Ho, y0 + 16)
                var o = 0
                while o + 4 <= O {
                    let g0 = grad + (n * O + o) * Ho * Wo
                    for c in 0..<C {
                        ConvKernels.filterGradientQuad(
                            input: input, gradPlanes: g0, gradPlaneStride: Ho * Wo, gradRow: Wo, n: n, rows: rows, c: c,
                            channels: C, inHeight: H, inWidth: W, outWidth: Wo, results: sumsNew + (o * C + c) * 9, resultStride: C * 9)
                    }
                    o += 4
                }
                y0 += 16
            }
        }
    }
    func forward(_ old: Bool) {
        for n in 0..<batch {
            for y in 0..<Ho {
                let i = input + n * C * H * W + y * W, d = out + n * O * Ho * Wo + y * Wo
                if old {
                    OldConvKernels.forwardRow(
                        inBase: i, inPlane: H * W, inRow: W, channels: C, weights: weights, bias: bias, outBase: d,
                        outPlane: Ho * Wo, outChannels: O, width: Wo, relu: true)
                } else {
                    ConvKernels.forwardRow(
                        inBase: i, inPlane: H * W, inRow: W, channels: C, weights: weights, bias: bias, outBase: d,
                        outPlane: Ho * Wo, outChannels: O, width: Wo, relu: true)
                }
            }
        }
    }
    var times: [String: [Double]] = [:]
    for _ in 0..<reps {
        for (name, body) in [
            ("filter old", filterOld), ("filter new", filterNew), ("forward old", { forward(true) }), ("forward new", { forward(false) }),
        ] {
            let t0 = cpuSeconds()
            for _ in 0..<3 { body() }
            times[name, default: []].append((cpuSeconds() - t0) / 3)
        }
    }
    var worst: Float = 0
    for k in 0..<(O * C * 9) { worst = max(worst, abs(sumsOld[k] - sumsNew[k]) / max(1, abs(sumsOld[k]))) }
    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
    let flops = Double(batch * O * C * 9 * Ho * Wo * 2)
    for kind in ["filter", "forward"] {
        let o = median(times["\(kind) old"]!), n = median(times["\(kind) new"]!)
        print(
            String(
                format: "conv %d->%d %dx%d batch %d %@: old %.2f ms (%.1f GFLOP/s), new %.2f ms (%.1f GFLOP/s), old/new %.2fx",
                C, O, H, W, batch, kind, o * 1e3, flops / o * 1e-9, n * 1e3, flops / n * 1e-9, o / n))
    }
    print(String(format: "  filter gradient: largest relative difference old vs new %.1e", worst))
}
