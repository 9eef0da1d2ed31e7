import Foundation
import XCTest

/// Inputs a careless or hostile user gives: a class named twice, a copied test image,
/// nonsense benchmark options, a reused output folder. Each is refused with one line
/// naming the option, or handled as documented, never turned into a wrong number.
extension CLITests {
    func assertUsageRefusal(
        _ r: Output, _ expected: String, status: Int32? = nil, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertNotEqual(r.status, 0, "expected a refusal containing '\(expected)'", file: file, line: line)
        if let status { XCTAssertEqual(r.status, status, r.stderr, file: file, line: line) }
        XCTAssertTrue(r.stderr.contains(expected), "expected '\(expected)' in: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "a refused command printed results", file: file, line: line)
    }

    func testRepeatedClassNameIsRefusedEverywhere() throws {
        let data = try synth("data", layout: "folders", count: 12, size: 64, seed: 3)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["other", "blast"])
        let run = dir.appendingPathComponent("run").path
        let repeated = "--classes: class 'blast' is listed more than once"
        assertUsageRefusal(
            try cytocl(["evaluate", "--model", model.path, "--data", data, "--classes", "blast,monocyte,blast", "--positive", "blast"]),
            repeated)
        assertUsageRefusal(try cytocl(["train", "--data", data, "--out", run, "--classes", "blast,monocyte,blast"]), repeated)
        assertUsageRefusal(try cytocl(["dataset", "inspect", data, "--classes", "blast, blast"]), repeated)
        assertUsageRefusal(
            try cytocl(["evaluate", "--model", model.path, "--data", data, "--positive", "blast,monocyte,blast"]),
            "--positive: class 'blast' is listed more than once")
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"))
    }

    /// `evaluate` drops byte-identical copies as `train` does, and says so; `--no-dedupe` keeps them.
    func testEvaluateDropsByteIdenticalCopiesLikeTrain() throws {
        let data = try synth("data", layout: "folders", count: 12, size: 64, seed: 3)
        let blast = data + "/blast"
        let first = try FileManager.default.contentsOfDirectory(atPath: blast).sorted().first!
        for copy in ["copy1.png", "copy2.png"] { try FileManager.default.copyItem(atPath: blast + "/" + first, toPath: blast + "/" + copy) }
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8])
        let base = [
            "evaluate", "--model", model.path, "--data", data, "--classes", "blast,lymphocyte", "--near-duplicates", "off", "--json",
        ]
        func images(_ r: Output) throws -> Int? {
            XCTAssertEqual(r.status, 0, r.stderr)
            return (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["images"] as? Int
        }
        let deduped = try cytocl(base)
        XCTAssertEqual(try images(deduped), 4, "2 blasts + 2 lymphocytes; the 2 copies are not scored again")
        XCTAssertTrue(deduped.stderr.contains("2 file(s) dropped"), deduped.stderr)
        XCTAssertEqual(try images(try cytocl(base + ["--no-dedupe"])), 6)
    }

    /// An ALL-IDB folder with a copied or renamed image ("Im001_1 copy.tif", as a file
    /// manager names a copy) gave no label for it, and the file vanished from the data set
    /// without a word (exit 0, and not even listed as a duplicate). Every command says so.
    func testAllIDBFilesNotNamedImNNNAreNamedWhenLeftOut() throws {
        let data = try synth("idb", layout: "all-idb", count: 12, size: 64, seed: 3)
        try FileManager.default.copyItem(atPath: data + "/Im001_1.tif", toPath: data + "/Im001_1 copy.tif")
        try FileManager.default.copyItem(atPath: data + "/Im002_1.tif", toPath: data + "/notes.tif")
        let warning = "2 image file(s) not named ImNNN_0/ImNNN_1 (ALL-IDB) were left out: Im001_1 copy.tif, notes.tif"
        let inspect = try cytocl(["dataset", "inspect", data, "--no-near-duplicates"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("images: 12 in 2 classes"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains(warning), inspect.stdout)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["other", "blast"])
        let evaluate = try cytocl(["evaluate", "--model", model.path, "--data", data])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        XCTAssertTrue(evaluate.stderr.contains(warning), evaluate.stderr)
    }

    /// A class folder whose name is not UTF-8 (Latin-1 "clé" from an old archive) was
    /// listed by FileManager under an altered name that then failed its is-a-folder check:
    /// the class and its images vanished, exit 0, a five-class data set read from six.
    func testClassFolderWithANonUTF8NameIsRead() throws {
        let data = try synth("cls", layout: "folders", count: 18, size: 48, seed: 3)
        let classes = try FileManager.default.contentsOfDirectory(atPath: data).filter { !$0.hasPrefix(".") }.sorted()
        XCTAssertGreaterThanOrEqual(classes.count, 3, "\(classes)")
        let renamed = try cytocl(["-c", "mv \"$1\" \"$2\"$(printf '\\351')", "mv", data + "/" + classes[0], data + "/cl"], shell: true)
        XCTAssertEqual(renamed.status, 0, renamed.stderr)
        let inspect = try cytocl(["dataset", "inspect", data, "--no-near-duplicates"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("images: 18 in \(classes.count) classes"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("cl\\xE9"), "the class is listed with its byte visible:\n\(inspect.stdout)")
    }

    func testBenchRefusesBadOptionsBeforeMeasuring() throws {
        let cases: [([String], String)] = [
            (["--sizes", "190,abc"], "--sizes: 'abc' is not an integer from 190"),
            (["--sizes", "abc"], "--sizes: 'abc'"),
            (["--sizes", "190.5"], "--sizes: '190.5'"),
            (["--sizes", "1e3"], "--sizes: '1e3'"),
            (["--sizes", ""], "--sizes: an empty entry"),
            (["--sizes", "0"], "--sizes: '0' is not an integer from 190 (the network's smallest input)"),
            (["--sizes", "65"], "--sizes: '65' is not an integer from 190"),
            (["--batches", "2.5"], "--batches: '2.5' is not a positive integer"),
            (["--batches", "0"], "--batches: '0'"),
            (["--seconds", "0"], "--seconds"),
            (["--seconds", "-1"], "--seconds"),
            (["--seconds", "nan"], "--seconds"),
            (["--seconds", "inf"], "--seconds"),
            (["--seconds", "3601"], "at most 3600"),
            (["--threads", "0"], "--threads must be between 1"),
        ]
        for (args, expected) in cases {
            let r = try cytocl(["bench", "--backends", "cpu", "--no-torch", "--no-keras"] + args)
            assertUsageRefusal(r, expected, status: 64)
        }
    }

    /// Empty items in a comma list were skipped: `train --conv 4,,8` trained the network
    /// 4,8 and `bench --backends ""` measured nothing, printed only the CSV header and
    /// exited 0. Both are usage errors now, refused before any data is read.
    func testEmptyItemsInNetworkAndBackendListsAreRefused() throws {
        let missing = dir.appendingPathComponent("no-data").path
        let out = dir.appendingPathComponent("run").path
        for conv in ["4,,8", "4,8,", ",4"] {
            let r = try cytocl(["train", "--data", missing, "--out", out, "--input", "32x32", "--conv", conv])
            assertUsageRefusal(r, "--conv \(conv): should be positive integers separated by commas", status: 64)
        }
        let dense = try cytocl(["sweep", "--protocol", "custom", "--data", missing, "--out", out, "--dense", "8,"])
        assertUsageRefusal(dense, "--dense 8,: should be positive integers separated by commas, like 16", status: 64)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a refused command made its output folder")
        for backends in ["", ",", "cpu,,cpu"] {
            let r = try cytocl(["bench", "--backends", backends, "--no-torch", "--no-keras", "--seconds", "0.01"])
            assertUsageRefusal(r, "--backends: unknown backend ''", status: 64)
        }
    }

    /// `export --out` naming the model it reads, with --overwrite, replaced the trained
    /// model with its ONNX file.
    func testExportRefusesToReplaceItsOwnModel() throws {
        let data = try synth("cells", count: 8, size: 32)
        let run = dir.appendingPathComponent("run").path
        let t = try cytocl([
            "train", "--data", data, "--out", run, "--input", "32x32", "--conv", "4", "--dense", "4", "--epochs", "1",
            "--near-duplicates", "off", "--backend", "cpu",
        ])
        XCTAssertEqual(t.status, 0, t.stderr)
        let path = run + "/model.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try cytocl(["export", "--model", path, "--out", run + "/./model.safetensors", "--overwrite"])
        assertUsageRefusal(r, "is the --model file; the export would replace the model it reads", status: 64)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "the model was replaced")
    }

    func testSynthAndDemoRefuseANonEmptyFolderAndCheckOptionsFirst() throws {
        let out = dir.appendingPathComponent("cells")
        XCTAssertEqual(try cytocl(["synth", "--out", out.path, "--count", "4", "--size", "32", "--seed", "1"]).status, 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        let bytes = try names.map { try Data(contentsOf: out.appendingPathComponent($0)) }
        assertUsageRefusal(
            try cytocl(["synth", "--out", out.path, "--count", "6", "--size", "32", "--seed", "2"]), "--out \(out.path) is not empty")
        assertUsageRefusal(try cytocl(["demo", "--dir", out.path, "--epochs", "1"]), "--dir \(out.path) is not empty")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(), names, "the folder changed")
        XCTAssertEqual(try names.map { try Data(contentsOf: out.appendingPathComponent($0)) }, bytes, "an image was overwritten")

        let fresh = dir.appendingPathComponent("fresh").path
        assertUsageRefusal(
            try cytocl(["synth", "--out", fresh, "--count", "4", "--near-duplicates", "50"]),
            "--near-duplicates 50 is more than the 4 images")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: fresh)) ?? [], [], "synth wrote before refusing")
    }

    func testTrainRefusesToReplaceAModelWithoutOverwrite() throws {
        let data = try synth("data", count: 8, size: 190, seed: 2)
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let model = run.appendingPathComponent("model.safetensors")
        let earlier = Data("an earlier run's model".utf8)
        try earlier.write(to: model)
        let args = ["train", "--data", data, "--out", run.path, "--input", "190x190", "--epochs", "1", "--val-fraction", "0.25"]
        let refused = try cytocl(args)
        assertUsageRefusal(refused, "model.safetensors: already exists")
        XCTAssertTrue(refused.stderr.contains("--overwrite"), refused.stderr)
        XCTAssertEqual(try Data(contentsOf: model), earlier, "train replaced the model without --overwrite")

        let replaced = try cytocl(args + ["--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssertNotEqual(try Data(contentsOf: model), earlier)
        XCTAssertNotNil(try safetensorsMetadata(model.path)["cytocl.provenance.optimizer"])
    }
}
