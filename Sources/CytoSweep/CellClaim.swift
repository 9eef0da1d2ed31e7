import CytoCore
import CytoData
import CytoTrain
import Foundation

/// A claim on a cell by a running process: `cells/fold<F>-size<S>.claim` with host, pid
/// and start time. Its modification time is refreshed every epoch (heartbeat). A claim
/// whose process is gone (same host, pid not alive) or whose heartbeat is older than
/// `staleAfter` seconds is stale, and its cell is redone. The same claim locks a
/// `train` run folder for the run's duration (`acquire`, `release`).
public struct CellClaim: Sendable, Codable, Equatable {
    public var host: String
    public var pid: Int32
    public var started: String
    /// The Slurm job (`JOBID_TASK`) holding the claim, if any.
    public var job: String? = nil

    public init(host: String, pid: Int32, started: String, job: String? = nil) {
        self.host = host; self.pid = pid; self.started = started; self.job = job
    }

    /// `SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID`, or `SLURM_JOB_ID`, when running under Slurm.
    public static var currentJob: String? {
        let env = ProcessInfo.processInfo.environment
        if let a = env["SLURM_ARRAY_JOB_ID"], let t = env["SLURM_ARRAY_TASK_ID"] { return "\(a)_\(t)" }
        return env["SLURM_JOB_ID"]
    }

    /// Reads a claim file (nil when missing or half-written).
    public static func read(_ url: URL) -> CellClaim? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(CellClaim.self, from: data)
    }

    public static var currentHost: String { ProcessInfo.processInfo.hostName }

    public static func mine() -> CellClaim {
        CellClaim(host: currentHost, pid: getpid(), started: ISO8601DateFormatter().string(from: Date()), job: currentJob)
    }

    /// Creates the claim file exclusively; false when it exists already.
    static func create(at url: URL) throws -> Bool {
        let data = try JSONEncoder().encode(mine())
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw CytoError.io(path: url.path, reason: "cannot create the claim file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return true
    }

    /// What `acquire` found: the claim is now this process's, or a live process holds
    /// it (nil when its file cannot be read, e.g. written that very moment).
    public enum Acquired: Sendable, Equatable {
        case taken
        case heldBy(CellClaim?)
    }

    /// Takes the claim at `url` for this process: creates it exclusively, or, when the
    /// process holding it is gone (`isLive`), removes it and creates it again. Throws
    /// when the file cannot be created for another reason than existing.
    public static func acquire(at url: URL, staleAfter: TimeInterval) throws -> Acquired {
        if try create(at: url) { return .taken }
        if isLive(at: url, staleAfter: staleAfter) { return .heldBy(read(url)) }
        try? FileManager.default.removeItem(at: url)  // an interrupted run's: take it over
        if try create(at: url) { return .taken }
        return .heldBy(read(url))
    }

    /// Removes the claim at `url` if it is still this process's (never one taken over
    /// by another process meanwhile).
    public static func release(at url: URL) {
        guard let c = read(url), c.host == currentHost, c.pid == getpid() else { return }
        try? FileManager.default.removeItem(at: url)
    }

    /// Whether a claim file belongs to a process that is (probably) still running the cell.
    public static func isLive(at url: URL, staleAfter: TimeInterval) -> Bool {
        guard let data = try? Data(contentsOf: url), let claim = try? JSONDecoder().decode(CellClaim.self, from: data) else {
            // Unreadable (half-written by a process killed at that moment): live only if very fresh.
            let age = modificationAge(url) ?? .infinity
            return age < 5
        }
        if claim.host == currentHost {
            if claim.pid == getpid() { return false }  // our own leftover (not possible while running)
            return kill(claim.pid, 0) == 0 || errno == EPERM
        }
        return (modificationAge(url) ?? .infinity) < staleAfter
    }

    public static func modificationAge(_ url: URL) -> TimeInterval? {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: url.path),
            let date = attrs[.modificationDate] as? Date
        else { return nil }
        return Date().timeIntervalSince(date)
    }

    /// Refreshes the modification time (heartbeat).
    public static func touch(_ url: URL) {
        try? FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: url.path)
    }
}
