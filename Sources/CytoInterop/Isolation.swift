import CHDF5
import CytoCore
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs a read of an untrusted file in a forked child process, so that a crash inside a
/// C library (libhdf5) becomes an error naming the file instead of taking the whole
/// process down.
///
/// Why: libhdf5 (1.10 as shipped by Debian and Ubuntu, and later versions too) trusts
/// many lengths it reads from the file. A Keras file with one corrupted byte — the
/// length of a variable-length string in `weight_names`, a B-tree or heap address —
/// makes it read past its buffers and segfault; there is no API to read the raw
/// on-disk bytes of such a string and check them first. The reader validates what it
/// can (shapes, attribute sizes and types) before allocating; the child process is
/// the backstop for what libhdf5 itself does before our checks see anything.
///
/// The child runs `body`, sends its result (or the error it threw) back as JSON over
/// a pipe and exits with `_exit`; the parent never calls libhdf5 itself.
enum IsolatedRead {
    /// What the child sends back.
    private struct Reply<T: Codable>: Codable {
        var value: T?
        /// `modelFile`, `io` or `other`, with the path and the reason.
        var errorKind: String?
        var errorPath: String?
        var errorReason: String?
    }

    /// Serialises forks against in-process libhdf5 use by other threads: a fork while
    /// another thread is inside libhdf5 would give the child an inconsistent library.
    static let forkLock = NSLock()

    /// How long a child may take before it is killed (libhdf5 can loop forever on a
    /// corrupt file): `$CYTOCL_HDF5_TIME_LIMIT` seconds, default 60 — reading a model of
    /// this family takes well under a second.
    static var timeLimit: Int {
        ProcessInfo.processInfo.environment["CYTOCL_HDF5_TIME_LIMIT"].flatMap { Int($0) }.map { max(1, $0) } ?? 60
    }

    static func run<T: Codable>(path: String, _ body: () throws -> T) throws -> T {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw CytoError.io(path: path, reason: "cannot create a pipe to read the file in a child process (errno \(errno))")
        }
        let limit = timeLimit
        let parent = getpid()
        forkLock.lock()
        let pid = fork()
        forkLock.unlock()
        if pid == 0 {
            // The child: read, send the answer, exit without running atexit handlers
            // or flushing the parent's stdio buffers a second time.
            close(fds[0])
            cyto_die_with_parent()
            if getppid() != parent { _exit(4) }
            var cpu = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit + 1))
            setrlimit(Int32(RLIMIT_CPU.rawValue), &cpu)
            // A crash here is the parent's to report, in one line: no Swift backtrace,
            // no libhdf5 error stack on the user's terminal.
            for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { signal(sig, SIG_DFL) }
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, 2); dup2(null, 1); close(null) }
            limitMemory(path: path)
            var reply = Reply<T>()
            do {
                reply.value = try body()
            } catch let CytoError.modelFile(p, r) {
                reply.errorKind = "modelFile"; reply.errorPath = p; reply.errorReason = r
            } catch let CytoError.io(p, r) {
                reply.errorKind = "io"; reply.errorPath = p; reply.errorReason = r
            } catch {
                reply.errorKind = "other"; reply.errorPath = path; reply.errorReason = "\(error)"
            }
            let data = (try? JSONEncoder().encode(reply)) ?? Data()
            data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fds[1], raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { _exit(3) }
                    offset += n
                }
            }
            _exit(0)
        }
        close(fds[1])
        guard pid > 0 else {
            close(fds[0])
            throw CytoError.io(path: path, reason: "cannot start a child process to read the file (errno \(errno))")
        }
        // The parent: read until end of file (the child exited or died), with a deadline.
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(TimeInterval(limit))
        var timedOut = false
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { timedOut = true; break }
            var poller = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        close(fds[0])
        if timedOut { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let killedBy = status & 0x7F
        if timedOut || killedBy == SIGXCPU || killedBy == SIGKILL {
            throw CytoError.modelFile(path: path, reason: "libhdf5 did not finish reading the file within \(limit) s (corrupt file?)")
        }
        if killedBy != 0 {
            throw CytoError.modelFile(
                path: path,
                reason:
                    "libhdf5 crashed reading the file (signal \(killedBy)): the file is corrupt (lengths or addresses inside it point outside their data)"
            )
        }
        guard let reply = try? JSONDecoder().decode(Reply<T>.self, from: data) else {
            throw CytoError.modelFile(
                path: path, reason: "the HDF5 reader stopped without an answer (exit status \((status >> 8) & 0xFF)): corrupt file?")
        }
        if let value = reply.value { return value }
        let p = reply.errorPath ?? path, r = reply.errorReason ?? "cannot be read"
        throw reply.errorKind == "io" ? CytoError.io(path: p, reason: r) : CytoError.modelFile(path: p, reason: r)
    }

    /// In the child: caps its data segment at what it has plus what reading the file
    /// can honestly need (a few times the file's size, at least 512 MiB). A corrupt
    /// length makes libhdf5 ask for gigabytes and touch them for half a minute; with
    /// the cap that allocation fails at once and libhdf5 reports an error.
    private static func limitMemory(path: String) {
        let fileSize = ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
        let budget = max(512 << 20, min(fileSize, 1 << 36) * 32)
        // The data segment in use now: the 6th field of /proc/self/statm, in pages.
        var current = 0
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ")
            if fields.count > 5, let pages = Int(fields[5]) { current = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_DATA.rawValue), &limit)
        let wanted = rlim_t(current + budget)
        if limit.rlim_max == rlim_t.max || wanted < limit.rlim_max {
            limit.rlim_cur = wanted
            setrlimit(Int32(RLIMIT_DATA.rawValue), &limit)
        }
    }
}
