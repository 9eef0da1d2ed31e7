import ArgumentParser
import CytoBackends
import CytoCPU
import CytoCore
import CytoOpenCL
import CytoTrain
import Foundation

/// Throughput of the paper's network per backend: training and inference images/s at
/// 257x257 and 400x400, batch 5 and 32, the OpenCL compile and cache-load times, the
/// CPU/OpenCL ratios, and PyTorch's and Keras' figures on the same machine when those
/// packages are importable.
///
/// Two rows per backend, size and batch: `bare` (gather without augmentation, one
/// training step) and `end-to-end` (what `train --augment` and the ALL protocol do
/// per step: the paper's augmentation, the step, and a validation pass over one
/// validation image per eight training images, the protocol's 25 : 200).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark training and inference images/s per backend (and PyTorch / Keras when importable).")

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

    @Flag(name: .long, help: "Skip the Keras/TensorFlow comparison.")
    var noKeras = false

    @Option(name: .long, help: "Python for the PyTorch and Keras comparisons (default: $CYTOCL_PYTHON or python3).")
    var python: String?

    @Option(name: .long, help: "Sampler of the end-to-end rows' augmentation: nearest (the paper's Keras 2.0.8) or bilinear.")
    var augmentSampler: AugmentSampler = .paper

    @Option(name: .long, parsing: .unconditional, help: "CPU backend threads.")
    var threads: Int?

    @Flag(name: .long, help: "Print a per-op time table for each measurement.")
    var profile = false

    struct Row {
        var backend: String; var size: Int; var batch: Int; var train: Double; var infer: Double
        var step = "bare"
        /// Share of the end-to-end step spent in the augmented batch gather (nil: not measured).
        var augmentShare: Double?
        var note = ""
    }

    static let csvHeader = "backend,size,batch,train_images_per_s,inference_images_per_s,step,augment_share,note"

    /// The smallest square input the paper's network accepts (every conv + pool block
    /// needs at least 4x4 pixels): 190 for six blocks.
    static var minimumSide: Int {
        (1...ModelSpec.maxInputSide).first { (try? ModelSpec.paper(height: $0, width: $0, classes: 2).validate()) != nil }
            ?? ModelSpec.maxInputSide
    }

    /// A comma-separated list of integers in `range`; any other entry (a word, a
    /// fraction, `1e3`, an empty entry) is an error naming the option, never dropped.
    static func integerList(_ text: String, option: String, range: ClosedRange<Int>, what: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        var out: [Int] = []
        for p in parts {
            guard let v = Int(p), range.contains(v) else {
                let shown = p.isEmpty ? "an empty entry" : "'\(p)'"
                throw ValidationError("\(option): \(shown) is not \(what)")
            }
            out.append(v)
        }
        return out
    }

    /// Every option is checked before anything is measured: a bad entry stops the run
    /// instead of being skipped and leaving a CSV with fewer rows (or only the header).
    mutating func validate() throws {
        let low = Self.minimumSide
        _ = try Self.integerList(
            sizes, option: "--sizes", range: low...ModelSpec.maxInputSide,
            what: "an integer from \(low) (the network's smallest input) to \(ModelSpec.maxInputSide)")
        _ = try Self.integerList(batches, option: "--batches", range: 1...4096, what: "a positive integer (at most 4096)")
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else {
            throw ValidationError("--seconds: \(seconds) is not a number of seconds above 0 and at most 3600")
        }
        if let t = threads, !(1...4096).contains(t) { throw ValidationError("--threads must be between 1 and 4096, got \(t)") }
        _ = try selectorList()
    }

    /// `--backends`, parsed (nil: not given). An empty item is refused, not skipped:
    /// `--backends ""` measured nothing, printed the CSV header alone and exited 0.
    func selectorList() throws -> [BackendSelector]? {
        try backends.map { list in
            try list.split(separator: ",", omittingEmptySubsequences: false).map { item in
                do { return try BackendSelector(parsing: String(item)) } catch { throw ValidationError("--backends: \(error)") }
            }
        }
    }

    func run() throws {
        let low = Self.minimumSide
        let sizeList = try Self.integerList(sizes, option: "--sizes", range: low...ModelSpec.maxInputSide, what: "a valid size")
        let batchList = try Self.integerList(batches, option: "--batches", range: 1...4096, what: "a valid batch")
        let sampler = augmentSampler
        var selectors = try selectorList() ?? [.cpu]
        if backends == nil { selectors = BackendSelection.available().map(\.selector) }
        var rows: [Row] = []
        var limitLines: [String] = []
        for sel in selectors {
            if case .opencl(let device) = sel { reportCompileTimes(device, named: sel.description) }
            let choice = try BackendSelection.make(sel, options: .init(profile: profile, threads: threads))
            note(choice.note)
            // The CPU's measured FMA limit on the path and threads the backend uses.
            let limit = choice.cpuPath.map { path in
                (path: path, threads: choice.cpuThreads ?? 1,
                 gflops: FMAPeakMeasurement.gflops(path: path, threads: choice.cpuThreads ?? 1))
            }
            for size in sizeList {
                for batch in batchList {
                    let backend = choice.backend
                    let m = try Throughput.measure(backend: backend, size: size, batch: batch, sampler: sampler, seconds: seconds) {
                        guard profile else { return }
                        note("  \($0) profile:")
                        note(backend.profileReport()); backend.resetProfile()
                    }
                    if let launches = m.launchesPerStep {
                        note("  \(size)x\(size) batch \(batch): \(launches) kernel launches per training step")
                    }
                    let desc = choice.backend.deviceDescription
                    if let limit {
                        let achieved = m.train * ModelSpec.paper(height: size, width: size, classes: 2).trainingFLOPsPerImage / 1e9
                        limitLines.append(
                            String(
                                format: "# %@ at %d batch %d: training %.1f GFLOP/s = %.0f%% of this CPU's measured FMA limit "
                                    + "(%.1f GFLOP/s, %@, %d thread%@)", sel.description as NSString, size, batch, achieved,
                                100 * achieved / limit.gflops, limit.gflops, limit.path.displayName as NSString, limit.threads,
                                (limit.threads == 1 ? "" : "s") as NSString))
                    }
                    rows.append(Row(backend: sel.description, size: size, batch: batch, train: m.train, infer: m.inference, note: desc))
                    rows.append(
                        Row(
                            backend: sel.description, size: size, batch: batch, train: m.endToEnd, infer: m.inference, step: "end-to-end",
                            augmentShare: m.augmentShare, note: "\(sampler.rawValue) augmentation + validation 1:8"))
                    note(
                        String(
                            format:
                                "  %@ %dx%d batch %d: train %.1f img/s (end-to-end %.1f, augmentation %.1f%% of it), inference %.1f img/s",
                            sel.description as NSString, size, size, batch, m.train, m.endToEnd, 100 * m.augmentShare, m.inference))
                    if profile { note("  inference profile:\n" + choice.backend.profileReport()); choice.backend.resetProfile() }
                }
            }
        }
        if !noTorch, let r = runPeer("bench_torch.py", "PyTorch", sizeList, batchList) { rows += r }
        if !noKeras, let r = runPeer("bench_keras.py", "Keras", sizeList, batchList) { rows += r }
        print(Self.csvHeader)
        for r in rows {
            print(
                [
                    r.backend, "\(r.size)", "\(r.batch)", String(format: "%.1f", r.train), String(format: "%.1f", r.infer), r.step,
                    r.augmentShare.map { String(format: "%.4f", $0) } ?? "", r.note.replacingOccurrences(of: ",", with: ";"),
                ]
                .joined(separator: ","))
        }
        for line in Self.ratioLines(rows) + limitLines { print(line) }
    }

    /// `# a / b` lines: every other backend and peer against the CPU backend's bare
    /// step, and the CPU backend against the best peer (PyTorch or Keras, any layout).
    static func ratioLines(_ rows: [Row]) -> [String] {
        var out: [String] = []
        let cpuRows = rows.filter { $0.backend == "cpu" && $0.step == "bare" }
        for r in rows where r.backend != "cpu" && r.step == "bare" {
            if let c = cpuRows.first(where: { $0.size == r.size && $0.batch == r.batch }) {
                out.append(
                    String(
                        format: "# cpu / %@ at %d batch %d: train %.2fx, inference %.2fx", r.backend as NSString, r.size, r.batch,
                        c.train / r.train, c.infer / r.infer))
            }
        }
        let peers = rows.filter { $0.backend.hasPrefix("torch") || $0.backend.hasPrefix("keras") }
        for c in cpuRows {
            let same = peers.filter { $0.size == c.size && $0.batch == c.batch }
            guard let bestTrain = same.max(by: { $0.train < $1.train }), let bestInfer = same.max(by: { $0.infer < $1.infer }) else {
                continue
            }
            out.append(
                String(
                    format: "# cpu / best peer at %d batch %d: train %.2fx (%@), inference %.2fx (%@)", c.size, c.batch,
                    c.train / bestTrain.train, bestTrain.backend as NSString, c.infer / bestInfer.infer, bestInfer.backend as NSString))
        }
        return out
    }

    func reportCompileTimes(_ device: OpenCLDeviceSelector, named selector: String) {
        do {
            let cold = try OpenCLBackend(device: device, options: OpenCLOptions(cacheDirectory: .some(nil)))
            let compile = try cold.prepare()
            let warm1 = try OpenCLBackend(device: device)
            _ = try warm1.prepare()  // fills the cache if empty
            let start = Date()
            let warm = try OpenCLBackend(device: device)
            _ = try warm.prepare()
            note(String(format: "  %@: kernel compile %.2f s, cached start %.3f s", selector, compile, Date().timeIntervalSince(start)))
            print(String(format: "# %@ kernel compile %.2f s, cached start %.3f s", selector, compile, Date().timeIntervalSince(start)))
        } catch {
            note("  \(selector): \(failureMessage(error))")
        }
    }

    /// Runs a peer benchmark script (scripts/bench_torch.py, scripts/bench_keras.py) when
    /// its Python packages are importable; the script exits 3 when they are not.
    func runPeer(_ name: String, _ what: String, _ sizes: [Int], _ batches: [Int]) -> [Row]? {
        let script = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("../../../scripts/\(name)").standardized
        let candidates = [script.path, "scripts/\(name)"]
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            note("\(what) comparison skipped: scripts/\(name) not found"); return nil
        }
        let py = python ?? ProcessInfo.processInfo.environment["CYTOCL_PYTHON"] ?? "python3"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            py, path, "--sizes", sizes.map(String.init).joined(separator: ","),
            "--batches", batches.map(String.init).joined(separator: ","), "--seconds", String(seconds),
        ]
        let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.standardError
        do { try p.run() } catch { note("\(what) comparison skipped: \(failureMessage(error))"); return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus == 3 { note("\(what) comparison skipped (not importable by \(py))"); return nil }
        guard p.terminationStatus == 0 else {
            note("\(what) comparison failed (exit \(p.terminationStatus)); its rows are left out"); return nil
        }
        var rows: [Row] = []
        for line in TextFile.lines(String(decoding: data, as: UTF8.self)).map(\.text) {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 5, let s = Int(f[1]), let b = Int(f[2]), let t = Double(f[3]), let i = Double(f[4]) else { continue }
            rows.append(
                Row(
                    backend: String(f[0]), size: s, batch: b, train: t, infer: i,
                    step: f.count > 5 ? String(f[5]) : "bare", note: f.count > 6 ? String(f[6]) : ""))
        }
        return rows
    }
}
