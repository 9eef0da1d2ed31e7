import CytoTestSupport
import Foundation
import XCTest

/// Helpers the test classes of this target share (`tempDir` comes from CytoTestSupport).
extension XCTestCase {
    /// Labels and ids (`c<class>/img<i>.png`) of a data set with `counts[c]` images of class c.
    func labelsAndIDs(_ counts: [Int]) -> ([Int], [String]) {
        var labels: [Int] = [], ids: [String] = []
        for (c, n) in counts.enumerated() { for i in 0..<n { labels.append(c); ids.append("c\(c)/img\(i).png") } }
        return (labels, ids)
    }
}
