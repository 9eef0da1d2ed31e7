import CytoCore
import Foundation
import XCTest

/// The one atomic writer: nothing half-written, no temporary left on failure, and
/// temporaries of killed processes cleaned by the next run.
final class AtomicFileTests: XCTestCase {
    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-atomic-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func names() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() }

    /// A pid that belonged to a process that has exited.
    func deadPid() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        return p.processIdentifier
    }

    func testFailedWriteKeepsTheOldFileAndLeavesNoTemporary() throws {
        let target = dir.appendingPathComponent("model.safetensors")
        try writeAtomically(Data("old".utf8), to: target)
        struct Boom: Error {}
        XCTAssertThrowsError(
            try AtomicFile.write(to: target) { fd, _ in
                _ = "partial".withCString { write(fd, $0, 7) }
                throw Boom()
            })
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "old")
        XCTAssertEqual(names(), ["model.safetensors"], "the temporary file is removed on failure")
        try writeAtomically(Data("new".utf8), to: target)
        XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "new")
        XCTAssertEqual(names(), ["model.safetensors"])
    }

    func testStaleTemporariesOfDeadProcessesAreRemoved() throws {
        let dead = try deadPid()
        let host = AtomicFile.hostTag
        let staleNew = ".model.safetensors.tmp-\(dead)-\(host)-1a2b"
        let staleOld = ".cache.u8cache.tmp-\(dead)-12345"  // the name format before host tags
        let live = ".history.csv.tmp-\(getppid())-\(host)-77"  // our parent is alive
        let foreign = ".cells.json.tmp-\(dead)-0badc0de-9"  // another host: kept while recent
        let unrelated = "notes.tmp-1-2"
        for n in [staleNew, staleOld, live, foreign, unrelated] {
            XCTAssertTrue(FileManager.default.createFile(atPath: dir.appendingPathComponent(n).path, contents: Data("x".utf8)))
        }
        let removed = AtomicFile.removeStaleTemporaries(in: dir).map { ($0 as NSString).lastPathComponent }.sorted()
        XCTAssertEqual(removed, [staleOld, staleNew].sorted())
        XCTAssertEqual(names(), [foreign, live, unrelated].sorted())
        // A foreign host's temporary is removed once it has not been written for a long time.
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(in: dir, foreignAfter: -1).map { ($0 as NSString).lastPathComponent }, [foreign])
    }

    func testPreflightNamesTheOutputThatCannotBeWritten() throws {
        let file = dir.appendingPathComponent("plain-file")
        try writeAtomically(Data("x".utf8), to: file)
        XCTAssertThrowsError(try AtomicFile.preflight([file.appendingPathComponent("model.safetensors")])) { e in
            XCTAssertTrue("\(e)".contains(file.path), "\(e)")
        }
        let folderInTheWay = dir.appendingPathComponent("run/history.csv")
        try FileManager.default.createDirectory(at: folderInTheWay, withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.preflight([folderInTheWay])) { e in
            XCTAssertEqual("\(e)", folderInTheWay.path + ": is a directory; cannot write the output file there (move the folder away or choose another path)")
        }
        let fine = dir.appendingPathComponent("new/deeper/model.safetensors")
        XCTAssertNoThrow(try AtomicFile.preflight([fine]))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: fine.deletingLastPathComponent().path), [],
            "the probe file is removed")
    }

    /// `train` on a full disk trained to the end and then could not write its model: the
    /// free space is checked before the work, and the folders a refused command created
    /// are removed while empty (never one with anything in it).
    func testAFullDiskIsFoundBeforeTheWorkAndRefusedRunsLeaveNoFolders() throws {
        XCTAssertNoThrow(try AtomicFile.requireFreeSpace(1, in: dir, for: "the model"))
        XCTAssertThrowsError(try AtomicFile.requireFreeSpace(1 << 62, in: dir, for: "the model and its history")) { e in
            let line = "\(e)"
            XCTAssertTrue(line.hasPrefix("\(dir.path): the disk holding it has "), line)
            XCTAssertTrue(
                line.hasSuffix("free, and the model and its history need about 4.0 EiB (4611686018427387904 B); free some space or choose another folder"), line)
        }
        let run = dir.appendingPathComponent("runs/a/b")
        let created = OSPath.missingFolders(run)
        XCTAssertEqual(created.map(\.lastPathComponent), ["b", "a", "runs"])
        try OSPath.createDirectories(run.path)
        try Data("x".utf8).write(to: dir.appendingPathComponent("runs/note.txt"))
        OSPath.removeEmptyFolders(created)
        XCTAssertEqual(names(), ["runs"], "a folder holding a file is kept")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/runs"), ["note.txt"])
    }

    func testFoundationErrorsBecomeOneLineWithThePath() {
        let missing = dir.appendingPathComponent("absent.json")
        do { _ = try Data(contentsOf: missing); XCTFail("read a missing file") } catch {
            let text = describeFileError(error)
            XCTAssertTrue(text.contains(missing.path), text)
            XCTAssertFalse(text.contains("NSCocoaErrorDomain"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }
}
