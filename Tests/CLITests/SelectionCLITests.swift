import CytoCore
import CytoTestSupport
import Foundation
import XCTest

/// Choosing what to label through the CLI: `suggest` prints path,score,reason rows,
/// never an image already labelled, the same rows for the same seed, and names the
/// labels file and line of a path that is not in the pool.
final class SelectionCLITests: XCTestCase, CLITestFolder {
    func cytocl(_ args: [String]) throws -> CLITests.Output { try CLITests.run(args) }

    var dir: URL!
    override func setUp() { dir = tempDir("cli-select") }

    func testSuggestPrintsTheNextImagesWithoutLabelledOnes() throws {
        let pool = try synth("pool", layout: "folders", count: 16, size: 32)
        let first = try cytocl(["suggest", "--data", pool, "--count", "4", "--size", "32x32", "--embedding", "stain"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let rows = first.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.first, "path,score,reason")
        XCTAssertEqual(rows.count, 5, first.stdout)
        let paths = rows.dropFirst().map { String($0.split(separator: ",")[0]) }
        let labels = dir.appendingPathComponent("labels.csv")
        try Data(("path,label\r\n" + paths.prefix(2).map { "\($0),x\r\n" }.joined()).utf8).write(to: labels)
        let args = ["suggest", "--data", pool, "--count", "4", "--size", "32x32", "--embedding", "stain", "--labels", labels.path]
        let next = try cytocl(args)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("16 images, 2 labelled"), next.stderr)
        let nextPaths = next.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        XCTAssertEqual(nextPaths.count, 4)
        XCTAssertTrue(Set(nextPaths).isDisjoint(with: paths.prefix(2)), "labelled images suggested again: \(nextPaths)")
        XCTAssertEqual(try cytocl(args).stdout, next.stdout, "the same seed gives the same list")

        try Data("path,label\nnot-there.png,x\n".utf8).write(to: labels)
        let bad = try cytocl(args)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains(labels.path + ":2: 'not-there.png' is not an image of the pool"), bad.stderr)
    }

    /// Labels files as people write them: `..` and absolute paths (with a relative
    /// --data) and a "name,label" header; a --model's classes named in the reasons, a
    /// warning when the labels hold classes the model lacks, and --size refused when it
    /// contradicts the model's input size.
    func testSuggestLabelPathsHeadersAndAModelOfOtherClasses() throws {
        let pool = try synth("pool", layout: "folders", count: 12, size: 32)
        let first = try cytocl(["suggest", "--data", pool, "--count", "2", "--size", "32x32", "--strategy", "random"])
        let paths = first.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        XCTAssertEqual(paths.count, 2, first.stderr)
        // --data relative to the working directory (the test runner's), labels absolute and with `..`.
        let cwd = FileManager.default.currentDirectoryPath.split(separator: "/").count
        let relativePool = String(repeating: "../", count: cwd) + pool.dropFirst()
        let labels = dir.appendingPathComponent("labels.csv")
        try Data("name,label\n\(pool)/\(paths[0]),lymphocyte\nnope/../\(paths[1]),lymphocyte\n".utf8).write(to: labels)
        let read = try cytocl(["suggest", "--data", relativePool, "--count", "3", "--size", "32x32", "--labels", labels.path])
        XCTAssertEqual(read.status, 0, read.stderr)
        XCTAssertTrue(read.stderr.contains("12 images, 2 labelled"), read.stderr)

        var spec = ModelSpec.paper(height: 32, width: 32, classes: 2)
        spec.convFilters = [4]; spec.denseUnits = [4]
        let weights = Dictionary(uniqueKeysWithValues: spec.parameterShapes.map { ($0.name, [Float](repeating: 0.01, count: $0.shape.reduce(1, *))) })
        let model = dir.appendingPathComponent("m.safetensors")
        try ModelFile(spec: spec, classNames: ["other", "blast"], weights: weights).write(to: model)
        let withModel = ["suggest", "--data", pool, "--count", "2", "--labels", labels.path, "--model", model.path]
        let steered = try cytocl(withModel)
        XCTAssertEqual(steered.status, 0, steered.stderr)
        XCTAssertTrue(steered.stdout.contains("wanted class other") || steered.stdout.contains("wanted class blast"), steered.stdout)
        XCTAssertTrue(steered.stderr.contains("knows the classes other, blast, not lymphocyte of --labels"), steered.stderr)
        let clash = try cytocl(withModel + ["--size", "48x48"])
        XCTAssertNotEqual(clash.status, 0)
        XCTAssertTrue(clash.stderr.contains("--size 48x48 differs from the input size of --model \(model.path) (32x32)"), clash.stderr)
        XCTAssertEqual(clash.stdout, "")
    }

    /// A file name that is not UTF-8 is printed with its bad byte as `\xFF` (not as the
    /// private-use character CytoCL holds it in), and that spelling in --labels names it.
    func testSuggestPrintsNonUTF8NamesReadablyAndReadsThemBack() throws {
        let pool = try synth("pool", layout: "folders", count: 6, size: 32)
        let classDir = pool + "/blast"
        let original = try FileManager.default.contentsOfDirectory(atPath: classDir).sorted()[0]
        let raw = Array(classDir.utf8) + Array("/bad".utf8) + [0xFF] + Array("name.png".utf8)
        let rc = (raw.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { rename(classDir + "/" + original, $0.baseAddress!) }
        XCTAssertEqual(rc, 0)
        let all = try cytocl(["suggest", "--data", pool, "--count", "6", "--size", "32x32", "--strategy", "random"])
        XCTAssertEqual(all.status, 0, all.stderr)
        XCTAssertTrue(all.stdout.contains("\nblast/bad\\xFFname.png,"), all.stdout)
        XCTAssertFalse(all.stdout.unicodeScalars.contains { $0.value >= 0x10FF00 }, "internal escape characters printed")
        let labels = dir.appendingPathComponent("labels.csv")
        try Data("blast/bad\\xFFname.png,blast\n".utf8).write(to: labels)
        let next = try cytocl(["suggest", "--data", pool, "--count", "6", "--size", "32x32", "--strategy", "random", "--labels", labels.path])
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("6 images, 1 labelled"), next.stderr)
        XCTAssertFalse(next.stdout.contains("bad\\xFFname"), next.stdout)
        // Every image labelled: the header alone, and a note saying why.
        let everything = all.stdout.split(separator: "\n").dropFirst().map { "\($0.split(separator: ",")[0]),blast\n" }.joined()
        try Data(everything.utf8).write(to: labels)
        let none = try cytocl(["suggest", "--data", pool, "--count", "6", "--size", "32x32", "--labels", labels.path])
        XCTAssertEqual(none.status, 0, none.stderr)
        XCTAssertEqual(none.stdout, "path,score,reason\n")
        XCTAssertTrue(none.stderr.contains("nothing left to suggest: every image of the pool is labelled"), none.stderr)
    }

    /// With a selection the folds of a retry list are dealt by position: folds 0 and 2 on
    /// two tasks give task 1 fold 2 (dealt by number, task 0 got both and task 1 nothing).
    func testSelectionShardsDealTheListedFoldsByPosition() throws {
        let common = try synthAndCommonArgs()
        let out = dir.appendingPathComponent("sharded").path
        let list = dir.appendingPathComponent("retry.cells")
        try Data("0 4\n0 6\n2 4\n2 6\n".utf8).write(to: list)
        let run = try cytocl(["sweep", "--out", out, "--selection", "typical", "--cells-file", list.path, "--shard", "1/2"] + common)
        XCTAssertEqual(run.status, 0, run.stderr)
        let done = try FileManager.default.contentsOfDirectory(atPath: out + "/cells").filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(done, ["fold2-size4.json", "fold2-size6.json"], run.stderr)
    }

    func synthAndCommonArgs() throws -> [String] {
        let data = try synth("d", layout: "all-idb", count: 24, size: 32)
        return [
            "--protocol", "custom", "--data", data, "--input", "32x32", "--conv", "4", "--dense", "4", "--sizes", "4,6",
            "--folds", "3", "--epochs", "1", "--patience", "1", "--jobs", "1", "--selection-embedding", "stain",
        ]
    }

    /// A sweep with --selection: each fold's larger set extends its smaller one, the
    /// picks are recorded, the test and validation images are the random sweep's, and
    /// --compare pairs the two by fold.
    func testSweepSelectionExtendsSetsAndKeepsTheProtocolsTestImages() throws {
        let common = try synthAndCommonArgs()
        let typical = dir.appendingPathComponent("typical").path, random = dir.appendingPathComponent("random").path
        let run = try cytocl(["sweep", "--out", typical, "--selection", "typical"] + common)
        XCTAssertEqual(run.status, 0, run.stderr)
        let plain = try cytocl(["sweep", "--out", random] + common)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("--selection-embedding stain is ignored with --selection random"), plain.stderr)
        func record(_ sweep: String, _ fold: Int, _ size: Int) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(sweep)/cells/fold\(fold)-size\(size).json")))
                as! [String: Any]
        }
        for fold in 0..<3 {
            let small = try record(typical, fold, 4), large = try record(typical, fold, 6)
            let a = small["trainIDs"] as! [String], b = large["trainIDs"] as! [String]
            XCTAssertEqual(a.count, 4); XCTAssertEqual(b.count, 6)
            XCTAssertEqual(Array(b.prefix(4)), a, "fold \(fold): size 6 extends size 4's picks")
            XCTAssertEqual(large["sampling"] as? String, "selected")
            let r = try record(random, fold, 6)
            XCTAssertEqual(Set(large["testIDs"] as! [String]), Set(r["testIDs"] as! [String]), "same test images as the random sweep")
            XCTAssertEqual(Set(large["validationIDs"] as! [String]), Set(r["validationIDs"] as! [String]))
            XCTAssertTrue(Set(b).isDisjoint(with: (r["testIDs"] as! [String]) + (r["validationIDs"] as! [String])))
        }
        let compare = try cytocl(["report", random, "--compare", typical])
        XCTAssertEqual(compare.status, 0, compare.stderr)
        let csv = try String(contentsOfFile: random + "/report/compare.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3, "a header and one row per size")
        XCTAssertTrue(csv[1].hasPrefix("\(typical),\"typical (stain embedding, oversampled classes)\",4,3,roc_auc,"), String(csv[1]))
    }

    /// A sweep folder made with one selection refuses a run with another, and --compare
    /// refuses a sweep that differs in more than the selection, naming the difference
    /// (only sweep.json is needed for either: `--slurm --dry-run` writes it without training).
    func testSelectionMismatchesAreRefusedNamingTheDifference() throws {
        let common = try synthAndCommonArgs() + ["--slurm", "--dry-run"]
        let typical = dir.appendingPathComponent("typical").path, other = dir.appendingPathComponent("other").path
        let dry = try cytocl(["sweep", "--out", typical, "--selection", "typical"] + common)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        // A shard takes whole folds with a selection: one task per fold, not per cell.
        XCTAssertTrue(dry.stderr.contains("(3 array tasks for 6 cells in 3 folds)"), dry.stderr)
        XCTAssertTrue(try String(contentsOfFile: typical + "/slurm/sweep.sbatch", encoding: .utf8).contains("--shard \"${SLURM_ARRAY_TASK_ID}/3\""))
        let mixed = try cytocl(["sweep", "--out", typical, "--selection", "active"] + common)
        XCTAssertNotEqual(mixed.status, 0)
        XCTAssertTrue(mixed.stderr.contains("selection: the directory has typical (stain embedding, oversampled classes), this run has active"), mixed.stderr)
        let uniform = try cytocl(["sweep", "--out", typical, "--selection", "uniform", "--selection-class-balance", "none"] + common)
        XCTAssertTrue(
            uniform.stderr.contains("the directory has typical (stain embedding, oversampled classes), this run has uniform (no labels)"),
            uniform.stderr)
        XCTAssertEqual(try cytocl(["sweep", "--out", other, "--seed", "2"] + common).status, 0)
        let refused = try cytocl(["report", typical, "--compare", other])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("differs from \(typical) in more than its selection"), refused.stderr)
        XCTAssertTrue(refused.stderr.contains("seed: typical has 1, other has 2"), refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").filter { $0.hasPrefix("Error") }.count, 1, "one error line: \(refused.stderr)")
        XCTAssertFalse(refused.stderr.contains("\n  "), "the differences on the error's line: \(refused.stderr)")
        // The base again, or one sweep twice: a difference of exactly 0 that measures nothing.
        let itself = try cytocl(["report", typical, "--compare", typical + "/."])
        XCTAssertNotEqual(itself.status, 0)
        XCTAssertTrue(itself.stderr.contains("the same sweep as \(typical) (the sweep the others are compared with)"), itself.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: typical + "/report/compare.csv"))
        // A sweep with no finished cell (a dry run) has nothing to compare: refused, not an empty CSV.
        let sameSettings = dir.appendingPathComponent("active").path
        XCTAssertEqual(try cytocl(["sweep", "--out", sameSettings, "--selection", "active"] + common).status, 0)
        let empty = try cytocl(["report", typical, "--compare", sameSettings])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("--compare \(sameSettings): no cell of it (0 of 6 finished)"), empty.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: typical + "/report/compare.csv"))
        // active's later rounds are part of the selection: a folder of the default rounds refuses other ones.
        let rounds = try cytocl(["sweep", "--out", sameSettings, "--selection", "active", "--selection-rounds", "mixed"] + common)
        XCTAssertNotEqual(rounds.status, 0)
        XCTAssertTrue(
            rounds.stderr.contains("this run has active (stain embedding, oversampled classes, mixed rounds)"), rounds.stderr)
        // The default rounds are blend, stored as such: naming them is the same sweep, while the
        // uncertain rounds (kept by every active sweep made before blend was the default) are not.
        XCTAssertEqual(try cytocl(["sweep", "--out", sameSettings, "--selection", "active", "--selection-rounds", "blend"] + common).status, 0)
        let older = try cytocl(["sweep", "--out", sameSettings, "--selection", "active", "--selection-rounds", "uncertain"] + common)
        XCTAssertNotEqual(older.status, 0)
        XCTAssertTrue(
            older.stderr.contains(
                "the directory has active (stain embedding, oversampled classes, blend rounds), this run has active (stain embedding, oversampled classes, uncertain rounds)"),
            older.stderr)
    }
}
