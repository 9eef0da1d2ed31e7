import CytoData
import CytoTestSupport
import Foundation
import XCTest

/// Near-duplicates and labels files through the CLI: `synth --near-duplicates` plants
/// re-cropped copies, `dataset inspect` lists them, a sweep drops one of each group by
/// default (and says which in sweep.json and the report) or keeps them grouped in one
/// fold, and `--labels` relabels any layout.
final class NearDuplicateCLITests: XCTestCase, CLITestFolder {
    /// Runs the binary beside the test bundle on the CPU backend (`CLITests.run`).
    func cytocl(_ args: [String]) throws -> CLITests.Output { try CLITests.run(args) }

    var dir: URL!
    override func setUp() { dir = tempDir("cli-nd") }

    func testSweepsDropOrGroupNearDuplicatesAndSayWhich() throws {
        let data = dir.appendingPathComponent("dups").path
        let synth = try cytocl([
            "synth", "--out", data, "--layout", "all-idb", "--count", "36", "--size", "96", "--seed", "4",
            "--near-duplicates", "3",
        ])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let copies = synth.stderr.split(separator: "\n").filter { $0.hasPrefix("near-duplicate: ") }
        XCTAssertEqual(copies.count, 3)

        let inspect = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("): 3 group(s), 6 images"), inspect.stdout)
        for line in copies {
            // "near-duplicate: Im037_1.tif is a re-crop of Im001_1.tif"
            let words = line.split(separator: " ")
            XCTAssertTrue(inspect.stdout.contains("\(words[6]) ~ \(words[1])"), "\(line) not listed:\n\(inspect.stdout)")
        }

        let small = [
            "--protocol", "custom", "--data", data, "--sizes", "6", "--folds", "3", "--input", "48x48", "--conv", "4,8",
            "--dense", "8", "--epochs", "1", "--patience", "1",
        ]
        let dropped = dir.appendingPathComponent("drop").path
        let run = try cytocl(["sweep", "--out", dropped] + small)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("3 dropped (one of each group kept)"), run.stderr)
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dropped + "/sweep.json"))) as! [String: Any]
        XCTAssertEqual(manifest["imageCount"] as? Int, 36)
        let nd = manifest["nearDuplicates"] as! [String: Any]
        XCTAssertEqual((nd["dropped"] as! [String]).sorted(), copies.map { String($0.split(separator: " ")[1]) }.sorted())
        XCTAssertEqual(try cytocl(["report", dropped]).status, 0)
        let html = try String(contentsOfFile: dropped + "/report/index.html", encoding: .utf8)
        XCTAssertTrue(html.contains("3 dropped (one of each group kept)"), "the report says how many were dropped")
        for c in copies { XCTAssertTrue(html.contains(String(c.split(separator: " ")[1])), "the report names \(c)") }

        // The scan is stored with the image cache: a second sweep reuses it.
        let cacheFiles = try FileManager.default.contentsOfDirectory(atPath: data + "/.cytocl-cache")
        XCTAssertTrue(cacheFiles.contains { $0.hasSuffix(".neardup.json") }, "\(cacheFiles)")

        let grouped = dir.appendingPathComponent("group").path
        let g = try cytocl(["sweep", "--out", grouped, "--near-duplicates", "group"] + small)
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertFalse(g.stderr.contains("near-duplicate scan of"), "the stored scan is reused")
        let gm = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: grouped + "/sweep.json"))) as! [String: Any]
        XCTAssertEqual(gm["imageCount"] as? Int, 39)
        let tests = ((gm["assignment"] as! [String: Any])["test"] as! [[String]]).map(Set.init)
        for c in copies {
            let w = c.split(separator: " ")
            let (a, b) = (String(w[6]), String(w[1]))
            XCTAssertEqual(tests.firstIndex { $0.contains(a) }, tests.firstIndex { $0.contains(b) }, "\(a) and \(b) in one fold")
        }
        // Mixing policies in one directory is refused.
        let mixed = try cytocl(["sweep", "--out", grouped] + small)
        XCTAssertNotEqual(mixed.status, 0)
        XCTAssertTrue(mixed.stderr.contains("near-duplicate"), mixed.stderr)
    }

    /// `synth --near-duplicate-cases` plants mirrored, turned and byte-identical copies and
    /// a look-alike decoy (the same cell on other surroundings); `dataset inspect` groups
    /// every copy with its original, says which transform joined each pair, and leaves the
    /// decoy alone.
    func testInspectNamesTheTransformOfEachPairAndIgnoresTheDecoy() throws {
        let data = dir.appendingPathComponent("cases").path
        let synth = try cytocl([
            "synth", "--out", data, "--layout", "all-idb", "--count", "40", "--size", "96", "--seed", "8",
            "--near-duplicates", "6", "--near-duplicate-cases", "mirror,rot90,rot180,rot270,identical,look-alike",
        ])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let lines = synth.stderr.split(separator: "\n").map(String.init)
        let copies = lines.filter { $0.hasPrefix("near-duplicate: ") }
        let decoys = lines.filter { $0.hasPrefix("near-duplicate decoy: ") }
        XCTAssertEqual(copies.count, 5, synth.stderr)
        XCTAssertEqual(decoys.count, 1, synth.stderr)

        let inspect = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("): 5 group(s), 10 images"), inspect.stdout)
        let expected = [
            "re-crop+mirror": "(mirror", "re-crop+rot90": "(rot90", "re-crop+rot180": "(rot180", "re-crop+rot270": "(rot270",
            "byte-copy": "(as is)",
        ]
        for line in copies {
            // "near-duplicate: Im041_1.tif is a re-crop+rot90 of Im001_1.tif"
            let w = line.split(separator: " ").map(String.init)
            let listed = inspect.stdout.split(separator: "\n").first { $0.contains("\(w[6]) ~ \(w[1])") }
            XCTAssertNotNil(listed, "\(line) not listed:\n\(inspect.stdout)")
            XCTAssertTrue(listed?.contains(expected[w[4]]!) == true, "\(line): listed as \(listed ?? "")")
        }
        let decoy = decoys[0].split(separator: " ").map(String.init)[2]
        XCTAssertFalse(inspect.stdout.contains(decoy), "the look-alike decoy \(decoy) was grouped:\n\(inspect.stdout)")

        let bad = try cytocl([
            "synth", "--out", dir.appendingPathComponent("bad").path, "--near-duplicates", "1", "--near-duplicate-cases", "rot45",
        ])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--near-duplicate-cases: unknown kind 'rot45'"), bad.stderr)
    }

    /// A sweep lists (and records in sweep.json) the same transform for each pair as
    /// `dataset inspect`: a mirrored copy was listed "(as is)" because the sweep re-indexed
    /// the scan's pairs without their orientation.
    func testSweepNamesTheTransformOfEachPairAsInspectDoes() throws {
        let data = dir.appendingPathComponent("turned").path
        let synth = try cytocl([
            "synth", "--out", data, "--layout", "all-idb", "--count", "36", "--size", "96", "--seed", "8",
            "--near-duplicates", "2", "--near-duplicate-cases", "mirror,rot90",
        ])
        XCTAssertEqual(synth.status, 0, synth.stderr)
        let copies = synth.stderr.split(separator: "\n").filter { $0.hasPrefix("near-duplicate: ") }.map {
            $0.split(separator: " ").map(String.init)
        }
        XCTAssertEqual(copies.count, 2, synth.stderr)
        let out = dir.appendingPathComponent("sweep").path
        let run = try cytocl([
            "sweep", "--out", out, "--protocol", "custom", "--data", data, "--sizes", "6", "--folds", "3", "--input", "48x48",
            "--conv", "4,8", "--dense", "8", "--epochs", "1", "--patience", "1",
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        let manifest = try String(contentsOfFile: out + "/sweep.json", encoding: .utf8)
        for w in copies {
            // "near-duplicate: Im037_1.tif is a re-crop+mirror of Im001_1.tif"
            let kind = String(w[4].dropFirst("re-crop+".count))
            let listed = run.stderr.split(separator: "\n").first { $0.contains("\(w[6]) ~ \(w[1])") }
            XCTAssertNotNil(listed, "\(w) not listed:\n\(run.stderr)")
            XCTAssertTrue(listed?.contains("(\(kind)") == true, "\(w[1]) is a \(kind) copy, listed as: \(listed ?? "")")
            XCTAssertTrue(manifest.contains("\(w[6]) ~ \(w[1]): \(kind)"), "sweep.json records the \(kind) of \(w[1])")
        }
    }

    func testLabelsFileRelabelsForTheMulticlassProtocol() throws {
        let data = try synth("ALL", layout: "all-idb", count: 30, size: 48, seed: 6)
        let names = try FileManager.default.contentsOfDirectory(atPath: data).filter { $0.hasSuffix(".tif") }.sorted()
        let classes = ["lymphoblast", "lymphocyte", "monocyte"]
        var csv = "path,label\n"
        for (i, n) in names.enumerated() where i < 27 { csv += "\(n),\(classes[i % 3])\n" }
        let labels = dir.appendingPathComponent("s1.csv").path
        try csv.write(toFile: labels, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("multi").path
        let r = try cytocl([
            "sweep", "--protocol", "multiclass", "--data", data, "--labels", labels, "--out", out, "--sizes", "4",
            "--folds", "3", "--input", "48x48", "--conv", "4,8", "--dense", "8", "--epochs", "1", "--patience", "1",
            "--near-duplicates", "off",
        ])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("3 images of \(data) are not listed and were left out"), r.stderr)
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sweep.json"))) as! [String: Any]
        XCTAssertEqual(m["classNames"] as? [String], classes)
        XCTAssertEqual(m["classCounts"] as? [Int], [9, 9, 9])
        let bad = try cytocl(["dataset", "inspect", data, "--labels", dir.appendingPathComponent("none.csv").path])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("none.csv"), bad.stderr)
    }

    /// Many look-alikes (two photographs, 60 shifted crops each): `dataset inspect`
    /// finishes in seconds, says in one warning line that the comparison was capped,
    /// and still lists each photograph's crops as one group.
    func testInspectBoundsManyLookAlikesWithOneWarningLine() throws {
        let set = NearDuplicateEvaluationSet.make(photographs: 2, cropsPerPhotograph: 60, size: 32, seed: 11)
        let data = dir.appendingPathComponent("alike")
        for (i, image) in set.images.enumerated() {
            let folder = data.appendingPathComponent(set.source[i] == set.source[0] ? "a" : "b")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try ImageCodec.writePNG(image, to: folder.appendingPathComponent(String(format: "img%03d.png", i)))
        }
        let start = Date()
        let r = try cytocl(["dataset", "inspect", data.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(start), 60)
        let warnings = r.stdout.split(separator: "\n").filter { $0.hasPrefix("warning: near-duplicates:") }
        XCTAssertEqual(warnings.count, 1, r.stdout)
        XCTAssertTrue(r.stdout.contains("): 2 group(s), 120 images"), r.stdout)
    }
}
