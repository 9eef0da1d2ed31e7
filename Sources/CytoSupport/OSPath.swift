import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Paths handed to the operating system byte for byte.
///
/// A name that is not UTF-8 (`nu\xFF.onnx`) reaches CytoCL from the command line
/// with each stray byte held as the private-use scalar U+10FF00 + byte (see
/// `FileSystemPath` in CytoData, which reads the arguments). Swift's `String` to C
/// string conversion, and Foundation's file calls, encode that scalar as four UTF-8
/// bytes, so an output was written as `nu\xF4\x8F\xBF\xBF.onnx`. Every output path goes
/// through here instead (`AtomicFile`), which turns those scalars back into their bytes.
public enum OSPath {
    static let escapeBase: UInt32 = 0x10FF00

    static func isEscape(_ v: UInt32) -> Bool { v >= escapeBase + 0x80 && v <= escapeBase + 0xFF }

    /// The bytes the operating system knows the path by (without a terminating NUL).
    public static func bytes(_ path: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        for s in path.unicodeScalars {
            if isEscape(s.value) { out.append(UInt8(s.value - escapeBase)) } else { out += Array(String(s).utf8) }
        }
        return out
    }

    /// Calls `body` with the path as a NUL-terminated C string of its original bytes.
    public static func withCString<T>(_ path: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        if !path.unicodeScalars.contains(where: { isEscape($0.value) }) { return try path.withCString(body) }
        let b = bytes(path).map { CChar(bitPattern: $0) } + [0]
        return try b.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    /// Which file `path` names, links followed: two paths name the same file (a link, a
    /// `..` detour, a hard link) exactly when their identities are equal.
    public struct Identity: Hashable, Sendable {
        public var device: UInt64
        public var inode: UInt64
    }

    /// The identity of the file at `path`, or nil when it is missing.
    public static func identity(_ path: String) -> Identity? {
        var st = stat()
        guard withCString(path, { stat($0, &st) }) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Whether `path` is a folder (true), another kind of file (false), or missing (nil).
    public static func isDirectory(_ path: String) -> Bool? {
        var st = stat()
        guard withCString(path, { stat($0, &st) }) == 0 else { return nil }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The folders `mkdir -p dir` would create, deepest first: `dir` and its missing
    /// ancestors. A command whose output preflight creates its `--out` folder and that is
    /// then refused (a bad image, an unknown class) removes them again with
    /// `removeEmptyFolders`, so a refusal leaves nothing behind (an empty `--out` inside a
    /// class-folder data set reads as an empty class on the next run).
    public static func missingFolders(_ dir: URL) -> [URL] {
        var result: [URL] = []
        var d = dir.standardizedFileURL
        while isDirectory(d.path) == nil, d.path != "/" {
            result.append(d)
            d = d.deletingLastPathComponent()
        }
        return result
    }

    /// Removes each of `folders` (deepest first, from `missingFolders`) that is empty;
    /// never a folder with anything in it (`rmdir` refuses those).
    public static func removeEmptyFolders(_ folders: [URL]) {
        for f in folders { _ = withCString(f.path) { rmdir($0) } }
    }

    /// `mkdir -p`: creates `path` and its missing parents. Throws `CytoError.io` naming
    /// the first folder that cannot be created.
    public static func createDirectories(_ path: String) throws {
        if isDirectory(path) == true { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            if isDirectory(prefix) == true { continue }
            if withCString(prefix, { mkdir($0, 0o777) }) != 0 && errno != EEXIST {
                throw CytoError.io(path: prefix, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
            }
            if isDirectory(prefix) != true {
                throw CytoError.io(path: prefix, reason: "cannot create the folder: a file of that name is in the way")
            }
        }
    }
}
