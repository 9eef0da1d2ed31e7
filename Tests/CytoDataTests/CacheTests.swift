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
            XCTAssertTrue(Array(cache.pixels(i)) == Array(loaded.pixels[(i * 24 * 24 * 3)..<((i + 1) * 24 * 24 * 3)]), "image \(i)")
        }
        let batch = cache.batch([3, 0])
        XCTAssertEqual(Array(batch[0..<(24 * 24 * 3)]), Array(cache.pixels(3)))

        let again = try ImageCache.open(index: idx, height: 24, width: 24, fit: .pad)
        XCTAssertFalse(again.wasBuilt, "an unchanged set reuses the cache")
        XCTAssertEqual(Array(again.pixels(5)), Array(cache.pixels(5)))
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
        XCTAssertEqual(Array(rebuilt.pixels(2).prefix(3)), [1, 2, 3])
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
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: c.url.deletingLastPathComponent().path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
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
}
