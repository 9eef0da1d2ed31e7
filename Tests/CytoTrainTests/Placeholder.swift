import XCTest
final class CytoTrainPlaceholder: XCTestCase { func testModuleLoads() { XCTAssertTrue(true) } }
