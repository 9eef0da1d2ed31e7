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
    }
}
