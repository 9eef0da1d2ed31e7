import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one way CytoCL writes a file: into a temporary file in the target's folder,
/// flushed to disk (fsync), then renamed over the target, so a reader never sees a
/// half-written file and a crash or a full disk leaves the previous file intact.
/// The temporary file is removed when anything fails.
///
/// Temporary names are `.<name>.tmp-<pid>-<host tag>-<random>`: the pid and a tag of
/// the host name let a later run tell a leftover of a killed process (`kill -9`
/// during a write) from a write in progress, and remove it
/// (`removeStaleTemporaries(in:)`), also on a folder shared by several cluster nodes.
public enum AtomicFile {
    /// Eight hex digits naming this host in temporary file names.
    public static let hostTag: String = {
        var h: UInt32 = 2_166_136_261  // FNV-1a: stable across runs, unlike Hasher
        for b in ProcessInfo.processInfo.hostName.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return String(format: "%08x", h)
    }()

    /// A fresh temporary path beside `url`.
    public static func temporaryURL(for url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).tmp-\(getpid())-\(hostTag)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))")
    }

    /// Writes `data` to `url` atomically, creating the folder if needed.
    public static func write(_ data: Data, to url: URL) throws {
        try data.withUnsafeBytes { try write(bytes: $0, to: url) }
    }

    /// Writes `data` into a folder that must already exist. A sweep writes its cell
    /// records this way: its folder moved away mid-run must make the write fail, not be
    /// recreated at the old path between the run's check and its write.
    public static func writeIntoExistingFolder(_ data: Data, to url: URL) throws {
        try data.withUnsafeBytes { bytes in
            try write(to: url, createFolders: false) { fd, _ in try writeAll(fd, bytes, path: url.path) }
        }
    }

    /// Writes `bytes` to `url` atomically, creating the folder if needed.
    public static func write(bytes: UnsafeRawBufferPointer, to url: URL) throws {
        try write(to: url) { fd, _ in try writeAll(fd, bytes, path: url.path) }
    }

    /// Creates the temporary file, lets `fill` write it through its descriptor (or by
    /// its path, e.g. a C library that opens the file itself), then flushes and renames
    /// it over `url`. On any error the temporary file is removed and the target is untouched.
    public static func write(to url: URL, _ fill: (_ fd: Int32, _ temporaryPath: String) throws -> Void) throws {
        try write(to: url, createFolders: true, fill)
    }

    static func write(
        to url: URL, createFolders: Bool, _ fill: (_ fd: Int32, _ temporaryPath: String) throws -> Void
    ) throws {
        let dir = url.deletingLastPathComponent()
        // Every call on a path goes through `OSPath`, so a name that is not UTF-8 is
        // written with the bytes given (`--out nu\xFF.onnx`), not re-encoded.
        if createFolders { try OSPath.createDirectories(dir.path) }
        let tmp = temporaryURL(for: url).path
        let fd = OSPath.withCString(tmp) { open($0, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        if fd < 0 {
            throw CytoError.io(path: url.path, reason: "cannot create a file in \(dir.path): \(String(cString: strerror(errno)))")
        }
        var fdOpen = true
        do {
            if let text = writeFault, url.path.contains(text) {
                throw CytoError.io(path: url.path, reason: "cannot write: \(String(cString: strerror(ENOSPC))) (injected by CYTOCL_FAULT)")
            }
            try fill(fd, tmp)
            if fsync(fd) != 0 { throw CytoError.io(path: url.path, reason: "cannot flush to disk: \(String(cString: strerror(errno)))") }
            close(fd); fdOpen = false
            if OSPath.withCString(tmp, { t in OSPath.withCString(url.path) { rename(t, $0) } }) != 0 {
                throw CytoError.io(path: url.path, reason: "cannot rename the new file into place: \(String(cString: strerror(errno)))")
            }
            // Make the rename itself durable (best effort: not every file system allows it).
            let dfd = OSPath.withCString(dir.path) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        } catch {
            if fdOpen { close(fd) }
            _ = OSPath.withCString(tmp) { unlink($0) }
            // The filler's own errors (e.g. a decoder's list of bad images) pass through;
            // Foundation's are turned into one line naming the file.
            guard isFoundationError(error) else { throw error }
            throw CytoError.io(path: url.path, reason: "cannot write: \(describeFileError(error))")
        }
    }

    /// Creates `url` with `data` only if no file of that name exists: the data is written
    /// and flushed to a temporary file first, which is then hard-linked to `url`
    /// (`link(2)` fails when the target exists, where `rename(2)` would replace it). So
    /// of several processes creating the same file at once exactly one succeeds, and a
    /// reader never sees it half-written. Returns false when `url` existed already (the
    /// caller reads it to see whose it is). On a file system without hard links the file
    /// is created with `O_CREAT | O_EXCL` and written in place (still one winner).
    public static func createExclusively(_ data: Data, at url: URL) throws -> Bool {
        let dir = url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw CytoError.io(path: dir.path, reason: "cannot create the folder: \(describeFileError(error))")
        }
        let tmp = temporaryURL(for: url)
        func fill(_ fd: Int32) throws {
            try data.withUnsafeBytes { try writeAll(fd, $0, path: url.path) }
            if fsync(fd) != 0 { throw CytoError.io(path: url.path, reason: "cannot flush to disk: \(String(cString: strerror(errno)))") }
        }
        let fd = open(tmp.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw CytoError.io(path: url.path, reason: "cannot create a file in \(dir.path): \(String(cString: strerror(errno)))")
        }
        defer { unlink(tmp.path) }
        do { try fill(fd) } catch { close(fd); throw error }
        close(fd)
        if link(tmp.path, url.path) != 0 {
            let e = errno
            if e == EEXIST { return false }
            guard e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == ENOSYS || e == EMLINK else {
                throw CytoError.io(path: url.path, reason: "cannot create: \(String(cString: strerror(e)))")
            }
            let direct = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if direct < 0 {
                if errno == EEXIST { return false }
                throw CytoError.io(path: url.path, reason: "cannot create: \(String(cString: strerror(errno)))")
            }
            do { try fill(direct) } catch { close(direct); unlink(url.path); throw error }
            close(direct)
        }
        let dfd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        return true
    }

    /// Test-only: `CYTOCL_FAULT=write:TEXT` makes every write here to a path containing
    /// TEXT fail as on a full disk (ENOSPC), so what a command says when its outputs
    /// cannot be written is tested without filling a disk. Never set it outside tests.
    static let writeFault: String? = {
        guard let v = ProcessInfo.processInfo.environment["CYTOCL_FAULT"], v.hasPrefix("write:"), v.count > 6 else { return nil }
        return String(v.dropFirst(6))
    }()

    /// Whether `name` is a temporary file of this writer (a write in progress, or a
    /// leftover of a killed one).
    public static func isTemporaryName(_ name: String) -> Bool { temporaryOwner(name) != nil }

    /// The parts of a temporary name: pid and host tag (nil for names of older versions
    /// without one), or nil when `name` is not a temporary file of this writer.
    static func temporaryOwner(_ name: String) -> (pid: Int32, host: String?)? {
        guard name.hasPrefix("."), let r = name.range(of: ".tmp-", options: .backwards) else { return nil }
        let parts = name[r.upperBound...].split(separator: "-")
        guard parts.count >= 2, let pid = Int32(parts[0]), pid > 0 else { return nil }
        return (pid, parts.count >= 3 ? String(parts[1]) : nil)
    }

    /// Removes the temporary files in `dir` left by processes that no longer run: of
    /// this host when their pid is gone, of another host (a shared folder) when they
    /// have not been written for `foreignAfter` seconds. Returns the paths removed.
    @discardableResult
    public static func removeStaleTemporaries(in dir: URL, foreignAfter: TimeInterval = 3600) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let owner = temporaryOwner(name) else { continue }
            let path = dir.appendingPathComponent(name).path
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let stale: Bool
            if owner.host == nil || owner.host == hostTag {
                stale = owner.pid != getpid() && !processIsAlive(owner.pid)
            } else {
                stale = Date().timeIntervalSince1970 - Double(st.st_mtim.tv_sec) > foreignAfter
            }
            if stale && unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Checks, before any long computation, that each of `files` can be written: its
    /// folder exists or can be created, a file can be created in it (a real probe, so
    /// read-only mounts, quotas and permissions all show), and the path is not a
    /// folder. Also removes stale temporary files of killed runs in those folders.
    /// Throws `CytoError.io` naming the path and the reason.
    public static func preflight(_ files: [URL]) throws {
        var checked = Set<String>()
        for file in files {
            if OSPath.isDirectory(file.path) == true {
                throw CytoError.io(
                    path: file.path,
                    reason: "is a directory; cannot write the output file there (move the folder away or choose another path)")
            }
            let dir = file.deletingLastPathComponent()
            guard checked.insert(dir.path).inserted else { continue }
            if OSPath.isDirectory(dir.path) == false {
                throw CytoError.io(path: dir.path, reason: "cannot write outputs into it: it is a file, not a folder")
            }
            do { try OSPath.createDirectories(dir.path) } catch let CytoError.io(_, reason) {
                throw CytoError.io(path: dir.path, reason: "cannot create the output folder (\(reason))")
            }
            let probe = temporaryURL(for: dir.appendingPathComponent("write-probe")).path
            let fd = OSPath.withCString(probe) { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
            if fd < 0 {
                throw CytoError.io(path: dir.path, reason: "the output folder is not writable: \(String(cString: strerror(errno)))")
            }
            close(fd); _ = OSPath.withCString(probe) { unlink($0) }
            removeStaleTemporaries(in: dir)
        }
    }

    /// Refuses to start work whose result cannot be saved: the file system holding `dir`
    /// has less than `bytes` free for this user. The output preflight's probe file takes no
    /// space, so `train` on a full disk trained for hours and then failed to write its model
    /// ("No space left on device"). `what` names the outputs in the message. A file system
    /// that cannot be asked passes (the write itself still reports a full disk).
    public static func requireFreeSpace(_ bytes: Int64, in dir: URL, for what: String) throws {
        var st = statvfs()
        guard OSPath.withCString(dir.path, { statvfs($0, &st) }) == 0 else { return }
        let free = Int64(st.f_bavail) * Int64(st.f_frsize)
        guard free < bytes else { return }
        throw CytoError.io(
            path: dir.path,
            reason: "the disk holding it has \(formatByteSize(Int(free))) free, and \(what) need about \(formatByteSize(Int(bytes))); "
                + "free some space or choose another folder")
    }

    /// Whether a process with this pid exists on this host.
    public static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Writes all of `bytes` to `fd`, retrying short and interrupted writes; a failure is
/// an error naming `path` (the file the caller is writing, not its temporary name).
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = posixWrite(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { throw CytoError.io(path: path, reason: "cannot write: \(String(cString: strerror(errno)))") }
        done += n
    }
}

/// Writes `data` to `url` atomically (see `AtomicFile`).
public func writeAtomically(_ data: Data, to url: URL) throws {
    try AtomicFile.write(data, to: url)
}

/// Whether `error` comes from Foundation or the C library (rather than from CytoCL).
public func isFoundationError(_ error: Error) -> Bool {
    error is CocoaError || error is POSIXError || type(of: error) is NSError.Type
}

/// One line for a Foundation file error: the path it names and the operating system's
/// reason, instead of "The operation could not be completed (NSCocoaErrorDomain error 256)".
public func describeFileError(_ error: Error) -> String {
    if let e = error as? CytoError { return e.description }
    if !isFoundationError(error) { return String(describing: error) }  // the project's own errors describe themselves
    let ns = error as NSError
    var reason = ""
    var underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
    while let u = underlying {
        if u.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(u.code)) {
            reason = String(cString: strerror(code.rawValue)); break
        }
        underlying = u.userInfo[NSUnderlyingErrorKey] as? NSError
    }
    if reason.isEmpty, ns.domain == NSPOSIXErrorDomain { reason = String(cString: strerror(Int32(ns.code))) }
    if reason.isEmpty, ns.domain == NSCocoaErrorDomain {
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: reason = "no such file or folder"
        case .fileReadNoPermission, .fileWriteNoPermission: reason = "permission denied"
        case .fileWriteOutOfSpace: reason = "no space left on the device"
        case .fileWriteVolumeReadOnly: reason = "read-only file system"
        case .fileWriteFileExists: reason = "a file of that name exists"
        case .fileReadCorruptFile: reason = "the file is damaged or not in the expected format"
        case .fileReadInapplicableStringEncoding: reason = "not valid UTF-8 text"
        default: break
        }
    }
    if reason.isEmpty {
        let text = ns.localizedFailureReason ?? ns.localizedDescription
        reason =
            text.contains("NSCocoaErrorDomain") || text.contains("The operation could not be completed")
            ? "I/O error \(ns.code)" : text
    }
    if let path = (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path {
        return "\(path): \(reason)"
    }
    return reason
}
