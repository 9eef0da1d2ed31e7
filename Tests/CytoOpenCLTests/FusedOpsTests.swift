import CytoTestSupport
import CytoCPU
import CytoCore
import XCTest

@testable import CytoOpenCL

/// The fused ops (conv block forward with pooling, the conv stack backward with its
/// single reduction, the masked dense backward, the output-layer step, the
/// one-launch optimizer over segmented buffers) against the CPU backend, which
/// composes them from the unfused pieces, under every kernel configuration the
/// tuning settings select. The GPU configurations are forced on whatever device the
/// tests run on (PoCL, rusticl), so the GPU code paths are exercised on CPU drivers.
final class FusedOpsTests: XCTestCase {
    struct Configuration: CustomStringConvertible {
        var deviceClass: String?
        var vectorWidth: Int?
        var filterKernel: String?
        var workGroupSize: Int?
        var filterTileRows: Int?
        var description: String {
            "class \(deviceClass ?? "auto") vw \(vectorWidth.map(String.init) ?? "auto") filter \(filterKernel ?? "auto") group \(workGroupSize.map(String.init) ?? "auto") tile \(filterTileRows.map(String.init) ?? "auto")"
        }
    }

    static let configurations = [
        Configuration(),
        Configuration(deviceClass: "gpu", vectorWidth: 1, filterKernel: "tiled", workGroupSize: 64),
        Configuration(deviceClass: "gpu", vectorWidth: 4, filterKernel: "tiled", workGroupSize: 32, filterTileRows: 3),
        Configuration(deviceClass: "gpu", vectorWidth: 2, filterKernel: "partial", workGroupSize: 128),
        Configuration(deviceClass: "cpu", vectorWidth: 8, filterKernel: "rows"),
        Configuration(deviceClass: "cpu", vectorWidth: 4, filterKernel: "partial"),
    ]

    func backend(_ c: Configuration) throws -> OpenCLBackend {
        _ = try Fixture.backend()
        let d = try OpenCLRuntime.devices()[0]
        return try OpenCLBackend(
            platformIndex: d.platformIndex, deviceIndex: d.deviceIndex,
            options: OpenCLOptions(
                cacheDirectory: .some(Fixture.cacheDirectory),
                vectorWidth: c.vectorWidth, deviceClass: c.deviceClass,
                filterKernel: c.filterKernel, workGroupSize: c.workGroupSize,
                filterTileRows: c.filterTileRows))
    }

    /// Three conv blocks (odd and even sizes, channel counts not multiples of 4), the
    /// parameter gradients in segmented buffers (one reduction launch) or in buffers of
    /// their own (one per buffer).
    func testConvStackForwardAndBackward() throws {
        let geometries = [
            ConvGeometry(batch: 2, inChannels: 3, outChannels: 5, inHeight: 45, inWidth: 43),
            ConvGeometry(batch: 2, inChannels: 5, outChannels: 4, inHeight: 21, inWidth: 20),
            ConvGeometry(batch: 2, inChannels: 4, outChannels: 6, inHeight: 9, inWidth: 9),
        ]
        for c in Self.configurations {
            let ocl = try backend(c)
            for segmented in [true, false] {
                var r = Rand(11)
                struct Side { var blocks: [ConvBlock] = []; var gradInput: any DeviceBuffer }
                func make(_ b: any Backend, _ values: [[Float]]) throws -> Side {
                    let counts = geometries.flatMap { [$0.weightCount, $0.outChannels] }
                    var grads: [any DeviceBuffer]
                    if segmented {
                        grads = try b.makeSegmentedBuffer(.float32, counts: counts, labels: counts.map { "g\($0)" }, label: "grads")
                            .segments
                    } else {
                        grads = try counts.map { try b.makeBuffer(.float32, count: $0, label: "g") }
                    }
                    func buffer(_ v: [Float]) throws -> any DeviceBuffer {
                        let x = try b.makeBuffer(.float32, count: v.count, label: "x"); b.write(v, to: x, offset: 0); return x
                    }
                    var input = try buffer(values[0])
                    var side = Side(gradInput: try buffer([Float](repeating: .nan, count: geometries[0].inputCount)))
                    for (i, g) in geometries.enumerated() {
                        let pc = g.batch * g.outChannels * (g.outHeight / 2) * (g.outWidth / 2)
                        let nan = { (n: Int) in [Float](repeating: .nan, count: n) }
                        let block = ConvBlock(
                            geometry: g, input: input, weight: try buffer(values[1 + 2 * i]),
                            bias: try buffer(values[2 + 2 * i]), activation: try buffer(nan(g.outputCount)),
                            pooled: try buffer(nan(pc)), gradWeight: grads[2 * i], gradBias: grads[2 * i + 1],
                            gradActivation: try buffer(nan(g.outputCount)),
                            gradPooled: try buffer(i == geometries.count - 1 ? values.last! : nan(pc)))
                        side.blocks.append(block)
                        input = block.pooled
                    }
                    return side
                }
                var values = [r.floats(geometries[0].inputCount)]
                for g in geometries { values += [r.floats(g.weightCount, -0.5, 0.5), r.floats(g.outChannels, -0.1, 0.3)] }
                let last = geometries.last!
                values.append(r.floats(last.batch * last.outChannels * (last.outHeight / 2) * (last.outWidth / 2)))
                let a = try make(ocl, values), b = try make(Fixture.cpu, values)
                for (x, y) in zip(a.blocks, b.blocks) { ocl.convBlockForward(x); Fixture.cpu.convBlockForward(y) }
                ocl.convStackBackward(a.blocks, gradInput: a.gradInput)
                Fixture.cpu.convStackBackward(b.blocks, gradInput: b.gradInput)
                func check(_ x: any DeviceBuffer, _ y: any DeviceBuffer, rtol: Float, _ what: String) throws {
                    assertClose(
                        try ocl.read(x, offset: 0, count: x.count), Fixture.cpu.read(y, offset: 0, count: y.count),
                        rtol: rtol, atol: 1e-6, "\(what) (\(c), segmented \(segmented))")
                }
                for (i, (x, y)) in zip(a.blocks, b.blocks).enumerated() {
                    try check(x.activation, y.activation, rtol: 1e-5, "block \(i) activation")
                    try check(x.pooled, y.pooled, rtol: 1e-5, "block \(i) pooled")
                    // Pooling inside the convolution is exact: the pooled values are the
                    // window maxima of the activation the same launch wrote.
                    let act = try ocl.read(x.activation, offset: 0, count: x.activation.count)
                    let pg = x.poolGeometry
                    var expected: [Float] = []
                    for p in 0..<(pg.batch * pg.channels) {
                        for py in 0..<pg.outHeight {
                            for px in 0..<pg.outWidth {
                                let at = (p * pg.inHeight + 2 * py) * pg.inWidth + 2 * px
                                expected.append(max(max(act[at], act[at + 1]), max(act[at + pg.inWidth], act[at + pg.inWidth + 1])))
                            }
                        }
                    }
                    XCTAssertEqual(try ocl.read(x.pooled, offset: 0, count: x.pooled.count), expected, "block \(i) pooling (\(c))")
                    try check(x.gradWeight, y.gradWeight, rtol: 2e-5, "block \(i) filter gradient")
                    try check(x.gradBias, y.gradBias, rtol: 2e-5, "block \(i) bias gradient")
                    if i < geometries.count - 1 { try check(x.gradPooled, y.gradPooled, rtol: 1e-5, "block \(i) pooled gradient") }
                }
                try check(a.gradInput, b.gradInput, rtol: 1e-5, "input gradient")
                try ocl.checkErrors()
            }
        }
    }

    func testMaskedDenseBackwardAndOutputStep() throws {
        for c in Self.configurations {
            let ocl = try backend(c)
            var r = Rand(12)
            for (batch, inF, outF) in [(5, 64, 32), (32, 33, 2), (3, 17, 6)] {
                let g = DenseGeometry(batch: batch, inFeatures: inF, outFeatures: outF)
                // ReLU-like input: about a third exact zeros.
                let x = try Pair(ocl, r.floats(batch * inF).map { max(0, $0 + 0.3) })
                let w = try Pair(ocl, r.floats(outF * inF)), bias = try Pair(ocl, r.floats(outF))
                let gy = try Pair(ocl, r.floats(batch * outF))
                let gx = try Pair(ocl, count: batch * inF), gw = try Pair(ocl, count: outF * inF), gb = try Pair(ocl, count: outF)
                ocl.denseBackward(
                    g, input: x.cl, weight: w.cl, gradOutput: gy.cl, gradInput: gx.cl, gradWeight: gw.cl, gradBias: gb.cl, inputIsReLU: true
                )
                Fixture.cpu.denseBackward(
                    g, input: x.cpu, weight: w.cpu, gradOutput: gy.cpu, gradInput: gx.cpu, gradWeight: gw.cpu, gradBias: gb.cpu,
                    inputIsReLU: true)
                for (p, name) in [(gx, "masked input gradient"), (gw, "weight gradient"), (gb, "bias gradient")] {
                    let (a, b) = try read(ocl, p)
                    assertClose(a, b, rtol: 1e-5, atol: 1e-6, "dense \(name) \(g) (\(c))")
                }
                let labels = try Pair(ocl, (0..<batch).map { _ in Float(r.int(0...(outF - 1))) })
                let logits = try Pair(ocl, count: batch * outF), probs = try Pair(ocl, count: batch * outF)
                let gl = try Pair(ocl, count: batch * outF), m = try Pair(ocl, [0.5, 1, 2, 0])
                for relu in [true, false] {
                    ocl.denseSoftmaxCrossEntropyStep(
                        g, input: x.cl, weight: w.cl, bias: bias.cl, logits: logits.cl, labels: labels.cl,
                        probabilities: probs.cl, gradLogits: gl.cl, metrics: m.cl, gradWeight: gw.cl,
                        gradBias: gb.cl, gradInput: gx.cl, inputIsReLU: relu)
                    Fixture.cpu.denseSoftmaxCrossEntropyStep(
                        g, input: x.cpu, weight: w.cpu, bias: bias.cpu, logits: logits.cpu,
                        labels: labels.cpu, probabilities: probs.cpu, gradLogits: gl.cpu,
                        metrics: m.cpu, gradWeight: gw.cpu, gradBias: gb.cpu,
                        gradInput: gx.cpu, inputIsReLU: relu)
                    for (p, name) in [
                        (logits, "logits"), (probs, "probabilities"), (gl, "logit gradient"), (gx, "input gradient"),
                        (gw, "weight gradient"), (gb, "bias gradient"),
                    ] {
                        let (a, b) = try read(ocl, p)
                        assertClose(a, b, rtol: 1e-5, atol: 1e-6, "output step \(name) \(g) relu \(relu) (\(c))")
                    }
                    let (a, b) = try read(ocl, m)
                    XCTAssertEqual(a[0], b[0], accuracy: 1e-5 * max(1, abs(b[0])), "loss sum \(g) (\(c))")
                    XCTAssertEqual(Array(a[1...3]), Array(b[1...3]), "correct and sample counts \(g) (\(c))")
                }
            }
            try ocl.checkErrors()
        }
    }

    /// Whole training steps through `Network` (fused ops, one optimizer launch over the
    /// flat parameter buffers) against the CPU backend. SGD steps compare directly;
    /// RMSprop and Adam divide by the gradient's own magnitude, so a near-zero gradient
    /// that rounds to the other sign moves by a whole learning rate. They are checked
    /// from identical gradients (the CPU's, uploaded) instead.
    func testNetworkStepsMatchCPU() throws {
        let spec = ModelSpec(inputHeight: 40, inputWidth: 38, convFilters: [4, 6, 5], denseUnits: [7], classes: 3)
        let batch = 3
        var r = Rand(13)
        let images = r.floats(4 * 40 * 38 * 3, 0, 255).map { UInt8($0) }
        for c in Self.configurations {
            let ocl = try backend(c)
            var nets: [Network] = []
            for b in [ocl as any Backend, Fixture.cpu] {
                let net = try Network(spec: spec, backend: b, maxBatch: batch)
                net.initialize(seed: 3)
                let set = try b.makeBuffer(.uint8, count: images.count, label: "images")
                images.withUnsafeBytes { b.write(bytes: $0, to: set, byteOffset: 0) }
                b.write([0, 2, 1], to: net.labels, offset: 0)
                for t in 0..<3 {
                    b.gatherBatch(
                        images: set, geometry: ImageGeometry(height: 40, width: 38), indices: [Int32(t), 3, 1],
                        transforms: nil, output: net.input)
                    try net.trainStep(batch: batch, optimizer: OptimizerConfig(kind: .sgd, learningRate: 0.05))
                }
                nets.append(net)
            }
            let (cl, cpu) = (nets[0], nets[1])
            func compare(_ a: [String: [Float]], _ b: [String: [Float]], rtol: Float, _ what: String) {
                XCTAssertEqual(Set(a.keys), Set(b.keys))
                for (name, v) in b { assertClose(a[name]!, v, rtol: rtol, atol: 1e-6, "\(name) \(what) (\(c))") }
            }
            compare(try cl.gradients(), try cpu.gradients(), rtol: 1e-4, "gradient of the third step")
            compare(try cl.weights(), try cpu.weights(), rtol: 1e-5, "after 3 SGD steps")
            let ma = try ocl.read(cl.metrics, offset: 0, count: 3), mb = Fixture.cpu.read(cpu.metrics, offset: 0, count: 3)
            XCTAssertEqual(ma[0], mb[0], accuracy: 1e-4 * max(1, abs(mb[0])), "loss sum (\(c))")
            XCTAssertEqual(Array(ma[1...2]), Array(mb[1...2]), "correct and sample counts (\(c))")
            for kind in [OptimizerConfig.Kind.rmsprop, .adam] {
                for (p, q) in zip(cl.parameters, cpu.parameters) {
                    ocl.write(Fixture.cpu.read(q.gradient, offset: 0, count: q.count), to: p.gradient, offset: 0)
                    ocl.write(Fixture.cpu.read(q.value, offset: 0, count: q.count), to: p.value, offset: 0)
                }
                let optimizer = OptimizerConfig(kind: kind, learningRate: 0.01)
                for _ in 0..<2 { cl.applyGradients(optimizer); cpu.applyGradients(optimizer) }
                compare(try cl.weights(), try cpu.weights(), rtol: 1e-6, "after 2 \(kind) updates from the same gradients")
            }
            try ocl.checkErrors()
        }
    }

    /// A training step of the paper's network (batch gather included) stays within 30
    /// kernel launches with the default kernel choice for the device.
    func testPaperTrainingStepLaunchCount() throws {
        let ocl = try backend(Configuration())
        let spec = ModelSpec.paper(height: 190, width: 190)
        let net = try Network(spec: spec, backend: ocl, maxBatch: 2)
        net.initialize(seed: 1)
        let set = try ocl.makeBuffer(.uint8, count: 2 * 190 * 190 * 3, label: "images")
        ocl.write([0, 1], to: net.labels, offset: 0)
        func step() throws {
            ocl.gatherBatch(
                images: set, geometry: ImageGeometry(height: 190, width: 190), indices: [0, 1],
                transforms: nil, output: net.input)
            try net.trainStep(batch: 2, optimizer: .paperBinary)
        }
        try step()
        // Through the Backend protocol, as `cytocl bench` reads it.
        let backend: any Backend = ocl
        let before = try XCTUnwrap(backend.statistics.kernelLaunches)
        try step()
        let launches = try XCTUnwrap(backend.statistics.kernelLaunches) - before
        XCTAssertLessThanOrEqual(launches, 30, "kernel launches per training step (vector width \(ocl.tuning.vectorWidth))")
        _ = try net.takeMetrics()
        try ocl.checkErrors()
    }
}

/// The tuning variables of the README reach the backend, and a bad value stops with
/// the variable's name instead of silently falling back.
final class TuningSettingsTests: XCTestCase {
    func testEnvironmentSelectsKernels() throws {
        let env = [
            "CYTOCL_DEVICE_CLASS": "GPU", "CYTOCL_VECTOR_WIDTH": "2", "CYTOCL_FILTER_KERNEL": "tiled",
            "CYTOCL_WORK_GROUP": "32", "CYTOCL_FILTER_TILE_ROWS": "5",
        ]
        let o = OpenCLOptions(environment: env)
        XCTAssertEqual(o.deviceClass, "gpu")
        XCTAssertEqual(o.vectorWidth, 2)
        XCTAssertEqual(o.filterKernel, "tiled")
        XCTAssertEqual(o.workGroupSize, 32)
        XCTAssertEqual(o.filterTileRows, 5)
        _ = try Fixture.backend()
        let d = try OpenCLRuntime.devices()[0]
        let b = try OpenCLBackend(platformIndex: d.platformIndex, deviceIndex: d.deviceIndex, options: o)
        XCTAssertEqual(b.tuning.deviceClass, .gpu)
        XCTAssertEqual(b.tuning.vectorWidth, 2)
        XCTAssertEqual(b.tuning.convRows, 2)
        XCTAssertEqual(b.tuning.filterKernel, .tiled)
        XCTAssertEqual(b.tuning.groupSize, min(32, d.maxWorkGroupSize))
        XCTAssertEqual(b.tuning.filterTileRowLimit, 5)
        for (key, value) in [
            ("CYTOCL_VECTOR_WIDTH", "3"), ("CYTOCL_DEVICE_CLASS", "fpga"), ("CYTOCL_FILTER_KERNEL", "fast"),
            ("CYTOCL_WORK_GROUP", "48"), ("CYTOCL_FILTER_TILE_ROWS", "0"),
        ] {
            XCTAssertThrowsError(
                try OpenCLBackend(
                    platformIndex: d.platformIndex, deviceIndex: d.deviceIndex,
                    options: OpenCLOptions(environment: [key: value]))
            ) { e in
                XCTAssertTrue("\(e)".contains(key), "\(e)")
            }
        }
    }
}
