import XCTest
final class CytoCorePlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
