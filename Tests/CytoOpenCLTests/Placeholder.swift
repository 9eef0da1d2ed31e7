import XCTest
final class CytoOpenCLPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
