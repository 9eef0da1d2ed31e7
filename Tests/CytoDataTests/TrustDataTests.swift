import CytoCore
import Foundation
import XCTest

@testable import CytoData

/// Hostile sizes, names and folders: refused or handled with a message naming the file,
/// never an allocation of max(w, h)^2 pixels, a lost file or a silent skip.
final class TrustDataTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testPadWithoutCanvasIsBitIdenticalToPaddingFirst() {
        for (w, h, tw, th) in [(40, 20, 24, 24), (13, 50, 16, 16), (7, 3, 32, 20), (64, 10, 10, 64), (5, 5, 9, 3)] {
            let img = TestSupport.gradient(width: w, height: h)
            let expected = resize(padToAspect(img, height: th, width: tw), height: th, width: tw)
            let (out, action) = fitImage(img, height: th, width: tw, policy: .pad)
            XCTAssertEqual(action, .padded)
            TestSupport.assertSame(out, expected, "\(w)x\(h) -> \(tw)x\(th)")
        }
    }

    func testWideImagePadsWithoutTheSquare() {
        // 4000x200 padded to a square would be 4000x4000x3 bytes (48 MB) plus floats;
        // the resampler reads the edge colour instead and keeps memory to the image.
        let img = RGBImage(width: 4000, height: 200, fill: (180, 170, 160))
        let (out, action) = fitImage(img, height: 32, width: 32, policy: .pad)
        XCTAssertEqual(action, .padded)
        XCTAssertTrue(out[16, 1] == (180, 170, 160))
    }

    func testAbsurdAspectRatiosAreRefusedBeforeDecoding() throws {
        // A 1,000,000 x 1 PNG (a few KB) and a 65535 x 64 TIFF: refused by their headers.
        let png = dir.appendingPathComponent("line.png")
        try ImageCodec.writePNG(RGBImage(width: 1_000_000, height: 1, fill: (9, 9, 9)), to: png)
        var tiffImage = RGBImage(width: 65535, height: 64, fill: (1, 2, 3))
        tiffImage.pixels[0] = 0
        let tif = dir.appendingPathComponent("strip.tif")
        try ImageCodec.writeTIFF(tiffImage, to: tif, compression: .deflate)
        for url in [png, tif] {
            XCTAssertThrowsError(try ImageLoader.loadOne(path: url.path, height: 64, width: 64, fit: .pad)) { e in
                guard case .tooLarge(let path, let detail)? = e as? DataError else { return XCTFail("\(e)") }
                XCTAssertEqual(path, url.path)
                XCTAssertTrue(detail.contains("aspect ratio"), detail)
            }
        }
        let items = [png, tif].map { DatasetItem(path: $0.path, label: 0, className: "a") }
        XCTAssertThrowsError(try ImageLoader.load(items, height: 16, width: 16)) { e in
            guard case .badImages(let list)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(list.map(\.path), [png.path, tif.path])
        }
    }

    func testDecodedSizeIsBoundedFromTheHeader() {
        // A PNG header claiming 6000x6000 16-bit RGBA (288 MB of samples), no pixel data.
        var b: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        b += be32(6000) + be32(6000) + [16, 6, 0, 0, 0] + [0, 0, 0, 0]
        XCTAssertThrowsError(try ImageCodec.decode(bytes: b, name: "huge.png")) { e in
            guard case .tooLarge(let path, let detail)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, "huge.png")
            XCTAssertTrue(detail.contains("MB"), detail)
        }
    }

    /// A grey little-endian TIFF with `pages` 2x2 directories, written by hand.
    func multiPageTIFF(pages: Int) -> [UInt8] {
        var out: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
        func u16(_ v: Int) -> [UInt8] { [UInt8(v & 255), UInt8(v >> 8 & 255)] }
        func u32(_ v: Int) -> [UInt8] { u16(v & 0xFFFF) + u16(v >> 16) }
        for p in 0..<pages {
            let ifdStart = out.count
            let entries = 9
            let ifdSize = 2 + entries * 12 + 4
            let pixelOffset = ifdStart + ifdSize
            let next = p + 1 < pages ? pixelOffset + 4 : 0
            func tag(_ t: Int, _ type: Int, _ value: Int) -> [UInt8] {
                u16(t) + u16(type) + u32(1) + (type == 3 ? u16(value) + [0, 0] : u32(value))
            }
            out += u16(entries)
            out += tag(256, 3, 2) + tag(257, 3, 2) + tag(258, 3, 8) + tag(259, 3, 1) + tag(262, 3, 1)
            out += tag(273, 4, pixelOffset) + tag(277, 3, 1) + tag(278, 3, 2) + tag(279, 4, 4)
            out += u32(next)
            out += [UInt8(10 * (p + 1)), 20, 30, 40]
        }
        return out
    }

    func testMultiPageTIFFSaysItReadsPageOne() throws {
        let url = dir.appendingPathComponent("stack.tif")
        try Data(multiPageTIFF(pages: 3)).write(to: url)
        XCTAssertEqual(try ImageCodec.readInfo(path: url.path).pages, 3)
        let loaded = try ImageLoader.load([DatasetItem(path: url.path, label: 0, className: "a")], height: 2, width: 2)
        XCTAssertEqual(loaded.pixels[0], 10, "page 1 is the one read")
        XCTAssertEqual(loaded.report.warnings, ["\(url.path): multi-page TIFF (3 pages): only page 1 is read"])
        let single = dir.appendingPathComponent("one.tif")
        try Data(multiPageTIFF(pages: 1)).write(to: single)
        XCTAssertEqual(
            try ImageLoader.load([DatasetItem(path: single.path, label: 0, className: "a")], height: 2, width: 2)
                .report.warnings, [])
    }

    func testNonUTF8FileNamesAreListedAndRead() throws {
        let data = dir.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .folders, count: 18, size: 24, seed: 2)
        let classDir = data.appendingPathComponent("blast").path
        let original = try FileManager.default.contentsOfDirectory(atPath: classDir).sorted()[0]
        // Rename one file to bad<0xFF>name.png with raw bytes.
        let raw = Array(classDir.utf8) + Array("/bad".utf8) + [0xFF] + Array("name.png".utf8)
        let rc = (raw.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { rename(classDir + "/" + original, $0.baseAddress!) }
        XCTAssertEqual(rc, 0)
        let index = try DatasetIndex.load(path: data.path, options: DatasetOptions(dedupe: false))
        guard let item = index.items.first(where: { FileSystemPath.bytes($0.path) == raw }) else {
            return XCTFail("the file with byte 0xFF is not listed: \(index.items.map(\.path))")
        }
        XCTAssertNoThrow(try ImageLoader.loadOne(path: item.path, height: 24, width: 24, fit: .pad))
        XCTAssertEqual(FileSystemPath.display(item.path), classDir + "/bad\\xFFname.png")
        XCTAssertEqual(FileSystemPath.string(fromBytes: FileSystemPath.bytes(item.path)), item.path)
        XCTAssertTrue(DataError.missing(path: item.path).description.contains("bad\\xFFname.png"))
    }

    func testUnlistableFolderIsReported() throws {
        XCTAssertThrowsError(try FileSystemPath.entries(dir.appendingPathComponent("absent").path)) { e in
            XCTAssertEqual(e as? DataError, .missingFolder(path: dir.appendingPathComponent("absent").path))
        }
        let data = dir.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .folders, count: 18, size: 24, seed: 2)
        defer { rmTree(data.path) }
        // A sub-folder nested past PATH_MAX cannot be opened by its path, even by root:
        // made level by level with mkdirat/openat.
        var fd = open(data.appendingPathComponent("blast").path, O_RDONLY | O_DIRECTORY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let component = String(repeating: "d", count: 250)
        for _ in 0..<18 {
            XCTAssertEqual(mkdirat(fd, component, 0o755), 0)
            let next = openat(fd, component, O_RDONLY | O_DIRECTORY)
            close(fd); fd = next
            XCTAssertGreaterThanOrEqual(fd, 0)
        }
        close(fd)
        XCTAssertThrowsError(try DatasetIndex.load(path: data.path)) { e in
            guard case .unreadable(let path, let reason)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertTrue(path.hasPrefix(data.appendingPathComponent("blast/ddd").path), path)
            XCTAssertTrue(reason.contains("cannot list the folder"), reason)
        }
        rmTree(data.appendingPathComponent("blast/" + component).path)
        XCTAssertNoThrow(try DatasetIndex.load(path: data.path))
        // Permission bits, where they apply (root reads every folder).
        guard getuid() != 0 else { return }
        let locked = data.appendingPathComponent("blast/more")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
        chmod(locked.path, 0)
        defer { chmod(locked.path, 0o755) }
        XCTAssertThrowsError(try DatasetIndex.load(path: data.path)) { e in
            guard case .unreadable(let path, _)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, locked.path)
        }
    }

    /// `rm -rf`, which walks with openat and so removes trees deeper than PATH_MAX.
    func rmTree(_ path: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/rm")
        p.arguments = ["-rf", path]
        try? p.run(); p.waitUntilExit()
    }

    func testManifestUsesTheCSVReader() throws {
        let data = dir.appendingPathComponent("m")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        for n in ["a,1.png", "b.png", "c.png", "d.png"] {
            try ImageCodec.writePNG(TestSupport.gradient(width: 8, height: 8), to: data.appendingPathComponent(n))
        }
        TestSupport.write(
            "path,label\r\n\"a,1.png\",x\r\nb.png,x\r\n# note\r\nc.png,y\r\nd.png,y\r\n", to: data.appendingPathComponent("labels.csv"))
        let index = try DatasetIndex.load(path: data.appendingPathComponent("labels.csv").path, options: DatasetOptions(dedupe: false))
        XCTAssertEqual(index.items.map { ($0.path as NSString).lastPathComponent }.sorted(), ["a,1.png", "b.png", "c.png", "d.png"])
        TestSupport.write("path,label\nb.png,x\n\"c.png,y\n", to: data.appendingPathComponent("labels.csv"))
        XCTAssertThrowsError(try DatasetIndex.load(path: data.appendingPathComponent("labels.csv").path)) { e in
            guard case .badManifest(_, let line, _)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(line, 3)
        }
    }
}
