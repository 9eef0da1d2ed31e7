import CytoCore
import Foundation

extension DatasetIndex {
    /// Ids relative to `root` (the part after `root/`), or the path itself outside it:
    /// the stable name of an image in a sweep's folds, near-duplicate groups and records,
    /// whichever folder the data set is read from.
    public static func relativeIDs(_ paths: [String], root: String) -> [String] {
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return paths.map { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : $0 }
    }
}
