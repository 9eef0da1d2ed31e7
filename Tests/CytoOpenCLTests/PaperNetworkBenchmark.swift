import CytoTestSupport
import CytoCPU
import CytoCore
import Foundation
import XCTest

@testable import CytoOpenCL

/// The paper network (conv 3->4->8->8->8->16->16, dense 64->32->2) run op by op:
/// forward, loss, backward, Adam. Used to compare a whole step against the CPU
/// backend and, with CYTOCL_OCL_BENCH=1, to time it and print the kernel table.
final class PaperNetworkBenchmark: XCTestCase {
    final class Net {
        let b: any Backend
        let batch: Int
        let convs: [ConvGeometry]
        let flat: Int
        var params: [(value: any DeviceBuffer, grad: any DeviceBuffer, s1: any DeviceBuffer, s2: any DeviceBuffer, count: Int)] = []
        var acts: [any DeviceBuffer] = []  // input, conv1, pool1, conv2, pool2, ...
        var grads: [any DeviceBuffer] = []
        var d1, d2, gd1, gd2, labels, probs, metrics: (any DeviceBuffer)!
        var images: (any DeviceBuffer)!

        init(_ b: any Backend, batch: Int, size: Int, seed: UInt64) throws {
            self.b = b; self.batch = batch
            let spec = ModelSpec.paper(height: size, width: size)
            try spec.validate()
            convs = spec.convGeometries(batch: batch)
            flat = spec.flattenedFeatures
            var r = Rand(seed)
            func param(_ n: Int, _ scale: Float) throws {
                let v = try b.makeBuffer(.float32, count: n, label: "p")
                b.write(r.floats(n, -scale, scale), to: v, offset: 0)
                let g = try b.makeBuffer(.float32, count: n, label: "g"), s1 = try b.makeBuffer(.float32, count: n, label: "s1"),
                    s2 = try b.makeBuffer(.float32, count: n, label: "s2")
                b.fill(s1, value: 0, count: n); b.fill(s2, value: 0, count: n)
                params.append((v, g, s1, s2, n))
            }
            acts.append(try b.makeBuffer(.float32, count: convs[0].inputCount, label: "input"))
            grads.append(try b.makeBuffer(.float32, count: convs[0].inputCount, label: "ginput"))
            for g in convs {
                try param(g.weightCount, (6 / Float(9 * (g.inChannels + g.outChannels))).squareRoot())
                try param(g.outChannels, 0.05)
                let pc = g.batch * g.outChannels * (g.outHeight / 2) * (g.outWidth / 2)
                acts.append(try b.makeBuffer(.float32, count: g.outputCount, label: "conv"));
                grads.append(try b.makeBuffer(.float32, count: g.outputCount, label: "gconv"))
                acts.append(try b.makeBuffer(.float32, count: pc, label: "pool"));
                grads.append(try b.makeBuffer(.float32, count: pc, label: "gpool"))
            }
            try param(32 * flat, 0.3); try param(32, 0.05); try param(2 * 32, 0.4); try param(2, 0.05)
            d1 = try b.makeBuffer(.float32, count: batch * 32, label: "d1");
            gd1 = try b.makeBuffer(.float32, count: batch * 32, label: "gd1")
            d2 = try b.makeBuffer(.float32, count: batch * 2, label: "d2"); gd2 = try b.makeBuffer(.float32, count: batch * 2, label: "gd2")
            labels = try b.makeBuffer(.float32, count: batch, label: "labels")
            b.write((0..<batch).map { Float($0 % 2) }, to: labels, offset: 0)
            probs = try b.makeBuffer(.float32, count: batch * 2, label: "probs")
            metrics = try b.makeBuffer(.float32, count: 3, label: "metrics")
            b.fill(metrics, value: 0, count: 3)
            let geo = ImageGeometry(height: size, width: size)
            let pixels = (0..<(8 * geo.pixelsPerImage)).map { _ in UInt8(truncatingIfNeeded: r.int(0...255)) }
            images = try b.makeBuffer(.uint8, count: pixels.count, label: "images")
            pixels.withUnsafeBytes { b.write(bytes: $0, to: images, byteOffset: 0) }
        }

        func step(_ t: Int) {
            var g = SeededGenerator(seed: UInt64(t))
            let geo = ImageGeometry(height: convs[0].inHeight, width: convs[0].inWidth)
            b.gatherBatch(
                images: images, geometry: geo, indices: (0..<batch).map { Int32(($0 + t) % 8) },
                transforms: (0..<batch).map { _ in AugmentTransform.random(using: &g) }, output: acts[0])
            for (i, c) in convs.enumerated() {
                b.conv2dForward(
                    c, input: acts[2 * i], weight: params[2 * i].value, bias: params[2 * i + 1].value, output: acts[2 * i + 1], relu: true)
                b.maxPoolForward(
                    PoolGeometry(batch: batch, channels: c.outChannels, inHeight: c.outHeight, inWidth: c.outWidth),
                    input: acts[2 * i + 1], output: acts[2 * i + 2])
            }
            let features = acts[acts.count - 1], gfeatures = grads[grads.count - 1]
            let p = params.count - 4
            b.denseForward(
                DenseGeometry(batch: batch, inFeatures: flat, outFeatures: 32), input: features, weight: params[p].value,
                bias: params[p + 1].value, output: d1, relu: true)
            b.denseForward(
                DenseGeometry(batch: batch, inFeatures: 32, outFeatures: 2), input: d1, weight: params[p + 2].value,
                bias: params[p + 3].value, output: d2, relu: false)
            b.softmaxCrossEntropy(
                batch: batch, classes: 2, logits: d2, labels: labels, probabilities: probs, gradLogits: gd2, metrics: metrics)
            b.denseBackward(
                DenseGeometry(batch: batch, inFeatures: 32, outFeatures: 2), input: d1, weight: params[p + 2].value, gradOutput: gd2,
                gradInput: gd1, gradWeight: params[p + 2].grad, gradBias: params[p + 3].grad)
            b.reluBackward(count: batch * 32, activation: d1, grad: gd1)
            b.denseBackward(
                DenseGeometry(batch: batch, inFeatures: flat, outFeatures: 32), input: features, weight: params[p].value, gradOutput: gd1,
                gradInput: gfeatures, gradWeight: params[p].grad, gradBias: params[p + 1].grad)
            for i in stride(from: convs.count - 1, through: 0, by: -1) {
                let c = convs[i]
                b.maxPoolBackward(
                    PoolGeometry(batch: batch, channels: c.outChannels, inHeight: c.outHeight, inWidth: c.outWidth),
                    input: acts[2 * i + 1], gradOutput: grads[2 * i + 2], gradInput: grads[2 * i + 1])
                b.reluBackward(count: c.outputCount, activation: acts[2 * i + 1], grad: grads[2 * i + 1])
                b.conv2dBackwardFilter(c, input: acts[2 * i], gradOutput: grads[2 * i + 1], gradWeight: params[2 * i].grad)
                b.conv2dBackwardBias(c, gradOutput: grads[2 * i + 1], gradBias: params[2 * i + 1].grad)
                if i > 0 { b.conv2dBackwardData(c, gradOutput: grads[2 * i + 1], weight: params[2 * i].value, gradInput: grads[2 * i]) }
            }
            let update = OptimizerUpdate.adam(stepSize: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-7)
            for q in params { b.optimizerStep(update, count: q.count, parameters: q.value, gradients: q.grad, state1: q.s1, state2: q.s2) }
        }
    }

    /// Three training steps of the paper network on both backends: same metrics,
    /// same parameters within 1e-4 relative.
    func testThreeTrainingStepsMatchCPU() throws {
        let ocl = try Fixture.backend()
        let a = try Net(ocl, batch: 2, size: 190, seed: 5), c = try Net(Fixture.cpu, batch: 2, size: 190, seed: 5)
        for t in 0..<3 { a.step(t); c.step(t) }
        let ma = try ocl.read(a.metrics, offset: 0, count: 3), mc = Fixture.cpu.read(c.metrics, offset: 0, count: 3)
        XCTAssertEqual(ma[0], mc[0], accuracy: 1e-4 * max(1, abs(mc[0])), "loss sum")
        XCTAssertEqual(Array(ma[1...]), Array(mc[1...]))
        for (i, (pa, pc)) in zip(a.params, c.params).enumerated() {
            assertClose(
                try ocl.read(pa.value, offset: 0, count: pa.count), Fixture.cpu.read(pc.value, offset: 0, count: pc.count),
                rtol: 1e-4, atol: 1e-6, "parameter \(i) after 3 Adam steps")
        }
        try ocl.checkErrors()
    }

    /// CYTOCL_OCL_BENCH=1: times steps at 257x257 batch 5 and prints the kernel table.
    func testBenchmarkPaperNetwork() throws {
        let env = ProcessInfo.processInfo.environment
        try XCTSkipUnless(env["CYTOCL_OCL_BENCH"] == "1", "set CYTOCL_OCL_BENCH=1 to run the benchmark")
        _ = try Fixture.backend()
        let batch = Int(env["CYTOCL_BENCH_BATCH"] ?? "5") ?? 5, size = Int(env["CYTOCL_BENCH_SIZE"] ?? "257") ?? 257
        let steps = Int(env["CYTOCL_BENCH_STEPS"] ?? "40") ?? 40
        for profiling in [false, true] {
            let ocl = try Fixture.makeBackend(profiling: profiling)
            let t0 = Date()
            try ocl.prepare()
            let net = try Net(ocl, batch: batch, size: size, seed: 1)
            net.step(0); ocl.synchronize()
            let warm = Date().timeIntervalSince(t0)
            for t in 1...3 { net.step(t) }
            ocl.synchronize()
            ocl.resetProfile()
            let start = Date()
            for t in 0..<steps { net.step(t) }
            _ = try ocl.read(net.metrics, offset: 0, count: 3)
            let dt = Date().timeIntervalSince(start)
            print(
                String(
                    format:
                        "OpenCL %@ profiling=%@: %d steps batch %d at %dx%d: %.2f ms/step, %.1f images/s (first step incl. build %.2f s)",
                    ocl.info.name, "\(profiling)", steps, batch, size, size, dt * 1e3 / Double(steps), Double(steps * batch) / dt, warm))
            if profiling { print(ocl.profileReport()) }
            try ocl.checkErrors()
        }
        let cpu = CPUBackend()
        let net = try Net(cpu, batch: batch, size: size, seed: 1)
        net.step(0)
        let start = Date()
        for t in 0..<10 { net.step(t) }
        let dt = Date().timeIntervalSince(start)
        print(String(format: "CPU backend: %.2f ms/step, %.1f images/s", dt * 1e3 / 10, Double(10 * batch) / dt))
    }
}
