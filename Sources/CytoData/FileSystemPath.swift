import CytoSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// File names as Linux stores them: arbitrary bytes, not necessarily UTF-8.
///
/// Swift strings hold Unicode, and Foundation decodes a name that is not UTF-8
/// lossily (U+FFFD), after which the file "does not exist". CytoCL keeps every byte
/// instead: a byte that is not part of valid UTF-8 is held as the private-use
/// scalar U+10FF00 + byte, and turned back into that byte whenever the path is
/// handed to the operating system (`withCString`). Listing (`entries`), reading
/// (`FileBytes`) and the command line (`arguments`) all go through here, so a file
/// named `bad\xFFname.png` is listed, decoded and named in messages (`display`).
public enum FileSystemPath {
    static let escapeBase: UInt32 = 0x10FF00

    static func isEscape(_ v: UInt32) -> Bool { v >= escapeBase + 0x80 && v <= escapeBase + 0xFF }

    /// The string for the raw bytes of a name or path.
    public static func string<C: Collection>(fromBytes b: C) -> String where C.Element == UInt8 {
        let bytes = Array(b)
        if let s = String(validating: bytes, as: UTF8.self), !s.unicodeScalars.contains(where: { isEscape($0.value) }) { return s }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c < 0x80 { out.append(Unicode.Scalar(c)); i += 1; continue }
            var len = 0, minimum: UInt32 = 0
            if c & 0xE0 == 0xC0 {
                len = 2; minimum = 0x80
            } else if c & 0xF0 == 0xE0 {
                len = 3; minimum = 0x800
            } else if c & 0xF8 == 0xF0 {
                len = 4; minimum = 0x10000
            }
            if len > 0 && i + len <= bytes.count {
                var v = UInt32(c) & (0xFF >> UInt32(len + 1))
                var ok = true
                for k in 1..<len {
                    let cc = bytes[i + k]
                    if cc & 0xC0 != 0x80 { ok = false; break }
                    v = v << 6 | UInt32(cc & 0x3F)
                }
                if ok, v >= minimum, !isEscape(v), let s = Unicode.Scalar(v) { out.append(s); i += len; continue }
            }
            out.append(Unicode.Scalar(escapeBase + UInt32(c))!)
            i += 1
        }
        return String(out)
    }

    /// The bytes the operating system knows the path by (without a terminating NUL).
    public static func bytes(_ path: String) -> [UInt8] { OSPath.bytes(path) }

    /// Calls `body` with the path as a NUL-terminated C string of its original bytes.
    public static func withCString<T>(_ path: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try OSPath.withCString(path, body)  // the one conversion, shared with CytoCore's writers
    }

    /// The absolute, lexically normalised form of `path` (`.`, `..` and repeated `/`
    /// resolved; a relative path taken from the working directory; symbolic links not
    /// followed), so that the same file named from a relative `--data`, an absolute path
    /// or a `../` path compares equal. Bytes of names that are not UTF-8 are kept.
    public static func lexical(_ path: String) -> String {
        let full = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for c in full.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// A file name, path or class (folder) name for human-readable output, one line,
    /// every character visible: bytes that are not UTF-8 as `\xFF`, CR, LF and tab as
    /// `\r`, `\n`, `\t`, and every other control character (C0, DEL, C1, which could
    /// rewrite a terminal line or forge a line of the report) as `\xNN` or `\u{NNNN}`.
    /// The one escaping of user names in lists and messages (`dataset inspect`,
    /// duplicate and near-duplicate listings, load warnings, error messages). CSV keeps
    /// names exact instead, quoted (`CSVWriter.field` of `display`).
    public static func visible(_ name: String) -> String {
        guard name.unicodeScalars.contains(where: { isEscape($0.value) || isControl($0) }) else { return name }
        var out = ""
        for s in name.unicodeScalars {
            switch s {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where isEscape(s.value): out += String(format: "\\x%02X", s.value - escapeBase)
            case _ where s.value < 0x80 && isControl(s): out += String(format: "\\x%02X", s.value)
            case _ where isControl(s): out += String(format: "\\u{%04X}", s.value)
            default: out.unicodeScalars.append(s)
            }
        }
        return out
    }

    /// C0 and C1 control characters, DEL, and the line and paragraph separators.
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || (s.value >= 0x7F && s.value <= 0x9F) || s.value == 0x2028 || s.value == 0x2029
    }

    /// The path with its bytes that are not UTF-8 shown as `\xFF` and nothing else
    /// changed (for CSV fields, which are quoted and must keep the name exact; for
    /// human-readable output use `visible`).
    public static func display(_ path: String) -> String {
        guard path.unicodeScalars.contains(where: { isEscape($0.value) }) else { return path }
        var out = ""
        for s in path.unicodeScalars {
            if isEscape(s.value) { out += String(format: "\\x%02X", s.value - escapeBase) } else { out.unicodeScalars.append(s) }
        }
        return out
    }

    /// One entry of a folder.
    public struct Entry: Sendable {
        public var name: String
        public var isDirectory: Bool
    }

    /// The entries of `folder` (without `.` and `..`), with every name's bytes kept.
    /// Throws `DataError.unreadable` naming the folder when it cannot be listed, so an
    /// unreadable folder is reported, never skipped as if it were empty.
    public static func entries(_ folder: String) throws -> [Entry] {
        guard let dir = withCString(folder, { opendir($0) }) else {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw DataError.missingFolder(path: folder) }
            throw DataError.unreadable(path: folder, reason: "cannot list the folder: \(String(cString: strerror(e)))")
        }
        defer { closedir(dir) }
        var out: [Entry] = []
        while true {
            errno = 0
            guard let ent = readdir(dir) else {
                if errno != 0 {
                    throw DataError.unreadable(path: folder, reason: "cannot list the folder: \(String(cString: strerror(errno)))")
                }
                break
            }
            let nameBytes: [UInt8] = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                let p = raw.bindMemory(to: UInt8.self)
                return Array(p.prefix(while: { $0 != 0 }))
            }
            if nameBytes == [0x2E] || nameBytes == [0x2E, 0x2E] { continue }
            let name = string(fromBytes: nameBytes)
            var isDir = ent.pointee.d_type == UInt8(DT_DIR)
            if ent.pointee.d_type == UInt8(DT_UNKNOWN) || ent.pointee.d_type == UInt8(DT_LNK) {
                var st = stat()
                isDir = withCString(folder + "/" + name) { stat($0, &st) } == 0 && (st.st_mode & S_IFMT) == S_IFDIR
            }
            out.append(Entry(name: name, isDirectory: isDir))
        }
        return out
    }

    /// The command line with every argument's bytes kept (Swift's `CommandLine.arguments`
    /// replaces bytes that are not UTF-8), without the program name.
    public static func arguments() -> [String] {
        (1..<Int(CommandLine.argc)).map { i in
            guard let p = CommandLine.unsafeArgv[i] else { return "" }
            return string(fromBytes: UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
        }
    }
}
