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
    ///
    /// Opened without blocking: a named pipe (FIFO) called `x.png` in a data folder hung
    /// every command that read the folder (`open` waits for a writer that never comes).
    /// A pipe with a writer — a labels file given as `--labels <(grep ... labels.csv)` —
    /// is read to its end (it used to be "empty (0 bytes)": a pipe has no size); one with
    /// none, and devices and sockets, are refused as not files.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = FileSystemPath.withCString(path) { open($0, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        if fd < 0 {
            let e = errno
            if e == ENOENT || e == ENOTDIR { throw DataError.missing(path: path) }
            if e == ENXIO { throw DataError.unreadable(path: path, reason: "it is a socket, not a file") }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(e)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw DataError.unreadable(path: path, reason: "it is a folder")
        case S_IFIFO: return try readPipe(fd, path: path)
        default: throw DataError.unreadable(path: path, reason: "it is a device or another special file, not a file")
        }
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

    /// How long a named pipe may stay without a writer before it is refused.
    static let pipeWriterWait: Int32 = 2000

    /// Every byte of a pipe, up to its end. `fd` was opened without blocking: first the
    /// pipe is given `pipeWriterWait` ms for a writer to open it and write or close (a
    /// `cat labels.csv > fifo &` started just before), then reads block until the end.
    private static func readPipe(_ fd: Int32, path: String) throws -> [UInt8] {
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var polled: Int32
        repeat { polled = poll(&ready, 1, pipeWriterWait) } while polled < 0 && errno == EINTR
        if polled == 0 {
            throw DataError.unreadable(path: path, reason: "it is a named pipe (FIFO) that nothing writes to, not a file")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { sysRead(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
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
