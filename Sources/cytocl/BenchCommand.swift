import ArgumentParser
import CytoBackends
import CytoCore
import CytoCPU
import CytoOpenCL
import CytoTrain
import Foundation

/// Throughput of the paper's network per backend: training and inference images/s at
/// 257x257 and 400x400, batch 5 and 32, the OpenCL compile and cache-load times, the
/// CPU/OpenCL ratios, and PyTorch's figures on the same machine when torch is installed.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark training and inference images/s per backend (and PyTorch when installed).")

    @Option(name: .long, help: "Comma-separated backends to measure (e.g. cpu,opencl:0.0). Default: cpu and every OpenCL device.")
    var backends: String?

    @Option(name: .long, help: "Input sizes.")
    var sizes: String = "257,400"

    @Option(name: .long, help: "Batch sizes.")
    var batches: String = "5,32"

    @Option(name: .long, parsing: .unconditional, help: "Seconds per measurement (each is repeated 3 times; the median is reported).")
    var seconds: Double = 1.5

    @Flag(name: .long, help: "Skip the PyTorch comparison.")
    var noTorch = false

    @Option(name: .long, parsing: .unconditional, help: "CPU backend threads.")
    var threads: Int?

    @Flag(name: .long, help: "Print a per-op time table for each measurement.")
    var profile = false

    struct Row { var backend: String; var size: Int; var batch: Int; var train: Double; var infer: Double }

    func run() throws {
        let sizeList = sizes.split(separator: ",").compactMap { Int($0) }
        let batchList = batches.split(separator: ",").compactMap { Int($0) }
        var selectors = backends?.split(separator: ",").map(String.init) ?? ["cpu"]
        if backends == nil, let devs = try? OpenCLRuntime.devices() { selectors += devs.map(\.selector) }
        var rows: [Row] = []
        for sel in selectors {
            if sel.hasPrefix("opencl") { reportCompileTimes(sel) }
            let choice = try BackendSelection.make(sel, options: .init(profile: profile, threads: threads))
            note(choice.note)
            for size in sizeList {
                for batch in batchList {
                    let (t, i) = try measure(choice.backend, size: size, batch: batch)
                    rows.append(Row(backend: sel, size: size, batch: batch, train: t, infer: i))
                    note(String(format: "  %@ %dx%d batch %d: train %.1f img/s, inference %.1f img/s", sel, size, size, batch, t, i))
                    if profile { note("  inference profile:\n" + choice.backend.profileReport()); choice.backend.resetProfile() }
                }
            }
        }
        if !noTorch, let torchRows = runTorch(sizeList, batchList) { rows += torchRows }
        print("backend,size,batch,train_images_per_s,inference_images_per_s")
        for r in rows { print("\(r.backend),\(r.size),\(r.batch),\(String(format: "%.1f", r.train)),\(String(format: "%.1f", r.infer))") }
        // Ratios against the CPU backend.
        for r in rows where r.backend != "cpu" {
            if let c = rows.first(where: { $0.backend == "cpu" && $0.size == r.size && $0.batch == r.batch }) {
                print(String(format: "# cpu / %@ at %d batch %d: train %.2fx, inference %.2fx", r.backend, r.size, r.batch,
                             c.train / r.train, c.infer / r.infer))
            }
        }
    }

    func measure(_ backend: any Backend, size: Int, batch: Int) throws -> (Double, Double) {
        let spec = ModelSpec.paper(height: size, width: size, classes: 2)
        let net = try Network(spec: spec, backend: backend, maxBatch: batch)
        net.initialize(seed: 1)
        var rng = SeededGenerator(seed: 5)
        let images = 64
        let px = (0..<(images * size * size * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let set = try backend.makeBuffer(.uint8, count: px.count, label: "bench images")
        px.withUnsafeBytes { backend.write(bytes: $0, to: set, byteOffset: 0) }
        let geometry = ImageGeometry(height: size, width: size)
        let labels = (0..<batch).map { Float($0 % 2) }
        var cursor = 0
        func nextIndices() -> [Int32] {
            defer { cursor = (cursor + batch) % images }
            return (0..<batch).map { Int32((cursor + $0) % images) }
        }
        func timeIt(_ body: () throws -> Void) rethrows -> Double {
            for _ in 0..<2 { try body() }
            backend.synchronize()
            var rates: [Double] = []
            for _ in 0..<3 {
                let start = Date(); var n = 0
                repeat { try body(); n += 1; if n % 4 == 0 { backend.synchronize() } } while Date().timeIntervalSince(start) < seconds
                backend.synchronize()
                rates.append(Double(n * batch) / Date().timeIntervalSince(start))
            }
            return rates.sorted()[1]
        }
        func trainStep() throws {
            backend.gatherBatch(images: set, geometry: geometry, indices: nextIndices(), transforms: nil, output: net.input)
            backend.write(labels, to: net.labels, offset: 0)
            try net.trainStep(batch: batch, optimizer: .paperBinary)
        }
        let train = try timeIt(trainStep)
        if let cl = backend as? OpenCLBackend {
            let before = cl.launchCount
            try trainStep()
            note("  \(size)x\(size) batch \(batch): \(cl.launchCount - before) kernel launches per training step")
        }
        if profile {
            note("  training step profile:")
            note(backend.profileReport()); backend.resetProfile()
        }
        let infer = timeIt {
            backend.gatherBatch(images: set, geometry: geometry, indices: nextIndices(), transforms: nil, output: net.input)
            net.forward(batch: batch)
            net.computeProbabilities(batch: batch)
        }
        _ = try net.takeMetrics()
        // A rate measured on a device that failed is not a measurement.
        try backend.checkErrors()
        return (train, infer)
    }

    func reportCompileTimes(_ selector: String) {
        do {
            let cold = try OpenCLBackend(selector: selector, options: OpenCLOptions(cacheDirectory: .some(nil)))
            let compile = try cold.prepare()
            let warm1 = try OpenCLBackend(selector: selector)
            _ = try warm1.prepare()   // fills the cache if empty
            let start = Date()
            let warm = try OpenCLBackend(selector: selector)
            _ = try warm.prepare()
            note(String(format: "  %@: kernel compile %.2f s, cached start %.3f s", selector, compile, Date().timeIntervalSince(start)))
            print(String(format: "# %@ kernel compile %.2f s, cached start %.3f s", selector, compile, Date().timeIntervalSince(start)))
        } catch {
            note("  \(selector): \(failureMessage(error))")
        }
    }

    /// Runs scripts/bench_torch.py when python3 can import torch.
    func runTorch(_ sizes: [Int], _ batches: [Int]) -> [Row]? {
        let script = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("../../../scripts/bench_torch.py").standardized
        let candidates = [script.path, "scripts/bench_torch.py"]
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            note("PyTorch comparison skipped: scripts/bench_torch.py not found"); return nil
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", path, "--sizes", sizes.map(String.init).joined(separator: ","),
                       "--batches", batches.map(String.init).joined(separator: ","), "--seconds", String(seconds)]
        let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.standardError
        do { try p.run() } catch { note("PyTorch comparison skipped: \(failureMessage(error))"); return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { note("PyTorch comparison skipped (torch not importable)"); return nil }
        var rows: [Row] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ",")
            guard f.count == 5, let s = Int(f[1]), let b = Int(f[2]), let t = Double(f[3]), let i = Double(f[4]) else { continue }
            rows.append(Row(backend: String(f[0]), size: s, batch: b, train: t, infer: i))
        }
        return rows
    }
}
