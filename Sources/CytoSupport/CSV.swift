import Foundation

/// The one CSV writer of CytoCL (RFC 4180): a field holding a comma, a quote, CR or
/// LF, or starting or ending with a space, is quoted, and quotes inside are doubled.
/// Fields are checked by Unicode scalar, not by `Character`, because Swift reads
/// "\r\n" as one character that equals neither "\r" nor "\n": a file name with a
/// CR in it must still be quoted. Lines end in "\n".
public struct CSVWriter: Sendable {
    public private(set) var header: [String]
    public private(set) var rows: [[String]] = []

    public init(header: [String]) { self.header = header }

    /// Appends a row; it must have as many fields as the header.
    public mutating func append(_ row: [String]) {
        precondition(row.count == header.count, "CSV row has \(row.count) fields, the header \(header.count)")
        rows.append(row)
    }

    /// Quotes one field if needed.
    public static func field(_ s: String) -> String {
        let needs =
            s.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
            || s.unicodeScalars.first == " " || s.unicodeScalars.last == " "
        return needs ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// One line: the fields quoted as needed, joined by commas, ending in "\n".
    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\n"
    }

    /// A number in its shortest exact form; NaN as `NaN` and infinities as `inf` / `-inf`,
    /// which pandas and R both read.
    public static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    public var text: String { ([header] + rows).map(CSVWriter.line).joined() }

    /// Writes the file atomically.
    public func write(to url: URL) throws { try writeAtomically(Data(text.utf8), to: url) }

    /// Splits CSV text into rows of fields (see `CSVReader.rows`).
    public static func parse(_ text: String) -> [[String]] { (try? CSVReader.rows(text)) ?? [] }
}

/// The CSV reader matching `CSVWriter` (RFC 4180): quoted fields may hold commas,
/// doubled quotes, CR and LF; rows end in LF, CRLF or a bare CR; a final line break is optional.
public enum CSVReader {
    public struct Row: Sendable, Equatable {
        /// 1-based line number where the row starts (for messages).
        public var line: Int
        public var fields: [String]
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unterminatedQuote(line: Int)
        case textAfterQuote(line: Int)
        public var description: String {
            switch self {
            case .unterminatedQuote(let l): return "line \(l): a quoted field is never closed"
            case .textAfterQuote(let l): return "line \(l): text after the closing quote of a field"
            }
        }
    }

    /// The field separator of `text`: a comma, unless the first row that is neither blank
    /// nor a `#` comment has no comma outside quotes but a semicolon or a tab. Excel saves
    /// "CSV" with semicolons wherever the decimal mark is a comma (most of Europe), and a
    /// sheet copied into a text editor has tabs; such a file was refused on its first
    /// line ("expected 'path,label', found 'path;label'"). The first row decides for the
    /// whole file, so a comma file whose later rows hold semicolons in names reads as before;
    /// a first row without a comma was never a valid `path,label` row.
    public static func separator(of text: String) -> Unicode.Scalar {
        var inQuotes = false, atRowStart = true, isComment = false, blank = true
        var semicolon = false, tab = false
        for ch in text.unicodeScalars {
            if atRowStart { atRowStart = false; isComment = ch == "#"; blank = true; semicolon = false; tab = false }
            if ch == "\"" { inQuotes.toggle(); blank = false; continue }
            if inQuotes { continue }
            switch ch {
            case "\n", "\r":
                if !blank && !isComment { return semicolon ? ";" : tab ? "\t" : "," }
                atRowStart = true
            case ",": if !isComment { return "," }
            case ";": semicolon = true; blank = false
            case "\t": tab = true
            case " ": break
            default: blank = false
            }
        }
        return !blank && !isComment && (semicolon || tab) ? (semicolon ? ";" : "\t") : ","
    }

    /// The rows of `text`, each with its starting line number. Empty lines are kept as
    /// rows with one empty field, so callers can skip them knowing where they were.
    /// Fields are separated by commas, or by the semicolons or tabs of a file whose first
    /// row uses them instead (`separator(of:)`).
    public static func parse(_ text: String) throws -> [Row] {
        let separator = CSVReader.separator(of: text)
        var rows: [Row] = [], fields: [String] = [], field = String.UnicodeScalarView()
        var line = 1, rowLine = 1
        var inQuotes = false, closedQuote = false, quoteLine = 1, pendingCR = false
        func endField() { fields.append(String(field)); field = .init(); closedQuote = false }
        func endRow() { endField(); rows.append(Row(line: rowLine, fields: fields)); fields = []; rowLine = line }
        for ch in text.unicodeScalars {
            if inQuotes {
                if ch == "\"" {
                    inQuotes = false; closedQuote = true
                } else {
                    if ch == "\n" { line += 1 }
                    field.append(ch)
                }
                continue
            }
            if pendingCR {
                pendingCR = false
                line += 1; endRow()  // CRLF, or a bare CR (old Mac line ends) also ends the row
                if ch == "\n" { continue }
            }
            if ch == separator { endField(); continue }
            switch ch {
            case "\"":
                if closedQuote {
                    field.append("\""); inQuotes = true; closedQuote = false
                }  // doubled quote
                else if field.isEmpty {
                    inQuotes = true; quoteLine = line
                } else {
                    field.append(ch)
                }  // a quote inside an unquoted field: keep it
            case "\r": pendingCR = true
            case "\n": line += 1; endRow()
            default:
                if closedQuote { throw Failure.textAfterQuote(line: line) }
                field.append(ch)
            }
        }
        if inQuotes { throw Failure.unterminatedQuote(line: quoteLine) }
        if pendingCR { line += 1; endRow() } else if !field.isEmpty || !fields.isEmpty || closedQuote { endRow() }
        return rows
    }

    /// The fields of every row (without line numbers).
    public static func rows(_ text: String) throws -> [[String]] { try parse(text).map(\.fields) }
}
