import Foundation
import XCTest

@testable import CytoData

/// Every bad-input case of the data-pipeline issue: each gets a specific error that names the file.
final class BadInputTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() {
        _ = chmod(dir.path, 0o755)
        try? FileManager.default.removeItem(at: dir)
    }

    func decodeError(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> DataError? {
        do {
            _ = try ImageCodec.decode(path: path)
            XCTFail("\(path) decoded", file: file, line: line)
            return nil
        } catch let e as DataError {
            XCTAssertTrue(e.description.contains(path), "message must name the file: \(e)", file: file, line: line)
            return e
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    func testZeroByteFile() {
        let p = dir.appendingPathComponent("empty.png").path
        _ = FileManager.default.createFile(atPath: p, contents: Data())
        XCTAssertEqual(decodeError(p), .emptyFile(path: p))
        XCTAssertTrue(DataError.emptyFile(path: p).description.contains("0 bytes"))
    }

    func testMissingFile() {
        let p = dir.appendingPathComponent("nope.tif").path
        XCTAssertEqual(decodeError(p), .missing(path: p))
    }

    func testTextFileNamedTif() {
        let p = dir.appendingPathComponent("Im001_1.tif").path
        TestSupport.write("hello, this is not an image\n", to: URL(fileURLWithPath: p))
        guard case .notAnImage(let path, let detail)? = decodeError(p) else { return XCTFail("expected notAnImage") }
        XCTAssertEqual(path, p)
        XCTAssertTrue(detail.contains("hello, this"), detail)
    }

    func testTruncatedPNG() throws {
        let bytes = try ImageCodec.encodePNG(TestSupport.gradient(width: 64, height: 64))
        let p = dir.appendingPathComponent("cut.png").path
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes.prefix(bytes.count / 2)))
        guard case .truncated(_, let format, _)? = decodeError(p) else { return XCTFail("expected truncated") }
        XCTAssertEqual(format, "PNG")
    }

    func testTruncatedTIFF() throws {
        let url = dir.appendingPathComponent("full.tif")
        try ImageCodec.writeTIFF(TestSupport.gradient(width: 64, height: 64), to: url)
        let bytes = try Data(contentsOf: url)
        // libtiff writes the directory after the pixels: cut inside the pixels and
        // inside the directory; both are "truncated".
        for cut in [bytes.count / 2, bytes.count - 20] {
            let p = dir.appendingPathComponent("cut\(cut).tif").path
            _ = FileManager.default.createFile(atPath: p, contents: bytes.prefix(cut))
            guard case .truncated(_, let format, _)? = decodeError(p) else { XCTFail("expected truncated at \(cut)"); continue }
            XCTAssertEqual(format, "TIFF")
        }
        // A file whose directory is intact but whose strip data is cut off.
        var spec = TIFFSpec(width: 64, height: 64, samplesPerPixel: 3)
        spec.rowsPerStrip = 8
        let img = TestSupport.gradient(width: 64, height: 64)
        let u2 = dir.appendingPathComponent("strips.tif")
        try img.pixels.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: u2) }
        var b2 = [UInt8](try Data(contentsOf: u2))
        // Move the directory to the front is not possible here; instead point the IFD at itself
        // but drop the tail of the strips by rewriting: simplest is to decode from a prefix
        // that still contains the IFD (little-endian offset in bytes 4..7).
        let ifd = Int(b2[4]) | Int(b2[5]) << 8 | Int(b2[6]) << 16 | Int(b2[7]) << 24
        XCTAssertGreaterThan(ifd, 64 * 64 * 3 - 1, "libtiff writes the IFD after the data")
        b2 = Array(b2[0..<8]) + Array(b2[8..<ifd])  // keep header + data
        XCTAssertThrowsError(try ImageCodec.decode(bytes: b2, name: "x.tif"))
    }

    func testTruncatedJPEG() throws {
        let src = TestSupport.smearJPEGs.folder.appendingPathComponent("lymphocyte")
        let first = try FileManager.default.contentsOfDirectory(atPath: src.path).sorted()[0]
        let bytes = try Data(contentsOf: src.appendingPathComponent(first))
        for fraction in [0.5, 0.9] {
            let p = dir.appendingPathComponent("cut\(fraction).jpg").path
            _ = FileManager.default.createFile(atPath: p, contents: bytes.prefix(Int(Double(bytes.count) * fraction)))
            guard case .truncated(_, let format, _)? = decodeError(p) else { XCTFail("expected truncated at \(fraction)"); continue }
            XCTAssertEqual(format, "JPEG")
        }
        // Only the first bytes: header cut.
        let p = dir.appendingPathComponent("head.jpg").path
        _ = FileManager.default.createFile(atPath: p, contents: bytes.prefix(40))
        guard case .truncated? = decodeError(p) else { return XCTFail("expected truncated header") }
    }

    func testUnsupportedPixelFormat() throws {
        // 32-bit float samples: a valid TIFF that libtiff's RGBA reader cannot convert.
        var spec = TIFFSpec(width: 8, height: 8, samplesPerPixel: 1)
        spec.bitsPerSample = 32
        spec.floatSamples = true
        spec.photometric = .minIsBlack
        let samples = [Float](repeating: 0.5, count: 64)
        let url = dir.appendingPathComponent("float.tif")
        try samples.withUnsafeBytes { try ImageCodec.writeTIFF(spec: spec, samples: $0.baseAddress!, to: url) }
        guard case .unsupportedPixelFormat(_, let format, let detail)? = decodeError(url.path) else {
            return XCTFail("expected unsupportedPixelFormat")
        }
        XCTAssertEqual(format, "TIFF")
        XCTAssertEqual(
            detail,
            "32-bit floating-point samples (an analysis export, not a camera image); save it with 8- or 16-bit integer samples (TIFF or PNG)")
    }

    func testUnreadableFile() throws {
        // A folder named like an image cannot be read as one (works as root too).
        let folder = dir.appendingPathComponent("cell.png")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        guard case .unreadable(let p, _)? = decodeError(folder.path) else { return XCTFail("expected unreadable") }
        XCTAssertEqual(p, folder.path)
        // Permissions, when they apply (not as root).
        if geteuid() != 0 {
            let url = dir.appendingPathComponent("locked.png")
            try ImageCodec.writePNG(TestSupport.gradient(width: 4, height: 4), to: url)
            chmod(url.path, 0)
            guard case .unreadable(_, let reason)? = decodeError(url.path) else { return XCTFail("expected unreadable") }
            XCTAssertTrue(reason.lowercased().contains("permission"), reason)
        }
    }

    // MARK: dataset-level cases

    func makeFolders(_ spec: [String: Int]) throws -> URL {
        let root = dir.appendingPathComponent("data")
        for (cls, n) in spec {
            let d = root.appendingPathComponent(cls)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            for i in 0..<n {
                try ImageCodec.writePNG(TestSupport.gradient(width: 8 + i, height: 8), to: d.appendingPathComponent("\(cls)_\(i).png"))
            }
        }
        return root
    }

    func testEmptyClassFolder() throws {
        let root = try makeFolders(["a": 3, "b": 3, "c": 0])
        XCTAssertThrowsError(try DatasetIndex.load(path: root.path)) { e in
            XCTAssertEqual(e as? DataError, .emptyClass(path: root.path + "/c", className: "c"))
            XCTAssertTrue("\(e)".contains(root.path + "/c"))
        }
        // min-per-class drops it instead
        let idx = try DatasetIndex.load(path: root.path, options: DatasetOptions(minPerClass: 2))
        XCTAssertEqual(idx.classNames, ["a", "b"])
        XCTAssertEqual(idx.droppedClasses.map { $0.0 }, ["c"])
    }

    /// A class folder of iPhone HEIC photographs (and a scanner's BMP) was "a class with
    /// no image files", which sent the user looking for a copying error.
    func testAClassOfFormatsNotReadSaysWhichFormats() throws {
        let root = try makeFolders(["a": 3, "b": 3, "c": 0])
        for name in ["IMG_0001.HEIC", "IMG_0002.heic", "sub/scan.bmp", ".hidden.heic"] {
            let url = root.appendingPathComponent("c/" + name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data([0, 0, 0, 24, 0x66, 0x74, 0x79, 0x70]).write(to: url)
        }
        XCTAssertThrowsError(try DatasetIndex.load(path: root.path)) { e in
            XCTAssertEqual(
                "\(e)",
                "\(root.path)/c: class 'c' has no image files CytoCL reads: it holds 2 .heic files, 1 .bmp file, formats CytoCL does not read (PNG, TIFF and JPEG only): convert them, e.g. to PNG"
            )
        }
    }

    func testClassWithOneImage() throws {
        let root = try makeFolders(["a": 3, "b": 1, "c": 2])
        XCTAssertThrowsError(try DatasetIndex.load(path: root.path)) { e in
            guard case .singleImageClass(let path, let cls)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(cls, "b")
            XCTAssertEqual(path, root.path + "/b/b_0.png")
        }
    }

    func testMissingDataFolder() {
        let p = dir.appendingPathComponent("does-not-exist").path
        XCTAssertThrowsError(try DatasetIndex.load(path: p)) { e in
            XCTAssertEqual(e as? DataError, .missingFolder(path: p))
            XCTAssertTrue("\(e)".contains(p))
        }
        XCTAssertThrowsError(try DatasetIndex.load(path: p, options: DatasetOptions(layout: .aml)))
    }

    func testManifestRowNamingMissingFile() throws {
        let root = try makeFolders(["a": 2, "b": 2])
        let manifest = root.appendingPathComponent("labels.csv")
        TestSupport.write("path,label\na/a_0.png,a\na/a_1.png,a\nb/b_0.png,b\nb/gone.png,b\n", to: manifest)
        XCTAssertThrowsError(try DatasetIndex.load(path: manifest.path)) { e in
            XCTAssertEqual(e as? DataError, .manifestMissingFile(manifest: manifest.path, line: 5, path: root.path + "/b/gone.png"))
            XCTAssertTrue("\(e)".contains("gone.png"))
        }
    }

    /// The loader lists every bad file at once, or skips them when asked.
    func testLoaderListsEveryBadFileAndSkips() throws {
        let root = try makeFolders(["a": 3, "b": 3])
        TestSupport.write("not an image", to: root.appendingPathComponent("a/a_bad.png"))
        _ = FileManager.default.createFile(atPath: root.appendingPathComponent("b/b_empty.png").path, contents: Data())
        let idx = try DatasetIndex.load(path: root.path)
        XCTAssertEqual(idx.items.count, 8)
        XCTAssertThrowsError(try ImageLoader.load(idx.items, height: 8, width: 8)) { e in
            guard case .badImages(let list)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(list.count, 2)
            XCTAssertEqual(Set(list.compactMap(\.path)), [root.path + "/a/a_bad.png", root.path + "/b/b_empty.png"])
            XCTAssertTrue("\(e)".contains("2 bad image files"))
        }
        let loaded = try ImageLoader.load(idx.items, height: 8, width: 8, skipBad: true)
        XCTAssertEqual(loaded.count, 6)
        XCTAssertEqual(loaded.report.skipped, 2)
        XCTAssertEqual(loaded.pixels.count, 6 * 8 * 8 * 3)
        XCTAssertFalse(loaded.items.contains { $0.path.hasSuffix("a_bad.png") })
        XCTAssertTrue(loaded.report.summary.contains("2 bad file(s) skipped"), loaded.report.summary)
    }
}
