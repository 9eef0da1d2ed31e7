import Foundation
import Synchronization
import XCTest

// What every test target shares: temporary folders, closeness checks with a message
// that names the worst element, and running a program (the built `cytocl` or a
// script) the way a user does. One copy here instead of one per test target.

/// A fresh temporary folder (created) under the system's temporary directory; the
/// name carries `name` and a random suffix so parallel runs never collide.
public func makeTemporaryFolder(_ name: String) -> URL {
    let safe = String(name.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(60))
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("cytocl-\(safe)-\(getpid())-\(UUID().uuidString.prefix(8))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Folders of fixtures made once per test process (static data shared by a class's
/// tests), removed when the process exits: no test's teardown owns them, and each test
/// run used to leave one behind in the temporary directory.
private let processFolders = Mutex<[URL]>([])

/// A fresh temporary folder, like `makeTemporaryFolder`, removed when the test process
/// exits (for fixtures built once and shared by many tests).
public func makeProcessTemporaryFolder(_ name: String) -> URL {
    let url = makeTemporaryFolder(name)
    let first = processFolders.withLock { folders in
        folders.append(url)
        return folders.count == 1
    }
    if first {
        atexit {
            for folder in processFolders.withLock({ $0 }) { try? FileManager.default.removeItem(at: folder) }
        }
    }
    return url
}

extension XCTestCase {
    /// A fresh temporary folder, removed when the test ends.
    public func tempDir(_ name: String) -> URL {
        let u = makeTemporaryFolder(name)
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }
}

/// Asserts max |a - b| <= atol + rtol * max |b| (and equal lengths); the failure names
/// the worst element and both values. NaN anywhere fails.
public func assertClose<T: BinaryFloatingPoint>(
    _ a: [T], _ b: [T], rtol: T = 0, atol: T = 0, _ what: String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.count, b.count, "\(what): lengths", file: file, line: line)
    let scale = b.reduce(T(0)) { max($0, abs($1)) }
    let tol = atol + rtol * scale
    var worst = T(0), at = 0
    for i in 0..<min(a.count, b.count) {
        let d = abs(a[i] - b[i])
        if d.isNaN { worst = .nan; at = i; break }
        if d > worst { worst = d; at = i }
    }
    XCTAssert(
        worst <= tol,
        "\(what): max |diff| \(worst) at \(at) (\(a.isEmpty ? 0 : a[at]) vs \(b.isEmpty ? 0 : b[at])) > tolerance \(tol)",
        file: file, line: line)
}

/// What a finished program printed.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum TestProcess {
    /// The `cytocl` executable SwiftPM built beside the test bundle of `marker`'s target.
    public static func cytoclBinary(besideBundleOf marker: AnyClass) -> URL {
        var dir = Bundle(for: marker).bundleURL
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("cytocl").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("cytocl")
    }

    /// A program not yet started, on the CPU backend: `CYTOCL_BACKEND=cpu` added to
    /// this process's environment, then `env` (which may override it).
    static func process(_ executable: URL, _ args: [String], env: [String: String]) -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment["CYTOCL_BACKEND"] = "cpu"
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        return p
    }

    /// Runs a program to its end on the CPU backend (`CYTOCL_BACKEND=cpu` unless `env`
    /// says otherwise). stdout and stderr go to files, not pipes: a child that fills one
    /// pipe while the parent drains the other would deadlock both.
    public static func run(_ executable: URL, _ args: [String], env: [String: String] = [:]) throws -> ProcessOutput {
        let p = process(executable, args, env: env)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-run-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = out; p.standardError = err
        try p.run()
        p.waitUntilExit()
        try out.close(); try err.close()
        return ProcessOutput(
            status: p.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

/// A program started in the background by `TestProcess.startInBackground`, for tests that
/// act on it while it runs (signal it, move its folder, wait for a file it writes).
/// stdout is discarded and stderr goes to a file (not a pipe nobody drains, which would
/// block a chatty child). A child still running when this is released (a test that
/// threw half-way) is killed, so no 100000-epoch `train` outlives its test.
public final class BackgroundProcess {
    public let process: Process
    private let stderrURL: URL
    private let stderrHandle: FileHandle

    init(process: Process, stderrURL: URL, stderrHandle: FileHandle) {
        self.process = process; self.stderrURL = stderrURL; self.stderrHandle = stderrHandle
    }

    public var isRunning: Bool { process.isRunning }
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Waits for the program to end: its status and stderr (stdout is ""). The status is
    /// `Process.terminationStatus`: the exit code, or the signal's number for a program
    /// the signal killed, so a program that exits 143 itself after SIGTERM (as `train`
    /// and `sweep` do) is told from one SIGTERM killed (15).
    public func finish() throws -> ProcessOutput {
        process.waitUntilExit()
        try? stderrHandle.close()
        let stderr = String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self)
        return ProcessOutput(status: process.terminationStatus, stdout: "", stderr: stderr)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? stderrHandle.close()
        try? FileManager.default.removeItem(at: stderrURL)
    }
}

extension TestProcess {
    /// Starts a program and returns at once, on the CPU backend like `run` (`env` adds to
    /// or overrides the environment).
    public static func startInBackground(_ executable: URL, _ args: [String], env: [String: String] = [:]) throws -> BackgroundProcess {
        let p = process(executable, args, env: env)
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-background-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let err = try FileHandle(forWritingTo: errURL)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        do { try p.run() } catch {
            try? err.close(); try? FileManager.default.removeItem(at: errURL)
            throw error
        }
        return BackgroundProcess(process: p, stderrURL: errURL, stderrHandle: err)
    }
}

/// SplitMix64: a small seeded generator for test inputs (fuzz mutants, random cases),
/// so they depend on nothing but the seed, not on the project's own random streams.
public struct SplitMix {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
