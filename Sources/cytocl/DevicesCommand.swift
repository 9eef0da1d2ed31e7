import ArgumentParser
import CytoCPU
import CytoCore
import CytoOpenCL
import Foundation

/// `cytocl devices`: every OpenCL platform and device, and whether CytoCL's kernels
/// build and compute correctly there.
struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List OpenCL platforms and devices and self-test CytoCL's kernels on each.")

    @Flag(name: .long, help: "Only list the devices; skip the build and forward-pass self-test.")
    var noSelfTest = false

    func run() throws {
        let devices: [OpenCLDeviceInfo]
        do {
            devices = try OpenCLRuntime.devices()
        } catch {
            print("No OpenCL devices: \(failureMessage(error))")
            print("The CPU backend (--backend cpu) is always available.")
            return
        }
        if devices.isEmpty { print("No OpenCL devices found; the CPU backend (--backend cpu) is always available."); return }
        var rows: [[String]] = [
            [
                "device", "name", "platform", "type", "CUs", "clock", "global mem", "local mem",
                "max WG", "OpenCL C", "driver", "fp16", "fp64", "self-test",
            ]
        ]
        var notes: [String] = []
        for d in devices {
            var result = "skipped"
            if !noSelfTest {
                let (ok, message) = Self.selfTest(d)
                result = ok ? "PASS" : "FAIL"
                notes.append("\(d.selector) \(result): \(message)")
            }
            rows.append([
                d.selector, d.name, d.platformName, d.type, "\(d.computeUnits)", "\(d.clockMHz) MHz",
                Self.mib(d.globalMemoryBytes), Self.kib(d.localMemoryBytes), "\(d.maxWorkGroupSize)",
                d.openCLCVersion, d.driverVersion, d.fp16 ? "yes" : "no", d.fp64 ? "yes" : "no", result,
            ])
        }
        print(Self.table(rows))
        if !notes.isEmpty { print(""); notes.forEach { print($0) } }
    }

    static func mib(_ b: Int) -> String { "\(b >> 20) MiB" }
    static func kib(_ b: Int) -> String { "\(b >> 10) KiB" }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.enumerated().map { i, r in
            let line = r.enumerated().map { c, s in s + String(repeating: " ", count: widths[c] - s.count) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
            return i == 0 ? line + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") : line
        }.joined(separator: "\n")
    }

    /// Builds every kernel file, then runs a small conv net (2 conv blocks + dense +
    /// softmax, batch 2, 22x22) forward on the device and on the CPU backend and
    /// compares the probabilities.
    static func selfTest(_ d: OpenCLDeviceInfo) -> (Bool, String) {
        do {
            let ocl = try OpenCLBackend(platformIndex: d.platformIndex, deviceIndex: d.deviceIndex)
            let seconds = try ocl.prepare()
            let stats = ocl.buildStats
            let a = try tinyForward(ocl), b = try tinyForward(CPUBackend(threads: 1))
            try ocl.checkErrors()
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? .nan
            let built =
                "\(KernelSources.files.count) kernel files built in \(String(format: "%.2f", seconds)) s (\(stats.cacheHits) from cache)"
            guard diff <= 1e-4 else { return (false, "\(built); forward pass differs from the CPU backend by \(diff)") }
            return (true, "\(built); forward pass matches the CPU backend (max diff \(String(format: "%.1e", diff)))")
        } catch {
            return (false, failureMessage(error))
        }
    }

    static func tinyForward(_ b: any Backend) throws -> [Float] {
        var rng = SeededGenerator(seed: 2021)
        func rand(_ n: Int, _ s: Float) -> [Float] { (0..<n).map { _ in (rng.nextUnitFloat() * 2 - 1) * s } }
        func buffer(_ v: [Float]) throws -> any DeviceBuffer {
            let x = try b.makeBuffer(.float32, count: v.count, label: "selftest")
            b.write(v, to: x, offset: 0)
            return x
        }
        let n = 2, size = 22
        let geo = ImageGeometry(height: size, width: size)
        let pixels = (0..<(n * geo.pixelsPerImage)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let images = try b.makeBuffer(.uint8, count: pixels.count, label: "selftest.images")
        pixels.withUnsafeBytes { b.write(bytes: $0, to: images, byteOffset: 0) }
        var x = try b.makeBuffer(.float32, count: n * 3 * size * size, label: "selftest.input")
        b.gatherBatch(
            images: images, geometry: geo, indices: [1, 0],
            transforms: [AugmentTransform(degrees: 30, flipHorizontal: true, flipVertical: false), .identity], output: x)
        var c = 3, h = size
        for o in [4, 8] {
            let g = ConvGeometry(batch: n, inChannels: c, outChannels: o, inHeight: h, inWidth: h)
            let w = try buffer(rand(g.weightCount, 0.5)), bias = try buffer(rand(o, 0.1))
            let y = try b.makeBuffer(.float32, count: g.outputCount, label: "selftest.conv")
            b.conv2dForward(g, input: x, weight: w, bias: bias, output: y, relu: true)
            let pg = PoolGeometry(batch: n, channels: o, inHeight: g.outHeight, inWidth: g.outWidth)
            let p = try b.makeBuffer(.float32, count: pg.outputCount, label: "selftest.pool")
            b.maxPoolForward(pg, input: y, output: p)
            x = p; c = o; h = pg.outHeight
        }
        let features = c * h * h
        let dg = DenseGeometry(batch: n, inFeatures: features, outFeatures: 2)
        let w = try buffer(rand(2 * features, 0.2)), bias = try buffer(rand(2, 0.1))
        let logits = try b.makeBuffer(.float32, count: n * 2, label: "selftest.logits")
        b.denseForward(dg, input: x, weight: w, bias: bias, output: logits, relu: false)
        let probs = try b.makeBuffer(.float32, count: n * 2, label: "selftest.probs")
        b.softmax(batch: n, classes: 2, logits: logits, probabilities: probs)
        return try b.read(probs, offset: 0, count: n * 2)
    }
}
