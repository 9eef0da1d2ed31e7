import CytoCPU
import CytoCore
import CytoTrain
import CytoSweep
import Foundation
import Synchronization
import XCTest

/// Creating a sweep folder is atomic: of several runs that all found the folder new,
/// one writes `sweep.json`; a run with other settings is then refused, one with the
/// same settings joins it.
final class SweepCreationTests: XCTestCase {
    /// The race of two `cytocl sweep` processes, step by step: both look (no sweep.json),
    /// then both create. The second used to replace the first's sweep.json and go on.
    func testRunsThatAllFoundTheFolderNewDoNotAllGoOn() throws {
        let dir = tempDir("create")
        let data = try SweepTests.data(count: 40)
        let a = try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 1, creating: false)
        let b = try SweepRunner(directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 2, creating: false)
        let same = try SweepRunner(
            directory: dir, protocol: SweepTests.tiny, data: data, spec: SweepTests.spec, seed: 1, creating: false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: SweepLayout(dir).manifestURL.path))
        try a.create()
        XCTAssertThrowsError(try b.create()) { error in
            XCTAssertTrue("\(error)".contains("refusing to mix sweeps"), "\(error)")
            XCTAssertTrue("\(error)".contains("seed: the directory has 1, this run has 2"), "\(error)")
        }
        XCTAssertFalse(b.isCreated)
        XCTAssertThrowsError(try b.run(backend: CPUBackend(threads: 1)), "a refused run must not train a cell")
        XCTAssertEqual(try loadSweepManifest(dir).seed, 1)
        XCTAssertEqual(try loadSweepManifest(dir), a.manifest)
        // The same settings join the sweep that won, with its manifest (its creation time).
        try same.create()
        XCTAssertEqual(same.manifest, a.manifest)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }, [])
    }

    /// Of many threads creating one file at once exactly one succeeds, the file holds
    /// its bytes whole, and no temporary file is left behind.
    func testCreateExclusivelyHasOneWinner() throws {
        let dir = tempDir("exclusive")
        let url = SweepLayout(dir).manifestURL
        let winners = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let payload = Data(String(repeating: "\(i % 10)", count: 100_000).utf8)
            if (try? AtomicFile.createExclusively(payload, at: url)) == true { winners.withLock { $0.append(i) } }
        }
        let w = winners.withLock { $0 }
        XCTAssertEqual(w.count, 1, "winners: \(w)")
        let bytes = try Data(contentsOf: url)
        XCTAssertEqual(bytes, Data(String(repeating: "\(w[0] % 10)", count: 100_000).utf8))
        XCTAssertFalse(try AtomicFile.createExclusively(Data("other".utf8), at: url))
        XCTAssertEqual(try Data(contentsOf: url), bytes, "an existing file is never replaced")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["sweep.json"])
    }
}
