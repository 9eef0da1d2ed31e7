import Dispatch
import Foundation
import Synchronization

/// Folders a command made for its own use only (a plan's throw-away sweep) and removes
/// when it ends. A `defer` removes them on return or throw, but Ctrl-C (SIGINT) or a
/// `kill` (SIGTERM) ended the process without running it, and each interrupted `plan`
/// left a sweep of cached images and models in the temporary folder. Registered
/// folders are removed by a signal handler, which then exits with 128 + the signal,
/// as the shell expects of an interrupted command.
public enum InterruptCleanup {
    private static let folders = Mutex<[URL]>([])
    private static let sources = Mutex<[DispatchSourceSignal]>([])

    /// Removes `folder` if the process is interrupted before `unregister(folder)`.
    public static func register(_ folder: URL) {
        installHandlersOnce()
        folders.withLock { $0.append(folder) }
    }

    /// The folder was removed (or kept) by its owner: an interrupt leaves it alone now.
    public static func unregister(_ folder: URL) {
        folders.withLock { $0.removeAll { $0 == folder } }
    }

    private static func installHandlersOnce() {
        sources.withLock { installed in
            guard installed.isEmpty else { return }
            for sig in [SIGINT, SIGTERM] {
                // The default action is replaced by the dispatch source's handler, which
                // runs on a queue of its own while the main thread trains.
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    for folder in folders.withLock({ $0 }) { try? FileManager.default.removeItem(at: folder) }
                    _exit(128 + sig)
                }
                source.resume()
                installed.append(source)
            }
        }
    }
}
