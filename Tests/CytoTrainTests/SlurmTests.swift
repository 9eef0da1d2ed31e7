import CytoCore
import CytoData
import CytoTrain
import CytoSweep
import Foundation
import XCTest

/// Slurm job arrays: the script, status and retry pieces, and an integration test
/// against a real single-node Slurm on localhost (scripts/slurm-test-cluster).
final class SlurmTests: XCTestCase {
    func testSplitAndQuoteArguments() throws {
        XCTAssertEqual(
            try Slurm.splitArguments("--partition=gpu  --time=4:00:00 --gres=gpu:1"),
            ["--partition=gpu", "--time=4:00:00", "--gres=gpu:1"])
        XCTAssertEqual(try Slurm.splitArguments("-p 'long queue' --comment=\"a b\" x\\ y"), ["-p", "long queue", "--comment=a b", "x y"])
        XCTAssertThrowsError(try Slurm.splitArguments("--comment='open"))
        XCTAssertEqual(Slurm.shellQuote("/data/aml"), "/data/aml")
        XCTAssertEqual(Slurm.shellQuote("it's"), "'it'\\''s'")
    }

    func testScriptIsAJobArrayWithOneShardPerTask() {
        let s = Slurm.script(
            executable: "/opt/cytocl", arguments: ["sweep", "--protocol", "aml-binary", "--data", "/d a", "--out", "/s"],
            tasks: 4, sweep: URL(fileURLWithPath: "/s"), workingDirectory: "/home/u")
        XCTAssertTrue(s.hasPrefix("#!/bin/bash\n"))
        XCTAssertTrue(s.contains("#SBATCH --array=0-3\n"))
        XCTAssertTrue(s.contains("#SBATCH --output=/s/slurm/%A_%a.out"))
        XCTAssertTrue(s.contains("#SBATCH --chdir=/home/u"))
        XCTAssertTrue(
            s.contains("exec /opt/cytocl sweep --protocol aml-binary --data '/d a' --out /s --shard \"${SLURM_ARRAY_TASK_ID}/4\""), s)
    }

    func testInvocationDropsSchedulingOptions() {
        let args = [
            "sweep", "--protocol", "custom", "--slurm", "--slurm-args", "-p gpu", "--tasks=8", "--dry-run",
            "--shard", "1/4", "--cells-file", "x", "--out", "o",
        ]
        XCTAssertEqual(SweepInvocation.strippingScheduling(args), ["sweep", "--protocol", "custom", "--out", "o"])
        XCTAssertEqual(
            try CellList.parse(CellList.text([SweepCell(fold: 1, size: 20), SweepCell(fold: 0, size: 5)])),
            [SweepCell(fold: 1, size: 20), SweepCell(fold: 0, size: 5)])
    }

    /// A `--cells-file` written on Windows (CRLF), with a byte-order mark or without a
    /// final line break lists the same cells (CRLF used to be one unparsable line).
    func testCellListReadsEveryLineEnding() throws {
        let lines = ["# fold size", "1 20", "0 5"]
        let lf = lines.map { $0 + "\n" }.joined()
        let variants: [(String, [UInt8])] = [
            ("LF", Array(lf.utf8)),
            ("CRLF", Array(lines.map { $0 + "\r\n" }.joined().utf8)),
            ("BOM", [0xEF, 0xBB, 0xBF] + Array(lf.utf8)),
            ("no final newline", Array(lines.joined(separator: "\n").utf8)),
        ]
        for (name, bytes) in variants {
            XCTAssertEqual(
                try CellList.parse(String(decoding: bytes, as: UTF8.self)), [SweepCell(fold: 1, size: 20), SweepCell(fold: 0, size: 5)],
                name)
        }
        XCTAssertThrowsError(try CellList.parse("1 20\r\nx y\r\n")) { XCTAssertTrue("\($0)".contains("line 2 'x y'"), "\($0)") }
    }

    /// The recorded --out (of files written before it was left out) never decides where
    /// a retry writes; relative input paths need the recorded working directory.
    func testInvocationRunsInTheDirectoryNamed() throws {
        let old = SweepInvocation(
            arguments: ["sweep", "--protocol", "custom", "--out", "/old/place", "--data=/d", "--out=/older"],
            workingDirectory: "/no/such/dir", executable: "/opt/cytocl")
        XCTAssertEqual(
            old.arguments(for: URL(fileURLWithPath: "/new/place/./s")),
            ["sweep", "--protocol", "custom", "--data=/d", "--out", "/new/place/s"])
        XCTAssertEqual(try old.runDirectory(for: URL(fileURLWithPath: "/new/place/s")), "/new/place/s")
        XCTAssertEqual(SweepInvocation.recorded(["sweep", "--out", "s", "--shard", "0/2", "--data", "d"]), ["sweep", "--data", "d"])
        let relative = SweepInvocation(arguments: ["sweep", "--data", "cells"], workingDirectory: "/no/such/dir", executable: "/x")
        XCTAssertThrowsError(try relative.runDirectory(for: URL(fileURLWithPath: "/s"))) { error in
            XCTAssertTrue("\(error)".contains("/s/invocation.json"), "\(error)")
            XCTAssertTrue("\(error)".contains("--data cells is relative to it"), "\(error)")
        }
        let here = SweepInvocation(arguments: ["sweep", "--data", "cells"], workingDirectory: "/tmp", executable: "/x")
        XCTAssertEqual(try here.runDirectory(for: URL(fileURLWithPath: "/s")), "/tmp")
    }

    // MARK: integration

    var repoRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The `cytocl` executable built next to the test bundle.
    func cytocl() -> URL? {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let c = dir.appendingPathComponent("cytocl")
            if FileManager.default.isExecutableFile(atPath: c.path) { return c }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// Runs a program with posix_spawn and waitpid (stdout and stderr to files), so
    /// daemons it starts cannot keep the call waiting.
    @discardableResult
    func sh(
        _ exe: String, _ args: [String], env: [String: String] = [:], cwd: URL? = nil
    ) throws -> (status: Int32, out: String, err: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-slurm-test-\(UUID().uuidString)")
        let outFile = base.path + ".out", errFile = base.path + ".err"
        defer { unlink(outFile); unlink(errFile) }
        var line =
            "exec " + ([exe] + args).map(Slurm.shellQuote).joined(separator: " ") + " </dev/null >" + Slurm.shellQuote(outFile) + " 2>"
            + Slurm.shellQuote(errFile)
        if let cwd { line = "cd " + Slurm.shellQuote(cwd.path) + " && " + line }
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        let args3: [String] = ["/bin/bash", "-c", line]
        let argv: [UnsafeMutablePointer<CChar>?] = args3.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = e.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/bash", nil, nil, argv, envp)
        guard rc == 0 else { throw CytoError.io(path: exe, reason: "posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let out = (try? String(contentsOfFile: outFile, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
        return (code, out, err)
    }

    func testJobArrayMatchesALocalRun() throws {
        let env = ProcessInfo.processInfo.environment
        let ci = env["CI"] != nil
        let haveSlurm =
            FileManager.default.isExecutableFile(atPath: "/usr/bin/sbatch")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmctld")
        let canInstall = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")
        if !ci && !(getuid() == 0 && (haveSlurm || canInstall)) {
            throw XCTSkip("needs root and Slurm (or apt-get to install it); set CI to force")
        }
        guard let exe = cytocl() else {
            if ci { XCTFail("the cytocl executable is not built next to the tests") }
            throw XCTSkip("the cytocl executable is not built next to the tests")
        }
        let start = Date()
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-slurm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let cluster = tmp.appendingPathComponent("cluster")
        let script = repoRoot.appendingPathComponent("scripts/slurm-test-cluster").path
        addTeardownBlock {
            _ = try? self.sh("/bin/bash", [script, "stop", cluster.path])
            try? FileManager.default.removeItem(at: tmp)
        }
        let up = try sh("/bin/bash", [script, "start", cluster.path])
        guard up.status == 0 else {
            if !ci && up.status == 3 { throw XCTSkip("cannot install Slurm here: \(up.err)") }
            XCTFail("the test cluster did not start (\(up.status)): \(up.err)"); return
        }
        let slurmEnv = ["SLURM_CONF": cluster.appendingPathComponent("slurm.conf").path]

        let data = tmp.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .allIDB, count: 40, size: 64, seed: 5)
        let common = [
            "sweep", "--protocol", "custom", "--data", data.path, "--folds", "2", "--sizes", "4,8", "--val-per-fold", "4",
            "--epochs", "2", "--patience", "2", "--input", "64", "--conv", "4,8,8", "--dense", "16", "--seed", "3",
            "--backend", "cpu", "--threads", "1",
        ]
        let local = tmp.appendingPathComponent("local"), cluster4 = tmp.appendingPathComponent("slurm")
        let l = try sh(exe.path, common + ["--out", local.path])
        XCTAssertEqual(l.status, 0, l.err)
        let sub = try sh(
            exe.path, common + ["--out", cluster4.path, "--slurm", "--tasks", "4", "--slurm-args=--job-name=cytocl-test"],
            env: slurmEnv, cwd: tmp)
        XCTAssertEqual(sub.status, 0, sub.err)
        let job = sub.out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(Int(job), "sbatch job id, got '\(sub.out)'")
        let sbatch = try String(contentsOf: cluster4.appendingPathComponent("slurm/sweep.sbatch"), encoding: .utf8)
        XCTAssertTrue(sbatch.contains("#SBATCH --array=0-3"), sbatch)

        func waitDone(_ n: Int, _ dir: URL) throws {
            let deadline = Date().addingTimeInterval(40)
            while Date() < deadline {
                if try SweepStatus.scan(dir).cells("done").count == n { return }
                usleep(250_000)
            }
            let logs = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("slurm").path)) ?? []
            let text = logs.filter { $0.hasSuffix(".out") }.compactMap {
                try? String(contentsOf: dir.appendingPathComponent("slurm/\($0)"), encoding: .utf8)
            }
            XCTFail("the job array did not finish: \(try SweepStatus.scan(dir).text)\n\(text.joined(separator: "\n"))")
        }
        try waitDone(4, cluster4)
        let a = try loadSweepRecords(local), b = try loadSweepRecords(cluster4)
        XCTAssertEqual(a.count, 4)
        XCTAssertEqual(a.map(\.fileName), b.map(\.fileName))
        for (p, q) in zip(a, b) {
            XCTAssertEqual(p.trainIDs, q.trainIDs); XCTAssertEqual(p.validationIDs, q.validationIDs); XCTAssertEqual(p.testIDs, q.testIDs)
            XCTAssertEqual(p.seed, q.seed)
            XCTAssertEqual(p.epochsRun, q.epochsRun)
            XCTAssertEqual(p.value, q.value, accuracy: 1e-9, "\(p.fileName)")
            for (u, v) in zip(p.testProbabilities, q.testProbabilities) { XCTAssertEqual(u[1], v[1], accuracy: 1e-6) }
            XCTAssertNotNil(q.job, "records made under Slurm name their job")
        }
        XCTAssertEqual(Set(b.compactMap(\.job)).count, 4, "one array task per shard")

        // status and retry: a lost cell is resubmitted alone.
        try FileManager.default.removeItem(at: cluster4.appendingPathComponent("cells/fold1-size4.json"))
        let st = try sh(exe.path, ["sweep", "status", cluster4.path], env: slurmEnv)
        XCTAssertTrue(st.out.contains("done 3, running 0, stale 0, failed 0, diverged 0, corrupt 0, missing 1"), st.out)
        XCTAssertTrue(st.out.contains("missing  fold 1 size 4"), st.out)
        let re = try sh(exe.path, ["sweep", "retry", cluster4.path, "--slurm"], env: slurmEnv, cwd: tmp)
        XCTAssertEqual(re.status, 0, re.err)
        try waitDone(4, cluster4)
        let redone = try loadSweepRecords(cluster4).first { $0.fold == 1 && $0.size == 4 }
        XCTAssertEqual(redone?.value ?? -1, a.first { $0.fold == 1 && $0.size == 4 }!.value, accuracy: 1e-9)
        XCTAssertLessThan(Date().timeIntervalSince(start), 90)
    }
}
