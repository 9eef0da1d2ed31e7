import Foundation

/// The one way CytoCL turns the bytes of a text file a user gives it (a labels file, a
/// CSV manifest, a cell list) into text and lines.
///
/// Files come from Windows editors (CRLF), Excel (a UTF-8 byte-order mark before the
/// header), old Mac tools (bare CR) and scripts that leave out the final line break;
/// all of them must read the same. Swift's `split(separator: "\n")` is no use here:
/// it compares `Character`s, and "\r\n" is one `Character` that equals neither "\r"
/// nor "\n", so a CRLF file came out as one line. Splitting is by Unicode scalar.
public enum TextFile {
    /// Why bytes are not usable text.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Not valid UTF-8; `offset` is the first bad byte.
        case notUTF8(offset: Int)
        /// A NUL byte: a binary file given where text is expected.
        case binary(offset: Int)
        /// A UTF-16 byte-order mark (Windows Notepad's "Unicode"): readable, but not UTF-8.
        case utf16
        public var description: String {
            switch self {
            // Excel's "CSV (Comma delimited)" on Windows writes the Windows code page (an `é`
            // is the single byte E9): the commonest way a lab's labels file gets here.
            case .notUTF8(let o):
                return "not UTF-8 text (byte \(o) is not part of a UTF-8 character; Excel's \"CSV (Comma delimited)\" "
                    + "writes the Windows code page: save as \"CSV UTF-8 (Comma delimited)\")"
            case .binary(let o): return "not a text file (a NUL byte at offset \(o))"
            case .utf16: return "UTF-16 text (save it as UTF-8)"
            }
        }
    }

    /// The text of `bytes`, UTF-8 with or without a byte-order mark (which is dropped).
    public static func decode<C: Collection>(_ bytes: C) throws -> String where C.Element == UInt8 {
        var b = Array(bytes)
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { b.removeFirst(3) }
        if b.starts(with: [0xFF, 0xFE]) || b.starts(with: [0xFE, 0xFF]) { throw Failure.utf16 }
        if let z = b.firstIndex(of: 0) { throw Failure.binary(offset: z) }
        guard let s = String(validating: b, as: UTF8.self) else {
            // Find the first byte that breaks the encoding, for the message.
            var it = b.makeIterator()
            var decoder = UTF8()
            var offset = 0, good = 0
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue(let s): offset += UTF8.width(s); good = offset
                case .emptyInput: break loop
                case .error: break loop
                }
            }
            throw Failure.notUTF8(offset: good)
        }
        return s
    }

    /// The lines of `text`, each with its 1-based line number. A line ends at LF, CRLF
    /// or a bare CR; the line break is not part of the line; a final line break is
    /// optional (it does not add an empty last line). A leading byte-order mark is dropped.
    public static func lines(_ text: String) -> [(number: Int, text: String)] {
        var out: [(Int, String)] = []
        var current = String.UnicodeScalarView()
        var pendingCR = false
        var scalars = Substring(text).unicodeScalars[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }
        func end() { out.append((out.count + 1, String(current))); current = .init() }
        for s in scalars {
            if pendingCR {
                pendingCR = false
                end()
                if s == "\n" { continue }
            }
            switch s {
            case "\r": pendingCR = true
            case "\n": end()
            default: current.append(s)
            }
        }
        if pendingCR || !current.isEmpty { end() }
        return out
    }
}
