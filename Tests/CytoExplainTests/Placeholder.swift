import XCTest
final class CytoExplainPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
