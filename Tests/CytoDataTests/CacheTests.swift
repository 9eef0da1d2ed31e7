import CytoCore
import Foundation
import Synchronization
import XCTest

@testable import CytoData

final class CacheTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = TestSupport.tempDir(name) }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func makeSet() throws -> DatasetIndex {
        let data = dir.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .folders, count: 12, size: 40, seed: 5)
        // one odd size, to be padded
        try ImageCodec.writePNG(TestSupport.gradient(width: 30, height: 20), to: data.appendingPathComponent("blast/odd.png"))
        return try DatasetIndex.load(path: data.path)
    }

    func testBuildReuseAndMatchLoader() throws {
        let idx = try makeSet()
        let calls = Mutex(0)
        let cache = try ImageCache.open(index: idx, height: 24, width: 24, fit: .pad) { _, _ in calls.withLock { $0 += 1 } }
        XCTAssertTrue(cache.wasBuilt)
        XCTAssertGreaterThan(calls.withLock { $0 }, 0, "progress reported")
        XCTAssertEqual(cache.count, 13)
        XCTAssertEqual(cache.url.deletingLastPathComponent().lastPathComponent, ".cytocl-cache")
        XCTAssertEqual(cache.report?.padded, 1)
        XCTAssertEqual(cache.report?.resized, 12)
        let loaded = try ImageLoader.load(idx.items, height: 24, width: 24, fit: .pad)
        for i in 0..<idx.items.count {
            let expected = Array(loaded.pixels[(i * 24 * 24 * 3)..<((i + 1) * 24 * 24 * 3)])
            XCTAssertEqual(try cache.pixels(i), expected, "image \(i)")
        }
        let batch = try cache.batch([3, 0])
        XCTAssertEqual(Array(batch[0..<(24 * 24 * 3)]), try cache.pixels(3))

        let again = try ImageCache.open(index: idx, height: 24, width: 24, fit: .pad)
        XCTAssertFalse(again.wasBuilt, "an unchanged set reuses the cache")
        XCTAssertEqual(try again.pixels(5), try cache.pixels(5))
        // The dataset index skips the hidden cache folder.
        XCTAssertEqual(try DatasetIndex.load(path: idx.root).items.count, 13)
    }

    func testInvalidation() throws {
        let idx = try makeSet()
        _ = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        // another fit policy or size: a different cache, built
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 16, fit: .crop).wasBuilt)
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 20, fit: .pad).wasBuilt)
        XCTAssertFalse(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
        // a file rewritten with new content (size and mtime change)
        let victim = idx.items[2].path
        try ImageCodec.writePNG(RGBImage(width: 40, height: 40, fill: (1, 2, 3)), to: URL(fileURLWithPath: victim))
        let rebuilt = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        XCTAssertTrue(rebuilt.wasBuilt)
        XCTAssertEqual(Array(try rebuilt.pixels(2).prefix(3)), [1, 2, 3])
        // only the modification time changes
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, idx.items[4].path, &times, 0), 0)
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
        XCTAssertFalse(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
        // a different file list
        let fewer = DatasetIndex(root: idx.root, layout: idx.layout, classNames: idx.classNames, items: Array(idx.items.dropLast()))
        XCTAssertTrue(try ImageCache.open(index: fewer, height: 16, width: 16, fit: .pad).wasBuilt)
        // a damaged cache file is rebuilt
        let c = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        let h = try FileHandle(forWritingTo: c.url)
        try h.seek(toOffset: 70); try h.write(contentsOf: Data([0xAB])); try h.close()
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
        // no temporary files left behind
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: c.url.deletingLastPathComponent().path).filter {
            $0.contains(".tmp-")
        }
        XCTAssertEqual(leftovers, [])
    }

    /// Pixels edited in place with size and modification time kept (`cp -p`, `rsync -a`,
    /// `touch -r`): the cache must see the new pixels, and so must the per-image content
    /// checksums a sweep's data identity is made of. (Keyed on size and mtime only, the
    /// cache said "current" and returned the old pixels.)
    func testInPlaceEditWithSizeAndModificationTimeKeptRebuilds() throws {
        let data = dir.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .folders, count: 12, size: 40, seed: 5)
        let victim = data.appendingPathComponent("blast/edited.tif")
        try ImageCodec.writeTIFF(TestSupport.gradient(width: 40, height: 40), to: victim)
        let idx = try DatasetIndex.load(path: data.path)
        let slot = try XCTUnwrap(idx.items.firstIndex { $0.path.hasSuffix("edited.tif") })
        let before = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        let oldSum = before.contentChecksum(slot)
        var st = stat()
        XCTAssertEqual(stat(victim.path, &st), 0)
        let (oldSize, oldTime) = (st.st_size, st.st_mtim)

        // New pixels, same byte count, written into the same inode; then the time set back.
        let other = dir.appendingPathComponent("other.tif")
        try ImageCodec.writeTIFF(RGBImage(width: 40, height: 40, fill: (9, 200, 30)), to: other)
        let newBytes = try Data(contentsOf: other)
        XCTAssertEqual(newBytes.count, Int(oldSize), "the edit keeps the size")
        usleep(30_000)  // past the kernel's coarse timestamp tick
        let h = try FileHandle(forWritingTo: victim)
        try h.write(contentsOf: newBytes); try h.close()
        var times = [oldTime, oldTime]
        XCTAssertEqual(utimensat(AT_FDCWD, victim.path, &times, 0), 0)
        XCTAssertEqual(stat(victim.path, &st), 0)
        XCTAssertEqual(st.st_size, oldSize)
        XCTAssertEqual(st.st_mtim.tv_sec, oldTime.tv_sec)
        XCTAssertEqual(st.st_mtim.tv_nsec, oldTime.tv_nsec)

        let after = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        XCTAssertTrue(after.wasBuilt, "an in-place edit with the time kept rebuilds the cache")
        XCTAssertEqual(Array(try after.pixels(slot).prefix(3)), [9, 200, 30], "the new pixels, not the cached old ones")
        XCTAssertNotEqual(after.contentChecksum(slot), oldSum, "the data identity's per-image checksum moves")
        XCTAssertFalse(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt, "then it is current again")
    }

    func testBadFilesStopOrAreSkipped() throws {
        let idx = try makeSet()
        TestSupport.write("garbage", to: URL(fileURLWithPath: idx.items[1].path))
        let custom = dir.appendingPathComponent("elsewhere")
        XCTAssertThrowsError(try ImageCache.open(index: idx, height: 16, width: 16, directory: custom)) { e in
            guard case .badImages(let list)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(list.map(\.path), [idx.items[1].path])
        }
        let cache = try ImageCache.open(index: idx, height: 16, width: 16, directory: custom, skipBad: true)
        XCTAssertEqual(cache.available.filter { !$0 }.count, 1)
        XCTAssertFalse(cache.available[1])
        XCTAssertEqual(cache.report?.skipped, 1)
        XCTAssertTrue(cache.url.path.hasPrefix(custom.path))
    }

    /// Flips one byte of the file at `offset`.
    func damage(_ url: URL, at offset: UInt64) throws {
        let h = try FileHandle(forUpdating: url)
        try h.seek(toOffset: offset)
        let b = try h.read(upToCount: 1)![0]
        try h.seek(toOffset: offset)
        try h.write(contentsOf: Data([b ^ 0x40]))
        try h.close()
    }

    func testPixelCorruptionIsDetectedAndRebuilt() throws {
        let idx = try makeSet()
        let c = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        let good = try c.pixels(7)
        let size = try FileManager.default.attributesOfItem(atPath: c.url.path)[.size] as! UInt64
        // One byte in the middle of image 7: the header and key are intact.
        let offset = size - UInt64((c.count - 7) * c.imageBytes) + 100
        try damage(c.url, at: offset)
        XCTAssertThrowsError(try c.pixels(7), "a cell reading the damaged image stops") { e in
            guard case .corrupt(let path, _, let detail)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, c.url.path)
            XCTAssertTrue(detail.contains("image 7") && detail.contains(idx.items[7].path), detail)
        }
        XCTAssertNoThrow(try c.pixels(6), "undamaged images still read")
        let reopened = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        XCTAssertTrue(reopened.wasBuilt, "a damaged cache is rebuilt, never reported current")
        XCTAssertTrue(reopened.rebuildReason?.contains("image 7") == true, reopened.rebuildReason ?? "nil")
        XCTAssertEqual(try reopened.pixels(7), good)
        // The status bytes and checksum table are checked too.
        try damage(reopened.url, at: 4096 + 2)
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
    }

    func testTruncationWhileInUseIsAnErrorNotSIGBUS() throws {
        let idx = try makeSet()
        let c = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        XCTAssertEqual(truncate(c.url.path, 4096), 0)
        XCTAssertThrowsError(try c.pixels(c.count - 1)) { e in
            guard case .truncated(let path, _, _)? = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(path, c.url.path)
        }
        XCTAssertTrue(try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad).wasBuilt)
    }

    func testReadOnlyDataFolderPutsTheCacheInTheUserCache() throws {
        let idx = try makeSet()
        let home = dir.appendingPathComponent("xdg")
        let env = ["XDG_CACHE_HOME": home.path]
        let place = ImageCache.location(root: idx.root, isWritable: { _ in false }, environment: env)
        XCTAssertTrue(place.directory.path.hasPrefix(home.appendingPathComponent("cytocl/datasets").path), place.directory.path)
        XCTAssertTrue(place.note?.contains(place.directory.path) == true)
        XCTAssertEqual(
            ImageCache.location(root: idx.root, isWritable: { _ in false }, environment: env).directory, place.directory,
            "the same data set finds the same folder")
        XCTAssertEqual(
            ImageCache.location(root: idx.root, isWritable: { _ in true }, environment: env).directory,
            ImageCache.defaultDirectory(root: idx.root))
        XCTAssertEqual(
            ImageCache.location(root: idx.root, environment: ["HOME": "/home/u"]).directory.path.hasPrefix("/home/u/.cache/cytocl"),
            !ImageCache.isWritableFolder(idx.root))
        setenv("XDG_CACHE_HOME", home.path, 1)
        defer { unsetenv("XDG_CACHE_HOME") }
        let cache = try ImageCache.open(index: idx, height: 16, width: 16, isWritable: { _ in false })
        XCTAssertEqual(cache.url.deletingLastPathComponent().path, place.directory.path)
        XCTAssertNotNil(cache.locationNote)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: ImageCache.defaultDirectory(root: idx.root).path),
            "nothing is written into the data folder")
        XCTAssertFalse(try ImageCache.open(index: idx, height: 16, width: 16, isWritable: { _ in false }).wasBuilt)
    }

    func testStaleTemporaryOfAKilledBuildIsRemoved() throws {
        let idx = try makeSet()
        let c = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run(); p.waitUntilExit()
        let folder = c.url.deletingLastPathComponent()
        let leftover = folder.appendingPathComponent(".\(c.url.lastPathComponent).tmp-\(p.processIdentifier)-\(AtomicFile.hostTag)-5")
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover.path, contents: Data(count: 4096)))
        _ = try ImageCache.open(index: idx, height: 16, width: 16, fit: .pad)
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover.path))
    }
}
