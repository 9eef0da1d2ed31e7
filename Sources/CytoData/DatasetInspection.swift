import CytoSupport
import Foundation

/// What `cytocl dataset inspect` reports about a data set.
public struct DatasetInspection: Sendable {
    public var index: DatasetIndex
    /// "WxH" -> count.
    public var sizes: [String: Int] = [:]
    /// "PNG"/"TIFF"/"JPEG" -> count.
    public var formats: [String: Int] = [:]
    public var duplicates: [DuplicateGroup] = []
    /// Files that could not be read or decoded.
    public var bad: [DataError] = []
    /// Near-duplicate groups (found when decoding; nil with `decode: false`).
    public var nearDuplicates: NearDuplicateSummary?
    /// Set when the near-duplicate scan was bounded (many look-alike images), one line.
    public var nearDuplicateWarning: String?

    /// Reads every file's header (and with `decode`, its pixels) on all cores, and hashes for duplicates.
    /// With `decode`, also looks for near-duplicates (thumbnails of the decoded images).
    public static func run(
        _ index: DatasetIndex, decode: Bool = true,
        nearDuplicates parameters: NearDuplicateParameters? = NearDuplicateParameters(),
        progress: ProgressHandler? = nil
    ) -> DatasetInspection {
        var result = DatasetInspection(index: index)
        let n = index.items.count
        let findNear = decode && parameters != nil
        let featureParameters = parameters ?? NearDuplicateParameters()
        let results = Parallel.map(n, progress: progress, step: 50) { i -> Result<(ImageInfo, [Float]?), DataError> in
            let path = index.items[i].path
            do {
                let bytes = try FileBytes.read(path)
                var info = try ImageCodec.readInfo(bytes: bytes, name: path)
                // The header checks of loading (`ImageLoader`): a file every run refuses
                // (a 3000x20 strip) is unreadable here too, not a size among the others.
                try FitLimits.check(width: info.width, height: info.height, path: path)
                var thumb: [Float]?
                if decode {
                    let img = try ImageCodec.decode(bytes: bytes, name: path)
                    info.width = img.width; info.height = img.height
                    if findNear {
                        thumb = img.pixels.withUnsafeBufferPointer {
                            NearDuplicates.features($0, height: img.height, width: img.width, parameters: featureParameters)
                        }
                    }
                }
                return .success((info, thumb))
            } catch {
                return .failure((error as? DataError) ?? .corrupt(path: path, format: "image", detail: "\(error)"))
            }
        }
        let infos = results.map { try? $0.get().0 }
        let thumbs = results.map { try? $0.get().1 }
        let errors = results.map { r -> DataError? in if case .failure(let e) = r { return e } else { return nil } }
        for i in 0..<n {
            if let e = errors[i] { result.bad.append(e) }
            if let info = infos[i] {
                result.sizes["\(info.width)x\(info.height)", default: 0] += 1
                result.formats[info.format.rawValue, default: 0] += 1
            }
        }
        result.duplicates = DatasetIndex.findDuplicates(index.items)
        if findNear, let p = parameters {
            let ok = (0..<n).filter { thumbs[$0] != nil }
            let sub = ok.flatMap { thumbs[$0]! }
            var warning: String?
            let pairs = NearDuplicates.pairs(
                features: sub, count: ok.count, parameters: p, floor: p.threshold, warning: { warning = $0 })
            result.nearDuplicateWarning = warning
            let items = ok.map { index.items[$0] }
            let prefix = index.root.hasSuffix("/") ? index.root : index.root + "/"
            let ids = items.map { $0.path.hasPrefix(prefix) ? String($0.path.dropFirst(prefix.count)) : $0.path }
            result.nearDuplicates = NearDuplicates.apply(policy: .drop, parameters: p, pairs: pairs, items: items, ids: ids).summary
        }
        return result
    }

    /// The report as text.
    public func render() -> String {
        let v = FileSystemPath.visible  // file and class names: one line each, every byte visible
        var s = "dataset: \(v(index.root))\nlayout: \(index.layout.rawValue)\n"
        s += "images: \(index.items.count) in \(index.classNames.count) classes\n"
        let counts = index.counts
        let names = index.classNames.map(v)
        let wName = max(5, names.map(\.count).max() ?? 5)
        for (i, name) in names.enumerated() {
            let note = counts[i] == 0 ? "  (empty: an error when training)" : counts[i] == 1 ? "  (one image: an error when training)" : ""
            // Padded by characters: Foundation's `padding(toLength:)` counts UTF-16 units and
            // cut names unzipped from a Mac (decomposed: `e` + a combining accent), showing
            // "Blastzellen_e" and "Übrige Zelle" for "Blastzellen_é" and "Übrige Zellen".
            s += "  " + name + String(repeating: " ", count: max(0, wName - name.count)) + "  \(counts[i])" + note + "\n"
        }
        if let w = index.unnamedNote { s += w + "\n" }
        if let w = index.layoutNote { s += w + "\n" }
        if !index.droppedClasses.isEmpty {
            s +=
                "dropped classes (below --min-per-class): " + index.droppedClasses.map { "\(v($0.0)) (\($0.1))" }.joined(separator: ", ")
                + "\n"
        }
        s += "sizes (WxH):\n"
        for (k, v) in sizes.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) { s += "  \(k)  \(v)\n" }
        s += "formats: " + formats.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        if duplicates.isEmpty {
            s += "duplicates: none\n"
        } else {
            let extra = duplicates.reduce(0) { $0 + $1.paths.count - 1 }
            s += "duplicates: \(duplicates.count) set(s) of byte-identical files (\(extra) would be dropped by --dedupe)\n"
            for g in duplicates {
                s +=
                    "  " + g.paths.map(v).joined(separator: " == ")
                    + (g.crossesClasses ? "  [different classes: \(g.classes.map(v).joined(separator: "/"))]" : "") + "\n"
            }
        }
        if let w = nearDuplicateWarning { s += "warning: \(w)\n" }
        if let nd = nearDuplicates {
            if nd.groups.isEmpty {
                s += "near-duplicates (similarity >= \(String(format: "%.2f", nd.parameters.threshold))): none\n"
            } else {
                let images = nd.groups.reduce(0) { $0 + $1.members.count }
                s +=
                    "near-duplicates (similarity >= \(String(format: "%.2f", nd.parameters.threshold))): \(nd.groups.count) group(s), \(images) images "
                    + "(training keeps the first of each: \(nd.dropped.count) would be dropped; --near-duplicates group keeps all in one fold)\n"
                for g in nd.groups {
                    s +=
                        "  " + String(format: "%.3f  ", g.similarity) + g.members.map(v).joined(separator: " ~ ")
                        + (g.linkText.isEmpty ? "" : "  " + g.linkText)
                        + (g.crossesClasses ? "  [different classes: \(g.classes.map(v).joined(separator: "/"))]" : "") + "\n"
                }
            }
        } else {
            s += "near-duplicates: not checked (--no-decode)\n"
        }
        if bad.isEmpty {
            s += "unreadable files: none"
        } else {
            s += "unreadable files: \(bad.count)\n" + bad.map { "  \($0)" }.joined(separator: "\n")
        }
        return s
    }
}
