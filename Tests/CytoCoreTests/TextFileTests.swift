import XCTest

@testable import CytoCore

/// Every text file CytoCL reads goes through `TextFile`: LF, CRLF, a bare CR, a UTF-8
/// byte-order mark and a missing final line break must give the same lines.
final class TextFileTests: XCTestCase {
    /// The four spellings of one file every reader is tested with.
    static func variants(_ lines: [String]) -> [(name: String, bytes: [UInt8])] {
        let lf = lines.map { $0 + "\n" }.joined()
        return [
            ("LF", Array(lf.utf8)),
            ("CRLF", Array(lines.map { $0 + "\r\n" }.joined().utf8)),
            ("BOM", [0xEF, 0xBB, 0xBF] + Array(lf.utf8)),
            ("no final newline", Array(lines.joined(separator: "\n").utf8)),
            ("BOM+CRLF, no final newline", [0xEF, 0xBB, 0xBF] + Array(lines.joined(separator: "\r\n").utf8)),
            ("bare CR", Array(lines.map { $0 + "\r" }.joined().utf8)),
        ]
    }

    func testEveryLineEndingAndABOMGiveTheSameLines() throws {
        let expected = ["path,label", "a.tif,blast", "", "b.tif,other"]
        for (name, bytes) in Self.variants(expected) {
            let lines = TextFile.lines(try TextFile.decode(bytes))
            XCTAssertEqual(lines.map(\.text), expected, name)
            XCTAssertEqual(lines.map(\.number), [1, 2, 3, 4], name)
        }
    }

    func testCSVReaderGivesTheSameRowsForEveryVariant() throws {
        let expected = [["path", "label"], ["a.tif", "blast"], ["b.tif", "other"]]
        for (name, bytes) in Self.variants(["path,label", "a.tif,blast", "b.tif,other"]) {
            XCTAssertEqual(try CSVReader.rows(try TextFile.decode(bytes)), expected, name)
        }
    }

    func testBinaryAndNonUTF8BytesAreRefusedWithTheOffset() {
        XCTAssertThrowsError(try TextFile.decode([0x61, 0x62, 0xFF, 0x63])) {
            XCTAssertEqual($0 as? TextFile.Failure, .notUTF8(offset: 2))
        }
        XCTAssertThrowsError(try TextFile.decode([0x61, 0x00, 0x62])) {
            XCTAssertEqual($0 as? TextFile.Failure, .binary(offset: 1))
        }
        XCTAssertThrowsError(try TextFile.decode([0xFF, 0xFE, 0x61, 0x00])) {
            XCTAssertEqual("\($0)", "UTF-16 text (save it as UTF-8)")
        }
    }
}
