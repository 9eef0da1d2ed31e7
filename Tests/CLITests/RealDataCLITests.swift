import CytoData
import Foundation
import XCTest

/// Data as it reaches a user's disk: a class-folder set unzipped on a Mac, a labels file
/// saved by Excel in a European locale, a damaged strip among the cells, class names of
/// PBC's lengths. Each reads as documented or is refused as every other command refuses it.
extension CLITests {
    func testAClassFolderSetAsAMacZipAndExcelLeaveItIsRead() throws {
        let data = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "12", "--size", "64", "--seed", "3"]).status, 0)
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
    }

    /// `evaluate`'s confusion matrix keeps its columns with class names longer than
    /// "[1] " leaves room for (PBC's "eosinophil", "erythroblast"), and `explain` that
    /// refuses an image prints no CSV header to stdout (a `> summary.csv` kept it).
    func testEvaluateTableAlignsAndExplainRefusesWithoutOutput() throws {
        let data = dir.appendingPathComponent("cells").path
        XCTAssertEqual(
            try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "12", "--size", "64", "--seed", "3"]).status, 0)
        let model = dir.appendingPathComponent("m.safetensors")
        try writeModel(model, height: 64, width: 64, filters: [4, 8, 8], classes: ["blast", "lymphocyte"])
        let r = try cytocl(["evaluate", "--model", model.path, "--data", data, "--classes", "blast,lymphocyte"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("confusion") })
        let matrix = lines[(start + 1)...].filter { !$0.isEmpty }
        XCTAssertEqual(matrix.count, 3, r.stdout)
        XCTAssertEqual(Set(matrix.map(\.count)).count, 1, "columns end at one place:\n\(matrix.joined(separator: "\n"))")
        XCTAssertTrue(matrix[2].hasPrefix("[1] lymphocyte "), r.stdout)

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
    }
}
