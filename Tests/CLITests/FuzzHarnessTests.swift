import CytoCore
import CytoData
import CytoTestSupport
import Foundation
import XCTest

/// The standing fuzz check: seeded mutants of PNG, TIFF and JPEG images and of
/// safetensors model files, all made here by the project's own writers, fed to the
/// `cytocl` binary the way a user would (`dataset cache`, `dataset inspect`,
/// `predict --model`). Every run must end with an exit status, not a signal, within
/// its time limit, and every rejected file must be named in the output.
///
/// The binary is the one built beside this test bundle, or `$CYTOCL_BINARY`
/// (`scripts/fuzz` points it at the release build). `$CYTOCL_FUZZ_IMAGES`,
/// `$CYTOCL_FUZZ_MODELS` and `$CYTOCL_FUZZ_SEED` change the amount and the seed.
final class FuzzHarnessTests: XCTestCase {
    static var binary: URL {
        if let b = ProcessInfo.processInfo.environment["CYTOCL_BINARY"], !b.isEmpty { return URL(fileURLWithPath: b) }
        return CLITests.binary
    }
    static func setting(_ name: String, _ fallback: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? fallback
    }

    var dir: URL!
    /// Set when a check fails, so the mutants stay on disk for a look.
    var keep = false
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-fuzz-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { if !keep { try? FileManager.default.removeItem(at: dir) } }

    struct Run {
        var status: Int32
        var signalled: Bool
        var timedOut: Bool
        var output: String
    }

    /// A started run of the binary; stdout and stderr go to one file.
    struct Launched {
        var process: Process
        var log: URL
        var handle: FileHandle
        var deadline: Date
    }

    func launch(_ args: [String], timeout: TimeInterval) throws -> Launched {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["CYTOCL_BACKEND"] = "cpu"
        env["CYTOCL_THREADS"] = "1"
        // A Keras reader stuck in libhdf5 is stopped (and reported) after 5 s, not 60.
        env["CYTOCL_HDF5_TIME_LIMIT"] = "5"
        p.environment = env
        let log = dir.appendingPathComponent("log-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let h = try FileHandle(forWritingTo: log)
        p.standardOutput = h; p.standardError = h
        try p.run()
        return Launched(process: p, log: log, handle: h, deadline: Date().addingTimeInterval(timeout))
    }

    /// Waits for a launched run until its deadline (then kills it).
    func collect(_ l: Launched) throws -> Run {
        while l.process.isRunning && Date() < l.deadline { usleep(2000) }
        let timedOut = l.process.isRunning
        if timedOut { kill(l.process.processIdentifier, SIGKILL) }
        l.process.waitUntilExit()
        try l.handle.close()
        let out = String(decoding: try Data(contentsOf: l.log), as: UTF8.self)
        try? FileManager.default.removeItem(at: l.log)
        return Run(
            status: l.process.terminationStatus, signalled: l.process.terminationReason == .uncaughtSignal,
            timedOut: timedOut, output: out)
    }

    /// Runs the binary with a time limit.
    func run(_ args: [String], timeout: TimeInterval) throws -> Run { try collect(try launch(args, timeout: timeout)) }

    // MARK: - Seeds, made by the project

    static func picture(_ w: Int, _ h: Int) -> RGBImage {
        var img = RGBImage(width: w, height: h, fill: (200, 190, 210))
        for y in 0..<h {
            for x in 0..<w {
                let i = (y * w + x) * 3
                img.pixels[i] = UInt8((x * 255) / max(1, w - 1)); img.pixels[i + 1] = UInt8((y * 255) / max(1, h - 1))
                img.pixels[i + 2] = UInt8((x * 7 + y * 13) & 0xFF)
            }
        }
        return img
    }

    func imageSeeds() throws -> [(ext: String, bytes: [UInt8])] {
        let img = Self.picture(24, 20)
        var out: [(String, [UInt8])] = [("png", try ImageCodec.encodePNG(img))]
        var rgba16 = [UInt16](repeating: 0, count: 12 * 10 * 4)
        for i in rgba16.indices { rgba16[i] = UInt16(truncatingIfNeeded: i &* 2654435761) }
        out.append(
            (
                "png",
                try rgba16.withUnsafeBytes {
                    try ImageCodec.encodePNG(raw: $0.baseAddress!, width: 12, height: 10, colorType: 6, bitDepth: 16)
                }
            ))
        out.append(("jpg", try ImageCodec.encodeJPEG(img, quality: 85)))
        for c in TIFFCompression.allCases {
            let url = dir.appendingPathComponent("seed-\(c).tif")
            try ImageCodec.writeTIFF(img, to: url, compression: c)
            out.append(("tif", [UInt8](try Data(contentsOf: url))))
        }
        var tiled = TIFFSpec(width: 32, height: 32, samplesPerPixel: 3)
        tiled.tileSize = 16; tiled.compression = .lzw
        let big = Self.picture(32, 32)
        let url = dir.appendingPathComponent("seed-tiled.tif")
        try big.pixels.withUnsafeBytes { try ImageCodec.writeTIFF(spec: tiled, samples: $0.baseAddress!, to: url) }
        out.append(("tif", [UInt8](try Data(contentsOf: url))))
        return out
    }

    static let modelSpec = ModelSpec(inputHeight: 16, inputWidth: 16, convFilters: [2], denseUnits: [4], classes: 2)

    func modelSeed() throws -> [UInt8] {
        var rng = SplitMix(seed: 7)
        var weights: [String: [Float]] = [:]
        for (name, shape) in Self.modelSpec.parameterShapes {
            weights[name] = (0..<shape.reduce(1, *)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 5000 }
        }
        let url = dir.appendingPathComponent("seed.safetensors")
        try ModelFile(spec: Self.modelSpec, classNames: ["other", "blast"], weights: weights, provenance: ["fuzz": "seed"]).write(to: url)
        return [UInt8](try Data(contentsOf: url))
    }

    // MARK: - Mutations

    static func mutate(_ original: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = original
        func at() -> Int { Int(rng.next() % UInt64(max(1, b.count))) }
        switch rng.next() % 7 {
        case 0:  // flip 1-8 bits
            for _ in 0..<(1 + Int(rng.next() % 8)) { let i = at(); b[i] ^= UInt8(1 << (rng.next() % 8)) }
        case 1:  // cut anywhere
            b = Array(b.prefix(at()))
        case 2:  // overwrite a run in the headers
            let start = Int(rng.next() % UInt64(min(200, b.count)))
            for i in start..<min(b.count, start + 1 + Int(rng.next() % 6)) { b[i] = UInt8(truncatingIfNeeded: rng.next()) }
        case 3:  // an extreme 16- or 32-bit value where sizes and offsets live
            let values: [UInt32] = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 65535 << 16 | 64]
            let v = values[Int(rng.next() % UInt64(values.count))]
            let i = Int(rng.next() % UInt64(min(256, b.count)))
            let width = rng.next() % 2 == 0 ? 2 : 4
            for k in 0..<width where i + k < b.count { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
        case 4:  // duplicate a slice elsewhere (repeated chunks, IFD loops)
            let s = at(), n = 1 + Int(rng.next() % 64)
            let slice = Array(b[s..<min(b.count, s + n)])
            b.insert(contentsOf: slice, at: at())
        case 5:  // zero a block
            let s = at()
            for i in s..<min(b.count, s + 1 + Int(rng.next() % 512)) { b[i] = 0 }
        default:  // random bytes anywhere, plus maybe a cut
            for _ in 0..<4 { let i = at(); b[i] = UInt8(truncatingIfNeeded: rng.next()) }
            if rng.next() % 2 == 0 { b = Array(b.prefix(max(1, b.count - Int(rng.next() % 64)))) }
        }
        return b.isEmpty ? [0] : b
    }

    /// Safetensors mutants that keep the file well-framed but lie in the header:
    /// extreme, negative, fractional or overlapping numbers, other dtypes, duplicate keys.
    static func mutateSafetensors(_ original: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        guard rng.next() % 3 != 0, original.count > 8 else { return mutate(original, &rng) }
        let n = Int(original[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard n > 0, 8 + n <= original.count else { return mutate(original, &rng) }
        var header = String(decoding: original[8..<(8 + n)], as: UTF8.self)
        let body = original[(8 + n)...]
        switch rng.next() % 4 {
        case 0, 1:  // replace one number
            let digits = header.indices.filter {
                header[$0].isNumber && ($0 == header.startIndex || !header[header.index(before: $0)].isNumber)
            }
            if let start = digits.isEmpty ? nil : digits[Int(rng.next() % UInt64(digits.count))] {
                var end = start
                while end < header.endIndex && header[end].isNumber { end = header.index(after: end) }
                let values = [
                    "-1", "0", "-8", "-1000000000", "18446744073709551616", "9223372036854775807", "1.5", "1e308",
                    "99999999999", "4000", "65535", "3",
                ]
                header.replaceSubrange(start..<end, with: values[Int(rng.next() % UInt64(values.count))])
            }
        case 2:  // another dtype
            let dtypes = ["F16", "F64", "I64", "U8", "BOOL", "X", ""]
            if let r = header.range(of: "\"F32\"") {
                header.replaceSubrange(r, with: "\"\(dtypes[Int(rng.next() % UInt64(dtypes.count))])\"")
            }
        default:  // a duplicated tensor entry
            if let r = header.range(of: "\"conv1.bias\":{"), let close = header[r.upperBound...].firstIndex(of: "}") {
                let entry = String(header[r.lowerBound...close])
                header.insert(contentsOf: entry + ",", at: r.lowerBound)
            }
        }
        let h = Array(header.utf8)
        var out: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(h.count) >> (8 * UInt64($0))) }
        out += h
        out += body
        return out
    }

    // MARK: - The harness

    func testMutantsNeverCrashHangOrGoUnnamed() throws {
        let seed = UInt64(Self.setting("CYTOCL_FUZZ_SEED", 20_261_129))
        let imageCount = Self.setting("CYTOCL_FUZZ_IMAGES", 2400)
        let modelCount = Self.setting("CYTOCL_FUZZ_MODELS", 400)
        var rng = SplitMix(seed: seed)
        let start = Date()

        // Images: two class folders of mutants; one `dataset cache` and one `dataset inspect` over all.
        let seeds = try imageSeeds()
        let data = dir.appendingPathComponent("images")
        var paths: [String] = []
        for k in 0..<imageCount {
            let (ext, bytes) = seeds[k % seeds.count]
            let url = data.appendingPathComponent(k % 2 == 0 ? "a" : "b").appendingPathComponent(String(format: "m%05d.%@", k, ext))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(Self.mutate(bytes, &rng)).write(to: url)
            paths.append(url.path)
        }
        let cache = try run(
            [
                "dataset", "cache", data.path, "--size", "32", "--skip-bad-images", "--no-near-duplicates",
                "--cache-dir", dir.appendingPathComponent("cache").path,
            ], timeout: 240)
        try check(cache, "dataset cache", files: paths)
        let skipped = cache.output.split(separator: "\n").filter { $0.hasPrefix("  skipped: ") }
        for line in skipped {
            XCTAssertTrue(paths.contains { line.contains($0) }, "a rejection that names no mutant: \(line)")
        }
        if let m = cache.output.range(of: #"(\d+) of (\d+) images loaded"#, options: .regularExpression) {
            let nums = cache.output[m].split(separator: " ").compactMap { Int($0) }
            XCTAssertEqual(nums.count, 2)
            XCTAssertEqual(nums[0] + skipped.count, imageCount, "every mutant is either loaded or named")
        } else if cache.status == 0 {
            XCTFail("no load summary in:\n\(cache.output.suffix(2000))")
        }
        // The decoders are under test here, not the near-duplicate scan: mutants of five
        // seeds all look alike, which would make every pair a candidate.
        let inspect = try run(["dataset", "inspect", data.path, "--no-near-duplicates"], timeout: 240)
        try check(inspect, "dataset inspect", files: paths)

        // Models: one `predict` per mutant, two at a time.
        let model = try modelSeed()
        let picture = dir.appendingPathComponent("cell.png")
        try ImageCodec.writePNG(Self.picture(16, 16), to: picture)
        let models = (0..<modelCount).map { k -> (URL, [UInt8]) in
            (dir.appendingPathComponent(String(format: "models/m%04d.safetensors", k)), Self.mutateSafetensors(model, &rng))
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("models"), withIntermediateDirectories: true)
        for (url, bytes) in models { try Data(bytes).write(to: url) }
        var failures: [String] = []
        var accepted = 0
        // Two processes at a time (CI has two cores), started and collected from this thread.
        var results: [(URL, Run)] = []
        for pair in stride(from: 0, to: models.count, by: 2) {
            let batch = models[pair..<min(models.count, pair + 2)].map(\.0)
            let started = try batch.map { try launch(["predict", "--model", $0.path, picture.path], timeout: 20) }
            for (url, l) in zip(batch, started) { results.append((url, try collect(l))) }
        }
        for (url, r) in results {
            if r.signalled || r.timedOut {
                failures.append("\(url.lastPathComponent): \(r.timedOut ? "hung" : "crashed (signal \(r.status))")")
            } else if r.status == 0 {
                let row = r.output.split(separator: "\n").first { $0.hasPrefix(picture.path + ",") } ?? ""
                let numbers = row.split(separator: ",").dropFirst(2).map { Double($0) }
                if numbers.count != 2 || numbers.contains(where: { !($0?.isFinite ?? false) }) {
                    failures.append("\(url.lastPathComponent): exit 0 without two finite probabilities: \(row)")
                } else {
                    accepted += 1
                }
            } else if r.status != 1 || !r.output.contains(url.path) {
                failures.append("\(url.lastPathComponent): exit \(r.status) without naming the file: \(r.output.suffix(300))")
            }
        }
        XCTAssertEqual(failures, [], "model mutants (kept in \(dir.path))")
        if !failures.isEmpty { keep = true }
        print(
            "fuzz: seed \(seed), \(imageCount) image mutants (\(skipped.count) rejected, each named), "
                + "\(modelCount) model mutants (\(accepted) accepted, \(modelCount - accepted - failures.count) rejected naming the file, "
                + "\(failures.count) failures), " + String(format: "%.0f s", Date().timeIntervalSince(start)))
    }

    /// Keras `.h5` mutants: byte-level mutants of every committed Keras fixture fed to
    /// `cytocl import`, two at a time. Half are the generic mutations above; half hit
    /// the HDF5 structures libhdf5 trusts (object headers, heaps, B-trees, the global
    /// heap of variable-length strings) and the attributes the importer reads. Each must
    /// import or fail with a one-line error naming the file, exit 1: no signal, no hang,
    /// no libhdf5 error stack. `$CYTOCL_FUZZ_H5` (mutants per fixture) changes the amount.
    func testKerasH5MutantsImportOrFailWithOneLine() throws {
        let seed = UInt64(Self.setting("CYTOCL_FUZZ_SEED", 20_261_129))
        let perFixture = Self.setting("CYTOCL_FUZZ_H5", 60)
        var rng = SplitMix(seed: seed ^ 0x4835)
        let start = Date()
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/interop")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: fixtures.path)
            .filter { $0.hasSuffix(".h5") || $0.hasSuffix(".hdf5") }.sorted()
        XCTAssertGreaterThanOrEqual(seeds.count, 5, "the Keras fixtures in \(fixtures.path)")
        let folder = dir.appendingPathComponent("h5")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var mutants: [URL] = []
        for name in seeds {
            let original = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name)))
            let anchors = Self.hdf5Anchors(original)
            for k in 0..<perFixture {
                let bytes = k % 2 == 0 ? Self.mutate(original, &rng) : Self.mutateHDF5(original, anchors: anchors, &rng)
                let url = folder.appendingPathComponent(String(format: "%@-%04d.h5", (name as NSString).deletingPathExtension, k))
                try Data(bytes).write(to: url)
                mutants.append(url)
            }
        }
        var failures: [String] = []
        var imported = 0, contained = 0
        var results: [(URL, Run)] = []
        for pair in stride(from: 0, to: mutants.count, by: 2) {
            let batch = Array(mutants[pair..<min(mutants.count, pair + 2)])
            // --input for the weights-only fixture; files that record their size must agree.
            let started = try batch.map { url in
                let size = url.lastPathComponent.contains("weights-only") ? ["--input", "64x64"] : []
                return try launch(["import", url.path, "--out", url.path + ".safetensors"] + size, timeout: 60)
            }
            for (url, l) in zip(batch, started) { results.append((url, try collect(l))) }
        }
        for (url, r) in results {
            let lines = r.output.split(separator: "\n")
            if r.signalled || r.timedOut {
                failures.append("\(url.lastPathComponent): \(r.timedOut ? "hung" : "crashed (signal \(r.status))")")
            } else if r.status == 0 {
                guard FileManager.default.fileExists(atPath: url.path + ".safetensors") else {
                    failures.append("\(url.lastPathComponent): exit 0 without a model"); continue
                }
                imported += 1
            } else if r.status != 1 {
                failures.append("\(url.lastPathComponent): exit \(r.status): \(r.output.suffix(300))")
            } else {
                let errors = lines.filter { $0.hasPrefix("Error: ") }
                if r.output.contains("libhdf5 crashed") || r.output.contains("libhdf5 did not finish") { contained += 1 }
                if errors.count != 1 || !errors[0].contains(url.path) || lines.contains(where: { $0.contains("HDF5-DIAG") }) {
                    failures.append("\(url.lastPathComponent): not one error line naming the file: \(r.output.suffix(400))")
                }
            }
        }
        XCTAssertEqual(failures, [], "Keras .h5 mutants (kept in \(folder.path))")
        if !failures.isEmpty { keep = true }
        print(
            "fuzz: seed \(seed), \(mutants.count) Keras .h5 mutants of \(seeds.count) fixtures (\(imported) imported, "
                + "\(mutants.count - imported - failures.count) rejected with one line, \(contained) of them crashes or hangs "
                + "inside libhdf5 contained by the reader's child process, \(failures.count) failures), "
                + String(format: "%.0f s", Date().timeIntervalSince(start)))
    }

    /// HDF5 mutants aimed at what libhdf5 reads lengths and addresses from: a few bytes
    /// changed near a structure signature (object header, local and global heap,
    /// B-tree, symbol table node) or an attribute name the importer reads.
    static func mutateHDF5(_ original: [UInt8], anchors: [Int], _ rng: inout SplitMix) -> [UInt8] {
        guard !anchors.isEmpty else { return mutate(original, &rng) }
        var b = original
        let anchor = anchors[Int(rng.next() % UInt64(anchors.count))]
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            let i = min(b.count - 1, max(0, anchor + Int(rng.next() % 160) - 16))
            let values: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, UInt8(truncatingIfNeeded: rng.next())]
            b[i] = rng.next() % 2 == 0 ? values[Int(rng.next() % UInt64(values.count))] : b[i] ^ UInt8(1 << (rng.next() % 8))
        }
        return b
    }

    /// Offsets of the HDF5 structure signatures and attribute names in `bytes`.
    static func hdf5Anchors(_ bytes: [UInt8]) -> [Int] {
        let markers = [
            "OHDR", "OCHK", "GCOL", "HEAP", "TREE", "SNOD", "FRHP", "FHDB", "BTHD", "BTLF", "weight_names", "layer_names", "model_config",
        ]
        var anchors: [Int] = []
        for marker in markers {
            let m = Array(marker.utf8)
            var i = 0
            while i + m.count <= bytes.count {
                if bytes[i] == m[0] && bytes[i..<(i + m.count)].elementsEqual(m) { anchors.append(i) }
                i += 1
            }
        }
        return anchors
    }

    /// Fails on a crash or hang and names the mutants that cause it, by halving.
    func check(_ r: Run, _ what: String, files: [String]) throws {
        guard r.signalled || r.timedOut || !(r.status == 0 || r.status == 1) else { return }
        var culprits: [String] = []
        var queue = [files]
        while let group = queue.popLast() {
            if group.count == 1 {
                let one = try run(["predict", "--model", try modelPath(), group[0]], timeout: 20)
                if one.signalled || one.timedOut { culprits.append(group[0]) }
                continue
            }
            let manifest = dir.appendingPathComponent("bisect.csv")
            let rows = group.enumerated().map { "\"\($0.element)\",\($0.offset % 2 == 0 ? "a" : "b")" }
            try ("path,label\n" + rows.joined(separator: "\n") + "\n").write(to: manifest, atomically: true, encoding: .utf8)
            let sub = try run(
                [
                    "dataset", "cache", manifest.path, "--layout", "csv", "--size", "32", "--skip-bad-images",
                    "--no-near-duplicates", "--cache-dir", dir.appendingPathComponent("bisect-cache").path,
                ], timeout: 240)
            if sub.signalled || sub.timedOut { let m = group.count / 2; queue.append(Array(group[..<m])); queue.append(Array(group[m...])) }
        }
        XCTFail(
            "\(what) \(r.timedOut ? "hung" : "crashed (status \(r.status))"); mutants that do it alone: \(culprits)\n\(r.output.suffix(1500))"
        )
        keep = true
    }

    func modelPath() throws -> String {
        let url = dir.appendingPathComponent("seed.safetensors")
        if !FileManager.default.fileExists(atPath: url.path) { _ = try modelSeed() }
        return url.path
    }
}
