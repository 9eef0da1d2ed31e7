import XCTest
final class CytoReportPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
