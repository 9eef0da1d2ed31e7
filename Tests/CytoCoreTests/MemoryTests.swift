import CytoCore
import XCTest

/// The memory a run needs is counted exactly (or refused when it cannot be counted)
/// and compared with the limit before anything is allocated.
final class MemoryTests: XCTestCase {
    func testANeedAboveTheLimitIsRefusedWithBothFigures() {
        var need = MemoryNeed(what: "the test network")
        need.add("a", count: 1_000, elementBytes: 4)
        need.add("b", count: 3_000, elementBytes: 1)
        XCTAssertEqual(need.bytes, 7_000)
        XCTAssertEqual(need.largest?.label, "a")
        XCTAssertNoThrow(try need.check(against: MemoryLimit(availableBytes: 7_000, source: "test")))
        XCTAssertNoThrow(try need.check(against: nil))
        XCTAssertThrowsError(try need.check(against: MemoryLimit(availableBytes: 6_999, source: "test memory"))) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("the test network needs 6.8 KiB (7000 B)") && m.contains("6999 B") && m.contains("test memory"), m)
        }
        XCTAssertThrowsError(try need.check(against: MemoryLimit(availableBytes: 1 << 30, maxBufferBytes: 3_999, source: "dev"))) { e in
            XCTAssertTrue("\(e)".contains("a buffer of 3.9 KiB (4000 B) (a)") && "\(e)".contains("(3999 B) per buffer"), "\(e)")
        }
    }

    func testSizesThatOverflowAreRefusedNotWrapped() {
        XCTAssertNil(checkedProduct(Int.max / 2, 3))
        XCTAssertNil(checkedProduct(5, -1))
        XCTAssertEqual(checkedProduct(257, 257, 3, 32), 257 * 257 * 3 * 32)
        var need = MemoryNeed(what: "huge")
        need.add("x", count: Int.max / 2, elementBytes: 4)
        XCTAssertNil(need.bytes)
        XCTAssertThrowsError(try need.check(against: nil)) { XCTAssertTrue("\($0)".contains("overflow"), "\($0)") }
        need = MemoryNeed(what: "huge")
        need.add("x", count: nil)
        XCTAssertThrowsError(try need.check(against: nil))
    }

    func testThePaperNetworkAtBatch100000DoesNotFitAnywhereReasonable() {
        let need = ModelSpec.paper(height: 257, width: 257).networkMemory(maxBatch: 100_000)
        XCTAssertGreaterThan(need.bytes ?? .max, 400 << 30)
        XCTAssertEqual(need.largest?.label, "conv1.out")
        XCTAssertThrowsError(try need.check(against: MemoryLimit(availableBytes: 64 << 30, source: "64 GiB host")))
    }

    func testSpecBoundsKeepCountsExact() {
        XCTAssertThrowsError(try ModelSpec.paper(height: 40_000, width: 257).validate()) {
            XCTAssertTrue("\($0)".contains("32768"), "\($0)")
        }
        var spec = ModelSpec.paper()
        spec.convFilters[0] = 1 << 20
        XCTAssertThrowsError(try spec.validate())
        XCTAssertNoThrow(try ModelSpec.paper(height: 32_768, width: 257).validate())
    }

    func testHostMemoryIsKnownOnLinux() throws {
        #if os(Linux)
            let host = try XCTUnwrap(MemoryLimit.host())
            XCTAssertGreaterThan(host.availableBytes, 0)
            XCTAssertFalse(host.source.isEmpty)
        #endif
    }
}
