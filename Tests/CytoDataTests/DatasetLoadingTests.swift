import Foundation
import XCTest

@testable import CytoData

/// `train` reads a data set into memory and `sweep` through the image cache, both with
/// `DatasetLoading`: the same data must give both the same images, and both must find
/// the same near-duplicates.
final class DatasetLoadingTests: XCTestCase {
    func testMemoryAndCacheKeepTheSameImagesAndDropTheSameCopy() throws {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("data")
        try SyntheticCells.generate(into: data, layout: .folders, count: 12, size: 40, seed: 5)
        // A copy under another name, with the byte-identical dedupe off: only the
        // near-duplicate stage can find it.
        let cls = try FileManager.default.contentsOfDirectory(atPath: data.path).filter { !$0.hasPrefix(".") }.sorted()[0]
        let original = try FileManager.default.contentsOfDirectory(atPath: data.appendingPathComponent(cls).path).sorted()[0]
        try FileManager.default.copyItem(
            at: data.appendingPathComponent(cls).appendingPathComponent(original),
            to: data.appendingPathComponent(cls).appendingPathComponent("copy-" + original))
        var loading = DatasetLoading(path: data.path, options: DatasetOptions(dedupe: false), height: 32, width: 32)
        loading.nearDuplicates = .drop
        let memory = try loading.load(note: { _ in })
        loading.storage = .cache(directory: dir.appendingPathComponent("cache"), rebuild: false)
        var lines: [String] = []
        let cached = try loading.load(note: { lines.append($0) })

        XCTAssertEqual(memory.index.items.count, 13)
        XCTAssertEqual(memory.ids, cached.ids)
        XCTAssertEqual(memory.labels, cached.labels)
        XCTAssertEqual(memory.nearDuplicates?.dropped, cached.nearDuplicates?.dropped)
        let kept = Set(memory.ids)
        XCTAssertEqual(
            [original, "copy-" + original].filter { kept.contains("\(cls)/\($0)") }.count, 1,
            "one of the two copies is kept: \(memory.nearDuplicates?.text ?? "no near-duplicate summary")")
        XCTAssertNotNil(cached.cache)
        XCTAssertTrue(lines.contains { $0.contains("layout, \(cached.items.count) images") }, "\(lines)")
        // The pixels held in memory are the ones the cache gives back.
        let n = 32 * 32 * 3
        XCTAssertEqual(memory.pixels.count, memory.items.count * n)
        var px = [UInt8](repeating: 0, count: n)
        for (k, i) in cached.cacheIndices.enumerated() {
            try px.withUnsafeMutableBufferPointer { try cached.cache!.read(i, into: $0.baseAddress!) }
            XCTAssertEqual(Array(memory.pixels[(k * n)..<((k + 1) * n)]), px, "image \(cached.ids[k])")
        }
    }
}
