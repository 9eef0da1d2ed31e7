import Foundation
import XCTest

/// The Python the project ships (the bench peers, the model loader, the fixture
/// makers) is run by users and by `cytocl bench`; a script that does not even parse
/// silently drops the peer rows from a benchmark. These checks catch that.
final class PythonScriptsTests: XCTestCase {
    /// Every `.py` file under scripts/ and python/.
    private func pythonFiles() throws -> [URL] {
        var files: [URL] = []
        for dir in ["scripts", "python"] {
            let base = Interop.root.appendingPathComponent(dir)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where url.pathExtension == "py" { files.append(url) }
        }
        return files
    }

    func testEveryShippedPythonFileParses() throws {
        let python = try Interop.python(needing: ["ast"])
        let files = try pythonFiles()
        XCTAssertTrue(files.contains { $0.lastPathComponent == "bench_torch.py" }, "scripts/bench_torch.py is missing")
        XCTAssertTrue(files.contains { $0.lastPathComponent == "bench_keras.py" }, "scripts/bench_keras.py is missing")
        let check = "import ast, sys\nfor p in sys.argv[1:]:\n    ast.parse(open(p, encoding='utf-8').read(), p)\n"
        let out = try Interop.run(python, ["-c", check] + files.map(\.path))
        XCTAssertEqual(out.status, 0, "a shipped Python file does not parse: \(out.stderr)")
    }

    /// The peers either report their package missing (exit 3, which `cytocl bench`
    /// reads as "not importable") or print rows in the bench CSV layout.
    func testBenchPeersPrintBenchRowsOrReportMissingPackage() throws {
        let python = try Interop.python(needing: ["ast"])
        for (script, tags) in [("bench_torch.py", ["torch-cl", "torch-nchw"]), ("bench_keras.py", ["keras"])] {
            let path = Interop.root.appendingPathComponent("scripts/\(script)").path
            let out = try Interop.run(python, [path, "--sizes", "257", "--batches", "2", "--seconds", "0.01"])
            if out.status == 3 { continue }
            XCTAssertEqual(out.status, 0, "\(script) failed: \(out.stderr)")
            let rows = out.stdout.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
            XCTAssertEqual(Set(rows.compactMap { $0.first.map(String.init) }), Set(tags), "\(script) rows: \(out.stdout)")
            for row in rows {
                XCTAssertGreaterThanOrEqual(row.count, 6, "\(script) row \(row)")
                XCTAssertEqual(row[1], "257"); XCTAssertEqual(row[2], "2"); XCTAssertEqual(row[5], "bare")
                XCTAssertGreaterThan(Double(row[3]) ?? 0, 0, "\(script) train rate in \(row)")
                XCTAssertGreaterThan(Double(row[4]) ?? 0, 0, "\(script) inference rate in \(row)")
            }
        }
    }
}
