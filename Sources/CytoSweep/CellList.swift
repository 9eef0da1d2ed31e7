import CytoCore
import CytoTrain
import Foundation

/// Reading and writing lists of cells (`fold size` per line), for retries.
public enum CellList {
    public static func text(_ cells: [SweepCell]) -> String {
        cells.map { "\($0.fold) \($0.size)\n" }.joined()
    }

    public static func parse(_ text: String) throws -> [SweepCell] {
        var out: [SweepCell] = []
        // `TextFile.lines`: LF, CRLF, CR, a byte-order mark and no final line break alike.
        for (n, line) in TextFile.lines(text) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            let f = t.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { Int($0) }
            guard f.count == 2, let fold = f[0], let size = f[1] else {
                throw CytoError.invalidArgument("cell list line \(n) '\(t)' should be 'FOLD SIZE'")
            }
            out.append(SweepCell(fold: fold, size: size))
        }
        return out
    }
}
