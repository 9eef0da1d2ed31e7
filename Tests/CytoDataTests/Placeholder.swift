import XCTest
final class CytoDataPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
