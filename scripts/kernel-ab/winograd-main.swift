// Direct 3x3 kernels (ConvKernels, PoolKernels) against Winograd F(2x2,3x3)
// (winograd.swift) per layer of the paper's network, batch 5, single-threaded, by
// thread CPU time; see scripts/kernel-ab/winograd. Three comparisons per layer:
//   block: the fused forward of training (conv + bias + ReLU, activation kept, 2x2 max-pool);
//   conv:  the bare convolution (no ReLU, no pooling);
//   data:  the input gradient (full convolution of the zero-padded output gradient with
//          the flipped filters, as CPUBackend.backwardDataFromPadded runs it).
// Each is checked against the direct kernel first (largest difference relative to the
// largest magnitude of the direct result).
// WINOGRAD_ONLY="<size> <layer> <direct|winograd|none>" runs only that layer's three
// comparisons of one side, REPS times (for instruction counts under callgrind).
import Foundation

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func buffer(_ n: Int, _ seed: inout UInt64, scale: Float = 1) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: n + 256)
    for i in 0..<n {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        p[i] = scale * Float(Int(seed >> 40) % 2001 - 1000) / 1000
    }
    (p + n).initialize(repeating: 0, count: 256)
    return p
}

struct Layer { var name: String; var C: Int; var O: Int; var H: Int }
let networks: [(size: Int, layers: [Layer])] = [
    (257, [Layer(name: "conv1", C: 3, O: 4, H: 257), Layer(name: "conv2", C: 4, O: 8, H: 127),
           Layer(name: "conv3", C: 8, O: 8, H: 62), Layer(name: "conv4", C: 8, O: 8, H: 30),
           Layer(name: "conv5", C: 8, O: 16, H: 14), Layer(name: "conv6", C: 16, O: 16, H: 6)]),
    (400, [Layer(name: "conv1", C: 3, O: 4, H: 400), Layer(name: "conv2", C: 4, O: 8, H: 199),
           Layer(name: "conv3", C: 8, O: 8, H: 98), Layer(name: "conv4", C: 8, O: 8, H: 48),
           Layer(name: "conv5", C: 8, O: 16, H: 23), Layer(name: "conv6", C: 16, O: 16, H: 10)]),
]
let batch = 5, reps = Int(CommandLine.arguments.dropFirst().first ?? "7") ?? 7
let only = ProcessInfo.processInfo.environment["WINOGRAD_ONLY"]?.split(separator: " ").map(String.init)
var seed: UInt64 = 1

/// Largest |a - b| over the region, relative to the largest |b| there.
func difference(
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, planes: Int, plane: Int, row: Int, rows: Int, cols: Int
) -> Double {
    var worst = 0.0, scale = 0.0
    for p in 0..<planes {
        for y in 0..<rows {
            for x in 0..<cols {
                let i = p * plane + y * row + x
                worst = max(worst, Double(abs(a[i] - b[i]))); scale = max(scale, Double(abs(b[i])))
            }
        }
    }
    return worst / max(scale, 1e-30)
}

print("layer           | MACs direct / Winograd | block: direct ms, Winograd ms, direct/W | conv: direct, W, ratio | data: direct, W, ratio | rel. error block, conv, data")
for (size, layers) in networks {
    for layer in layers {
        if let only, only[0] != "\(size)" || only[1] != layer.name { continue }
        let C = layer.C, O = layer.O, H = layer.H, W = H, Ho = H - 2, Wo = W - 2, Hq = Ho / 2, Wq = Wo / 2
        let input = buffer(batch * C * H * W, &seed), weights = buffer(O * C * 9, &seed, scale: 0.3)
        let bias = buffer(O, &seed, scale: 0.1), zeros = buffer(C, &seed, scale: 0)
        let actD = buffer(batch * O * Ho * Wo, &seed), actW = buffer(batch * O * Ho * Wo, &seed)
        let poolD = buffer(batch * O * Hq * Wq, &seed), poolW = buffer(batch * O * Hq * Wq, &seed)
        // The output gradient inside a zero border of 2, as the backend's padded gradient.
        let Hp = Ho + 4, Wp = Wo + 4
        let padded = buffer(batch * O * Hp * Wp, &seed, scale: 0)
        let grad = buffer(batch * O * Ho * Wo, &seed)
        for p in 0..<(batch * O) {
            for y in 0..<Ho { (padded + p * Hp * Wp + (y + 2) * Wp + 2).update(from: grad + p * Ho * Wo + y * Wo, count: Wo) }
        }
        let gradInD = buffer(batch * C * H * W, &seed), gradInW = buffer(batch * C * H * W, &seed)
        let flipped = buffer(C * O * 9, &seed)
        for o in 0..<O { for c in 0..<C { for k in 0..<9 { flipped[(c * O + o) * 9 + 8 - k] = weights[(o * C + c) * 9 + k] } } }

        let forward = Winograd.Plan(channels: C, outChannels: O, height: H, width: W)
        // conv1's input gradient (3 channels) is never computed when training: not compared.
        let hasData = C % 4 == 0
        let backward = Winograd.Plan(channels: O, outChannels: hasData ? C : 4, height: Hp, width: Wp)

        func blockDirect() {
            for n in 0..<batch {
                let base = actD + n * O * Ho * Wo
                for y in 0..<Hq {
                    for r in 0..<(y == Hq - 1 ? Ho - 2 * y : 2) {
                        let row = 2 * y + r
                        ConvKernels.forwardRow(
                            inBase: input + n * C * H * W + row * W, inPlane: H * W, inRow: W, channels: C, weights: weights,
                            bias: bias, outBase: base + row * Wo, outPlane: Ho * Wo, outChannels: O, width: Wo, relu: true)
                    }
                    for o in 0..<O {
                        let top = UnsafePointer(base + o * Ho * Wo + 2 * y * Wo)
                        PoolKernels.forwardRow(top, top + Wo, poolD + ((n * O + o) * Hq + y) * Wq, Wo: Wq)
                    }
                }
            }
        }
        func blockWinograd() {
            forward.setFilters(weights)  // once per step in training: counted here
            for n in 0..<batch {
                forward.run(
                    image: input + n * C * H * W, bias: bias, relu: true, out: actW + n * O * Ho * Wo, outPlane: Ho * Wo,
                    outRow: Wo, pooled: poolW + n * O * Hq * Wq)
            }
        }
        func convDirect() {
            for n in 0..<batch {
                for y in 0..<Ho {
                    ConvKernels.forwardRow(
                        inBase: input + n * C * H * W + y * W, inPlane: H * W, inRow: W, channels: C, weights: weights,
                        bias: bias, outBase: actD + n * O * Ho * Wo + y * Wo, outPlane: Ho * Wo, outChannels: O, width: Wo, relu: false)
                }
            }
        }
        func convWinograd() {
            forward.setFilters(weights)
            for n in 0..<batch {
                forward.run(
                    image: input + n * C * H * W, bias: bias, relu: false, out: actW + n * O * Ho * Wo, outPlane: Ho * Wo,
                    outRow: Wo, pooled: nil)
            }
        }
        func dataDirect() {
            guard hasData else { return }
            for n in 0..<batch {
                for y in 0..<H {
                    ConvKernels.forwardRow(
                        inBase: padded + n * O * Hp * Wp + y * Wp, inPlane: Hp * Wp, inRow: Wp, channels: O, weights: flipped,
                        bias: zeros, outBase: gradInD + n * C * H * W + y * W, outPlane: H * W, outChannels: C, width: W, relu: false)
                }
            }
        }
        func dataWinograd() {
            guard hasData else { return }
            backward.setFilters(flipped)
            for n in 0..<batch {
                let src = padded + n * O * Hp * Wp, dst = gradInW + n * C * H * W
                backward.run(image: src, bias: zeros, relu: false, out: dst, outPlane: H * W, outRow: W, pooled: nil)
                if H % 2 == 1 {
                    // The last row and column, which the 2x2 tiles do not cover, directly.
                    ConvKernels.forwardRow(
                        inBase: src + (H - 1) * Wp, inPlane: Hp * Wp, inRow: Wp, channels: O, weights: flipped,
                        bias: zeros, outBase: dst + (H - 1) * W, outPlane: H * W, outChannels: C, width: W, relu: false)
                    for c in 0..<C {
                        for y in 0..<(H - 1) {
                            var acc: Float = 0
                            for o in 0..<O {
                                for ky in 0..<3 {
                                    for kx in 0..<3 {
                                        acc += src[o * Hp * Wp + (y + ky) * Wp + W - 1 + kx] * flipped[(c * O + o) * 9 + ky * 3 + kx]
                                    }
                                }
                            }
                            dst[c * H * W + y * W + W - 1] = acc
                        }
                    }
                }
            }
        }

        if let only {
            let bodies: [() -> Void] =
                only[2] == "direct" ? [blockDirect, convDirect, dataDirect] : only[2] == "winograd" ? [blockWinograd, convWinograd, dataWinograd] : []
            for _ in 0..<reps { for body in bodies { body() } }
            print("ran \(only.joined(separator: " ")) \(reps) times")
            continue
        }

        // Correctness first.
        blockDirect(); blockWinograd()
        let errBlock = max(
            difference(poolW, poolD, planes: batch * O, plane: Hq * Wq, row: Wq, rows: Hq, cols: Wq),
            difference(actW, actD, planes: batch * O, plane: Ho * Wo, row: Wo, rows: 2 * Hq, cols: 2 * Wq))
        convDirect(); convWinograd()
        let errConv = difference(actW, actD, planes: batch * O, plane: Ho * Wo, row: Wo, rows: 2 * Hq, cols: 2 * Wq)
        dataDirect(); dataWinograd()
        let errData = difference(gradInW, gradInD, planes: batch * C, plane: H * W, row: W, rows: H, cols: W)

        var times: [String: [Double]] = [:]
        for _ in 0..<reps {
            for (name, body) in [
                ("block d", blockDirect), ("block w", blockWinograd), ("conv d", convDirect), ("conv w", convWinograd),
                ("data d", dataDirect), ("data w", dataWinograd),
            ] {
                let t0 = cpuSeconds()
                for _ in 0..<3 { body() }
                times[name, default: []].append((cpuSeconds() - t0) / 3)
            }
        }
        func median(_ k: String) -> Double { let s = times[k]!.sorted(); return s[s.count / 2] * 1e3 }
        let macsD = Double(batch * O * C * 9 * Ho * Wo), macsW = Double(batch * O * C * 16 * Hq * Wq)
        var line = String(format: "%d %@ %2d->%-2d %3dx%-3d | %6.2fM / %6.2fM (%.2fx) |", size, layer.name, C, O, Ho, Wo, macsD / 1e6, macsW / 1e6, macsD / macsW)
        for k in ["block", "conv", "data"] {
            let d = median("\(k) d"), w = median("\(k) w")
            line += k == "data" && !hasData ? "       -       -      - |" : String(format: " %7.3f %7.3f %5.2fx |", d, w, d / w)
        }
        line += String(format: " %.1e %.1e ", errBlock, errConv) + (hasData ? String(format: "%.1e", errData) : "-")
        print(line)
    }
}
