import CytoCore
import Foundation
import XCTest

@testable import CytoData

/// User file and class names in human-readable output: every byte visible, one line
/// per entry, through the one helper `FileSystemPath.visible`.
final class VisibleNameTests: XCTestCase {
    func testControlCharactersAndNonUTF8BytesAreEscaped() {
        let v = FileSystemPath.visible
        XCTAssertEqual(v("plain/name é.png"), "plain/name é.png", "ordinary names, accents included, are unchanged")
        XCTAssertEqual(v("a\rb\nc\td.png"), "a\\rb\\nc\\td.png")
        XCTAssertEqual(v("esc\u{1B}[2K\u{7F}\u{0}.png"), "esc\\x1B[2K\\x7F\\x00.png")
        XCTAssertEqual(v("c1\u{85}ls\u{2028}.png"), "c1\\u{0085}ls\\u{2028}.png")
        let bytes: [UInt8] = Array("bad".utf8) + [0xFF, 0x0D] + Array("x.png".utf8)
        XCTAssertEqual(v(FileSystemPath.string(fromBytes: bytes)), "bad\\xFF\\rx.png")
        // CSV keeps the name exact (quoted); only bytes that are not UTF-8 are spelled out.
        XCTAssertEqual(FileSystemPath.display("a\rb"), "a\rb")
        XCTAssertEqual(CSVWriter.field(FileSystemPath.display("a\r,b")), "\"a\r,b\"")
    }

    func testListingsAndMessagesStayOneLinePerEntry() {
        let hostile = "blast/x\r\nforged line.png"
        let nd = NearDuplicateSummary(
            policy: .drop, parameters: NearDuplicateParameters(),
            groups: [NearDuplicateGroup(members: ["blast/a.png", hostile], classes: ["blast", "bl\nast"], similarity: 0.99)],
            dropped: [hostile])
        let lines = nd.listing.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 2, nd.listing)
        XCTAssertTrue(lines[1].hasSuffix("blast/a.png ~ blast/x\\r\\nforged line.png  [classes differ: blast/bl\\nast]"), nd.listing)

        let dedup = DedupReport(
            groups: [DuplicateGroup(paths: ["/d/a.png", "/d/" + hostile], classes: ["blast", "blast"], sha256: "00")],
            dropped: ["/d/" + hostile])
        XCTAssertEqual(dedup.summary.split(separator: "\n").count, 2, dedup.summary)
        XCTAssertTrue(dedup.summary.contains("drop /d/blast/x\\r\\nforged line.png"), dedup.summary)

        let one = DataError.notAnImage(path: "/d/" + hostile, detail: "no magic bytes")
        XCTAssertEqual(one.description, "/d/blast/x\\r\\nforged line.png: not an image file: no magic bytes")
        let many = DataError.badImages([one, .emptyFile(path: "/d/e\rmpty.png")])
        XCTAssertEqual(
            many.description.split(separator: "\n"),
            ["2 bad image files:", "  /d/blast/x\\r\\nforged line.png: not an image file: no magic bytes", "  /d/e\\rmpty.png: the file is empty (0 bytes)"])
    }
}
