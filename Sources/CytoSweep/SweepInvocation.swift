import CytoCore
import CytoTrain
import Foundation

/// The command line a sweep was started with (`SWEEP_DIR/invocation.json`), so that
/// `cytocl sweep retry` can run the same sweep again.
///
/// The sweep directory itself is not recorded (`--out` is left out): a retry works on
/// the directory it is given (`arguments(for:)`), wherever it is now. A recorded path
/// sent a retry of a moved sweep back to the old place (recreated with one cell) and a
/// retry of a copy to the original. Files of older versions that hold `--out` are read
/// the same way: their `--out` is ignored.
public struct SweepInvocation: Sendable, Codable, Equatable {
    /// Arguments after the executable, without --out, --shard, --cells-file and the Slurm options.
    public var arguments: [String]
    public var workingDirectory: String
    public var executable: String

    public init(arguments: [String], workingDirectory: String, executable: String) {
        self.arguments = arguments; self.workingDirectory = workingDirectory; self.executable = executable
    }

    public static func url(_ sweep: URL) -> URL { SweepLayout(sweep).invocationURL }

    /// The arguments that run this sweep in `sweep`: the recorded ones (any `--out`
    /// dropped) with `--out` set to `sweep`, the directory named now.
    public func arguments(for sweep: URL) -> [String] {
        Self.removing(["--out"], flags: [], from: arguments) + ["--out", sweep.standardizedFileURL.path]
    }

    /// The options whose values are input paths, relative to `workingDirectory` unless absolute.
    static let pathOptions = ["--data", "--labels", "--cache-dir"]

    /// Where a retry of `sweep` runs: the recorded working directory (its options' relative
    /// paths are relative to it), or, when that is gone and no option needs it, the sweep
    /// directory. Throws, naming the option, when a relative path cannot be resolved.
    public func runDirectory(for sweep: URL) throws -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: workingDirectory, isDirectory: &isDir), isDir.boolValue { return workingDirectory }
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
            if Self.pathOptions.contains(parts[0]) {
                let value = parts.count == 2 ? parts[1] : (i + 1 < arguments.count ? arguments[i + 1] : "")
                if !value.hasPrefix("/") {
                    throw CytoError.io(
                        path: Self.url(sweep).path,
                        reason: "the sweep was started in \(workingDirectory), which is gone, and \(parts[0]) \(value) is relative to it; "
                            + "run `cytocl sweep run` with the original options, that path and --out \(sweep.path) to resume")
                }
            }
            i += 1
        }
        return sweep.standardizedFileURL.path
    }

    /// `arguments` for the record: without the scheduling options and without --out.
    public static func recorded(_ args: [String]) -> [String] {
        removing(["--out"], flags: [], from: strippingScheduling(args))
    }

    public func write(to sweep: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        try writeAtomically(e.encode(self), to: SweepInvocation.url(sweep))
    }

    public static func read(_ sweep: URL) throws -> SweepInvocation {
        let url = SweepInvocation.url(sweep)
        guard let data = try? Data(contentsOf: url) else {
            throw CytoError.io(path: url.path, reason: "no invocation.json: run the sweep once with `cytocl sweep --protocol ...` first")
        }
        do { return try JSONDecoder().decode(SweepInvocation.self, from: data) } catch {
            throw CytoError.io(
                path: url.path,
                reason: "damaged invocation.json (\(data.isEmpty ? "empty" : "not the JSON `cytocl sweep` writes")); "
                    + "run the sweep once more with its original command to rewrite it")
        }
    }

    /// The path of the running executable (absolute).
    public static var currentExecutable: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let a = CommandLine.arguments[0]
        if a.hasPrefix("/") { return a }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(a).standardized.path
    }

    /// `args` without the options that select where and which cells run (they are
    /// added again per submission): --shard, --cells-file, --slurm, --slurm-args,
    /// --dry-run, --tasks. Handles `--opt value` and `--opt=value`.
    public static func strippingScheduling(_ args: [String]) -> [String] {
        removing(["--shard", "--cells-file", "--slurm-args", "--tasks"], flags: ["--slurm", "--dry-run"], from: args)
    }

    /// `args` without the options `withValue` (as `--opt value` or `--opt=value`) and `flags`.
    static func removing(_ withValue: Set<String>, flags: Set<String>, from args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            let name = a.split(separator: "=", maxSplits: 1).first.map(String.init) ?? a
            if flags.contains(a) { i += 1; continue }
            if withValue.contains(name) { i += a.contains("=") ? 1 : 2; continue }
            out.append(a); i += 1
        }
        return out
    }
}
