import Foundation
import XCTest

/// Through the binary, as a user meets them: device failures, untrustworthy model
/// files, runs that cannot fit in memory and diverging training all end with a non-zero
/// exit and one line saying why, and never with a number or a model.
extension CLITests {
    /// A model file written the way `ModelFile` writes one (F32 tensors in order, the
    /// three required metadata keys), with small deterministic weights; `poison` puts
    /// a value at one index of one tensor; `extra` tensors (name, dtype, shape, bytes)
    /// follow the model's (a Keras reference file is a model plus its inputs).
    func writeModel(
        _ url: URL, height: Int = 200, width: Int = 200, filters: [Int] = [4, 8, 8, 8, 16, 16],
        classes: [String] = ["blast", "lymphocyte"], poison: (tensor: String, value: Float)? = nil,
        overflowing: Bool = false, extra: [(String, String, [Int], Data)] = []
    ) throws {
        var tensors: [(String, [Int])] = []
        var c = 3, h = height, w = width
        for (i, o) in filters.enumerated() {
            tensors += [("conv\(i + 1).weight", [o, c, 3, 3]), ("conv\(i + 1).bias", [o])]
            c = o; h = (h - 2) / 2; w = (w - 2) / 2
        }
        tensors += [
            ("dense1.weight", [32, c * h * w]), ("dense1.bias", [32]),
            ("dense2.weight", [classes.count, 32]), ("dense2.bias", [classes.count]),
        ]
        var entries: [String] = []
        var payload = Data()
        var state: UInt64 = 12345
        for (name, shape) in tensors {
            let n = shape.reduce(1, *)
            var values = (0..<n).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.2
            }
            if let p = poison, p.tensor == name { values[n / 2] = p.value }
            // Finite, but conv2 then sums 1e30 x 1e30: infinite activations, NaN after conv3.
            if overflowing && (name == "conv1.bias" || name == "conv2.weight") { values = values.map { _ in 1e30 } }
            entries.append(
                "\"\(name)\":{\"dtype\":\"F32\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(payload.count),\(payload.count + 4 * n)]}"
            )
            values.withUnsafeBytes { payload.append(contentsOf: $0) }
        }
        for (name, dtype, shape, bytes) in extra {
            entries.append(
                "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(payload.count),\(payload.count + bytes.count)]}"
            )
            payload.append(bytes)
        }
        let classList = "[" + classes.map { "\\\"\($0)\\\"" }.joined(separator: ",") + "]"
        let meta =
            "\"__metadata__\":{\"cytocl.classes\":\"\(classList)\",\"cytocl.input\":\"\(height)x\(width)x3\",\"cytocl.scale\":\"1/255\"}"
        var header = Array(("{" + ([meta] + entries).joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file = Data()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: header)
        file.append(payload)
        try file.write(to: url)
    }

    /// Skips (fails under CI=true) when the binary sees no OpenCL device.
    func requireOpenCL() throws {
        let devices = try cytocl(["devices"])
        if devices.status == 0 && devices.stdout.contains("opencl:") { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true but no OpenCL device: \(devices.stderr)") }
        throw XCTSkip("no OpenCL device")
    }

    /// The failure is printed once, as the error line, and the run exits non-zero.
    func assertDeviceFailure(_ r: Output, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, "\(what) exited 0 after a device error; stderr: \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains("injected by CYTOCL_FAULT") }
        XCTAssertEqual(lines.count, 1, "\(what): the device error must be reported once: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("Error: ") ?? false, "\(what): \(r.stderr)", file: file, line: line)
    }

    func testDeviceFailureStopsEveryCommandWithoutANumber() throws {
        try requireOpenCL()
        let data = try synth("data", layout: "folders", count: 12, size: 200, seed: 3)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model)
        let images = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted().map { data + "/blast/" + $0 }
        let cl = ["--backend", "opencl"]
        let classes = ["--classes", "blast,lymphocyte"]

        // train: at the first launch, and later, in the first epoch's steps (about 15
        // launches set the network up, then a training step makes 29).
        for fault in ["launch", "launch:40", "read"] {
            let run = dir.appendingPathComponent("run-\(fault)").path
            let r = try cytocl(
                ["train", "--data", data, "--out", run, "--input", "200x200", "--epochs", "2"] + classes + cl,
                env: ["CYTOCL_FAULT": fault])
            assertDeviceFailure(r, "train with CYTOCL_FAULT=\(fault)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"), "train wrote a model after a device error")
            XCTAssertEqual(r.stdout, "")
        }
        let predict = try cytocl(["predict", "--model", model.path] + cl + images, env: ["CYTOCL_FAULT": "launch:3"])
        assertDeviceFailure(predict, "predict")
        XCTAssertEqual(predict.stdout, "", "predict printed probabilities after a device error")

        for fault in ["launch:5", "read"] {
            let evaluate = try cytocl(["evaluate", "--model", model.path, "--data", data] + classes + cl, env: ["CYTOCL_FAULT": fault])
            assertDeviceFailure(evaluate, "evaluate with CYTOCL_FAULT=\(fault)")
            XCTAssertEqual(evaluate.stdout, "", "evaluate printed metrics after a device error")
        }

        let maps = dir.appendingPathComponent("maps").path
        let explain = try cytocl(
            ["explain", "--model", model.path, "--method", "saliency", "--out", maps] + cl + [images[0]],
            env: ["CYTOCL_FAULT": "launch:4"])
        assertDeviceFailure(explain, "explain")
        XCTAssertTrue(
            ((try? FileManager.default.contentsOfDirectory(atPath: maps)) ?? []).filter { $0.hasSuffix(".npy") }.isEmpty,
            "explain wrote maps after a device error")

        let tsne = dir.appendingPathComponent("tsne").path
        let embed = try cytocl(
            ["embed", "--model", model.path, "--data", data, "--out", tsne, "--perplexity", "2"] + classes + cl,
            env: ["CYTOCL_FAULT": "launch:4"])
        assertDeviceFailure(embed, "embed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: tsne + "/embedding.csv"), "embed wrote an embedding after a device error")

        // verify on a reference-shaped file (the model, one input image and its label).
        let reference = dir.appendingPathComponent("reference.safetensors")
        let pixels = Data((0..<(200 * 200 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try writeModel(
            reference,
            extra: [
                ("input_u8", "U8", [1, 200, 200, 3], pixels),
                ("labels", "F32", [1], withUnsafeBytes(of: Float(1)) { Data($0) }),
            ])
        let verify = try cytocl(["verify", "--reference", reference.path] + cl, env: ["CYTOCL_FAULT": "launch:6"])
        assertDeviceFailure(verify, "verify")
        XCTAssertFalse(verify.stdout.contains("ok ") || verify.stdout.contains("FAIL"), "verify printed comparisons: \(verify.stdout)")

        let bench = try cytocl(
            ["bench", "--backends", "opencl", "--sizes", "200", "--batches", "2", "--seconds", "0.05", "--no-torch"],
            env: ["CYTOCL_FAULT": "launch:10"])
        assertDeviceFailure(bench, "bench")
        XCTAssertFalse(bench.stdout.contains("train_images_per_s"), "bench printed rates after a device error: \(bench.stdout)")
    }

    func testDeviceFailureInASweepCellIsRecordedFailedAndRetried() throws {
        try requireOpenCL()
        let data = try synth("cells", layout: "all-idb", count: 30, size: 64, seed: 9)
        let out = dir.appendingPathComponent("sweep").path
        let args = [
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "4", "--folds", "3",
            "--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "2", "--patience", "2", "--backend", "opencl",
        ]
        let failed = try cytocl(args, env: ["CYTOCL_FAULT": "launch:50"])
        XCTAssertNotEqual(failed.status, 0, failed.stderr)
        XCTAssertTrue(failed.stderr.contains("injected by CYTOCL_FAULT"), failed.stderr)
        let records = try FileManager.default.contentsOfDirectory(atPath: out + "/cells")
        XCTAssertFalse(
            records.contains { $0.hasSuffix(".json") && !$0.hasSuffix(".error.json") },
            "a cell on a failed device counted as done: \(records)")
        let status = try cytocl(["sweep", "status", out])
        XCTAssertTrue(status.stdout.contains("failed"), status.stdout)
        XCTAssertFalse(status.stdout.contains("done   "), status.stdout)
        let retry = try cytocl(["sweep", "retry", out])
        XCTAssertEqual(retry.status, 0, retry.stderr)
        let done = try FileManager.default.contentsOfDirectory(atPath: out + "/cells").filter {
            $0.hasSuffix(".json") && !$0.hasSuffix(".error.json")
        }
        XCTAssertEqual(done.count, 3, "retry must redo every cell of the failed device")
    }

    func testModelsWithNonFiniteWeightsAreRefused() throws {
        let data = try synth("data", layout: "folders", count: 12, size: 200, seed: 3)
        let image = data + "/blast/" + (try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0])
        for (tensor, value) in [("conv2.weight", Float.nan), ("dense1.bias", Float.infinity)] {
            let model = dir.appendingPathComponent("poisoned.safetensors")
            try writeModel(model, poison: (tensor, value))
            let predict = try cytocl(["predict", "--model", model.path, image])
            XCTAssertNotEqual(predict.status, 0)
            XCTAssertEqual(predict.stdout, "", "predict printed numbers from a poisoned model")
            XCTAssertTrue(
                predict.stderr.contains(model.path) && predict.stderr.contains(tensor) && predict.stderr.contains("non-finite"),
                predict.stderr)
            let evaluate = try cytocl(["evaluate", "--model", model.path, "--data", data, "--classes", "blast,lymphocyte"])
            XCTAssertNotEqual(evaluate.status, 0)
            XCTAssertEqual(evaluate.stdout, "")
            XCTAssertTrue(evaluate.stderr.contains(tensor), evaluate.stderr)
        }
        // Finite weights whose arithmetic overflows float32: no NaN may be printed as a probability.
        let huge = dir.appendingPathComponent("huge.safetensors")
        try writeModel(huge, overflowing: true)
        let overflow = try cytocl(["predict", "--model", huge.path, image])
        XCTAssertNotEqual(overflow.status, 0)
        XCTAssertEqual(overflow.stdout, "", "predict printed NaN probabilities")
        // Refused when the model is read (the check export and import share), naming the model.
        XCTAssertTrue(overflow.stderr.contains("beyond float32's range") && overflow.stderr.contains(huge.path), overflow.stderr)
        let overflowEval = try cytocl(["evaluate", "--model", huge.path, "--data", data, "--classes", "blast,lymphocyte"])
        XCTAssertNotEqual(overflowEval.status, 0)
        XCTAssertEqual(overflowEval.stdout, "")
        let dup = dir.appendingPathComponent("dup.safetensors")
        try writeModel(dup, classes: ["blast", "blast"])
        let r = try cytocl(["predict", "--model", dup.path, image])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("'blast' twice"), r.stderr)
    }

    func testRunsThatCannotFitInMemoryAreRefusedWithTheFigures() throws {
        let data = try synth("data", layout: "folders", count: 12, size: 200, seed: 3)
        let run = dir.appendingPathComponent("run").path
        func assertRefused(_ r: Output, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertNotEqual(r.status, 0, file: file, line: line)
            for e in expected { XCTAssertTrue(r.stderr.contains(e), "expected '\(e)' in: \(r.stderr)", file: file, line: line) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"), file: file, line: line)
        }
        let memory = ["needs", "GiB", "available (host memory"]
        assertRefused(
            try cytocl(["train", "--data", data, "--out", run, "--input", "200x200", "--batch", "100000", "--classes", "blast,lymphocyte"]),
            ["the network for input 200x200 at batch 100000"] + memory)
        assertRefused(
            try cytocl(["train", "--data", data, "--out", run, "--input", "20000x20000", "--classes", "blast,lymphocyte"]),
            ["the network for input 20000x20000 at batch 32"] + memory)
        assertRefused(try cytocl(["train", "--data", data, "--out", run, "--input", "40000x40000"]), ["at most 32768"])
        assertRefused(try cytocl(["train", "--data", data, "--out", run, "--batch", "2000000"]), ["--batch must be between 1 and 1000000"])
        // A small file claiming a huge input: refused before anything is allocated.
        let claim = dir.appendingPathComponent("claims-30000.safetensors")
        try writeModel(claim, height: 30000, width: 30000, filters: [Int](repeating: 1, count: 12))
        XCTAssertLessThan(try Data(contentsOf: claim).count, 16_384)
        let image = data + "/blast/" + (try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0])
        let predict = try cytocl(["predict", "--model", claim.path, image])
        assertRefused(predict, ["the network for input 30000x30000 at batch 32"] + memory)
        XCTAssertEqual(predict.stdout, "")
        assertRefused(
            try cytocl([
                "sweep", "--protocol", "custom", "--data", data, "--out", dir.appendingPathComponent("s").path,
                "--sizes", "1:100000000:1",
            ]), ["expands to 100,000,000 sizes", "at most 10,000"])
        assertRefused(
            try cytocl([
                "sweep", "--protocol", "custom", "--data", data, "--out", dir.appendingPathComponent("s").path,
                "--folds", "5000", "--input", "200x200",
            ]), ["--folds must be at most 1000"])
    }

    func testDeviceMemoryRefusalNamesTheDeviceLimit() throws {
        try requireOpenCL()
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 30000, width: 30000, filters: [Int](repeating: 1, count: 12))
        let r = try cytocl(["evaluate", "--model", model.path, "--data", dir.path, "--backend", "opencl"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(
            r.stderr.contains("the network for input 30000x30000 at batch 32 needs") && r.stderr.contains("device memory of"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    func testExplodingTrainingFailsWithoutAModel() throws {
        let data = try synth("data", layout: "folders", count: 12, size: 200, seed: 3)
        let run = dir.appendingPathComponent("run").path
        // Adam at a learning rate of 1 reaches a loss near 1e8 in the first epoch: finite, and useless.
        let r = try cytocl([
            "train", "--data", data, "--out", run, "--input", "200x200", "--epochs", "3", "--optimizer", "adam",
            "--lr", "1", "--classes", "blast,lymphocyte",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("diverged at epoch 1") && r.stderr.contains("no model written"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"))
        XCTAssertEqual(r.stdout, "")
    }

    /// Two `train` runs into one new run folder at once: one trains, the other is refused
    /// at once naming the lock and its holder (both used to exit 0, the last model
    /// replacing the first's). A lock left by a killed run is taken over; the lock is
    /// gone when the run ends.
    func testConcurrentTrainRunsIntoOneFolderAreRefused() throws {
        let data = try synth("data", count: 24, size: 65, seed: 3)
        // A small network (the model's): fast enough to train in a test.
        let start = dir.appendingPathComponent("start.safetensors")
        try writeModel(start, height: 65, width: 65, filters: [4, 8, 8], classes: ["other", "blast"])
        let run = dir.appendingPathComponent("run").path, lock = run + "/train.lock"
        func train(_ seed: Int) -> [String] {
            [
                Self.binary.path, "train", "--data", data, "--out", run, "--init-from", start.path, "--epochs", "2", "--patience", "2",
                "--seed", "\(seed)", "--backend", "cpu", "--near-duplicates", "off",
            ]
        }
        let script =
            [1, 2].map { s in train(s).map { "'" + $0 + "'" }.joined(separator: " ") + " >\(run)-\(s).out 2>\(run)-\(s).err & p\(s)=$!" }
            .joined(separator: "\n") + "\nwait $p1; echo 1 $?\nwait $p2; echo 2 $?"
        let r = try cytocl(["-c", script], shell: true)
        var status: [Int: Int] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: " ").compactMap { Int($0) }
            if f.count == 2 { status[f[0]] = f[1] }
        }
        XCTAssertEqual(status.values.sorted(), [0, 1], "exit statuses \(status)")
        if let loser = status.first(where: { $0.value == 1 })?.key, let winner = status.first(where: { $0.value == 0 })?.key {
            let err = try String(contentsOfFile: "\(run)-\(loser).err", encoding: .utf8)
            XCTAssertEqual(err.split(separator: "\n").filter { $0.hasPrefix("Error: ") }.count, 1, err)
            XCTAssertTrue(err.contains("Error: \(lock): the run folder is in use by another `cytocl train` (host "), err)
            XCTAssertTrue(err.contains(" pid "), err)
            XCTAssertFalse(err.contains("training on"), "refused only after reading the data: \(err)")
            XCTAssertEqual(try safetensorsMetadata(run + "/model.safetensors")["cytocl.provenance.seed"], "\(winner)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: lock), "the lock outlived the run")

        // A lock of a live process (this test's) is refused; one of a process that is gone is taken over.
        func writeLock(pid: Int32) throws {
            let text = "{\"host\":\"\(ProcessInfo.processInfo.hostName)\",\"pid\":\(pid),\"started\":\"2026-01-01T00:00:00Z\"}"
            try Data(text.utf8).write(to: URL(fileURLWithPath: lock))
        }
        try writeLock(pid: getpid())
        let held = try cytocl(Array(train(3).dropFirst()) + ["--overwrite"])
        assertOneLineError(held, naming: lock)
        XCTAssertTrue(held.stderr.contains("pid \(getpid()), started 2026-01-01T00:00:00Z"), held.stderr)
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        try writeLock(pid: gone.processIdentifier)
        let again = try cytocl(Array(train(4).dropFirst()) + ["--overwrite"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try safetensorsMetadata(run + "/model.safetensors")["cytocl.provenance.seed"], "4")
        XCTAssertFalse(FileManager.default.fileExists(atPath: lock))
    }
}
