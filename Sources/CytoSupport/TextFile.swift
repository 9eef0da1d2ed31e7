import Foundation

/// The one way CytoCL turns the bytes of a text file a user gives it (a labels file, a
/// CSV manifest, a cell list) into text and lines.
///
/// Files come from Windows editors (CRLF), Excel (a UTF-8 byte-order mark before the
/// header), old Mac tools (bare CR) and scripts that leave out the final line break;
/// all of them must read the same. Swift's `split(separator: "\n")` is no use here:
/// it compares `Character`s, and "\r\n" is one `Character` that equals neither "\r"
/// nor "\n", so a CRLF file came out as one line. Splitting is by Unicode scalar.
///
/// Excel's "Unicode Text" save (and Notepad's "Unicode", PowerShell's `Out-File`) writes
/// UTF-16 with a byte-order mark, tab-separated: such a file is decoded like UTF-8 (the
/// CSV reader then takes the tab as the separator), not refused.
public enum TextFile {
    /// Why bytes are not usable text.
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Not valid UTF-8; `offset` is the first bad byte.
        case notUTF8(offset: Int)
        /// A NUL byte: a binary file given where text is expected.
        case binary(offset: Int)
        /// UTF-16 without a byte-order mark (the bytes alternate with NULs): which byte
        /// order is meant is a guess, so it is refused with a hint rather than guessed.
        case utf16
        /// Starts with a UTF-16 byte-order mark but does not decode as UTF-16 (an odd
        /// number of bytes, or half of a surrogate pair alone); `offset` is the first bad byte.
        case notUTF16(offset: Int)
        public var description: String {
            switch self {
            // Excel's "CSV (Comma delimited)" on Windows writes the Windows code page (an `é`
            // is the single byte E9): the commonest way a lab's labels file gets here.
            case .notUTF8(let o):
                return "not UTF-8 text (byte \(o) is not part of a UTF-8 character; Excel's \"CSV (Comma delimited)\" "
                    + "writes the Windows code page: save as \"CSV UTF-8 (Comma delimited)\")"
            case .binary(let o): return "not a text file (a NUL byte at offset \(o))"
            case .utf16: return "UTF-16 text without a byte-order mark (save it as UTF-8, or as Excel's \"Unicode Text\")"
            case .notUTF16(let o):
                return "not UTF-16 text, though it starts with a UTF-16 byte-order mark (byte \(o) is not part of a UTF-16 character)"
            }
        }
    }

    /// The text of `bytes`: UTF-8 with or without a byte-order mark, or UTF-16 (little- or
    /// big-endian) with one; the mark is dropped. Offsets in failures count from the file's
    /// first byte, the mark included.
    public static func decode<C: Collection>(_ bytes: C) throws -> String where C.Element == UInt8 {
        var b = Array(bytes)
        if b.starts(with: [0xFF, 0xFE]) { return try decodeUTF16(b, bigEndian: false) }
        if b.starts(with: [0xFE, 0xFF]) { return try decodeUTF16(b, bigEndian: true) }
        let mark = b.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        b.removeFirst(mark)
        if let z = b.firstIndex(of: 0) {
            if looksLikeUTF16WithoutMark(b) { throw Failure.utf16 }
            throw Failure.binary(offset: z + mark)
        }
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
            throw Failure.notUTF8(offset: good + mark)
        }
        return s
    }

    /// `bytes` (starting with the 2-byte mark) as UTF-16 text. A NUL character is refused
    /// as in UTF-8 text: the file is binary, whatever its first two bytes.
    private static func decodeUTF16(_ bytes: [UInt8], bigEndian: Bool) throws -> String {
        var units: [UInt16] = []
        units.reserveCapacity(bytes.count / 2)
        var i = 2
        while i + 1 < bytes.count {
            let (hi, lo) = bigEndian ? (bytes[i], bytes[i + 1]) : (bytes[i + 1], bytes[i])
            let unit = UInt16(hi) << 8 | UInt16(lo)
            if unit == 0 { throw Failure.binary(offset: i) }
            units.append(unit)
            i += 2
        }
        var scalars = String.UnicodeScalarView()
        var it = units.makeIterator()
        var decoder = UTF16()
        var offset = 2
        loop: while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): scalars.append(s); offset += 2 * UTF16.width(s)
            case .emptyInput: break loop
            case .error: throw Failure.notUTF16(offset: offset)
            }
        }
        if bytes.count % 2 != 0 { throw Failure.notUTF16(offset: bytes.count - 1) }
        return String(scalars)
    }

    /// Whether `bytes` start like UTF-16 text without a byte-order mark: over the first
    /// (up to) 16 bytes, every other byte is NUL and the bytes between are not.
    private static func looksLikeUTF16WithoutMark(_ bytes: [UInt8]) -> Bool {
        let n = min(bytes.count, 16) & ~1
        guard n >= 4 else { return false }
        let head = bytes[0..<n]
        let even = stride(from: 0, to: n, by: 2).map { head[$0] }, odd = stride(from: 1, to: n, by: 2).map { head[$0] }
        return (odd.allSatisfy { $0 == 0 } && even.allSatisfy { $0 != 0 }) || (even.allSatisfy { $0 == 0 } && odd.allSatisfy { $0 != 0 })
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
