import CytoSupport
import Foundation

/// Counts of what loading did, for the run log.
public struct LoadReport: Sendable, Equatable {
    public var requested = 0
    public var loaded = 0
    public var unchanged = 0
    public var resized = 0
    public var padded = 0
    public var cropped = 0
    /// Source sizes seen, "WxH" -> count.
    public var sourceSizes: [String: Int] = [:]
    /// One error per bad file, in item order.
    public var bad: [DataError] = []
    /// One line per file that loaded with a caveat (a multi-page TIFF read at page 1), in item order.
    public var warnings: [String] = []
    public var skipped: Int { bad.count }

    public var summary: String {
        var s = "\(loaded) of \(requested) images loaded"
        var parts: [String] = []
        if unchanged > 0 { parts.append("\(unchanged) at size") }
        if resized > 0 { parts.append("\(resized) resized") }
        if padded > 0 { parts.append("\(padded) padded") }
        if cropped > 0 { parts.append("\(cropped) cropped") }
        if !parts.isEmpty { s += " (" + parts.joined(separator: ", ") + ")" }
        if !bad.isEmpty { s += "; \(bad.count) bad file(s) skipped" }
        return s
    }

    /// Adds the counts of a later batch of files (bad files stay in item order).
    public mutating func merge(_ other: LoadReport) {
        requested += other.requested; loaded += other.loaded; unchanged += other.unchanged
        resized += other.resized; padded += other.padded; cropped += other.cropped
        for (k, v) in other.sourceSizes { sourceSizes[k, default: 0] += v }
        bad += other.bad
        warnings += other.warnings
    }

    mutating func count(_ action: FitAction) {
        switch action {
        case .unchanged: unchanged += 1
        case .resized: resized += 1
        case .padded: padded += 1
        case .cropped: cropped += 1
        }
    }
}

/// Images decoded into one NHWC uint8 array.
public struct LoadedImages: Sendable {
    /// [count, height, width, 3], contiguous.
    public var pixels: [UInt8]
    public var count: Int
    public var height: Int
    public var width: Int
    /// The items actually loaded (bad ones removed when skipping), aligned with `pixels`.
    public var items: [DatasetItem]
    public var labels: [Int] { items.map(\.label) }
    public var report: LoadReport
}

/// Decodes image files at the model's input size on all cores.
public enum ImageLoader {
    /// Decodes one file and fits it to `height` x `width`. The header is read first:
    /// an absurd size or aspect ratio is refused before any pixel is decoded.
    public static func loadOne(
        path: String, height: Int, width: Int, fit: FitPolicy
    )
        throws -> (image: RGBImage, action: FitAction, sourceWidth: Int, sourceHeight: Int)
    {
        let r = try loadOneWithNote(path: path, height: height, width: width, fit: fit)
        return (r.image, r.action, r.sourceWidth, r.sourceHeight)
    }

    /// `loadOne`, plus a warning line when the file holds more than the image read.
    static func loadOneWithNote(
        path: String, height: Int, width: Int, fit: FitPolicy
    )
        throws -> (image: RGBImage, action: FitAction, sourceWidth: Int, sourceHeight: Int, warning: String?)
    {
        let bytes = try FileBytes.read(path)
        var warning: String? = nil
        if let info = try? ImageCodec.readInfo(bytes: bytes, name: path) {
            try FitLimits.check(width: info.width, height: info.height, path: path)
            if info.pages > 1 { warning = "\(path): multi-page TIFF (\(info.pages) pages): only page 1 is read" }
        }
        let img = try ImageCodec.decode(bytes: bytes, name: path)
        try FitLimits.check(width: img.width, height: img.height, path: path)
        let (out, action) = fitImage(img, height: height, width: width, policy: fit)
        if let up = upscaleWarning(path: path, sourceWidth: img.width, sourceHeight: img.height, height: height, width: width) {
            warning = warning.map { $0 + "; " + up } ?? up
        }
        return (out, action, img.width, img.height, warning)
    }

    /// Magnifications above this are warned about, naming the file.
    public static let upscaleWarningFactor = 4.0

    /// A warning when fitting magnifies the image more than `upscaleWarningFactor` times
    /// (on its less magnified side): a 1x1 or 20x20 file padded up to 200x200 is almost
    /// certainly not a cell crop (a thumbnail, an icon, a mask), and was only counted as
    /// "fitted".
    static func upscaleWarning(path: String, sourceWidth: Int, sourceHeight: Int, height: Int, width: Int) -> String? {
        let factor = min(Double(width) / Double(max(1, sourceWidth)), Double(height) / Double(max(1, sourceHeight)))
        guard factor > upscaleWarningFactor else { return nil }
        return "\(path): a \(sourceWidth)x\(sourceHeight) image enlarged \(String(format: "%.4g", factor)) times to \(width)x\(height)"
            + " (more than \(Int(upscaleWarningFactor))x; is it a single-cell crop?)"
    }

    /// Decodes `paths` into `destination` (count x height x width x 3 bytes), one
    /// image per slot, in parallel. Slots of bad files are zeroed. Returns the report
    /// and, per slot, whether it holds an image. Used by `load` and by `ImageCache`.
    public static func decode(
        paths: [String], height: Int, width: Int, fit: FitPolicy,
        into destination: UnsafeMutablePointer<UInt8>,
        progress: ProgressHandler? = nil
    ) -> (LoadReport, [Bool]) {
        let n = paths.count
        let stride = height * width * 3
        let out = DisjointWrites(destination)
        // Chunks of a few images per task keep dispatch overhead small while still
        // balancing the cores when image sizes differ. Task i writes only slot i.
        let results = Parallel.map(n, chunk: 4, progress: progress) { i -> Result<(FitAction, (Int, Int), String?), DataError> in
            let dst = out.base + i * stride
            do {
                let r = try loadOneWithNote(path: paths[i], height: height, width: width, fit: fit)
                r.image.pixels.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: stride) }
                return .success((r.action, (r.sourceWidth, r.sourceHeight), r.warning))
            } catch {
                dst.update(repeating: 0, count: stride)
                return .failure((error as? DataError) ?? .corrupt(path: paths[i], format: "image", detail: "\(error)"))
            }
        }
        var report = LoadReport()
        report.requested = n
        var ok = [Bool](repeating: false, count: n)
        for (i, result) in results.enumerated() {
            switch result {
            case .failure(let err): report.bad.append(err)
            case .success(let (action, size, warning)):
                ok[i] = true
                if let warning { report.warnings.append(warning) }
                report.loaded += 1
                report.count(action)
                report.sourceSizes["\(size.0)x\(size.1)", default: 0] += 1
            }
        }
        return (report, ok)
    }

    /// Decodes `items` into one [N, height, width, 3] array.
    ///
    /// By default any bad file stops the load with one `DataError.badImages` that
    /// lists every bad file; with `skipBad` they are left out (the report says how
    /// many) and `items` of the result lists the images that were loaded.
    public static func load(
        _ items: [DatasetItem], height: Int, width: Int, fit: FitPolicy = .pad,
        skipBad: Bool = false, progress: ProgressHandler? = nil
    ) throws -> LoadedImages {
        let stride = height * width * 3
        if items.isEmpty {
            return LoadedImages(pixels: [], count: 0, height: height, width: width, items: [], report: LoadReport())
        }
        var pixels = [UInt8](repeating: 0, count: items.count * stride)
        let (report, ok) = pixels.withUnsafeMutableBufferPointer { buf in
            decode(
                paths: items.map(\.path), height: height, width: width, fit: fit,
                into: buf.baseAddress!, progress: progress)
        }
        if !report.bad.isEmpty && !skipBad { throw DataError.badImages(report.bad) }
        var kept: [DatasetItem] = []
        if report.bad.isEmpty {
            kept = items
        } else {
            // compact: move good slots forward
            var w = 0
            pixels.withUnsafeMutableBufferPointer { buf in
                for i in 0..<items.count where ok[i] {
                    if w != i { (buf.baseAddress! + w * stride).update(from: buf.baseAddress! + i * stride, count: stride) }
                    kept.append(items[i]); w += 1
                }
            }
            pixels.removeSubrange((w * stride)...)
        }
        return LoadedImages(pixels: pixels, count: kept.count, height: height, width: width, items: kept, report: report)
    }
}
