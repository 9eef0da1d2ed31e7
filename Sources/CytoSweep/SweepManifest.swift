import CytoCore
import CytoData
import CytoTrain
import Foundation

/// `sweep.json`: what a sweep directory was made from. A later run on the same
/// directory must match it, or it is refused.
public struct SweepManifest: Sendable, Codable, Equatable {
    public var formatVersion = 1
    public var protocolSettings: SweepProtocol
    public var dataPath: String
    /// SHA-256 of the sorted "id<TAB>class" lines of the data set.
    public var dataHash: String
    public var imageCount: Int
    public var classNames: [String]
    public var classCounts: [Int]
    public var seed: UInt64
    public var spec: ModelSpec
    public var assignment: FoldAssignment
    public var created: String
    /// Near-duplicate groups of the data and what was done with them (dropped ids, or
    /// groups kept in one fold); nil when not looked for (or made before it existed).
    public var nearDuplicates: NearDuplicateSummary? = nil
    /// SHA-256 over the sorted `id\tclass\tpixel checksum` lines of the data set: unlike
    /// `dataHash` it changes when an image's pixels change under the same file name.
    /// nil in sweeps made before it was recorded (those are refused on resume: their
    /// images cannot be checked).
    public var imagesHash: String? = nil
    /// How training sets are chosen (`sweep --selection`); nil: the protocol's random draw.
    public var selection: SweepSelection? = nil

    public var folds: Int { protocolSettings.folds }
    public var sizes: [Int] { protocolSettings.sizes }
    /// All cells, fold by fold, sizes ascending within a fold.
    public var cells: [SweepCell] { (0..<folds).flatMap { f in sizes.map { SweepCell(fold: f, size: $0) } } }

    public init(
        protocolSettings: SweepProtocol, dataPath: String, dataHash: String, imageCount: Int, classNames: [String],
        classCounts: [Int], seed: UInt64, spec: ModelSpec, assignment: FoldAssignment, created: String
    ) {
        self.protocolSettings = protocolSettings; self.dataPath = dataPath; self.dataHash = dataHash
        self.imageCount = imageCount; self.classNames = classNames; self.classCounts = classCounts; self.seed = seed
        self.spec = spec; self.assignment = assignment; self.created = created
    }

    /// The seed of one cell, derived from the sweep seed (what the cell's record holds).
    public func cellSeed(_ c: SweepCell) -> UInt64 {
        var g = SeededGenerator.stream(seed: seed, "cell-\(c.fold)-\(c.size)")
        return g.next() >> 1
    }

    /// SHA-256 over sorted `id\tclass\n` lines.
    public static func hash(ids: [String], labels: [Int], classNames: [String]) -> String {
        var h = SHA256()
        for (id, l) in zip(ids, labels).sorted(by: { $0.0 < $1.0 }) { h.update("\(id)\t\(classNames[l])\n") }
        return SHA256.hex(h.finalize())
    }

    /// SHA-256 over sorted `id\tclass\tchecksum\n` lines, the checksum being the image
    /// cache's 64-bit checksum of each image's decoded pixels.
    public static func imagesHash(ids: [String], labels: [Int], classNames: [String], checksums: [UInt64]) -> String {
        precondition(ids.count == labels.count && ids.count == checksums.count)
        var h = SHA256()
        for i in ids.indices.sorted(by: { ids[$0] < ids[$1] }) {
            let sum = String(checksums[i], radix: 16)
            h.update("\(ids[i])\t\(classNames[labels[i]])\t\(String(repeating: "0", count: 16 - sum.count))\(sum)\n")
        }
        return SHA256.hex(h.finalize())
    }

    /// Human-readable differences that make `other` a different sweep (empty when compatible).
    /// `ignoringSelection`: for comparing sweeps that should differ only in how their
    /// training sets were chosen (`report --compare`).
    public func differences(from other: SweepManifest, ignoringSelection: Bool = false) -> [String] {
        var d: [String] = []
        func cmp<T: Equatable>(_ what: String, _ a: T, _ b: T, _ show: (T) -> String = { "\($0)" }) {
            if a != b { d.append("\(what): the directory has \(show(a)), this run has \(show(b))") }
        }
        let p = protocolSettings, q = other.protocolSettings
        cmp("protocol", p.name, q.name)
        if !ignoringSelection { cmp("selection", selectionName, other.selectionName) }
        if dataHash != other.dataHash {
            d.append(
                "data set: the directory was made from \(dataPath) (\(imageCount) images, classes "
                    + "\(zip(classNames, classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(dataHash.prefix(12))), "
                    + "this run has \(other.dataPath) (\(other.imageCount) images, classes "
                    + "\(zip(other.classNames, other.classCounts).map { "\($0) \($1)" }.joined(separator: ", ")), files hash \(other.dataHash.prefix(12)))"
            )
        } else {
            cmp("classes", classNames, other.classNames) { $0.joined(separator: ",") }
            if imagesHash == nil, other.imagesHash != nil {
                d.append(
                    "data set: the directory was made by an older cytocl that did not record the images' contents, "
                        + "so this run cannot check that \(other.dataPath) holds the same images; start a new --out directory")
            } else if imagesHash != other.imagesHash {
                d.append(
                    "data set: the same \(imageCount) file names and classes, but other image contents (the directory's images hash "
                        + "\(imagesHash.map { String($0.prefix(12)) } ?? "none"), \(other.dataPath)'s \(other.imagesHash.map { String($0.prefix(12)) } ?? "none"))"
                        + ": the pixels of some images changed since the sweep started")
            }
        }
        cmp("seed", seed, other.seed)
        cmp("metric", p.metric, q.metric)
        cmp("folds", p.folds, q.folds)
        cmp("sizes", p.sizes, q.sizes) { $0.map(String.init).joined(separator: ",") }
        cmp("test images per fold", p.testPerFold, q.testPerFold) { $0.map(String.init) ?? "one fold's block" }
        cmp("validation images per fold", p.valPerFold, q.valPerFold) { $0.map(String.init) ?? "next fold's block" }
        cmp("class balancing", p.balancePerClass, q.balancePerClass)
        cmp("optimizer", p.training.optimizer, q.training.optimizer) { $0.summary }
        cmp("maximum epochs", p.training.maxEpochs, q.training.maxEpochs)
        cmp("patience", p.training.patience, q.training.patience)
        cmp("batch size", p.training.batchSize, q.training.batchSize)
        cmp("augmentation", p.training.augment, q.training.augment)
        cmp("restarts of cells at chance", p.restarts ?? 0, q.restarts ?? 0)
        if p.training.augment || q.training.augment {
            cmp("augmentation sampler", p.training.resolvedAugmentSampler, q.training.resolvedAugmentSampler) { $0.rawValue }
        }
        cmp("near-duplicate handling", nearDuplicates?.policy, other.nearDuplicates?.policy) { $0?.rawValue ?? "none" }
        cmp("near-duplicate threshold", nearDuplicates?.parameters.threshold, other.nearDuplicates?.parameters.threshold) {
            $0.map { String($0) } ?? "none"
        }
        cmp("model", spec, other.spec) {
            "\($0.inputWidth)x\($0.inputHeight) conv \($0.convFilters) dense \($0.denseUnits) classes \($0.classes)"
        }
        if d.isEmpty {
            var theirs = other.assignment
            if assignment.poolCounts == nil { theirs.poolCounts = nil }  // made before pool counts were saved
            cmp("fold assignment", assignment, theirs) { _ in "another" }
        }
        return d
    }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try e.encode(self)
    }
    public static func decode(_ data: Data) throws -> SweepManifest { try JSONDecoder().decode(SweepManifest.self, from: data) }
}
