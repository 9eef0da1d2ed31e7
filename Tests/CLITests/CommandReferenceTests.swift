import CytoTestSupport
import Foundation
import XCTest

/// docs/reference.md is generated from the parser (`scripts/command-reference`); this
/// fails, naming the script to run, when an option or a help text changed without it.
final class CommandReferenceTests: XCTestCase {
    func testReferencePageMatchesTheParser() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("scripts/command-reference").path
        let r = try TestProcess.run(
            URL(fileURLWithPath: "/bin/bash"), [script, "--check", "--binary", CLITests.binary.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let page = try String(contentsOf: root.appendingPathComponent("docs/reference.md"), encoding: .utf8)
        XCTAssertTrue(page.contains("## `cytocl sweep run`") || page.contains("## `cytocl sweep`"), "the sweep command is missing")
        XCTAssertTrue(page.contains("`--backend`"), "options are missing")
    }
}
