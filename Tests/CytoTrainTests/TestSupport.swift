import Foundation
import XCTest

/// Helpers every test class of this target used to define for itself.
extension XCTestCase {
    /// A fresh temporary folder, removed when the test ends.
    func tempDir(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("cytocl-\(name)-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: u) }
        return u
    }

    /// Labels and ids (`c<class>/img<i>.png`) of a data set with `counts[c]` images of class c.
    func labelsAndIDs(_ counts: [Int]) -> ([Int], [String]) {
        var labels: [Int] = [], ids: [String] = []
        for (c, n) in counts.enumerated() { for i in 0..<n { labels.append(c); ids.append("c\(c)/img\(i).png") } }
        return (labels, ids)
    }
}
