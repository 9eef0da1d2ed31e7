import XCTest
final class CLIPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
