import CytoCore
import XCTest

final class ModelSpecTests: XCTestCase {
    func testParameterCountsMatchThePaper() {
        XCTAssertEqual(ModelSpec.paper(height: 257, width: 257, classes: 2).parameterCount, 7_210)
        XCTAssertEqual(ModelSpec.paper(height: 257, width: 257, classes: 6).parameterCount, 7_342)
        XCTAssertEqual(ModelSpec.paper(height: 400, width: 400, classes: 2).parameterCount, 13_354)
    }

    func testFlattenSizes() {
        XCTAssertEqual(ModelSpec.paper().flattenedFeatures, 64)
        XCTAssertEqual(ModelSpec.paper(height: 400, width: 400).flattenedFeatures, 256)
    }

    func testSummaryLooksLikeKeras() {
        let s = ModelSpec.paper().summary()
        XCTAssertTrue(s.contains("(None, 255, 255, 4)"), s)
        XCTAssertTrue(s.contains("(None, 2, 2, 16)"), s)
        XCTAssertTrue(s.contains("Total params: 7,210"), s)
    }

    func testTooSmallInputIsRejected() {
        XCTAssertThrowsError(try ModelSpec.paper(height: 64, width: 64).validate()) { error in
            XCTAssertTrue("\(error)".contains("too small"), "\(error)")
        }
    }

    func testThousandsSeparator() {
        XCTAssertEqual(formatThousands(13354), "13,354")
        XCTAssertEqual(formatThousands(999), "999")
        XCTAssertEqual(formatThousands(1_000_000), "1,000,000")
    }
}
