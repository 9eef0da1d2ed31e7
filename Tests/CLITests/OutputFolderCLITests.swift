import CytoTestSupport
import Foundation
import XCTest

/// Folders the sweep-like commands write into: a user's folder that is not a sweep is
/// refused before anything is written, and `plan`'s throw-away sweep does not outlive
/// a Ctrl-C.
final class OutputFolderCLITests: XCTestCase {
    func cytocl(_ args: [String], env: [String: String] = [:]) throws -> ProcessOutput { try CLITests.run(args, env: env) }

    func synth(_ dir: URL) throws -> String {
        let data = dir.appendingPathComponent("data").path
        let s = try cytocl(["synth", "--out", data, "--layout", "all-idb", "--count", "60", "--size", "16", "--seed", "3"])
        XCTAssertEqual(s.status, 0, s.stderr)
        return data
    }

    /// Starts `cytocl plan ARGS` in the background with TMPDIR = `tmp` (where its
    /// throw-away sweep goes), output discarded.
    func startPlan(_ args: [String], tmp: URL) throws -> Process {
        let p = Process()
        p.executableURL = CLITests.binary
        p.arguments = ["plan"] + args
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = tmp.path
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// `sweep --out ~/Documents` wrote sweep.json and cells/ among the user's files.
    func testSweepAndPlanRefuseAFolderThatIsNotASweep() throws {
        let dir = tempDir("foreign-out")
        let data = try synth(dir)
        let mine = dir.appendingPathComponent("Documents")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        try Data("thesis".utf8).write(to: mine.appendingPathComponent("thesis.tex"))
        let sweep = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", mine.path, "--sizes", "4", "--folds", "3",
            "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "1", "--backend", "cpu",
        ])
        XCTAssertEqual(sweep.status, 1, sweep.stderr)
        XCTAssertEqual(
            sweep.stderr.split(separator: "\n").last.map(String.init),
            "Error: --out \(mine.path): not a sweep folder (no sweep.json) and not empty (1 entry: thesis.tex); "
                + "give a new or empty folder, or a sweep's folder to resume it")
        let plan = try cytocl(["plan", "--data", data, "--keep", mine.path, "--input", "16x16", "--conv", "4", "--dense", "4", "--devices", "cpu"])
        XCTAssertEqual(plan.status, 1, plan.stderr)
        XCTAssertTrue(plan.stderr.contains("Error: --keep \(mine.path): not a sweep folder"), plan.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: mine.path), ["thesis.tex"], "nothing was written")

        // An empty folder (or one a refused first run left with cells/) is fine.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty.appendingPathComponent("cells"), withIntermediateDirectories: true)
        let ok = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", empty.path, "--sizes", "4", "--folds", "3",
            "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "1", "--backend", "cpu", "--near-duplicates", "off",
        ])
        XCTAssertEqual(ok.status, 0, String(ok.stderr.suffix(600)))
        XCTAssertTrue(FileManager.default.fileExists(atPath: empty.appendingPathComponent("sweep.json").path))
    }

    /// A refused first run left the `OUT/cells/` its output preflight made: with `--out`
    /// inside a class-folder data set, the next run read it as an empty class.
    func testARefusedFirstSweepLeavesNoFolders() throws {
        let dir = tempDir("refused-first")
        let data = dir.appendingPathComponent("six").path
        XCTAssertEqual(try cytocl(["synth", "--out", data, "--layout", "folders", "--count", "18", "--size", "32"]).status, 0)
        let out = data + "/sweeps/one"
        let r = try cytocl([
            "sweep", "--protocol", "custom", "--data", data, "--out", out, "--metric", "roc_auc",
            "--input", "32x32", "--conv", "4", "--dense", "4", "--sizes", "6", "--folds", "3",
        ])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("needs exactly two classes"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: data + "/sweeps"), "the refused run left its folders in the data set")
        let inspect = try cytocl(["dataset", "inspect", data])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertFalse(inspect.stdout.contains("sweeps"), inspect.stdout)
    }

    /// Ctrl-C during `plan` left its throw-away sweep (cached images, models) in the
    /// temporary folder, one per interrupted plan.
    func testAnInterruptedPlanRemovesItsTemporarySweep() throws {
        let dir = tempDir("plan-interrupt")
        let data = try synth(dir)
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let p = try startPlan([
            "--data", data, "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "400", "--patience", "400",
            "--folds", "3", "--sizes", "4,8,16", "--devices", "cpu", "--near-duplicates", "off",
        ], tmp: tmp)
        // Interrupt once the plan sweep has started writing cells.
        let deadline = Date().addingTimeInterval(60)
        func planFolders() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).filter { $0.hasPrefix("cytocl-plan-") }
        }
        while p.isRunning && Date() < deadline {
            if let f = planFolders().first, FileManager.default.fileExists(atPath: tmp.path + "/" + f + "/sweep.json") { break }
            usleep(20_000)
        }
        XCTAssertTrue(p.isRunning, "the plan ended before it could be interrupted; make it longer")
        XCTAssertFalse(planFolders().isEmpty, "the plan's sweep was not in TMPDIR")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 128 + SIGINT)
        XCTAssertEqual(planFolders(), [], "the interrupted plan left its sweep behind")
    }

    /// Ctrl-C while the plan's cells finish every few milliseconds: the handler's recursive
    /// remove raced the cells still being written (a folder no longer empty, `cells/`
    /// created again by the next record), and about one interrupted plan in two left a
    /// partial sweep (records, claims, no sweep.json) in the temporary folder.
    func testAPlanInterruptedWhileItsCellsFinishLeavesNothing() throws {
        let dir = tempDir("plan-interrupt-busy")
        let data = try synth(dir)
        let tmp = dir.appendingPathComponent("tmp")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        func leftovers() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? [] }
        var interrupted = 0
        for _ in 0..<3 {
            let p = try startPlan([
                "--data", data, "--input", "16x16", "--conv", "4", "--dense", "4", "--epochs", "1", "--patience", "1",
                "--folds", "3", "--sizes", "2:18:2", "--devices", "none", "--near-duplicates", "off", "--backend", "cpu",
            ], tmp: tmp)
            // Interrupt once cells are being recorded (a new one every few milliseconds).
            let deadline = Date().addingTimeInterval(60)
            while p.isRunning && Date() < deadline {
                let records = leftovers().first { $0.hasPrefix("cytocl-plan-") }.map {
                    ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path + "/" + $0 + "/cells")) ?? [])
                        .filter { $0.hasSuffix(".json") }
                }
                if (records?.count ?? 0) >= 2 { break }
                usleep(2_000)
            }
            kill(p.processIdentifier, SIGINT)
            p.waitUntilExit()
            if p.terminationStatus == 128 + SIGINT { interrupted += 1 }
            XCTAssertEqual(leftovers(), [], "an interrupted plan left (part of) its sweep behind")
        }
        XCTAssertGreaterThan(interrupted, 0, "every plan ended before it could be interrupted; make it longer")
    }
}
