import CytoSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads whole files with POSIX calls so that the error says exactly why a file
/// could not be read (missing, permission, a folder, empty), which Foundation's
/// `Data(contentsOf:)` folds into one generic message on Linux.
enum FileBytes {
    /// The file's bytes. Throws `DataError.missing`, `.unreadable` or `.emptyFile`.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = FileSystemPath.withCString(path) { open($0, O_RDONLY | O_CLOEXEC) }
        if fd < 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw DataError.missing(path: path) }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(e)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw DataError.unreadable(path: path, reason: "it is a folder") }
        let size = Int(st.st_size)
        if size == 0 { throw DataError.emptyFile(path: path) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buf in
            while done < size {
                let n = sysRead(fd, buf.baseAddress! + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
                }
                if n == 0 { break }
                done += n
            }
        }
        if done < size { bytes.removeSubrange(done...) }
        if bytes.isEmpty { throw DataError.emptyFile(path: path) }
        return bytes
    }

    /// What identifies one version of a file's bytes without reading them.
    struct Stamp: Equatable {
        var size: Int64
        /// Modification time in nanoseconds: `touch -r`, `cp -p` and `rsync -a` set it back.
        var mtimeNanos: Int64
        /// Inode change time in nanoseconds: set by the kernel on every write, rename or
        /// metadata change and settable by no system call, so an in-place edit that keeps
        /// size and modification time still changes it.
        var ctimeNanos: Int64
        /// Device and inode: a file replaced by another (`rsync`'s temporary + rename,
        /// `mv`) is a different inode.
        var device: UInt64
        var inode: UInt64
    }

    /// The file's `Stamp`, or nil when the path is missing.
    static func stamp(_ path: String) -> Stamp? {
        var st = stat()
        guard FileSystemPath.withCString(path, { stat($0, &st) }) == 0 else { return nil }
        #if canImport(Darwin)
            let m = st.st_mtimespec, c = st.st_ctimespec
        #else
            let m = st.st_mtim, c = st.st_ctim
        #endif
        return Stamp(
            size: Int64(st.st_size), mtimeNanos: Int64(m.tv_sec) * 1_000_000_000 + Int64(m.tv_nsec),
            ctimeNanos: Int64(c.tv_sec) * 1_000_000_000 + Int64(c.tv_nsec), device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    /// Writes `bytes` atomically through the project's one writer (`AtomicFile`),
    /// reporting failures as `DataError.writeFailed`.
    static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to url: URL) throws {
        do { try AtomicFile.write(bytes: bytes, to: url) } catch let e as CytoError {
            if case .io(_, let reason) = e { throw DataError.writeFailed(path: url.path, reason: reason) }
            throw DataError.writeFailed(path: url.path, reason: e.description)
        }
    }
}

/// The C `read` and `open`, reachable from types that have members of those names.
func sysRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, buffer, count) }
func sysOpen(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { open(path, flags, mode) }

extension FileBytes {
    /// A text file a user gave (labels file, manifest): its bytes decoded by `TextFile`
    /// (UTF-8, a byte-order mark dropped). Errors name the file.
    static func readText(_ path: String) throws -> String {
        let bytes = try read(path)
        do { return try TextFile.decode(bytes) } catch let e as TextFile.Failure {
            throw DataError.unreadable(path: path, reason: e.description)
        }
    }
}
