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
        // Offsets count the byte-order mark: they are where a hex editor shows the byte.
        XCTAssertThrowsError(try TextFile.decode([0xEF, 0xBB, 0xBF, 0x61, 0xFF])) {
            XCTAssertEqual($0 as? TextFile.Failure, .notUTF8(offset: 4))
        }
        XCTAssertThrowsError(try TextFile.decode([0xEF, 0xBB, 0xBF, 0x61, 0x00])) {
            XCTAssertEqual($0 as? TextFile.Failure, .binary(offset: 4))
        }
    }

    /// Excel's "Unicode Text" save: UTF-16 LE with a byte-order mark, tab-separated, CRLF.
    /// It reads as the same rows as the UTF-8 comma file (characters outside the BMP
    /// included); big-endian too.
    func testUTF16WithAByteOrderMarkReadsLikeUTF8() throws {
        let text = "path\tlabel\r\nÉo/a😀.tif\tÉosinophile\r\nb.tif\tblast\r\n"
        let le: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let be: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        for (name, bytes) in [("LE", le), ("BE", be)] {
            let decoded = try TextFile.decode(bytes)
            XCTAssertEqual(decoded, text, name)
            XCTAssertEqual(
                try CSVReader.rows(decoded), [["path", "label"], ["Éo/a😀.tif", "Éosinophile"], ["b.tif", "blast"]], name)
        }
    }

    /// UTF-16 that does not decode is refused with the first bad byte: an odd byte count,
    /// a lone surrogate, a NUL character; UTF-16 without a mark is named as such, not as
    /// a binary file.
    func testBrokenUTF16IsRefusedWithTheOffset() {
        XCTAssertThrowsError(try TextFile.decode([0xFF, 0xFE, 0x61, 0x00, 0x62])) {
            XCTAssertEqual($0 as? TextFile.Failure, .notUTF16(offset: 4))
        }
        XCTAssertThrowsError(try TextFile.decode([0xFF, 0xFE, 0x61, 0x00, 0x3D, 0xD8, 0x62, 0x00])) {
            XCTAssertEqual($0 as? TextFile.Failure, .notUTF16(offset: 4))
            XCTAssertEqual(
                "\($0)", "not UTF-16 text, though it starts with a UTF-16 byte-order mark (byte 4 is not part of a UTF-16 character)")
        }
        XCTAssertThrowsError(try TextFile.decode([0xFE, 0xFF, 0x00, 0x61, 0x00, 0x00])) {
            XCTAssertEqual($0 as? TextFile.Failure, .binary(offset: 4))
        }
        XCTAssertThrowsError(try TextFile.decode(Array("path,label\n".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))) {
            XCTAssertEqual($0 as? TextFile.Failure, .utf16)
            XCTAssertEqual("\($0)", "UTF-16 text without a byte-order mark (save it as UTF-8, or as Excel's \"Unicode Text\")")
        }
        // A binary file whose first bytes merely hold a NUL is still a binary file.
        XCTAssertThrowsError(try TextFile.decode([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])) {
            XCTAssertEqual($0 as? TextFile.Failure, .binary(offset: 8))
        }
    }
}
