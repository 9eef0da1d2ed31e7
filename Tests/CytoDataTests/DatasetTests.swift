import Foundation
import XCTest

@testable import CytoData

final class DatasetTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func touchPNG(_ url: URL, _ w: Int = 6) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try ImageCodec.writePNG(TestSupport.gradient(width: w, height: 6), to: url)
    }

    func testAllIDBDetectionAndLabels() throws {
        // As distributed: ALL_IDB2/img/ImNNN_L.tif; pointing at ALL_IDB2 descends into img.
        let img = dir.appendingPathComponent("ALL_IDB2/img")
        for (i, l) in [(1, 1), (2, 1), (3, 0), (4, 0), (5, 0)] {
            try ImageCodec.writeTIFF(
                TestSupport.gradient(width: 8, height: 8), to: img.appendingPathComponent(String(format: "Im%03d_%d.tif", i, l)))
        }
        TestSupport.write("readme", to: img.appendingPathComponent("notes.txt"))
        let (layout, root) = try DatasetLayout.detect(path: dir.appendingPathComponent("ALL_IDB2").path)
        XCTAssertEqual(layout, .allIDB)
        XCTAssertEqual(root, img.path)
        let idx = try DatasetIndex.load(path: dir.appendingPathComponent("ALL_IDB2").path)
        XCTAssertEqual(idx.classNames, ["other", "blast"])
        XCTAssertEqual(idx.counts, [3, 2])
        XCTAssertEqual(idx.items.first { $0.path.hasSuffix("Im001_1.tif") }?.label, 1)
        XCTAssertEqual(idx.items.first { $0.path.hasSuffix("Im004_0.tif") }?.label, 0)
        XCTAssertNil(DatasetLayout.allIDBLabel("Im01_2.tif"))
        XCTAssertNil(DatasetLayout.allIDBLabel("image_1.tif"))
    }

    func testAMLDetectionBinaryMappingAndClassSelection() throws {
        for cls in ["MYO", "MOB", "NGS", "LYT"] {
            for i in 0..<3 { try touchPNG(dir.appendingPathComponent("AML/\(cls)/\(cls)_\(i).tiff")) }
        }
        XCTAssertEqual(try DatasetLayout.detect(path: dir.appendingPathComponent("AML").path).layout, .aml)
        var idx = try DatasetIndex.load(path: dir.appendingPathComponent("AML").path)
        XCTAssertEqual(idx.layout, .aml)
        XCTAssertEqual(idx.classNames, ["LYT", "MOB", "MYO", "NGS"])  // AML order
        idx = try DatasetIndex.load(
            path: dir.appendingPathComponent("AML").path,
            options: DatasetOptions(positive: DatasetLayout.amlBlastClasses))
        XCTAssertEqual(idx.classNames, ["other", "blast"])
        XCTAssertEqual(idx.counts, [6, 6])
        XCTAssertEqual(Set(idx.items.filter { $0.label == 1 }.map(\.sourceClass)), ["MYO", "MOB"])
        idx = try DatasetIndex.load(path: dir.appendingPathComponent("AML").path, options: DatasetOptions(classes: ["NGS", "MYO"]))
        XCTAssertEqual(idx.classNames, ["NGS", "MYO"])
        XCTAssertEqual(idx.items.filter { $0.label == 0 }.count, 3)
        XCTAssertTrue(idx.items.filter { $0.label == 0 }.allSatisfy { $0.path.contains("/NGS/") })
        XCTAssertThrowsError(
            try DatasetIndex.load(
                path: dir.appendingPathComponent("AML").path,
                options: DatasetOptions(classes: ["XYZ"]))
        ) { e in
            XCTAssertTrue("\(e)".contains("XYZ"))
        }
    }

    func testFoldersCSVAndMinPerClass() throws {
        for (cls, n) in [("mono", 5), ("lympho", 4), ("rare", 2)] {
            for i in 0..<n { try touchPNG(dir.appendingPathComponent("set/\(cls)/nested/\(i).png")) }
        }
        TestSupport.write("x", to: dir.appendingPathComponent("set/mono/.hidden.png"))
        var idx = try DatasetIndex.load(path: dir.appendingPathComponent("set").path)
        XCTAssertEqual(idx.layout, .folders)
        XCTAssertEqual(idx.classNames, ["lympho", "mono", "rare"])
        XCTAssertEqual(idx.counts, [4, 5, 2])
        idx = try DatasetIndex.load(path: dir.appendingPathComponent("set").path, options: DatasetOptions(minPerClass: 4))
        XCTAssertEqual(idx.classNames, ["lympho", "mono"])
        idx = try DatasetIndex.load(path: dir.appendingPathComponent("set").path, options: DatasetOptions(positive: ["mono"]))
        XCTAssertEqual(idx.counts, [6, 5])

        // csv, with a header and a quoted path
        let m = dir.appendingPathComponent("set/labels.csv")
        TestSupport.write(
            "path,label\n\"mono/nested/0.png\",m\nmono/nested/1.png,m\nlympho/nested/0.png,l\n# comment\nlympho/nested/1.png,l\n", to: m)
        idx = try DatasetIndex.load(path: m.path)
        XCTAssertEqual(idx.layout, .csv)
        XCTAssertEqual(idx.classNames, ["l", "m"])
        XCTAssertEqual(idx.counts, [2, 2])
        // A folder whose only content is a manifest and image folders is still "folders"
        // unless the layout is given.
        idx = try DatasetIndex.load(path: dir.appendingPathComponent("set").path, options: DatasetOptions(layout: .csv))
        XCTAssertEqual(idx.layout, .csv)
        XCTAssertEqual(idx.items.count, 4)
    }

    /// A link back to an enclosing folder used to be followed until ELOOP, so every
    /// image of the class was counted about 40 times (615 images from 15) with exit 0.
    /// A link to a sibling folder is not a loop and is still followed.
    func testSymbolicLinkLoopIsRefusedNamingTheLink() throws {
        for cls in ["a", "b"] {
            for i in 0..<3 { try touchPNG(dir.appendingPathComponent("set/\(cls)/\(i).png")) }
        }
        let set = dir.appendingPathComponent("set")
        try FileManager.default.createSymbolicLink(atPath: set.appendingPathComponent("b/sibling").path, withDestinationPath: "../a")
        XCTAssertEqual(try DatasetIndex.load(path: set.path, options: DatasetOptions(dedupe: false)).counts, [3, 6])
        let loop = set.appendingPathComponent("b/nested/self")
        try FileManager.default.createDirectory(at: loop.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: loop.path, withDestinationPath: "..")
        XCTAssertThrowsError(try DatasetIndex.load(path: set.path, options: DatasetOptions(dedupe: false))) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("b/nested/self") && message.contains("loop"), message)
        }
    }

    func testDetectionFailsClearly() throws {
        try touchPNG(dir.appendingPathComponent("loose/a.png"))
        try touchPNG(dir.appendingPathComponent("loose/b.png"))
        XCTAssertThrowsError(try DatasetLayout.detect(path: dir.appendingPathComponent("loose").path)) { e in
            guard case .layout(let p, let reason)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(p, dir.appendingPathComponent("loose").path)
            XCTAssertTrue(reason.contains("cannot tell the layout"))
        }
    }

    /// A PBC-like JPEG folder set as `folders`, and deduplication of its byte-identical copies.
    func testSmearJPEGFoldersAndDuplicates() throws {
        let set = TestSupport.smearJPEGs
        let idx = try DatasetIndex.load(path: set.folder.path)
        XCTAssertEqual(idx.layout, .folders)
        XCTAssertEqual(idx.classNames, set.classes)
        XCTAssertEqual(idx.items.count, set.classes.count * set.perClass + set.duplicates.count)
        XCTAssertEqual(idx.counts, [5, 5, 6, 6])

        let known = Set(set.duplicates.map { $0.sorted() })
        let found = DatasetIndex.findDuplicates(idx.items)
        XCTAssertEqual(Set(found.map(\.paths)), known, "found \(found.map(\.paths))")
        XCTAssertTrue(found.allSatisfy { !$0.crossesClasses })

        var deduped = idx
        try deduped.deduplicate()
        XCTAssertEqual(deduped.items.count, idx.items.count - known.count)
        XCTAssertEqual(deduped.dedup?.dropped.count, known.count)
        for pair in known { XCTAssertTrue(deduped.items.contains { $0.path == pair[0] }) }
        XCTAssertTrue(deduped.dedup!.summary.contains("dropped"))
    }

    /// Files of one byte count (every uncompressed TIFF of one size) are told apart by
    /// a quick checksum before SHA-256: copies are still grouped with their SHA-256, and
    /// files that differ in one byte, at the start or the end, are not.
    func testDuplicatesAmongFilesOfOneSize() throws {
        let folder = dir.appendingPathComponent("same-size")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var first = base; first[0] ^= 1
        var last = base; last[4095] ^= 0x80
        let files: [(String, [UInt8])] = [("a", base), ("b", first), ("c", last), ("d", base), ("e", last)]
        var items: [DatasetItem] = []
        for (name, bytes) in files {
            let url = folder.appendingPathComponent("\(name).tif")
            try Data(bytes).write(to: url)
            items.append(DatasetItem(path: url.path, label: 0, className: "x"))
        }
        let found = DatasetIndex.findDuplicates(items)
        XCTAssertEqual(found.map { $0.paths.map { ($0 as NSString).lastPathComponent } }, [["a.tif", "d.tif"], ["c.tif", "e.tif"]])
        XCTAssertEqual(found.map(\.sha256), [SHA256.hex(SHA256.hash(base)), SHA256.hex(SHA256.hash(last))])
    }

    func testDedupOnSyntheticCopies() throws {
        for i in 0..<3 { try touchPNG(dir.appendingPathComponent("d/a/\(i).png"), 6 + i) }
        for i in 0..<3 { try touchPNG(dir.appendingPathComponent("d/b/\(i).png"), 10 + i) }
        // an exact copy inside a class, and one across classes
        try FileManager.default.copyItem(at: dir.appendingPathComponent("d/a/0.png"), to: dir.appendingPathComponent("d/a/copy.png"))
        try FileManager.default.copyItem(at: dir.appendingPathComponent("d/a/1.png"), to: dir.appendingPathComponent("d/b/x.png"))
        let idx = try DatasetIndex.load(path: dir.appendingPathComponent("d").path, options: DatasetOptions(dedupe: true))
        XCTAssertEqual(idx.items.count, 6)
        XCTAssertEqual(idx.dedup?.groups.count, 2)
        XCTAssertEqual(idx.dedup?.groups.filter(\.crossesClasses).count, 1)
        let inspection = DatasetInspection.run(try DatasetIndex.load(path: dir.appendingPathComponent("d").path))
        let text = inspection.render()
        XCTAssertTrue(text.contains("duplicates: 2 set(s)"), text)
        XCTAssertTrue(text.contains("different classes"), text)
        XCTAssertTrue(text.contains("formats: PNG 8"), text)
    }

    /// A class of five byte copies of one photograph was refused as "a class with only one
    /// image": the error now says the copies were dropped.
    func testAClassOfCopiesSaysItsCopiesWereDropped() throws {
        try touchPNG(dir.appendingPathComponent("d/a/0.png"), 6)
        for i in 1..<5 {
            try FileManager.default.copyItem(at: dir.appendingPathComponent("d/a/0.png"), to: dir.appendingPathComponent("d/a/\(i).png"))
        }
        for i in 0..<2 { try touchPNG(dir.appendingPathComponent("d/b/\(i).png"), 10 + i) }
        XCTAssertThrowsError(try DatasetIndex.load(path: dir.appendingPathComponent("d").path, options: DatasetOptions(dedupe: true))) { e in
            XCTAssertTrue("\(e)".hasSuffix("class 'a' has only one image left once 4 byte-identical copies are dropped (the same photograph twice is one cell); a class needs at least two different images to appear in both training and test"), "\(e)")
        }
    }

    /// Class folders unzipped from a Mac have decomposed names ("e" + U+0301): `inspect`
    /// cut them by UTF-16 length, showing "Blastzellen_e" and "Übrige Zelle".
    func testInspectShowsDecomposedClassNamesWhole() throws {
        let blast = "Blastzellen_e\u{301}", other = "U\u{308}brige Zellen"
        for i in 0..<2 {
            try touchPNG(dir.appendingPathComponent("d/\(blast)/\(i).png"), 6 + i)
            try touchPNG(dir.appendingPathComponent("d/\(other)/\(i).png"), 9 + i)
        }
        let text = DatasetInspection.run(try DatasetIndex.load(path: dir.appendingPathComponent("d").path)).render()
        let rows = text.split(separator: "\n").filter { $0.hasSuffix("  2") }.map(String.init)
        XCTAssertEqual(rows.count, 2, text)
        XCTAssertTrue(rows.contains("  \(blast)  2"), text)
        XCTAssertTrue(rows.contains("  \(other)  2"), text)
    }
}
