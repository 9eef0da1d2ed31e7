import Dispatch
import Foundation
import Synchronization

/// Folders a command made for its own use only (a plan's throw-away sweep) and removes
/// when it ends. A `defer` removes them on return or throw, but Ctrl-C (SIGINT) or a
/// `kill` (SIGTERM) ended the process without running it, and each interrupted `plan`
/// left a sweep of cached images and models in the temporary folder. Registered
/// folders are removed by a signal handler, which then exits with 128 + the signal,
/// as the shell expects of an interrupted command.
///
/// The folders are removed while the command's worker threads may still be writing into
/// them (a plan's cells finish every few milliseconds): a plain recursive remove raced
/// them, failed on a folder a new record had just entered, or was followed by a writer
/// recreating `cells/` (writes create missing folders), and about one interrupted plan
/// in two still left a partial sweep. `removeWhileWritten` moves the folder aside in one
/// step and holds its path with a file until the process exits.
public enum InterruptCleanup {
    private static let folders = Mutex<[URL]>([])
    /// Files removed on an interrupt: a sweep's claims on the cells it is training. Left
    /// behind, a claim of a sweep killed by its cluster's time limit kept the cell "running
    /// elsewhere" for 15 minutes for the requeued job on another node, which skipped it.
    private static let files = Mutex<Set<String>>([])
    private static let sources = Mutex<[DispatchSourceSignal]>([])
    /// Held by the signal handler from its first step to its `_exit`. The interrupted
    /// command's own threads fail meanwhile (their folder is gone) and its main thread
    /// went on to print an error and `exit(1)` while the handler was still removing: the
    /// process ended half-way through the cleanup. `waitForInterruptCleanup()` on the way
    /// out blocks on it.
    private static let exitGate = Mutex(())

    /// Called on the way out of the process (the command line's exit path): returns at
    /// once, unless an interrupt is being cleaned up, which then ends the process itself.
    public static func waitForInterruptCleanup() {
        exitGate.withLock { _ in }
    }

    /// Removes `folder` if the process is interrupted before `unregister(folder)`.
    public static func register(_ folder: URL) {
        installHandlersOnce()
        folders.withLock { $0.append(folder) }
    }

    /// The folder was removed (or kept) by its owner: an interrupt leaves it alone now.
    public static func unregister(_ folder: URL) {
        folders.withLock { $0.removeAll { $0 == folder } }
    }

    /// Removes the file at `file` if the process is interrupted before `unregisterFile(file)`.
    public static func registerFile(_ file: URL) {
        installHandlersOnce()
        files.withLock { _ = $0.insert(file.path) }
    }

    /// The file was removed (or handed on) by its owner: an interrupt leaves it alone now.
    public static func unregisterFile(_ file: URL) {
        files.withLock { _ = $0.remove(file.path) }
    }

    private static func installHandlersOnce() {
        sources.withLock { installed in
            guard installed.isEmpty else { return }
            for sig in [SIGINT, SIGTERM] {
                // Whether another part of the program handles the signal already: the
                // label server's graceful shutdown (a dispatch source, whose handler
                // libdispatch installs). Setting SIG_IGN over it, as this did for every
                // caller, made the kernel drop the signal: after its first forecast (a
                // plan sweep) `cytocl label` ignored Ctrl-C and kill until kill -9.
                var current = sigaction()
                sigaction(sig, nil, &current)
                let otherHandler = unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) > 1
                // Otherwise the default action (or an inherited SIG_IGN) is replaced by
                // the dispatch source's handler, which runs on a queue of its own while
                // the main thread trains.
                if !otherHandler { signal(sig, SIG_IGN) }
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    // Nothing to clean: the signal is the other handler's to act on.
                    if otherHandler && folders.withLock({ $0.isEmpty }) && files.withLock({ $0.isEmpty }) { return }
                    exitGate.withLock { _ in
                        for path in files.withLock({ $0 }) { _ = OSPath.withCString(path) { unlink($0) } }
                        let held = folders.withLock { $0 }.map(removeWhileWritten)
                        // The placeholders go last: nothing runs between them and the exit
                        // long enough for a writer to create the folder again.
                        for path in held.compactMap({ $0 }) { _ = OSPath.withCString(path) { unlink($0) } }
                        _exit(128 + sig)
                    }
                }
                source.resume()
                installed.append(source)
            }
        }
    }

    /// Removes `folder` while other threads of this process may still write into it, and
    /// returns the path of the placeholder file left in its place (to unlink just before
    /// exiting), or nil when none could be made.
    static func removeWhileWritten(_ folder: URL) -> String? {
        let path = folder.path
        let aside = folder.deletingLastPathComponent()
            .appendingPathComponent(".\(folder.lastPathComponent).removing-\(getpid())").path
        var placeholder: String?
        for _ in 0..<100 {
            // One rename: every path under `folder` stops leading anywhere at once.
            _ = OSPath.withCString(path) { from in OSPath.withCString(aside) { rename(from, $0) } }
            if OSPath.isDirectory(aside) == true { try? FileManager.default.removeItem(atPath: aside) }
            // A file at the folder's path: a writer that creates missing folders fails
            // (not a directory) instead of starting the folder again.
            let fd = OSPath.withCString(path) { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
            if fd >= 0 {
                close(fd)
                placeholder = path
                break
            }
            // A writer recreated the folder between the rename and the open: again.
            if OSPath.isDirectory(path) != true { break }
        }
        // A write that had already resolved its folder may still land in the moved copy.
        for _ in 0..<100 where OSPath.isDirectory(aside) != nil {
            try? FileManager.default.removeItem(atPath: aside)
            if OSPath.isDirectory(aside) != nil { usleep(2_000) }
        }
        return placeholder
    }
}

/// SIGINT and SIGTERM turned into a request that a long computation honours at its next
/// step, instead of the default action that ends the process on the spot.
///
/// `cytocl train` killed by a cluster's time limit (Slurm sends SIGTERM, then SIGKILL
/// after a grace period of about 30 s) or by Ctrl-C after hours kept nothing: the best
/// validated weights lived only in memory. With a request installed the trainer stops
/// after its current batch and the run writes the best model so far before it exits
/// 128 + the signal. A second signal ends the process at once (a user pressing Ctrl-C
/// twice does not want to wait).
public enum StopRequest {
    private static let received = Atomic<Int32>(0)
    private static let sources = Mutex<[DispatchSourceSignal]>([])

    /// Catches SIGINT and SIGTERM from now on (idempotent).
    public static func install() {
        sources.withLock { installed in
            guard installed.isEmpty else { return }
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)  // the dispatch source sees it; the default action no longer ends the process
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    let (exchanged, _) = received.compareExchange(expected: 0, desired: sig, ordering: .relaxed)
                    if !exchanged { _exit(128 + sig) }
                }
                source.resume()
                installed.append(source)
            }
        }
    }

    /// The first signal received since `install()`, or nil.
    public static var caught: Int32? {
        let s = received.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    /// "SIGINT" or "SIGTERM" (else "signal N").
    public static func name(_ sig: Int32) -> String {
        sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal \(sig)"
    }
}
