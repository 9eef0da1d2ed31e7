import CytoData
import Foundation
import XCTest

/// Where users' files enter (issue 20): validation or test images that are training
/// images, and a run folder inside the data folder.
extension CLITests {
    /// A two-class folders set (blast, lymphocyte; 2 images each at 200x200).
    func twoClassData(_ name: String, seed: Int = 3) throws -> String {
        let data = dir.appendingPathComponent(name).path
        let synth = try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "12", "--size", "200", "--seed", "\(seed)"])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        for c in try FileManager.default.contentsOfDirectory(atPath: data) where !["blast", "lymphocyte"].contains(c) {
            try FileManager.default.removeItem(atPath: data + "/" + c)
        }
        return data
    }

    /// `train --val` with byte copies of training images is refused naming the files;
    /// `--allow-overlap` goes on with a warning. The model records its training images,
    /// so `evaluate` on them is refused the same way, and fresh images are not.
    func testValidationAndTestImagesThatAreTrainingImagesAreRefused() throws {
        let data = try twoClassData("data")
        let val = dir.appendingPathComponent("val").path
        try FileManager.default.copyItem(atPath: data, toPath: val)
        let run = dir.appendingPathComponent("run").path
        let base = ["train", "--data", data, "--val", val, "--out", run, "--input", "200x200", "--epochs", "1", "--near-duplicates", "off"]
        let refused = try cytocl(base)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--val \(val): 4 of 4 validation images are also training images: "), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("\(val)/blast/"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("is a byte copy of \(data)/blast/"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("give --allow-overlap to go on"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/model.safetensors"))

        let allowed = try cytocl(base + ["--allow-overlap"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        XCTAssertTrue(allowed.stderr.contains("warning: --val \(val): 4 of 4 validation images are also training images"), allowed.stderr)
        let model = run + "/model.safetensors"
        let digests = try XCTUnwrap(try safetensorsMetadata(model)["cytocl.provenance.training_pixel_digests"])
        XCTAssertEqual(digests.split(separator: ",").count, 4, digests)

        let evaluate = ["evaluate", "--model", model, "--near-duplicates", "off"]
        let onTraining = try cytocl(evaluate + ["--data", val])
        XCTAssertEqual(onTraining.status, 1, onTraining.stderr)
        XCTAssertTrue(onTraining.stderr.contains("4 of 4 test images are images \(model) was trained on"), onTraining.stderr)
        XCTAssertEqual(onTraining.stdout, "", "no metrics printed for a refused test set")
        XCTAssertEqual(try cytocl(evaluate + ["--data", val, "--allow-overlap"]).status, 0)
        let fresh = try twoClassData("fresh", seed: 11)
        let onFresh = try cytocl(evaluate + ["--data", fresh])
        XCTAssertEqual(onFresh.status, 0, onFresh.stderr)
        XCTAssertFalse(onFresh.stderr.contains("trained on"), onFresh.stderr)
    }

    /// A re-encoded copy (other bytes, same pixels) in `--val` is found too.
    func testValidationImageReencodedFromATrainingImageIsRefused() throws {
        let data = try twoClassData("data")
        let val = dir.appendingPathComponent("val").path
        let fresh = try twoClassData("fresh", seed: 11)
        try FileManager.default.copyItem(atPath: fresh, toPath: val)
        let blast = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0]
        let valBlast = try FileManager.default.contentsOfDirectory(atPath: val + "/blast").sorted()[0]
        // The same pixels in another file format: other bytes, same picture.
        try FileManager.default.removeItem(atPath: val + "/blast/" + valBlast)
        let reencoded = val + "/blast/reencoded.tif"
        try ImageCodec.writeTIFF(try ImageCodec.decode(path: data + "/blast/" + blast), to: URL(fileURLWithPath: reencoded))
        let r = try cytocl([
            "train", "--data", data, "--val", val, "--out", dir.appendingPathComponent("run").path, "--input", "200x200",
            "--epochs", "1",
        ])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(
            r.stderr.contains(
                "1 of 4 validation images are also training images: \(reencoded) is the same pixels as \(data)/blast/\(blast)"),
            r.stderr)
    }

    /// `train --data D --out D/run`: the run folder, created before the data is read, is
    /// not a class; nor is an earlier run's folder beside it.
    func testRunFolderInsideTheDataFolderIsNotData() throws {
        let data = try twoClassData("data")
        for run in ["run", "run2"] {
            let r = try cytocl([
                "train", "--data", data, "--out", data + "/" + run, "--input", "200x200", "--epochs", "1", "--near-duplicates", "off",
            ])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stderr.contains("folders layout, 4 images, classes blast 2, lymphocyte 2"), r.stderr)
        }
        // A class folder as the output folder would drop that class without a word.
        let intoClass = try cytocl(["train", "--data", data, "--out", data + "/blast", "--input", "200x200", "--epochs", "1"])
        XCTAssertEqual(intoClass.status, 1, intoClass.stderr)
        XCTAssertTrue(
            intoClass.stderr.contains("\(data)/blast: the command's output folder is inside the data and holds images"), intoClass.stderr)
        let inspect = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertFalse(inspect.stdout.contains("run"), inspect.stdout)
    }

    /// A network the input cannot carry is refused before the run folder is made (it
    /// was left behind, empty, by the output preflight).
    func testRefusedInputLeavesNoRunFolder() throws {
        let out = dir.appendingPathComponent("never").path
        let r = try cytocl(["train", "--data", dir.appendingPathComponent("no-data").path, "--out", out, "--input", "64x64"])
        // An argument the network cannot carry: usage exit status, naming the option, as sweep and plan.
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("--input 64x64: invalid model: input 64x64 is too small"), r.stderr)
        XCTAssertTrue(r.stderr.contains("See 'cytocl train --help'"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a refused run leaves no folder")
    }

    /// `train --conv/--dense` trains the smaller networks that sweep and plan could
    /// already train (a 64x64 crop set needs fewer blocks than the paper's six); the
    /// model file carries them, and fine-tuning refuses them (they are the model's).
    func testTrainBuildsTheNetworkOfConvAndDense() throws {
        let data = try twoClassData("data")
        let run = dir.appendingPathComponent("small").path
        let r = try cytocl([
            "train", "--data", data, "--out", run, "--input", "64x64", "--conv", "4,8", "--dense", "8", "--epochs", "1",
            "--near-duplicates", "off",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try cytocl(["summary", "--model", run + "/model.safetensors"])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        // 3x3x3x4+4, 3x3x4x8+8, (14x14x8)x8+8, 8x2+2: the network of the options, not the paper's.
        XCTAssertTrue(summary.stdout.contains("Total params: 12,978"), summary.stdout)
        let refused = try cytocl(["train", "--data", data, "--out", run + "2", "--init-from", run + "/model.safetensors", "--conv", "4"])
        XCTAssertEqual(refused.status, 64, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--conv and --dense are the --init-from model's"), refused.stderr)
    }
}

extension CLITests {
    /// An output path that is not UTF-8 is written under the bytes given (it was written
    /// as `nu\xF4\x8F\xBF\xBF.onnx`, the UTF-8 of the scalar that holds the stray byte).
    func testNonUTF8OutputPathsAreWrittenAsGiven() throws {
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8])
        let script = """
            set -e
            "$0" export --model "$2" --format onnx --out "$1/"$'nu\\xff.onnx'
            test -f "$1/"$'nu\\xff.onnx'
            "$0" synth --out "$1/"$'d\\xff/s' --layout folders --count 12 --size 64 --seed 2
            test -d "$1/"$'d\\xff/s/blast'
            ls "$1" | od -An -c | tr -s ' '
            """
        let r = try cytocl(["-c", script, Self.binary.path, dir.path, model.path], shell: true)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(names.filter { $0.hasPrefix("nu") || $0.hasPrefix("d") }.count, 2, "\(names)")
        XCTAssertFalse(r.stdout.contains("364"), "no UTF-8 of U+10FFFF-area scalars (\\364\\217) in names: \(r.stdout)")
    }
}

extension CLITests {
    /// Messages that misled (issue 20, item 18): each now says what is wrong.
    func testMessagesSayWhatIsWrong() throws {
        let run = dir.appendingPathComponent("r").path
        let data = try synth("d", layout: "folders", count: 12, size: 64)

        let empty = try cytocl([
            "import", "--from", "keras", dir.appendingPathComponent("x.h5").path, "--out", run + "/m.safetensors", "--classes", "a,,b",
        ])
        assertUsageRefusal(empty, "--classes 'a,,b': name 2 of 3 is empty", status: 64)
        assertUsageRefusal(
            try cytocl(["train", "--data", data, "--out", run, "--classes", "blast,", "--input", "200x200"]),
            "--classes 'blast,': name 2 of 2 is empty", status: 64)

        assertUsageRefusal(try cytocl(["train", "--data", data, "--out", run, "--lr", "1e300"]), "--lr is too large", status: 64)

        let threshold = try cytocl(["dataset", "inspect", data, "--near-duplicate-threshold", "-1"])
        assertUsageRefusal(threshold, "--near-duplicate-threshold must be in (0, 1], got -1.0", status: 64)
        XCTAssertFalse(threshold.stderr.contains("Missing value"), threshold.stderr)

        let help = try cytocl(["synth", "--help"], env: ["COLUMNS": "400"])
        XCTAssertTrue(help.stdout.contains("all-idb, aml, folders"), help.stdout)
        XCTAssertFalse(help.stdout.contains("csv"), help.stdout)
        assertUsageRefusal(try cytocl(["synth", "--out", dir.appendingPathComponent("s").path, "--layout", "csv"]), "csv", status: 64)

        // A 1x1 image fitted to 64x64 is named in a warning, not only counted as fitted.
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8])
        let dot = dir.appendingPathComponent("dot.png")
        try ImageCodec.writePNG(RGBImage(width: 1, height: 1, fill: (200, 40, 90)), to: dot)
        let p = try cytocl(["predict", "--model", model.path, dot.path])
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stderr.contains("warning: \(dot.path): a 1x1 image enlarged 64 times to 64x64"), p.stderr)
        let big = dir.appendingPathComponent("big.png")
        try ImageCodec.writePNG(RGBImage(width: 20, height: 20, fill: (200, 40, 90)), to: big)
        XCTAssertFalse(try cytocl(["predict", "--model", model.path, big.path]).stderr.contains("enlarged"), "3.2x is not warned about")

        // One damaged file among many: predict stops naming it and offers to skip it; with
        // --skip-bad-images it predicts the rest and names the one left out.
        let damaged = dir.appendingPathComponent("damaged.png")
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0]).write(to: damaged)
        let stopped = try cytocl(["predict", "--model", model.path, big.path, damaged.path])
        XCTAssertNotEqual(stopped.status, 0)
        XCTAssertTrue(stopped.stderr.contains(damaged.path) && stopped.stderr.contains("--skip-bad-images"), stopped.stderr)
        XCTAssertEqual(stopped.stdout, "")
        let skipped = try cytocl(["predict", "--model", model.path, big.path, damaged.path, dot.path, "--skip-bad-images"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        let rows = skipped.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        XCTAssertEqual(rows, [big.path, dot.path], skipped.stdout)
        XCTAssertTrue(skipped.stderr.contains("left out (--skip-bad-images): \(damaged.path)"), skipped.stderr)
        let none = try cytocl(["predict", "--model", model.path, damaged.path, "--skip-bad-images"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("no image given could be read (1 left out)"), none.stderr)
        XCTAssertEqual(none.stdout, "")
    }
}
