import XCTest
final class CytoCPUPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
