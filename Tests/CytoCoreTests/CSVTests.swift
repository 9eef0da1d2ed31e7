import CytoCore
import XCTest

/// RFC 4180 CSV: every field that needs quotes gets them (including a bare CR and a
/// CRLF, which Swift reads as one Character), and the reader splits rows as a
/// spreadsheet or pandas would.
final class CSVTests: XCTestCase {
    func testQuotingIncludesCarriageReturns() {
        XCTAssertEqual(CSVWriter.field("plain.png"), "plain.png")
        XCTAssertEqual(CSVWriter.field("a,b.png"), "\"a,b.png\"")
        XCTAssertEqual(CSVWriter.field("say \"hi\""), "\"say \"\"hi\"\"\"")
        XCTAssertEqual(CSVWriter.field("cr\r.png"), "\"cr\r.png\"")
        XCTAssertEqual(CSVWriter.field("crlf\r\n.png"), "\"crlf\r\n.png\"", "\\r\\n is one Character in Swift")
        XCTAssertEqual(CSVWriter.field("lf\n.png"), "\"lf\n.png\"")
        XCTAssertEqual(CSVWriter.field(" padded "), "\" padded \"")
    }

    func testRoundTripThroughTheReader() throws {
        let nasty = ["cells/a,b.png", "x\ry.png", "p\r\nq.png", "quote\"d.tif", "", "ünï cödé.jpg", " lead"]
        var w = CSVWriter(header: ["path", "class"])
        for (i, n) in nasty.enumerated() { w.append([n, "c\(i)"]) }
        let rows = try CSVReader.rows(w.text)
        XCTAssertEqual(rows, [["path", "class"]] + nasty.enumerated().map { [$0.element, "c\($0.offset)"] })
        XCTAssertEqual(CSVWriter.parse(w.text).count, nasty.count + 1)
    }

    func testReaderLineEndingsAndErrors() throws {
        XCTAssertEqual(try CSVReader.rows("a,b\r\nc,d\r\n"), [["a", "b"], ["c", "d"]])
        XCTAssertEqual(try CSVReader.rows("a,b\nc,d"), [["a", "b"], ["c", "d"]], "no final line break")
        XCTAssertEqual(try CSVReader.rows("a\rb\r"), [["a"], ["b"]], "bare CR line ends")
        let parsed = try CSVReader.parse("h1,h2\n\"multi\nline\",x\nlast,y\n")
        XCTAssertEqual(parsed.map(\.line), [1, 2, 4], "a row's line number counts the line breaks inside quotes")
        XCTAssertThrowsError(try CSVReader.rows("a,\"open\nb,c\n")) { e in
            XCTAssertEqual(e as? CSVReader.Failure, .unterminatedQuote(line: 1))
        }
        XCTAssertThrowsError(try CSVReader.rows("\"x\"y,z\n")) { e in
            XCTAssertEqual(e as? CSVReader.Failure, .textAfterQuote(line: 1))
        }
    }

    /// Excel saves "CSV" with semicolons where the decimal mark is a comma, and a sheet
    /// pasted into an editor has tabs: the first row that is not blank or a comment
    /// decides; a comma file reads as before even with semicolons in later names.
    func testSemicolonAndTabFilesAreReadByTheirFirstRow() throws {
        XCTAssertEqual(try CSVReader.rows("path;label\r\n\"a;b.png\";blast\r\nc d.png;other\r\n"),
            [["path", "label"], ["a;b.png", "blast"], ["c d.png", "other"]])
        XCTAssertEqual(try CSVReader.rows("\n# made by hand, today\na.png\tblast\n"), [[""], ["# made by hand, today"], ["a.png", "blast"]])
        XCTAssertEqual(try CSVReader.rows("path,label\na;b.png,blast\n"), [["path", "label"], ["a;b.png", "blast"]])
        XCTAssertEqual(try CSVReader.rows("\"x,y;z\",1\n"), [["x,y;z", "1"]], "a comma inside quotes is no separator")
        XCTAssertEqual(try CSVReader.rows("a.png;blast"), [["a.png", "blast"]], "one row without a line break")
        XCTAssertEqual(try CSVReader.rows("path\na.png,blast\n"), [["path"], ["a.png", "blast"]])
    }
}
