import CytoData
import Foundation
import XCTest

@testable import CytoLabel

/// The labels file behind the labelling page: every change lands, outside edits are
/// kept, a broken file is never overwritten, and no request reaches a file outside the pool.
final class LabelStoreTests: XCTestCase {
    var dir: URL!
    var poolFolder: URL { dir.appendingPathComponent("pool") }
    var labelsURL: URL { dir.appendingPathComponent("labels.csv") }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-label-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: poolFolder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for name in ["a.png", "b.png", "c.png", "sub/d.png"] + (0..<40).map({ "n\($0).png" }) {
            try Data([1, 2, 3]).write(to: poolFolder.appendingPathComponent(name))
        }
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func makePool() throws -> LabelPool {
        let ids = try FileManager.default.subpathsOfDirectory(atPath: poolFolder.path).filter { $0.hasSuffix(".png") }
        return try LabelPool(folder: poolFolder.path, ids: ids)
    }

    func fileText() throws -> String { try String(contentsOf: labelsURL, encoding: .utf8) }

    /// Rows added in an editor while the page runs stay; the page's own change is applied
    /// on top of the file as it is now, and the page is told the file changed.
    func testChangesMergeWithOutsideEdits() throws {
        let store = try LabelStore(file: labelsURL, pool: makePool())
        XCTAssertNil(try store.set("a.png", to: "blast").previous)
        XCTAssertEqual(try fileText(), "path,label\na.png,blast\n")
        try (try fileText() + "b.png,other\n# checked by hand\n").write(to: labelsURL, atomically: false, encoding: .utf8)
        let change = try store.set("sub/d.png", to: "blast")
        XCTAssertEqual(change.snapshot.labels, ["a.png": "blast", "b.png": "other", "sub/d.png": "blast"])
        XCTAssertEqual(change.snapshot.outsideEdit, "labels.csv was changed outside the page; its rows are kept")
        XCTAssertEqual(try fileText(), "path,label\na.png,blast\nb.png,other\n# checked by hand\nsub/d.png,blast\n")
        // Relabelling replaces the row in place; `./` and absolute forms name the same image.
        try (try fileText() + "./c.png,other\n").write(to: labelsURL, atomically: false, encoding: .utf8)
        XCTAssertEqual(try store.set("c.png", to: "blast").previous, "other")
        XCTAssertEqual(try store.set("b.png", to: nil).previous, "other")
        XCTAssertEqual(try fileText(), "path,label\na.png,blast\n# checked by hand\nsub/d.png,blast\nc.png,blast\n")
        XCTAssertNil(try store.read().outsideEdit)
        // What the page writes is what `train --labels` reads.
        let rows = try LabelsFile.rows(text: try fileText(), labelsFile: labelsURL.path).filter(\.isData)
        XCTAssertEqual(rows.map(\.fields), [["a.png", "blast"], ["sub/d.png", "blast"], ["c.png", "blast"]])
    }

    /// A row whose path is relative to the labels file's folder (`pool/b.png` in a file
    /// beside the pool, which `train --labels` and `suggest --labels` read) names its
    /// image: the page neither calls it a file outside the pool nor writes a second,
    /// contradicting row for it (which `train` then refused).
    func testRowsRelativeToTheLabelsFileNameTheirImage() throws {
        try "path,label\npool/b.png,other\n\(poolFolder.path)/sub/d.png,blast\n".write(
            to: labelsURL, atomically: false, encoding: .utf8)
        let store = try LabelStore(file: labelsURL, pool: makePool())
        XCTAssertEqual(try store.read().labels, ["b.png": "other", "sub/d.png": "blast"])
        XCTAssertEqual(try store.read().outsidePool, [])
        XCTAssertEqual(try store.set("b.png", to: "blast").previous, "other")
        XCTAssertEqual(try fileText(), "path,label\nb.png,blast\n\(poolFolder.path)/sub/d.png,blast\n")
        // A store whose labels file sits elsewhere reads `pool/b.png` as no image of the pool.
        let elsewhere = dir.appendingPathComponent("other/labels.csv")
        try FileManager.default.createDirectory(at: elsewhere.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "path,label\npool/b.png,other\n".write(to: elsewhere, atomically: false, encoding: .utf8)
        XCTAssertEqual(try LabelStore(file: elsewhere, pool: makePool()).read().outsidePool, ["pool/b.png"])
    }

    /// A file that no longer reads as a labels file is never overwritten: the change is
    /// refused with the line that is wrong, and the file keeps its bytes.
    func testBrokenFileIsRefusedNotOverwritten() throws {
        let store = try LabelStore(file: labelsURL, pool: makePool())
        try store.set("a.png", to: "blast")
        let broken = "path,label\na.png,blast\nb.png\n"
        try broken.write(to: labelsURL, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try store.set("c.png", to: "other")) { e in
            XCTAssertTrue(e is LabelFileConflict, "\(e)")
            XCTAssertTrue("\(e)".contains("labels.csv:3: expected 'path,label', found 'b.png'"), "\(e)")
        }
        let contradicting = "path,label\na.png,blast\n./a.png,other\n"
        try contradicting.write(to: labelsURL, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try store.set("c.png", to: "other")) { e in
            XCTAssertTrue("\(e)".contains("labels.csv:3: './a.png' is labelled 'blast' on line 2 and 'other' here"), "\(e)")
        }
        XCTAssertEqual(try fileText(), contradicting)
        // Replaced by a folder while the page runs: said in words (was "I/O error 256").
        try FileManager.default.removeItem(at: labelsURL)
        try FileManager.default.createDirectory(at: labelsURL, withIntermediateDirectories: false)
        XCTAssertThrowsError(try store.set("c.png", to: "other")) { e in
            XCTAssertTrue("\(e)".hasSuffix("labels.csv: is a folder now, not a labels file; the page saves nothing until it is a file again"), "\(e)")
        }
    }

    /// A named pipe or a device as the labels file (`--labels /dev/null`, a FIFO left by a
    /// script): refused as such at the start, never read or replaced; it read "permission
    /// denied".
    func testAPipeOrADeviceIsRefusedAsNotAFile() throws {
        let fifo = dir.appendingPathComponent("labels.fifo")
        XCTAssertEqual(mkfifo(fifo.path, 0o644), 0)
        XCTAssertThrowsError(try LabelStore(file: fifo, pool: makePool())) { e in
            XCTAssertTrue("\(e)".hasSuffix("labels.fifo: is a named pipe (FIFO), not a labels file; the page rewrites its labels file after every label, so give a file"), "\(e)")
        }
        XCTAssertThrowsError(try LabelStore(file: URL(fileURLWithPath: "/dev/null"), pool: makePool())) { e in
            XCTAssertTrue("\(e)".contains("/dev/null: is a device or another special file, not a labels file"), "\(e)")
        }
        var st = stat()
        XCTAssertEqual(stat(fifo.path, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO, "the pipe is left as it was")
    }

    /// Files as Excel saves them. A byte-order mark is not part of the first path (the
    /// page used to count that row as naming no image, insert its header above the mark
    /// and list the image a second time, which `train --labels` then refused) and is
    /// kept on rewriting; a Latin-1 file is refused, not rewritten with U+FFFD in place
    /// of its `é`; a semicolon file (Excel where the decimal mark is a comma) is read.
    func testExcelSavedFilesAreReadAsTrainReadsThem() throws {
        let bom = Data([0xEF, 0xBB, 0xBF])
        try (bom + Data("a.png,blast\r\nb.png,other\r\n".utf8)).write(to: labelsURL)
        let store = try LabelStore(file: labelsURL, pool: makePool())
        XCTAssertEqual(try store.read().labels, ["a.png": "blast", "b.png": "other"])
        XCTAssertEqual(try store.read().outsidePool, [])
        XCTAssertEqual(try store.set("a.png", to: "other").previous, "blast")
        let written = try Data(contentsOf: labelsURL)
        XCTAssertEqual(written, bom + Data("path,label\na.png,other\nb.png,other\n".utf8))
        let rows = try LabelsFile.rows(text: String(decoding: written.dropFirst(3), as: UTF8.self), labelsFile: labelsURL.path)
            .filter(\.isData)
        XCTAssertEqual(rows.map(\.fields), [["a.png", "other"], ["b.png", "other"]])

        let latin1 = Data("path,label\na.png,".utf8) + Data([0xE9]) + Data("osinophil\n".utf8)
        try latin1.write(to: labelsURL)
        XCTAssertThrowsError(try store.set("c.png", to: "other")) { e in
            XCTAssertTrue("\(e)".contains("labels.csv: not UTF-8 text (byte 17 is not part of a UTF-8 character; Excel's \"CSV (Comma delimited)\" writes the Windows code page: save as \"CSV UTF-8 (Comma delimited)\")"), "\(e)")
        }
        XCTAssertEqual(try Data(contentsOf: labelsURL), latin1)

        try "path;label\r\na.png;blast\r\n\r\n".write(to: labelsURL, atomically: false, encoding: .utf8)
        XCTAssertEqual(try store.set("c.png", to: "other").snapshot.labels, ["a.png": "blast", "c.png": "other"])
        XCTAssertEqual(try fileText(), "path,label\na.png,blast\n\nc.png,other\n")
    }

    /// Excel's "Unicode Text" save (UTF-16 LE with a byte-order mark, tab-separated, CRLF)
    /// is read like any labels file, and a change rewrites it as UTF-8 with a byte-order
    /// mark and commas, keeping every label (non-ASCII ones too), comment and blank row.
    func testAUTF16FileIsReadAndRewrittenAsUTF8KeepingEveryLabel() throws {
        let text = "path\tlabel\r\na.png\tÉosinophile\r\n# vérifié\r\n\r\nb.png\tblast 😀\r\n"
        try Data([0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }).write(to: labelsURL)
        let store = try LabelStore(file: labelsURL, pool: makePool())
        XCTAssertEqual(try store.read().labels, ["a.png": "Éosinophile", "b.png": "blast 😀"])
        XCTAssertEqual(try store.set("c.png", to: "blast 😀").previous, nil)
        let written = try Data(contentsOf: labelsURL)
        XCTAssertEqual(
            written,
            Data([0xEF, 0xBB, 0xBF]) + Data("path,label\na.png,Éosinophile\n# vérifié\n\nb.png,blast 😀\nc.png,blast 😀\n".utf8))
        XCTAssertEqual(try store.read().labels, ["a.png": "Éosinophile", "b.png": "blast 😀", "c.png": "blast 😀"])
    }

    /// An undo takes back only the label it set: one that another tab or an editor
    /// changed meanwhile stays.
    func testUndoLeavesALabelChangedElsewhere() throws {
        let store = try LabelStore(file: labelsURL, pool: makePool())
        try store.set("a.png", to: "blast")
        try store.set("a.png", to: "other")
        XCTAssertThrowsError(try store.set("a.png", to: nil, expecting: "blast")) { e in
            XCTAssertTrue("\(e)".contains("now labelled 'other'"), "\(e)")
        }
        XCTAssertEqual(try store.read().labels, ["a.png": "other"])
        try store.set("a.png", to: nil, expecting: "other")
        XCTAssertEqual(try store.read().labels, [:])
    }

    /// Request paths: only images of the pool, never `..`, absolute paths or a link out.
    func testPathsOutsideThePoolAreRefused() throws {
        let outside = dir.appendingPathComponent("secret.png")
        try Data([9]).write(to: outside)
        try FileManager.default.createSymbolicLink(
            at: poolFolder.appendingPathComponent("link.png"), withDestinationURL: outside)
        let pool = try makePool()
        XCTAssertEqual(try pool.resolve("sub/d.png"), poolFolder.path + "/sub/d.png")
        let cases = [
            ("../secret.png", "leaves the pool"), ("sub/../../secret.png", "leaves the pool"),
            (outside.path, "is an absolute path"), ("missing.png", "is not an image of the pool"),
            ("link.png", "leads outside the pool"), ("", "no image path given"),
        ]
        for (path, reason) in cases {
            XCTAssertThrowsError(try pool.resolve(path), path) { e in
                XCTAssertTrue(e is LabelRequestError && "\(e)".contains(reason), "\(path): \(e)")
            }
        }
        let store = try LabelStore(file: labelsURL, pool: pool)
        XCTAssertThrowsError(try store.set("../secret.png", to: "blast"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: labelsURL.path))
    }

    /// Changes from many threads and two stores on one file (two tabs; two servers) all land.
    func testConcurrentChangesAllLand() throws {
        let pool = try makePool()
        let stores = [try LabelStore(file: labelsURL, pool: pool), try LabelStore(file: labelsURL, pool: pool)]
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            _ = try? stores[i % 2].set("n\(i).png", to: i % 3 == 0 ? "blast" : "other")
        }
        let labels = try stores[0].read().labels
        XCTAssertEqual(labels.count, 40)
        XCTAssertEqual(labels["n9.png"], "blast")
        XCTAssertEqual(labels["n10.png"], "other")
    }
}
