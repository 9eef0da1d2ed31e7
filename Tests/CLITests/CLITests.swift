import CytoTestSupport
import Foundation
import XCTest

/// Runs the built `cytocl` binary the way a user does and checks what it prints and writes.
final class CLITests: XCTestCase, CLITestFolder {
    static var binary: URL { TestProcess.cytoclBinary(besideBundleOf: CLITests.self) }

    typealias Output = ProcessOutput

    @discardableResult
    func cytocl(_ args: [String], env: [String: String] = [:], shell: Bool = false) throws -> Output {
        try Self.run(args, env: env, shell: shell)
    }

    /// Runs the binary (or, with `shell`, bash) on the CPU backend; shared by every CLI test class.
    static func run(_ args: [String], env: [String: String] = [:], shell: Bool = false) throws -> Output {
        try TestProcess.run(shell ? URL(fileURLWithPath: "/bin/bash") : binary, args, env: env)
    }

    var dir: URL!
    override func setUp() { dir = tempDir("cli") }

    /// Enum options list their values in --help and reject others with one line
    /// naming the option; negative numbers and pass-through values that start with
    /// -- are read as values, not as options.
    func testArgumentConventions() throws {
        let help = try cytocl(["train", "--help"], env: ["COLUMNS": "400"])
        XCTAssertTrue(help.stdout.contains("values: rmsprop, adam, sgd"), help.stdout)
        XCTAssertTrue(help.stdout.contains("values: resize, pad, crop"), help.stdout)
        let badFit = try cytocl(["predict", "--model", "m.safetensors", "--fit", "stretch", "x.png"])
        XCTAssertNotEqual(badFit.status, 0)
        XCTAssertTrue(badFit.stderr.contains("--fit") && badFit.stderr.contains("stretch"), badFit.stderr)
        let negative = try cytocl(["train", "--data", dir.path, "--out", dir.appendingPathComponent("r").path, "--lr", "-0.1"])
        XCTAssertNotEqual(negative.status, 0)
        XCTAssertTrue(negative.stderr.contains("--lr must be a positive number"), negative.stderr)
        let sweep = dir.appendingPathComponent("s").path
        let data = try synth("d", layout: "all-idb", count: 20, size: 64)
        let slurm = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", sweep, "--input", "64x64",
            "--conv", "4,4", "--dense", "8", "--sizes", "4", "--folds", "4", "--test-per-fold", "4",
            "--slurm", "--dry-run", "--slurm-args", "--partition=gpu --gres=gpu:1",
        ])
        XCTAssertEqual(slurm.status, 0, slurm.stderr)
        let script = try String(contentsOfFile: sweep + "/slurm/sweep.sbatch", encoding: .utf8)
        XCTAssertTrue(script.contains("--partition=gpu") && script.contains("--gres=gpu:1"), script)
    }

    /// The `__metadata__` of a safetensors file (8-byte little-endian header length, JSON header).
    func safetensorsMetadata(_ path: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        return header["__metadata__"] as? [String: String] ?? [:]
    }

    /// Refusals decided by the data or an existing sweep directory are run-time failures:
    /// one `Error:` line and exit 1, never the usage block of a bad argument (exit 64).
    func testSweepRefusalsAreOneLineRunFailures() throws {
        let data = try synth("few", layout: "all-idb", count: 12, size: 64)
        let out = dir.appendingPathComponent("sweep").path
        let small = try cytocl(["sweep", "--protocol", "all-idb-binary", "--data", data, "--out", out, "--input", "64x64",
                                "--conv", "4,4", "--dense", "8"])
        XCTAssertEqual(small.status, 1, small.stderr)
        XCTAssertTrue(small.stderr.contains("Error: ") && small.stderr.contains("too small"), small.stderr)
        XCTAssertFalse(small.stderr.contains("USAGE"), small.stderr)
        let common = ["sweep", "--protocol", "custom", "--data", data, "--out", out, "--input", "64x64", "--conv", "4,4",
                      "--dense", "8", "--sizes", "4", "--folds", "3", "--epochs", "1", "--patience", "1"]
        XCTAssertEqual(try cytocl(common + ["--seed", "1"]).status, 0)
        let mixed = try cytocl(common + ["--seed", "2"])
        XCTAssertEqual(mixed.status, 1, mixed.stderr)
        XCTAssertTrue(mixed.stderr.contains("refusing to mix sweeps"), mixed.stderr)
        XCTAssertFalse(mixed.stderr.contains("USAGE"), mixed.stderr)
    }

    /// A refusal decided by the class names alone comes before the images are decoded
    /// (with 18,000 TIFFs that took minutes, and left a cache behind).
    func testTwoClassMetricOnSixClassesIsRefusedBeforeDecoding() throws {
        let data = try synth("six", layout: "folders", count: 18, size: 32)
        let r = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", dir.appendingPathComponent("s").path, "--metric", "roc_auc",
            "--input", "32x32", "--conv", "4", "--dense", "4", "--sizes", "6", "--folds", "3",
        ])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("Error: protocol custom reports ROC-AUC and needs exactly two classes, the data has 6\n"), r.stderr)
        XCTAssertFalse(r.stderr.contains("decoded"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data + "/.cytocl-cache"), "nothing was cached")
    }

    func testSummaryParameterCounts() throws {
        XCTAssertTrue(try cytocl(["summary"]).stdout.contains("Total params: 7,210"))
        XCTAssertTrue(try cytocl(["summary", "--classes", "6"]).stdout.contains("Total params: 7,342"))
        XCTAssertTrue(try cytocl(["summary", "--input", "400x400", "--classes", "2"]).stdout.contains("Total params: 13,354"))
        let bad = try cytocl(["summary", "--input", "50x50"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("too small"), bad.stderr)
    }

    /// synth -> train -> predict -> evaluate on a tiny generated set, through the CLI.
    func testTrainPredictEvaluateRoundTrip() throws {
        let data = dir.appendingPathComponent("data").path
        let synth = try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "24", "--size", "200", "--seed", "3"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let run = dir.appendingPathComponent("run").path
        let train = try cytocl([
            "train", "--data", data, "--out", run, "--input", "200x200", "--epochs", "3",
            "--patience", "5", "--val-fraction", "0.25", "--classes", "blast,lymphocyte",
        ])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stderr.contains("backend: cpu"), train.stderr)
        let history = try String(contentsOfFile: run + "/history.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(history.first, "epoch,loss,accuracy,val_loss,val_accuracy,seconds")
        XCTAssertEqual(history.count, 4)

        let model = run + "/model.safetensors"
        XCTAssertEqual(
            try safetensorsMetadata(model)["cytocl.provenance.optimizer"],
            "rmsprop lr=0.001 rho=0.9 epsilon=1e-08 form=keras2", "train defaults to the paper's Keras 2.0.8 RMSprop")
        let images = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted().prefix(2).map { data + "/blast/" + $0 }
        let predict = try cytocl(["predict", "--model", model] + images)
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let lines = predict.stdout.split(separator: "\n")
        XCTAssertEqual(lines.first, "path,predicted,prob_blast,prob_lymphocyte")
        XCTAssertEqual(lines.count, 3)
        for line in lines.dropFirst() {
            let f = line.split(separator: ",")
            XCTAssertEqual(f.count, 4)
            let p = f[2...].compactMap { Double($0) }
            XCTAssertEqual(p.reduce(0, +), 1, accuracy: 1e-5)
        }
        XCTAssertFalse(predict.stdout.contains("backend"), "stdout must hold only the CSV")

        // The data holds the model's training images: refused unless --allow-overlap.
        let onTraining = try cytocl(["evaluate", "--model", model, "--data", data, "--classes", "blast,lymphocyte", "--json"])
        XCTAssertEqual(onTraining.status, 1, onTraining.stderr)
        XCTAssertTrue(onTraining.stderr.contains("test images are images \(model) was trained on"), onTraining.stderr)
        let evaluate = try cytocl([
            "evaluate", "--model", model, "--data", data, "--classes", "blast,lymphocyte", "--json", "--allow-overlap",
        ])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as! [String: Any]
        XCTAssertGreaterThan(json["images"] as? Int ?? 0, 0)
        XCTAssertNotNil(json["roc_auc"])
        let confusion = json["confusion"] as! [[Int]]
        XCTAssertEqual(confusion.flatMap { $0 }.reduce(0, +), json["images"] as? Int)
    }

    /// explain and embed on the model trained in the round trip's way.
    func testExplainAndEmbed() throws {
        let data = try synth("data", layout: "all-idb", count: 12, size: 200, seed: 4)
        let run = dir.appendingPathComponent("run").path
        let train = try cytocl(["train", "--data", data, "--out", run, "--input", "200x200", "--epochs", "2", "--val-fraction", "0.25"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let model = run + "/model.safetensors"
        let image = data + "/Im001_1.tif"
        let maps = dir.appendingPathComponent("maps").path
        let explain = try cytocl(["explain", "--model", model, "--method", "saliency,lrp-z", "--out", maps, image])
        XCTAssertEqual(explain.status, 0, explain.stderr)
        for f in ["Im001_1.saliency.npy", "Im001_1.saliency.png", "Im001_1.lrp-z.npy", "Im001_1.lrp-z.overlay.png", "Im001_1.panel.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: maps + "/" + f), "missing \(f); stderr: \(explain.stderr)")
        }
        // float32 [200, 200] after a NumPy v1.0 header.
        let npy = try Data(contentsOf: URL(fileURLWithPath: maps + "/Im001_1.saliency.npy"))
        XCTAssertEqual(Array(npy.prefix(6)), [0x93] + Array("NUMPY".utf8))
        XCTAssertTrue(String(decoding: npy.prefix(128), as: UTF8.self).contains("(200, 200)"))
        // The same --out again: the maps made above are not replaced unless asked.
        let again = try cytocl(["explain", "--model", model, "--method", "saliency", "--out", maps, image])
        XCTAssertEqual(again.status, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("Im001_1.saliency.npy: already exists"), again.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: maps + "/Im001_1.saliency.npy")), npy)
        let replaced = try cytocl(["explain", "--model", model, "--method", "saliency", "--out", maps, "--overwrite", image])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        let embed = try cytocl([
            "embed", "--model", model, "--data", data, "--out", dir.appendingPathComponent("tsne").path,
            "--perplexity", "3",
        ])
        XCTAssertEqual(embed.status, 0, embed.stderr)
        let csv = try String(contentsOfFile: dir.appendingPathComponent("tsne/embedding.csv").path, encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").first, "path,class,x,y")
        XCTAssertEqual(csv.split(separator: "\n").count, 13)
    }

    /// A tiny sweep through the CLI, resumed, then reported.
    func testSweepResumeAndReport() throws {
        let data = try synth("cells", layout: "all-idb", count: 40, size: 64, seed: 9)
        let out = dir.appendingPathComponent("sweep").path
        let args = [
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "4,8", "--folds", "3",
            "--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "2", "--patience", "2", "--save-models",
        ]
        let first = try cytocl(args)
        XCTAssertEqual(first.status, 0, first.stderr)
        let cells = try FileManager.default.contentsOfDirectory(atPath: out + "/cells").filter { $0.hasSuffix(".json") }
        XCTAssertEqual(cells.count, 6)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/cells/" + cells.sorted()[0]))
        let record = try JSONSerialization.jsonObject(with: before) as! [String: Any]
        XCTAssertEqual(record["optimizer"] as? String, "rmsprop lr=0.001 rho=0.9 epsilon=1e-08 form=keras2")
        let savedModel = out + "/cells/" + cells.sorted()[0].replacingOccurrences(of: ".json", with: ".safetensors")
        XCTAssertEqual(try safetensorsMetadata(savedModel)["cytocl.provenance.optimizer"], record["optimizer"] as? String)
        let otherForm = try cytocl(args + ["--optimizer-form", "keras3"])
        XCTAssertNotEqual(otherForm.status, 0, "resuming with the other optimizer form must be refused")
        XCTAssertTrue(otherForm.stderr.contains("form=keras3"), otherForm.stderr)
        let again = try cytocl(args)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: out + "/cells/" + cells.sorted()[0])), before,
            "a finished cell must not be recomputed")
        let report = try cytocl(["report", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        let summary = try String(contentsOfFile: out + "/report/summary.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(summary.first, "size,folds,metric,mean,sd")
        XCTAssertEqual(summary.count, 1 + 2 * 6, "one row per size and metric (ECE before and after temperature scaling included)")
        let html = try String(contentsOfFile: out + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<svg"))
        // Saved models add every figure of the paper: Fig. 4b (saliency and LRP rows, one
        // test image per class) and Fig. 5 (t-SNE per size); Table S2 and the fidelity section.
        XCTAssertTrue(html.contains("Fig. 4b: saliency and LRP maps"), "no saliency/LRP panel")
        XCTAssertEqual(html.components(separatedBy: "data:image/png;base64,").count - 1, 2, "one panel per class")
        XCTAssertTrue(html.contains("class explained: other") && html.contains("class explained: blast"))
        XCTAssertTrue(html.contains("Fig. 5: t-SNE of the last hidden layer"), "no t-SNE panel")
        XCTAssertTrue(html.contains("left out of training"))
        XCTAssertTrue(html.contains("Table S2"))
        XCTAssertTrue(html.contains("Fidelity to the paper"))
        let mixed = try cytocl(["sweep", "--protocol", "all-idb-binary", "--data", data, "--out", out])
        XCTAssertNotEqual(mixed.status, 0)
        XCTAssertTrue(mixed.stderr.contains("protocol"), mixed.stderr)
    }

    /// aml-binary (blasts = MYO + MOB) and multiclass (F1) end to end at a reduced scale.
    func testAMLBinaryAndMulticlassProtocolsRunEndToEnd() throws {
        let small = ["--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "2", "--patience", "2", "--folds", "3"]
        let aml = try synth("aml", layout: "aml", count: 200, size: 64, seed: 2)
        let amlOut = dir.appendingPathComponent("aml-sweep").path
        let a = try cytocl(
            [
                "sweep", "--protocol", "aml-binary", "--data", aml, "--out", amlOut, "--sizes", "4",
                "--test-per-fold", "10", "--val-per-fold", "4",
            ] + small)
        XCTAssertEqual(a.status, 0, a.stderr)
        let amlCells = try FileManager.default.contentsOfDirectory(atPath: amlOut + "/cells").filter { $0.hasSuffix(".json") }
        XCTAssertEqual(amlCells.count, 3)
        let record =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: amlOut + "/cells/" + amlCells.sorted()[0])))
            as! [String: Any]
        XCTAssertEqual(record["metric"] as? String, "roc_auc")

        let multi = try synth("multi", layout: "folders", count: 60, size: 64, seed: 3)
        let multiOut = dir.appendingPathComponent("multi-sweep").path
        let m = try cytocl(["sweep", "--protocol", "multiclass", "--data", multi, "--out", multiOut, "--sizes", "4"] + small)
        XCTAssertEqual(m.status, 0, m.stderr)
        XCTAssertEqual(try cytocl(["report", multiOut]).status, 0)
        let summary = try String(contentsOfFile: multiOut + "/report/summary.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(summary.count, 1 + 5, "f1_weighted, accuracy, f1_macro, ece, ece_calibrated (no ROC-AUC with several classes)")
        XCTAssertTrue(summary[1].hasPrefix("4,3,f1_weighted,"), String(summary[1]))
    }

    /// A disk that fills while a record is written (simulated with a file-size limit):
    /// the run fails, the records written before stay byte-for-byte intact, no partial
    /// record appears, and the next run completes the sweep.
    func testFullDiskWhileWritingARecordKeepsEarlierRecords() throws {
        let data = try synth("cells", layout: "all-idb", count: 40, size: 64, seed: 9)
        let out = dir.appendingPathComponent("sweep").path
        let args = [
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "4", "--folds", "3",
            "--input", "64x64", "--conv", "4,8,8", "--dense", "16", "--epochs", "2", "--patience", "2",
        ]
        XCTAssertEqual(try cytocl(args).status, 0)
        let cellsDir = out + "/cells"
        let names = try FileManager.default.contentsOfDirectory(atPath: cellsDir).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(names.count, 3)
        var before: [String: Data] = [:]
        for n in names { before[n] = try Data(contentsOf: URL(fileURLWithPath: cellsDir + "/" + n)) }
        XCTAssertGreaterThan(before[names[0]]!.count, 1024, "a record must be larger than the simulated free space")
        try FileManager.default.removeItem(atPath: cellsDir + "/" + names[0])

        // Files may not grow past 1 KiB: the record's write fails part-way.
        let full = try cytocl(["-c", "ulimit -f 1; exec \"$0\" \"$@\"", Self.binary.path] + args, shell: true)
        XCTAssertNotEqual(full.status, 0, "the run must fail when the record cannot be written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cellsDir + "/" + names[0]), "no partial record may appear")
        for n in names.dropFirst() {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: cellsDir + "/" + n)), before[n], "\(n) changed")
        }
        let again = try cytocl(args)
        XCTAssertEqual(again.status, 0, again.stderr)
        let record = try Data(contentsOf: URL(fileURLWithPath: cellsDir + "/" + names[0]))
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: record))
    }

    func testTwoFoldsWithoutValidationBlockIsRefused() throws {
        let data = try synth("cells", layout: "all-idb", count: 20, size: 64, seed: 9)
        let r = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", dir.appendingPathComponent("s").path,
            "--folds", "2", "--sizes", "4", "--input", "64x64", "--conv", "4,8,8", "--epochs", "1",
        ])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("at least 3 folds"), r.stderr)
    }

    func testMissingDataFolderFailsWithItsName() throws {
        let r = try cytocl(["train", "--data", "/nonexistent/cells", "--out", dir.path, "--epochs", "1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent/cells"), r.stderr)
    }

    func testCorruptModelFileIsNamed() throws {
        let bad = dir.appendingPathComponent("broken.safetensors")
        try Data("not a model".utf8).write(to: bad)
        let r = try cytocl(["predict", "--model", bad.path, "x.png"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(bad.path), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }
}
