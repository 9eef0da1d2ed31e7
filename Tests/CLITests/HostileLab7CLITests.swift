import CytoTestSupport
import Foundation
import XCTest

/// A lab's spellings: class folders named in another case than the model's classes.
extension CLITests {
    /// Fine-tuning a model of the classes `blast`, `other` on folders `blast/`, `Other/`
    /// (`Other` sorts first) matched the names exactly, so only a warning came and the
    /// model's `blast` output was trained as `Other`: with a few epochs at a low rate the
    /// saved model called every other cell `blast`. Names are now matched ignoring case,
    /// the model's order kept and the data's spelling used.
    func testFineTuningKeepsTheModelsClassOrderWhenTheCaseDiffers() throws {
        let base = dir.appendingPathComponent("base.safetensors")
        // A model that says other for every image: its other output's bias is 20.
        try writeModel(base, height: 32, width: 32, filters: [4], classes: ["blast", "other"], poison: ("dense2.bias", 20))
        let folders = try blastAndOtherFolders(blast: "blast", other: "Other")
        let run = dir.appendingPathComponent("tuned")
        let tune = try cytocl([
            "train", "--data", folders.path, "--out", run.path, "--init-from", base.path, "--epochs", "1", "--lr", "1e-9",
            "--no-augment",
        ])
        XCTAssertEqual(tune.status, 0, tune.stderr)
        XCTAssertTrue(tune.stderr.contains("the --init-from model's class order is kept: blast, Other (the data lists Other, blast)"), tune.stderr)
        XCTAssertFalse(tune.stderr.contains("warning"), tune.stderr)
        let other = try FileManager.default.contentsOfDirectory(atPath: folders.appendingPathComponent("Other").path).sorted()[0]
        // Only the spelling differs, in the model's order: a note, no warning.
        let same = dir.appendingPathComponent("same")
        try FileManager.default.createDirectory(at: same, withIntermediateDirectories: true)
        for c in ["blast", "Other"] {
            try FileManager.default.copyItem(at: folders.appendingPathComponent(c), to: same.appendingPathComponent(c == "blast" ? "Blast" : "other"))
        }
        let respelt = try cytocl([
            "train", "--data", same.path, "--out", dir.appendingPathComponent("respelt").path, "--init-from", base.path, "--epochs", "1",
            "--lr", "1e-9", "--no-augment",
        ])
        XCTAssertEqual(respelt.status, 0, respelt.stderr)
        XCTAssertTrue(
            respelt.stderr.contains("the --init-from model's classes are spelt blast, other; the data's spelling is kept: Blast, other"),
            respelt.stderr)
        XCTAssertFalse(respelt.stderr.contains("warning"), respelt.stderr)
        let predict = try cytocl(["predict", "--model", run.appendingPathComponent("model.safetensors").path, folders.path + "/Other/" + other])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let lines = predict.stdout.split(separator: "\n")
        XCTAssertEqual(lines.first, "path,predicted,prob_blast,prob_Other", predict.stdout)
        XCTAssertEqual(lines.last?.split(separator: ",")[1], "Other", predict.stdout)
    }

    /// Fine-tuning a six-class model on two of its classes: refused with both class lists
    /// in one line (it was "--init-from model has 6 classes but the data has 2" followed
    /// by the usage, though the command line was right).
    func testFineTuningOnAnotherNumberOfClassesIsRefusedInOneLine() throws {
        let base = dir.appendingPathComponent("six.safetensors")
        let six = ["basophil", "blast", "eosinophil", "lymphocyte", "monocyte", "neutrophil"]
        try writeModel(base, height: 32, width: 32, filters: [4], classes: six)
        let data = dir.appendingPathComponent("cells").path
        XCTAssertEqual(try cytocl(["synth", "--out", data, "--layout", "all-idb", "--count", "8", "--size", "32"]).status, 0)
        let r = try cytocl(["train", "--data", data, "--out", dir.appendingPathComponent("run").path, "--init-from", base.path, "--epochs", "1"])
        XCTAssertNotEqual(r.status, 0)
        let errors = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("backend:") && !$0.contains("elapsed") && !$0.hasPrefix("near-duplicates") && !$0.contains("images loaded") && !$0.contains("layout,") }
        XCTAssertEqual(
            errors, ["Error: --init-from \(base.path) has 6 classes (\(six.joined(separator: ", "))) but the data has 2 (other, blast); fine-tune on data of as many classes"],
            r.stderr)
    }
}
