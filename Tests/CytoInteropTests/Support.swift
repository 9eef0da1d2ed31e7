import CytoTestSupport
import Foundation
import XCTest

/// Paths and processes the interop tests share.
enum Interop {
    /// The repository root, found from this file's path (tests run from a clone).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures/interop")

    /// The `cytocl` executable SwiftPM built beside the test bundle.
    static var binary: URL { TestProcess.cytoclBinary(besideBundleOf: Marker.self) }
    private final class Marker {}

    typealias Output = ProcessOutput

    /// Runs a program with stdout and stderr going to files (pipes can deadlock).
    static func run(_ executable: URL, _ args: [String], env: [String: String] = [:]) throws -> Output {
        try TestProcess.run(executable, args, env: env)
    }

    static func cytocl(_ args: [String]) throws -> Output { try run(binary, args) }

    /// The Python the checks run with: $CYTOCL_PYTHON, else the CI venv `.venv-ci`
    /// that `scripts/setup-python` makes, else `python3` on PATH. Throws XCTSkip when it
    /// lacks `modules` — except under CI=true, where the check must run, so it fails.
    static func python(needing modules: [String]) throws -> URL {
        let env = ProcessInfo.processInfo.environment
        var candidates: [URL] = []
        if let p = env["CYTOCL_PYTHON"], !p.isEmpty { candidates.append(URL(fileURLWithPath: p)) }
        candidates.append(root.appendingPathComponent(".venv-ci/bin/python3"))
        for dir in (env["PATH"] ?? "/usr/bin").split(separator: ":") {
            candidates.append(URL(fileURLWithPath: String(dir)).appendingPathComponent("python3"))
        }
        var tried: [String] = []
        for python in candidates where FileManager.default.isExecutableFile(atPath: python.path) {
            let probe = try? run(python, ["-c", "import " + modules.joined(separator: ", ")])
            if probe?.status == 0 { return python }
            tried.append(python.path)
        }
        let message =
            "no Python with \(modules.joined(separator: ", ")) (tried \(tried.joined(separator: ", "))); run scripts/setup-python or set CYTOCL_PYTHON"
        if env["CI"] == "true" { throw CIError(message: "CI=true, so this check must run: " + message) }
        throw XCTSkip(message)
    }

    struct CIError: Error, CustomStringConvertible { var message: String; var description: String { message } }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-interop-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Rows of a `cytocl predict` CSV: (path, probabilities).
    static func parsePredictions(_ csv: String) -> (header: [String], rows: [(String, [Double])]) {
        let lines = csv.split(separator: "\n").map(String.init)
        guard let header = lines.first else { return ([], []) }
        let rows = lines.dropFirst().map { line -> (String, [Double]) in
            let f = line.split(separator: ",").map(String.init)
            return (f[0], f.dropFirst(2).compactMap(Double.init))
        }
        return (header.split(separator: ",").map(String.init), rows)
    }
}
