import CytoTestSupport
import Foundation
import XCTest

/// A lab's shell habits: a labels file filtered through a pipe, a named pipe left in a
/// data folder, outputs written inside the data folder.
extension CLITests {
    /// A named pipe called like an image in a data folder hung `dataset inspect`, `train`
    /// and `suggest` for ever (opening it waits for a writer); a labels file given through
    /// a pipe (`--labels <(grep ...)`) was "empty (0 bytes)" to `train` and unreadable to
    /// `suggest`. Now the first is refused in one line within seconds and the second read.
    func testAPipeInTheDataIsRefusedAndAPipedLabelsFileIsRead() throws {
        let data = dir.appendingPathComponent("pool").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", data, "--layout", "all-idb", "--count", "12", "--size", "32", "--seed", "3"]).status, 0)
        let ids = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }.sorted()
        let text = "path,label\n\(ids[0]),\(ids[0].hasSuffix("_1.tif") ? "blast" : "other")\n\(ids[11]),other\n"

        // A pipe with a writer: the whole file arrives, read once (`suggest` read it twice,
        // and the second reading found the pipe empty).
        let fifo = dir.appendingPathComponent("labels.fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let writer = Thread {
            if let h = FileHandle(forWritingAtPath: fifo) { h.write(Data(text.utf8)); try? h.close() }
        }
        writer.start()
        let suggest = try cytocl(["suggest", "--data", data, "--labels", fifo, "--count", "3"])
        XCTAssertEqual(suggest.status, 0, suggest.stderr)
        XCTAssertTrue(suggest.stderr.contains("12 images, 2 labelled"), suggest.stderr)
        XCTAssertFalse(suggest.stdout.contains(ids[0]), suggest.stdout)

        // A pipe nothing writes to, named like an image in the data folder: refused, in
        // one line, within seconds (the writer's grace is 2 s), never a hang.
        let stray = data + "/Im999_1.tif"
        XCTAssertEqual(mkfifo(stray, 0o644), 0)
        let started = Date()
        let train = try cytocl([
            "train", "--data", data, "--out", dir.appendingPathComponent("run").path, "--input", "32x32", "--conv", "4",
            "--dense", "4", "--epochs", "1",
        ])
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertEqual(train.status, 1, train.stderr)
        XCTAssertTrue(
            train.stderr.contains("Im999_1.tif: cannot read the file (it is a named pipe (FIFO) that nothing writes to, not a file)"),
            train.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/model.safetensors").path))
        // As a model file it was "permission denied".
        let predict = try cytocl(["predict", "--model", stray, data + "/" + ids[0]])
        XCTAssertEqual(predict.status, 1, predict.stderr)
        XCTAssertTrue(predict.stderr.contains("Im999_1.tif: cannot read the file (it is a named pipe (FIFO), not a file)"), predict.stderr)
    }

    /// `explain --out DATA/heatmaps` wrote its PNG heatmaps, overlays and panels into the
    /// data folder, and the next `train --data DATA` trained a class "heatmaps" on them
    /// without a word; `embed --out DATA/tsne` made every later run fail with "class
    /// 'tsne' has no image files". Now the first is refused naming the folder, the
    /// second is left out as the run folders of `train` are.
    func testOutputsWrittenIntoTheDataFolderAreNeverTrainedOn() throws {
        let data = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "12", "--size", "32", "--seed", "4"]).status, 0)
        let net = ["--input", "32x32", "--conv", "4", "--dense", "4", "--epochs", "1"]
        let run = dir.appendingPathComponent("run").path
        XCTAssertEqual(try cytocl(["train", "--data", data, "--out", run] + net).status, 0)
        let model = run + "/model.safetensors"
        let embed = try cytocl(["embed", "--model", model, "--data", data, "--out", data + "/tsne"])
        XCTAssertEqual(embed.status, 0, embed.stderr)
        let again = try cytocl(["train", "--data", data, "--out", dir.appendingPathComponent("run2").path] + net)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("12 of 12 images loaded"), again.stderr)

        let cell = try FileManager.default.contentsOfDirectory(atPath: data + "/blast").sorted()[0]
        let explain = try cytocl(["explain", "--model", model, "--method", "saliency", "--out", data + "/heatmaps", data + "/blast/" + cell])
        XCTAssertEqual(explain.status, 0, explain.stderr)
        let third = try cytocl(["train", "--data", data, "--out", dir.appendingPathComponent("run3").path] + net)
        XCTAssertEqual(third.status, 1, third.stderr)
        XCTAssertTrue(
            third.stderr.contains("\(data)/heatmaps: a folder holding CytoCL outputs is inside the data and holds images"), third.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run3/model.safetensors").path))
    }

    /// 12 generated 32x32 ALL-IDB cells sorted into class folders named `blast` and `other`
    /// (as a lab spells them), for the fine-tuning tests.
    func blastAndOtherFolders(blast: String, other: String) throws -> URL {
        let cells = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", cells, "--layout", "all-idb", "--count", "12", "--size", "32", "--seed", "5"]).status, 0)
        let folders = dir.appendingPathComponent("folders")
        for c in [blast, other] {
            try FileManager.default.createDirectory(at: folders.appendingPathComponent(c), withIntermediateDirectories: true)
        }
        for f in try FileManager.default.contentsOfDirectory(atPath: cells) where f.hasSuffix(".tif") {
            try FileManager.default.moveItem(
                atPath: cells + "/" + f, toPath: folders.appendingPathComponent((f.hasSuffix("_1.tif") ? blast : other) + "/" + f).path)
        }
        return folders
    }

    /// Fine-tuning a model of the classes `other`, `blast` (ALL-IDB's order) on class
    /// folders `blast/`, `other/` (blast first) trained the model's `other` output as blast:
    /// with a few epochs at a low rate the saved model called every blast `other`. The
    /// model's class order is now kept and the data's labels follow it.
    func testFineTuningKeepsTheModelsClassOrder() throws {
        let base = dir.appendingPathComponent("base.safetensors")
        // A model that says blast for every image: its blast output's bias is 20.
        try writeModel(base, height: 32, width: 32, filters: [4], classes: ["other", "blast"], poison: ("dense2.bias", 20))
        let folders = try blastAndOtherFolders(blast: "blast", other: "other")
        let run = dir.appendingPathComponent("tuned")
        let tune = try cytocl([
            "train", "--data", folders.path, "--out", run.path, "--init-from", base.path, "--epochs", "1", "--lr", "1e-9",
            "--no-augment",
        ])
        XCTAssertEqual(tune.status, 0, tune.stderr)
        XCTAssertTrue(tune.stderr.contains("the --init-from model's class order is kept: other, blast (the data lists blast, other)"), tune.stderr)
        let blast = try FileManager.default.contentsOfDirectory(atPath: folders.appendingPathComponent("blast").path).sorted()[0]
        let predict = try cytocl(["predict", "--model", run.appendingPathComponent("model.safetensors").path, folders.path + "/blast/" + blast])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let lines = predict.stdout.split(separator: "\n")
        XCTAssertEqual(lines.first, "path,predicted,prob_other,prob_blast", predict.stdout)
        XCTAssertEqual(lines.last?.split(separator: ",")[1], "blast", predict.stdout)
    }

    /// `embed` on a small folder (a class of one image, or one class): it refused with
    /// training's rule ("a class needs at least two to appear in both training and
    /// test") after printing its CSV header on stdout. Nothing is split: three images are
    /// embedded, fewer are refused in one line, with nothing on stdout.
    func testEmbedTakesAFewImagesAndPrintsNothingWhenItRefuses() throws {
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 32, width: 32, filters: [4], classes: ["other", "blast"])
        let cells = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", cells, "--layout", "folders", "--count", "12", "--size", "32", "--seed", "6"]).status, 0)
        let small = dir.appendingPathComponent("small")
        for (c, n) in [("blast", 2), ("other", 1)] {
            try FileManager.default.createDirectory(at: small.appendingPathComponent(c), withIntermediateDirectories: true)
            let src = cells + "/" + (c == "blast" ? "blast" : "lymphocyte")
            for f in try FileManager.default.contentsOfDirectory(atPath: src).sorted().prefix(n) {
                try FileManager.default.copyItem(atPath: src + "/" + f, toPath: small.appendingPathComponent(c + "/" + f).path)
            }
        }
        let three = try cytocl(["embed", "--model", model.path, "--data", small.path, "--out", dir.appendingPathComponent("e3").path])
        XCTAssertEqual(three.status, 0, three.stderr)
        XCTAssertTrue(three.stdout.hasPrefix("model,points,method,perplexity,kl_divergence,seconds,csv\nm,3,"), three.stdout)
        let blast = small.appendingPathComponent("blast")
        try FileManager.default.removeItem(
            at: blast.appendingPathComponent(try FileManager.default.contentsOfDirectory(atPath: blast.path).sorted()[0]))
        let two = try cytocl(["embed", "--model", model.path, "--data", small.path, "--out", dir.appendingPathComponent("e2").path])
        XCTAssertEqual(two.status, 1, two.stderr)
        XCTAssertEqual(two.stdout, "")
        XCTAssertTrue(two.stderr.contains("t-SNE needs at least 3 images, it has 2"), two.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("e2").path))
    }

    /// `label --classes Blast,other` on a labels file of `blast` rows (yesterday's session,
    /// or `blast,Blast`) wrote both spellings into one file, which `train --labels` refuses.
    /// Both are refused before the pool is decoded, naming the spelling to use.
    func testLabelRefusesAClassSpeltAnotherWay() throws {
        let pool = dir.appendingPathComponent("pool").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", pool, "--layout", "all-idb", "--count", "6", "--size", "32", "--seed", "3"]).status, 0)
        let labels = dir.appendingPathComponent("labels.csv")
        try "path,label\nIm001_1.tif,blast\n".write(to: labels, atomically: true, encoding: .utf8)
        let twice = try cytocl(["label", "--data", pool, "--labels", labels.path, "--classes", "blast,Blast", "--port", "0"])
        XCTAssertEqual(twice.status, 64, twice.stderr)
        XCTAssertTrue(twice.stderr.contains("--classes: 'blast' and 'Blast' differ only in case"), twice.stderr)
        let other = try cytocl(["label", "--data", pool, "--labels", labels.path, "--classes", "Blast,other", "--port", "0"])
        XCTAssertEqual(other.status, 1, other.stderr)
        XCTAssertTrue(
            other.stderr.contains("labels.csv:2: the label 'blast' is spelt 'Blast' in --classes: give --classes with the file's spelling"),
            other.stderr)
        XCTAssertEqual(try String(contentsOf: labels, encoding: .utf8), "path,label\nIm001_1.tif,blast\n")
        // `suggest` names the file a Windows-typed path means, as `train --labels` does.
        try "path,label\nIM001_1.TIF,blast\n".write(to: labels, atomically: true, encoding: .utf8)
        let suggest = try cytocl(["suggest", "--data", pool, "--labels", labels.path, "--count", "1"])
        XCTAssertEqual(suggest.status, 1, suggest.stderr)
        XCTAssertTrue(suggest.stderr.contains("labels.csv:2: 'IM001_1.TIF' is not an image of the pool at"), suggest.stderr)
        XCTAssertTrue(suggest.stderr.contains("(Im001_1.tif differs only in case"), suggest.stderr)
    }

    /// Two classes of copies of one cell each (`--no-dedupe`; near-duplicates are still
    /// dropped): `train` split 2 images into 2 for training and none for validation, ran,
    /// and stopped with "training diverged ... the validation loss is not finite ... try
    /// a lower --lr". Now refused before training, saying why.
    func testTrainWithNoValidationImageSaysSo() throws {
        let cells = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", cells, "--layout", "all-idb", "--count", "4", "--size", "32", "--seed", "8"]).status, 0)
        let data = dir.appendingPathComponent("same")
        for (c, source) in [("blast", "Im001_1.tif"), ("other", "Im003_0.tif")] {
            try FileManager.default.createDirectory(at: data.appendingPathComponent(c), withIntermediateDirectories: true)
            for i in 0..<3 {
                try FileManager.default.copyItem(atPath: cells + "/" + source, toPath: data.appendingPathComponent("\(c)/\(i).tif").path)
            }
        }
        let run = dir.appendingPathComponent("run")
        let r = try cytocl([
            "train", "--data", data.path, "--out", run.path, "--no-dedupe", "--input", "32x32", "--conv", "4", "--dense", "4", "--epochs", "2",
        ])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(
            r.stderr.contains("holds out no image of \(data.path): no class has two different images to split once near-duplicates are dropped"),
            r.stderr)
        XCTAssertFalse(r.stderr.contains("diverged"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
    }
}
