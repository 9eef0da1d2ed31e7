import CytoCore
import CytoTestSupport
import Foundation
import XCTest

/// A hostile user's edits of a finished sweep: copies of a record under another name,
/// a record moved to another fold, and a resume on other images with the same names.
/// Each used to give a wrong number with exit 0; each is now one error line naming
/// the file (or the data), exit 1, and no report.
extension CLITests {
    func testCopiedEditedRecordsAndOtherPixelsAreRefused() throws {
        let data = dir.appendingPathComponent("D").path, other = dir.appendingPathComponent("D2").path
        XCTAssertEqual(try cytocl(["synth", "--out", data, "--count", "24", "--size", "65", "--seed", "3"]).status, 0)
        XCTAssertEqual(try cytocl(["synth", "--out", other, "--count", "24", "--size", "65", "--seed", "4"]).status, 0)
        func names(_ d: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: d).filter { !$0.hasPrefix(".") }.sorted()
        }
        XCTAssertEqual(try names(data), try names(other), "the same file names, other pixels")
        let out = dir.appendingPathComponent("S").path
        func sweep(_ d: String) -> [String] {
            [
                "sweep", "run", "--protocol", "all-idb-binary", "--data", d, "--out", out, "--sizes", "4", "--folds", "3",
                "--epochs", "2", "--patience", "2", "--input", "65x65", "--conv", "4,8,8", "--dense", "8", "--jobs", "1",
                "--backend", "cpu",
            ]
        }
        let first = try cytocl(sweep(data))
        XCTAssertEqual(first.status, 0, first.stderr)
        let cells = out + "/cells/"
        let fine = try cytocl(["report", out, "--no-explain"])
        XCTAssertEqual(fine.status, 0, fine.stderr)
        XCTAssertTrue(fine.stderr.contains("3 of 3 cells finished"), fine.stderr)

        // 1. A copy under a padded or signed name: refused by report and status, not "4 of 3".
        try FileManager.default.removeItem(atPath: out + "/report")
        for name in ["fold01-size4.json", "fold00-size4.json", "fold0-size004.json", "fold+0-size4.json", "fold0-size+4.json"] {
            try FileManager.default.copyItem(atPath: cells + "fold1-size4.json", toPath: cells + name)
            let report = try cytocl(["report", out, "--no-explain"])
            assertOneLineError(report, naming: cells + name)
            XCTAssertTrue(report.stderr.contains("not a record name the sweep writes"), report.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/report/summary.csv"), name)
            assertOneLineError(try cytocl(["sweep", "status", out]), naming: cells + name)
            try FileManager.default.removeItem(atPath: cells + name)
        }

        // 3. Fold 1's record over fold 0's, its fold set to 0: fold 1 would count twice.
        let original = try Data(contentsOf: URL(fileURLWithPath: cells + "fold0-size4.json"))
        var moved =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cells + "fold1-size4.json"))) as! [String: Any]
        moved["fold"] = 0
        try JSONSerialization.data(withJSONObject: moved).write(to: URL(fileURLWithPath: cells + "fold0-size4.json"))
        let report = try cytocl(["report", out, "--no-explain"])
        assertOneLineError(report, naming: cells + "fold0-size4.json")
        XCTAssertTrue(report.stderr.contains("test images are not fold 0's"), report.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/report/summary.csv"))
        try original.write(to: URL(fileURLWithPath: cells + "fold0-size4.json"))

        // 2. Resuming on other images under the same names: refused before any cell runs.
        let mixed = try cytocl(sweep(other))
        assertOneLineError(mixed, naming: "refusing to mix sweeps")
        // The difference is on the error's own line (it was an indented line of its own).
        let mixedError = mixed.stderr.split(separator: "\n").first { $0.hasPrefix("Error: ") } ?? ""
        XCTAssertTrue(mixedError.contains("the same 24 file names and classes, but other image contents"), mixed.stderr)
        XCTAssertFalse(mixed.stderr.contains("ran "), mixed.stderr)
        let after = try cytocl(["report", out, "--no-explain"])
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertTrue(after.stderr.contains("3 of 3 cells finished"), after.stderr)
    }

    /// A sweep refused for a bad option leaves no `sweep.json` (nor invocation.json), so
    /// the corrected command runs; each of these used to be found after `sweep.json` was
    /// written, and a refused --batch then refused the rerun as "made with other settings".
    func testRefusedSweepLeavesNothingThatRefusesTheCorrectedRun() throws {
        let data = dir.appendingPathComponent("D").path, out = dir.appendingPathComponent("S").path
        XCTAssertEqual(try cytocl(["synth", "--out", data, "--count", "24", "--size", "65", "--seed", "3"]).status, 0)
        let args = [
            "sweep", "run", "--protocol", "all-idb-binary", "--data", data, "--out", out, "--sizes", "4", "--folds", "3",
            "--epochs", "1", "--patience", "1", "--input", "65x65", "--conv", "4,8,8", "--dense", "8", "--backend", "cpu",
        ]
        let usage: [([String], String)] = [
            (["--devices", "cpu*0"], "--devices"), (["--devices", "gpu"], "--devices"), (["--jobs", "0"], "--jobs"),
            (["--devices", "cpu", "--jobs", "2"], "--devices or --jobs"), (["--threads", "0"], "--threads"),
            (["--slurm", "--dry-run", "--slurm-args", "'--partition=gpu"], "unbalanced quote"),
            (["--slurm", "--dry-run", "--tasks", "0"], "--tasks"), (["--conv", "4,0"], "--conv"),
            (["--near-duplicate-threshold", "2"], "--near-duplicate-threshold"),
        ]
        for (extra, what) in usage {
            let r = try cytocl(args + extra)
            XCTAssertEqual(r.status, 64, "\(extra): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(what), "\(extra): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("caching"), "\(extra) was refused only after the data was read: \(r.stderr)")
            for f in ["sweep.json", "invocation.json"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/" + f), "\(extra) left \(f) behind")
            }
        }
        // A batch that cannot fit in memory is known only with the backends: still before sweep.json.
        let big = try cytocl(args + ["--batch", "1000000", "--jobs", "1"])
        XCTAssertEqual(big.status, 1, big.stderr)
        XCTAssertTrue(big.stderr.contains("use a smaller batch"), big.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/sweep.json"), "--batch 1000000 left sweep.json behind")
        let fixed = try cytocl(args + ["--jobs", "1"])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertTrue(fixed.stdout.contains("3 of 3 cells finished"), fixed.stdout)
        let inv = try String(contentsOfFile: out + "/invocation.json", encoding: .utf8)
        XCTAssertFalse(inv.contains("1000000"), inv)
    }

    /// Three sweeps with other seeds started at once into one new folder: exactly one
    /// goes on, the others are refused before any cell runs, and the folder holds the
    /// winner's sweep.json and only its cells. (Both used to exit 0, leaving one run's
    /// sweep.json beside the other's cells.)
    func testConcurrentSweepsIntoOneNewFolderLetOneWin() throws {
        let data = try synth("D", count: 24, size: 65, seed: 3)
        let args = [
            "sweep", "run", "--protocol", "all-idb-binary", "--data", data, "--sizes", "4", "--folds", "3",
            "--epochs", "1", "--patience", "1", "--input", "65x65", "--conv", "4,8,8", "--dense", "8", "--backend", "cpu",
            "--jobs", "1", "--near-duplicates", "off", "--shard", "0/3",
        ]
        // The cache is built once, so that the runs reach sweep.json together.
        XCTAssertEqual(try cytocl(args + ["--out", dir.appendingPathComponent("warm").path]).status, 0)
        for attempt in 1...2 {
            let out = dir.appendingPathComponent("S\(attempt)").path
            let seeds = [11, 12, 13]
            let script =
                seeds.map { seed in
                    ([Self.binary.path] + args + ["--out", out, "--seed", "\(seed)"]).map { "'" + $0 + "'" }.joined(separator: " ")
                        + " >/dev/null 2>\(out)-\(seed).err & p\(seed)=$!"
                }.joined(separator: "\n") + "\n" + seeds.map { "wait $p\($0); echo \($0) $?" }.joined(separator: "\n")
            let r = try cytocl(["-c", script], shell: true)
            var status: [Int: Int] = [:]
            for line in r.stdout.split(separator: "\n") {
                let f = line.split(separator: " ").compactMap { Int($0) }
                if f.count == 2 { status[f[0]] = f[1] }
            }
            XCTAssertEqual(status.count, 3, r.stdout + r.stderr)
            let winners = status.filter { $0.value == 0 }.map(\.key)
            XCTAssertEqual(winners.count, 1, "attempt \(attempt): exit statuses \(status)")
            for (seed, code) in status where code != 0 {
                let err = try String(contentsOfFile: "\(out)-\(seed).err", encoding: .utf8)
                XCTAssertEqual(code, 1, err)
                XCTAssertTrue(err.contains("refusing to mix sweeps"), err)
                XCTAssertTrue(err.contains("seed: the directory has "), err)
            }
            guard let winner = winners.first else { continue }
            let manifest =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/sweep.json"))) as? [String: Any]
            XCTAssertEqual(manifest?["seed"] as? Int, winner, "sweep.json is not the run that went on")
            let st = try cytocl(["sweep", "status", out])
            XCTAssertEqual(st.status, 0, st.stderr)
            XCTAssertTrue(st.stdout.contains("done 1, running 0, stale 0, failed 0, diverged 0, corrupt 0, missing 2"), st.stdout)
        }
    }

    /// `sweep retry`, `status` and `report` work on the folder named, wherever the sweep
    /// was moved or copied: a retry of a moved sweep used to recreate the old folder
    /// with one cell, one of a copy to redo the original's cells.
    /// A sweep folder moved while the sweep ran in it: the run recreated `OLD/cells` (every
    /// write creates missing folders) and went on writing records there, so the cells were
    /// split between the moved folder and a new one without sweep.json, and it exited 0
    /// ("15 of 20 cells finished"). Now it stops, writes nothing at the old path, exit 1.
    func testSweepFolderMovedWhileRunningIsNotRecreated() throws {
        let data = try synth("D", count: 40, size: 64, seed: 3)
        let out = dir.appendingPathComponent("S").path, moved = dir.appendingPathComponent("S-moved").path
        let p = try TestProcess.startInBackground(
            Self.binary,
            [
                "sweep", "--protocol", "custom", "--data", data, "--out", out, "--sizes", "6,8,10,12", "--folds", "5",
                "--epochs", "8", "--patience", "8", "--input", "64x64", "--conv", "4,8", "--dense", "8", "--jobs", "1",
                "--near-duplicates", "off",
            ])
        // Move the folder as soon as the first cell is recorded.
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: out + "/cells")) ?? []
            if names.contains(where: { $0.hasSuffix(".json") && !$0.contains("error") }) { break }
            usleep(20_000)
        }
        XCTAssertTrue(p.isRunning, "the sweep finished before the folder could be moved; make it longer")
        try FileManager.default.moveItem(atPath: out, toPath: moved)
        let ended = try p.finish()
        let stderr = ended.stderr
        XCTAssertEqual(ended.status, 1, stderr)
        XCTAssertTrue(stderr.contains("the sweep folder was moved or removed while this run was in it"), stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "the old path was recreated")
        let status = try cytocl(["sweep", "status", moved])
        XCTAssertEqual(status.status, 0, status.stderr)
        XCTAssertFalse(status.stdout.contains("done 20"), status.stdout)
    }

    func testRetryWorksOnTheFolderNamedAfterAMoveOrACopy() throws {
        let data = try synth("D", count: 24, size: 65, seed: 3)
        let orig = dir.appendingPathComponent("orig").path, moved = dir.appendingPathComponent("moved").path
        let copy = dir.appendingPathComponent("copy").path
        let first = try cytocl([
            "sweep", "run", "--protocol", "all-idb-binary", "--data", data, "--out", orig, "--sizes", "4", "--folds", "3",
            "--epochs", "1", "--patience", "1", "--input", "65x65", "--conv", "4,8,8", "--dense", "8", "--backend", "cpu",
            "--jobs", "1",
        ])
        XCTAssertEqual(first.status, 0, first.stderr)
        let recorded = try String(contentsOfFile: orig + "/invocation.json", encoding: .utf8)
        XCTAssertFalse(recorded.contains("\"--out\""), "the sweep's own path is not recorded: \(recorded)")

        // Moved, one record lost: the retry redoes it in the new place, and nothing appears at the old one.
        try FileManager.default.moveItem(atPath: orig, toPath: moved)
        try FileManager.default.removeItem(atPath: moved + "/cells/fold1-size4.json")
        let status = try cytocl(["sweep", "status", moved])
        XCTAssertTrue(status.stdout.hasPrefix(moved + ": "), status.stdout)
        XCTAssertTrue(status.stdout.contains("missing  fold 1 size 4"), status.stdout)
        let retry = try cytocl(["sweep", "retry", moved])
        XCTAssertEqual(retry.status, 0, retry.stderr)
        XCTAssertTrue(retry.stdout.contains(moved + ": 3 of 3 cells finished"), retry.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orig), "the retry recreated the old folder")

        // Copied, a record lost in the copy: the copy is redone, the moved original untouched.
        try FileManager.default.copyItem(atPath: moved, toPath: copy)
        try FileManager.default.removeItem(atPath: copy + "/cells/fold2-size4.json")
        let before = try Data(contentsOf: URL(fileURLWithPath: moved + "/cells/fold2-size4.json"))
        let retryCopy = try cytocl(["sweep", "retry", copy])
        XCTAssertEqual(retryCopy.status, 0, retryCopy.stderr)
        XCTAssertTrue(retryCopy.stdout.contains(copy + ": 3 of 3 cells finished"), retryCopy.stdout)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: moved + "/cells/fold2-size4.json")), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: moved + "/slurm").count, 1, "only the first retry's list")

        // An invocation.json of an older version, with the path the sweep had then: still the folder named.
        var old = try JSONSerialization.jsonObject(with: Data(recorded.utf8)) as! [String: Any]
        old["arguments"] = (old["arguments"] as! [String]) + ["--out", orig]
        try JSONSerialization.data(withJSONObject: old).write(to: URL(fileURLWithPath: copy + "/invocation.json"))
        try FileManager.default.removeItem(atPath: copy + "/cells/fold0-size4.json")
        let script = try cytocl(["sweep", "retry", copy, "--slurm", "--dry-run"])
        XCTAssertEqual(script.status, 0, script.stderr)
        let sbatch = try String(contentsOfFile: script.stdout.trimmingCharacters(in: .whitespacesAndNewlines), encoding: .utf8)
        XCTAssertTrue(sbatch.contains("--out \(copy) --cells-file \(copy)/slurm/retry-"), sbatch)
        XCTAssertTrue(sbatch.contains("#SBATCH --output=\(copy)/slurm/"), sbatch)
        XCTAssertFalse(sbatch.contains(orig) || sbatch.contains(moved), sbatch)
        let retryOld = try cytocl(["sweep", "retry", copy])
        XCTAssertEqual(retryOld.status, 0, retryOld.stderr)
        XCTAssertTrue(retryOld.stdout.contains(copy + ": 3 of 3 cells finished"), retryOld.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orig), "an old invocation.json's --out was written to")
        let report = try cytocl(["report", copy, "--no-explain"])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: copy + "/report/summary.csv"))
    }

    /// On a full disk (injected: every write under cells/ fails with ENOSPC) the cells
    /// fail and so do their error files: the sweep says so, with both errors, and does
    /// not point at `*.error.json` files that do not exist.
    func testFullDiskDoesNotPointAtErrorFilesItCouldNotWrite() throws {
        let data = dir.appendingPathComponent("D").path, out = dir.appendingPathComponent("S").path
        XCTAssertEqual(try cytocl(["synth", "--out", data, "--count", "24", "--size", "65", "--seed", "3"]).status, 0)
        let r = try cytocl(
            [
                "sweep", "run", "--protocol", "all-idb-binary", "--data", data, "--out", out, "--sizes", "4", "--folds", "3",
                "--epochs", "1", "--patience", "1", "--input", "65x65", "--conv", "4,8,8", "--dense", "8", "--backend", "cpu",
                "--jobs", "1", "--near-duplicates", "off",
            ], env: ["CYTOCL_FAULT": "write:/cells/"])
        XCTAssertEqual(r.status, 1, r.stderr)
        let last = r.stderr.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertTrue(
            last.hasPrefix("3 cells failed (fold 0 size 4: \(out)/cells/fold0-size4.json: cannot write: No space left on device"), last)
        XCTAssertTrue(
            last.contains(
                "none of their error files could be written (\(out)/cells/fold0-size4.error.json: cannot write: No space left on device"),
            last)
        XCTAssertFalse(r.stderr.contains("*.error.json"), r.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: out + "/cells")
        XCTAssertEqual(files.filter { $0.hasSuffix(".json") }, [], "\(files)")
        let st = try cytocl(["sweep", "status", out])
        XCTAssertTrue(st.stdout.contains("done 0, running 0, stale 0, failed 0, diverged 0, corrupt 0, missing 3"), st.stdout)
    }
}
