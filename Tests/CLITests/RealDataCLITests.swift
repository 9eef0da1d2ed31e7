import CytoData
import Foundation
import XCTest

/// Data as it reaches a user's disk: a class-folder set unzipped on a Mac, a labels file
/// saved by Excel in a European locale, a damaged strip among the cells, class names of
/// PBC's lengths. Each reads as documented or is refused as every other command refuses it.
extension CLITests {
    func testAClassFolderSetAsAMacZipAndExcelLeaveItIsRead() throws {
        let data = try synth("cells", layout: "folders", count: 12, size: 64, seed: 3)
        // Unzipping an archive made on a Mac leaves `__MACOSX/<class>/._<file>` beside the
        // data: it was read as a 7th class with no images, which stopped every run.
        let mac = data + "/__MACOSX/blast"
        try FileManager.default.createDirectory(atPath: mac, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/blast/blast_0001.png", toPath: mac + "/._blast_0001.png")
        // A strip no run reads (aspect ratio above 32:1): `inspect` listed it as a size
        // like any other while `train` refused it.
        try ImageCodec.writePNG(
            RGBImage(width: 3000, height: 20, pixels: [UInt8](repeating: 200, count: 3000 * 20 * 3)),
            to: URL(fileURLWithPath: data + "/blast/strip.png"))
        let inspect = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("images: 13 in 6 classes"), inspect.stdout)
        XCTAssertFalse(inspect.stdout.contains("__MACOSX"), inspect.stdout)
        XCTAssertFalse(inspect.stdout.contains("3000x20  "), inspect.stdout)
        XCTAssertTrue(
            inspect.stdout.contains("blast/strip.png: image too large: 3000x20 pixels: an aspect ratio above 32:1"), inspect.stdout)

        // Excel's "CSV" where the decimal mark is a comma: semicolons, quoted fields, a
        // byte-order mark, CRLF, empty rows at the end.
        let labels = dir.appendingPathComponent("labels.csv")
        let rows = ["blast/blast_0001.png;blast", "\"blast/blast_0002.png\";blast", "lymphocyte/lymphocyte_0001.png;\"other\""]
        try (Data([0xEF, 0xBB, 0xBF]) + Data((["\"path\";\"label\""] + rows + [";", ""]).joined(separator: "\r\n").utf8))
            .write(to: labels)
        let relabelled = try cytocl(["dataset", "inspect", data, "--labels", labels.path])
        XCTAssertEqual(relabelled.status, 0, relabelled.stderr)
        XCTAssertTrue(relabelled.stdout.contains("images: 3 in 2 classes"), relabelled.stdout)

        // Paths written on Windows; a label Excel's autocorrect capitalised on one row.
        try "path,label\nblast\\blast_0001.png,blast\nlymphocyte\\lymphocyte_0001.png,other\n".write(
            to: labels, atomically: true, encoding: .utf8)
        let windows = try cytocl(["dataset", "inspect", data, "--labels", labels.path])
        XCTAssertEqual(windows.status, 0, windows.stderr)
        XCTAssertTrue(windows.stdout.contains("images: 2 in 2 classes"), windows.stdout)
        try "path,label\nblast/blast_0001.png,blast\nblast/blast_0002.png,Blast\n".write(to: labels, atomically: true, encoding: .utf8)
        let twoSpellings = try cytocl(["dataset", "inspect", data, "--labels", labels.path])
        XCTAssertEqual(twoSpellings.status, 1, twoSpellings.stderr)
        XCTAssertTrue(
            twoSpellings.stderr.contains("labels.csv:3: the labels 'Blast' and 'blast' (line 2) differ only in case"), twoSpellings.stderr)

        // A `labels.csv` left at the top of the class-folder set (as `cytocl label --data
        // cells --labels cells/labels.csv` writes it) is read as the manifest, and says so.
        try "path,label\nblast/blast_0001.png,blast\nlymphocyte/lymphocyte_0001.png,other\n".write(
            toFile: data + "/labels.csv", atomically: true, encoding: .utf8)
        let beside = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(beside.status, 0, beside.stderr)
        XCTAssertTrue(
            beside.stdout.contains(
                "warning: \(data): read as the manifest labels.csv (2 images), not as the class folders beside it (basophil, blast, eosinophil, ...); --layout folders reads those"
            ), beside.stdout)
        XCTAssertTrue(try cytocl(["dataset", "inspect", data, "--layout", "folders"]).stdout.contains("images: 13 in 6 classes"))
        try FileManager.default.removeItem(atPath: data + "/labels.csv")

        // The Kaggle "Blood Cell Images" layout: TRAIN and TEST each hold the class folders.
        // Read as classes "TEST" and "TRAIN", a model learnt which split a cell came from.
        let kaggle = dir.appendingPathComponent("images")
        for split in ["TRAIN", "TEST"] {
            for c in ["blast", "lymphocyte"] {
                let folder = kaggle.appendingPathComponent(split + "/" + c.uppercased())
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: data + "/\(c)/\(c)_0001.png", toPath: folder.path + "/_0_1.jpeg")
            }
        }
        let splits = try cytocl(["dataset", "inspect", kaggle.path])
        XCTAssertEqual(splits.status, 1, splits.stderr)
        XCTAssertTrue(
            splits.stderr.contains(
                "the class folders TEST, TRAIN are the splits of a data set, not classes (TEST holds BLAST, LYMPHOCYTE): point --data at one of them, e.g. \(kaggle.path)/TRAIN"
            ), splits.stderr)
    }

    /// `evaluate`'s confusion matrix keeps its columns with class names longer than
    /// "[1] " leaves room for (PBC's "eosinophil", "erythroblast"), and `explain` that
    /// refuses an image prints no CSV header to stdout (a `> summary.csv` kept it).
    func testEvaluateTableAlignsAndExplainRefusesWithoutOutput() throws {
        let data = try synth("cells", layout: "folders", count: 12, size: 64, seed: 3)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["blast", "lymphocyte"])
        let r = try cytocl(["evaluate", "--model", model.path, "--data", data, "--classes", "blast,lymphocyte"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("confusion") })
        let matrix = lines[(start + 1)...].filter { !$0.isEmpty }
        XCTAssertEqual(matrix.count, 3, r.stdout)
        XCTAssertEqual(Set(matrix.map(\.count)).count, 1, "columns end at one place:\n\(matrix.joined(separator: "\n"))")
        XCTAssertTrue(matrix[2].trimmingCharacters(in: .whitespaces).hasPrefix("[1] lymphocyte "), r.stdout)

        let loose = dir.appendingPathComponent("loose")
        try FileManager.default.createDirectory(at: loose, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: data + "/blast/blast_0001.png", toPath: loose.path + "/cell.png")
        let explain = try cytocl([
            "explain", "--model", model.path, "--out", dir.appendingPathComponent("maps").path, "--class", "true",
            loose.path + "/cell.png",
        ])
        XCTAssertNotEqual(explain.status, 0)
        XCTAssertTrue(explain.stderr.contains("--class true: the folder of"), explain.stderr)
        XCTAssertEqual(explain.stdout, "", "a refused explain printed a CSV header")

        // `--model RUN_DIR`, the folder `train --out` made: one line saying which file to
        // give, not Foundation's "NSCocoaErrorDomain error 256".
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: model, to: run.appendingPathComponent("model.safetensors"))
        let folder = try cytocl(["predict", "--model", run.path, loose.path + "/cell.png"])
        XCTAssertEqual(folder.status, 1, folder.stderr)
        XCTAssertTrue(
            folder.stderr.contains("\(run.path): a folder, not a model file: give its model file, \(run.path)/model.safetensors"),
            folder.stderr)
        XCTAssertEqual(folder.stdout, "")

        // A blast-vs-other model evaluated on class folders without its --positive.
        let binary = dir.appendingPathComponent("binary.safetensors")
        try writeModel(binary, height: 64, width: 64, filters: [4, 8, 8], classes: ["other", "blast"])
        let noPositive = try cytocl(["evaluate", "--model", binary.path, "--data", data, "--near-duplicates", "off"])
        XCTAssertEqual(noPositive.status, 1, noPositive.stderr)
        XCTAssertTrue(
            noPositive.stderr.contains(
                "class 'basophil' is not one of the model's classes other, blast (a blast-vs-other model: give the --positive classes"),
            noPositive.stderr)
    }

    /// One truncated crop among thousands stopped `cytocl label` from starting, with no
    /// way around it but deleting files; `label` takes `suggest`'s --skip-bad-images,
    /// and both name it when they stop.
    func testAPoolWithAnUnreadableFileOffersToSkipIt() throws {
        let pool = try synth("pool", layout: "folders", count: 6, size: 64, seed: 3)
        let labels = dir.appendingPathComponent("labels.csv").path
        // A labels file in a Windows code page is refused before the pool is decoded.
        try (Data("path,label\nblast/blast_0001.png,".utf8) + Data([0xE9, 0x0A])).write(to: URL(fileURLWithPath: labels))
        let early = try cytocl(["label", "--data", pool, "--labels", labels, "--classes", "blast,other", "--port", "0"])
        XCTAssertEqual(early.status, 1, early.stderr)
        XCTAssertTrue(early.stderr.contains("labels.csv: not UTF-8 text (byte 32"), early.stderr)
        XCTAssertFalse(early.stderr.contains("decoding the pool"), early.stderr)
        try FileManager.default.removeItem(atPath: labels)
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: pool + "/cut.jpg"))
        let label = try cytocl([
            "label", "--data", pool, "--labels", labels, "--classes", "blast,other", "--port", "0", "--input", "190x190",
        ])
        XCTAssertEqual(label.status, 1, label.stderr)
        XCTAssertTrue(label.stderr.contains("cut.jpg: truncated JPEG file"), label.stderr)
        XCTAssertTrue(label.stderr.contains("(use --skip-bad-images to continue without it)"), label.stderr)
        let suggest = try cytocl(["suggest", "--data", pool, "--count", "2"])
        XCTAssertEqual(suggest.status, 1, suggest.stderr)
        XCTAssertTrue(suggest.stderr.contains("(use --skip-bad-images to continue without it)"), suggest.stderr)
        let skipped = try cytocl(["suggest", "--data", pool, "--count", "2", "--skip-bad-images"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertTrue(skipped.stderr.contains("1 unreadable image file left out (--skip-bad-images)"), skipped.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: labels), "a refused label page wrote the labels file")
    }
}
