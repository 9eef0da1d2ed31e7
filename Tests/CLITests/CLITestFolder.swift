import Foundation
import XCTest

/// A CLI test class with a fresh folder per test (`dir`, made in `setUp`).
protocol CLITestFolder: XCTestCase {
    var dir: URL! { get }
}

extension CLITestFolder {
    /// Writes a synthetic data set with `cytocl synth` to `dir/name` (the test fails
    /// unless it exits 0) and returns its path. nil `layout` or `seed`: synth's default.
    func synth(
        _ name: String, layout: String? = nil, count: Int, size: Int, seed: Int? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> String {
        let path = dir.appendingPathComponent(name).path
        var args = ["synth", "--out", path]
        if let layout { args += ["--layout", layout] }
        args += ["--count", "\(count)", "--size", "\(size)"]
        if let seed { args += ["--seed", "\(seed)"] }
        let r = try CLITests.run(args)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return path
    }
}
