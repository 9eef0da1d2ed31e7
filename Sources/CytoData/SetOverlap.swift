import CytoSupport
import Foundation

/// An image of one set (validation, test) that is also in the training set: its early
/// stopping, "best validated weights" or test metrics would be measured on images the
/// network was trained on.
public struct SetOverlap: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The two files have the same bytes (SHA-256).
        case identicalBytes
        /// Different files that decode to the same pixels (a re-encoded copy).
        case identicalPixels
        /// The same cell photographed or cropped again (`NearDuplicates`), with the similarity.
        case nearDuplicate(Double)
    }
    /// The image of the checked set.
    public var path: String
    /// The training image it matches (nil when only a recorded digest is known).
    public var trainingPath: String?
    public var kind: Kind

    public init(path: String, trainingPath: String?, kind: Kind) {
        self.path = path; self.trainingPath = trainingPath; self.kind = kind
    }

    public var description: String {
        let what: String
        switch kind {
        case .identicalBytes: what = "a byte copy of"
        case .identicalPixels: what = "the same pixels as"
        case .nearDuplicate(let s): what = String(format: "a near-duplicate (similarity %.2f) of", s)
        }
        return FileSystemPath.visible("\(path) is \(what) \(trainingPath ?? "a training image")")
    }
}

/// Finds images of a second set that are also training images.
public enum SetOverlaps {
    /// The per-image digest recorded in a model file (`cytocl.provenance.training_pixel_digests`):
    /// the 64-bit content checksum of the decoded pixels at the model's input size, as 16
    /// hex digits. It costs one pass over pixels already in memory (SHA-256 of the source
    /// bytes would cost about 130 s of one core for AML's 18,365 files), and it matches a
    /// byte copy and a re-encoded copy alike.
    public static func pixelDigests(pixels: [UInt8], count: Int, imageBytes: Int) -> [String] {
        precondition(pixels.count >= count * imageBytes)
        return pixels.withUnsafeBytes { raw in
            (0..<count).map { i in
                let d = ImageCache.contentChecksum(UnsafeRawBufferPointer(rebasing: raw[(i * imageBytes)..<((i + 1) * imageBytes)]))
                let hex = String(d, radix: 16)
                return String(repeating: "0", count: 16 - hex.count) + hex
            }
        }
    }

    /// The images of `checked` that are also in `training`: byte copies (SHA-256 of the
    /// files, hashed only where sizes collide across the sets), re-encoded copies (equal
    /// decoded pixels), and, when `nearDuplicates` is given, near-duplicates found by
    /// `NearDuplicates.pairs` over both sets together. Each checked image is named once,
    /// with its strongest match, in the order of `checked`.
    public static func find(
        trainingPaths: [String], trainingPixels: [UInt8], checkedPaths: [String], checkedPixels: [UInt8],
        height: Int, width: Int, nearDuplicates: NearDuplicateParameters?
    ) -> [SetOverlap] {
        let n = height * width * 3
        let nt = trainingPaths.count, nc = checkedPaths.count
        var found: [Int: SetOverlap] = [:]
        // 1. identical bytes
        var trainingBySize: [Int64: [Int]] = [:]
        for (i, p) in trainingPaths.enumerated() { if let s = FileBytes.stamp(p)?.size { trainingBySize[s, default: []].append(i) } }
        var digestCache: [String: String] = [:]
        func digest(_ p: String) -> String? {
            if let d = digestCache[p] { return d }
            guard let b = try? FileBytes.read(p) else { return nil }
            let d = SHA256.hex(SHA256.hash(b))
            digestCache[p] = d
            return d
        }
        for (j, p) in checkedPaths.enumerated() {
            guard let s = FileBytes.stamp(p)?.size, let same = trainingBySize[s], let dj = digest(p) else { continue }
            if let i = same.first(where: { digest(trainingPaths[$0]) == dj }) {
                found[j] = SetOverlap(path: p, trainingPath: trainingPaths[i], kind: .identicalBytes)
            }
        }
        // 2. identical decoded pixels
        let td = pixelDigests(pixels: trainingPixels, count: nt, imageBytes: n)
        let cd = pixelDigests(pixels: checkedPixels, count: nc, imageBytes: n)
        var trainingByDigest: [String: Int] = [:]
        for (i, d) in td.enumerated() where trainingByDigest[d] == nil { trainingByDigest[d] = i }
        for (j, d) in cd.enumerated() where found[j] == nil {
            if let i = trainingByDigest[d],
                trainingPixels[(i * n)..<((i + 1) * n)].elementsEqual(checkedPixels[(j * n)..<((j + 1) * n)])
            {
                found[j] = SetOverlap(path: checkedPaths[j], trainingPath: trainingPaths[i], kind: .identicalPixels)
            }
        }
        // 3. near-duplicates across the two sets
        if let p = nearDuplicates, nt > 0, nc > 0 {
            let pairs = NearDuplicates.pairs(
                pixels: trainingPixels + checkedPixels, count: nt + nc, height: height, width: width, parameters: p)
            for pair in pairs where pair.similarity >= p.threshold {
                let (lo, hi) = (min(pair.a, pair.b), max(pair.a, pair.b))
                guard lo < nt, hi >= nt else { continue }
                let j = hi - nt
                switch found[j]?.kind {
                case nil: break
                case .nearDuplicate(let s)? where s < pair.similarity: break
                default: continue  // an exact match, or a closer near-duplicate, is already named
                }
                found[j] = SetOverlap(path: checkedPaths[j], trainingPath: trainingPaths[lo], kind: .nearDuplicate(pair.similarity))
            }
        }
        return found.keys.sorted().map { found[$0]! }
    }

    /// The images of a checked set whose digests (`pixelDigests`) are in a model's
    /// recorded training digests.
    public static func find(recordedDigests: Set<String>, checkedPaths: [String], checkedPixels: [UInt8], imageBytes: Int) -> [SetOverlap] {
        let cd = pixelDigests(pixels: checkedPixels, count: checkedPaths.count, imageBytes: imageBytes)
        return cd.enumerated().filter { recordedDigests.contains($0.element) }.map {
            SetOverlap(path: checkedPaths[$0.offset], trainingPath: nil, kind: .identicalPixels)
        }
    }

    /// One line listing the first `limit` overlaps and how many more there are.
    public static func summary(_ overlaps: [SetOverlap], limit: Int = 3) -> String {
        let shown = overlaps.prefix(limit).map(\.description).joined(separator: "; ")
        return overlaps.count > limit ? "\(shown); and \(overlaps.count - limit) more" : shown
    }
}
