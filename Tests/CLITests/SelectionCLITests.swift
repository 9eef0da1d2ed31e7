import Foundation
import XCTest

/// Choosing what to label through the CLI: `suggest` prints path,score,reason rows,
/// never an image already labelled, the same rows for the same seed, and names the
/// labels file and line of a path that is not in the pool.
final class SelectionCLITests: XCTestCase {
    func cytocl(_ args: [String]) throws -> CLITests.Output { try CLITests.run(args) }

    var dir: URL!
    override func setUp() {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-cli-select-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func testSuggestPrintsTheNextImagesWithoutLabelledOnes() throws {
        let pool = dir.appendingPathComponent("pool").path
        XCTAssertEqual(try cytocl(["synth", "--out", pool, "--layout", "folders", "--count", "16", "--size", "32"]).status, 0)
        let first = try cytocl(["suggest", "--data", pool, "--count", "4", "--size", "32x32", "--embedding", "stain"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let rows = first.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(rows.first, "path,score,reason")
        XCTAssertEqual(rows.count, 5, first.stdout)
        let paths = rows.dropFirst().map { String($0.split(separator: ",")[0]) }
        let labels = dir.appendingPathComponent("labels.csv")
        try Data(("path,label\r\n" + paths.prefix(2).map { "\($0),x\r\n" }.joined()).utf8).write(to: labels)
        let args = ["suggest", "--data", pool, "--count", "4", "--size", "32x32", "--embedding", "stain", "--labels", labels.path]
        let next = try cytocl(args)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("16 images, 2 labelled"), next.stderr)
        let nextPaths = next.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: ",")[0]) }
        XCTAssertEqual(nextPaths.count, 4)
        XCTAssertTrue(Set(nextPaths).isDisjoint(with: paths.prefix(2)), "labelled images suggested again: \(nextPaths)")
        XCTAssertEqual(try cytocl(args).stdout, next.stdout, "the same seed gives the same list")

        try Data("path,label\nnot-there.png,x\n".utf8).write(to: labels)
        let bad = try cytocl(args)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains(labels.path + ":2: 'not-there.png' is not an image of the pool"), bad.stderr)
    }
}
