import ArgumentParser
import CytoCore
import CytoData
import Foundation

/// `cytocl dataset`: look at a data set the way training will see it, and
/// build its decoded-image cache ahead of time.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Inspect a dataset folder or build its image cache.",
        subcommands: [Inspect.self, Cache.self])

    /// Options shared by both subcommands.
    struct Selection: ParsableArguments {
        @Argument(help: "Data folder (or a manifest: .csv, .tsv or .txt).")
        var dir: String

        @Option(name: .long, help: "Dataset layout (default: detected).")
        var layout: DatasetLayout?

        @Option(name: .long, help: "Classes mapped to 'blast' (comma-separated); the rest become 'other'.")
        var positive: String?

        @Option(name: .long, help: "Keep only these classes, in this order (comma-separated).")
        var classes: String?

        @Option(name: .customLong("min-per-class"), parsing: .unconditional, help: "Drop classes with fewer images.")
        var minPerClass: Int?

        @Option(name: .long, help: "A path,label CSV whose labels replace the layout's; unlisted images are left out.")
        var labels: String?

        func options(dedupe: Bool) throws -> DatasetOptions {
            var o = DatasetOptions()
            o.layout = layout
            o.positive = positive.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            o.classes = classes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            o.minPerClass = minPerClass
            o.dedupe = dedupe
            o.labelsFile = labels
            return o
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the layout, classes, image sizes, formats, duplicates and unreadable files.")

        @OptionGroup var selection: Selection

        @Flag(name: .customLong("no-decode"), help: "Read headers only (faster; damaged pixel data and near-duplicates are not found).")
        var noDecode = false

        @Option(
            name: .long, parsing: .unconditional,
            help: "Similarity (normalised cross-correlation, above 0, at most 1) from which two images are listed as near-duplicates.")
        var nearDuplicateThreshold: Double = NearDuplicateParameters().threshold

        @Flag(name: .long, inversion: .prefixedNo, help: "Look for near-duplicate images (needs decoding).")
        var nearDuplicates = true

        func validate() throws {
            guard nearDuplicateThreshold > 0 && nearDuplicateThreshold <= 1 else {
                throw ValidationError("--near-duplicate-threshold must be in (0, 1], got \(nearDuplicateThreshold)")
            }
        }

        func run() throws {
            var options = try selection.options(dedupe: false)
            options.strict = false  // report small classes instead of stopping
            let index = try DatasetIndex.load(path: selection.dir, options: options)
            var params = NearDuplicateParameters()
            params.threshold = nearDuplicateThreshold
            let bar = ProgressBar(title: "inspect", total: index.items.count, plainInterval: 5)
            let inspection = DatasetInspection.run(index, decode: !noDecode, nearDuplicates: nearDuplicates ? params : nil) { done, total in
                bar.update(done, of: total)
            }
            print(inspection.render())
        }
    }

    struct Cache: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode every image once into the checksummed cache used by sweeps.")

        @OptionGroup var selection: Selection

        @Option(name: .long, help: "Model input size: S (square) or HxW.")
        var size: String = "257"

        @Option(name: .long, help: "resize, pad or crop.")
        var fit: FitPolicy = .pad

        @Option(
            name: .customLong("cache-dir"),
            help: "Where to store the cache (default: DIR/.cytocl-cache, or $XDG_CACHE_HOME/cytocl/datasets/... when DIR is read-only).")
        var cacheDir: String?

        @Flag(name: .customLong("skip-bad-images"), help: "Leave undecodable files out instead of stopping.")
        var skipBad = false

        @Flag(name: .long, help: "Rebuild even when the cache is up to date.")
        var rebuild = false

        @Flag(
            name: .long, inversion: .prefixedNo,
            help: "Also scan the cache for near-duplicate images and store the result beside it (a sweep then reuses it).")
        var nearDuplicates = true

        @Flag(name: .customLong("benchmark-read"), help: "Afterwards, time reading shuffled batches of 32 from the cache.")
        var benchmarkRead = false

        func run() throws {
            let policy = fit
            let (h, w) = try DatasetCommand.parseSize(size)
            let index = try DatasetIndex.load(path: selection.dir, options: selection.options(dedupe: false))
            let start = Date()
            let bar = ProgressBar(title: "cache", total: index.items.count, plainInterval: 5)
            let cache = try offeringSkipBadImages {
                try ImageCache.open(
                    index: index, height: h, width: w, fit: policy,
                    directory: cacheDir.map { URL(fileURLWithPath: $0) },
                    skipBad: skipBad, rebuild: rebuild,
                    progress: { done, total in bar.update(done, of: total) })
            }
            if let n = cache.locationNote { note(n) }
            if let r = cache.rebuildReason { note("rebuilt the cache: \(r)") }
            let secs = Date().timeIntervalSince(start)
            if cache.wasBuilt {
                let rate = Double(cache.count) / max(secs, 1e-9)
                print(
                    "built \(cache.url.path): \(cache.count) images at \(w)x\(h) in \(String(format: "%.1f", secs)) s (\(String(format: "%.0f", rate)) images/s)"
                )
                if let r = cache.report {
                    print(r.summary)
                    noteWarnings(r)
                    for e in r.bad { print("  skipped: \(e)") }
                }
            } else {
                print("up to date: \(cache.url.path) (\(cache.count) images at \(w)x\(h))")
            }
            if nearDuplicates && cache.count > 1 {
                let params = NearDuplicateParameters()
                let (scan, computed) = try NearDuplicateScan.scan(cache: cache, parameters: params) {
                    if $0.hasPrefix("warning: ") { note($0) }  // the bound on look-alike images; not the progress
                }
                let groups = NearDuplicates.components(scan.pairs, count: cache.count, threshold: params.threshold)
                print(
                    String(
                        format: "near-duplicates: %d group(s) at similarity >= %.2f (%@ %d images%@; list them with `dataset inspect`)",
                        groups.count, params.threshold, computed ? "scanned" : "stored scan of", cache.count,
                        computed ? String(format: " in %.1f s, %d candidate pairs compared", scan.seconds, scan.compared ?? 0) : ""))
            }
            if benchmarkRead && cache.count > 0 {
                var rng = SeededGenerator(seed: 1)
                let order = Array(0..<cache.count).shuffled(using: &rng)
                let batchSize = 32
                var buffer = [UInt8](repeating: 0, count: batchSize * cache.imageBytes)
                var checksum = 0
                let t0 = Date()
                try buffer.withUnsafeMutableBufferPointer { buf in
                    for start in stride(from: 0, to: order.count, by: batchSize) {
                        let batch = Array(order[start..<min(order.count, start + batchSize)])
                        try cache.copyBatch(batch, to: buf.baseAddress!)
                        checksum &+= Int(buf[0])
                    }
                }
                let dt = Date().timeIntervalSince(t0)
                print(
                    "read \(cache.count) images in shuffled batches of \(batchSize): \(String(format: "%.2f", dt)) s (\(String(format: "%.0f", Double(cache.count) / max(dt, 1e-9))) images/s, checksum \(checksum))"
                )
            }
        }
    }
}

extension DatasetCommand {
    /// Parses "S" or "HxW".
    static func parseSize(_ s: String) throws -> (Int, Int) {
        let parts = s.lowercased().split(separator: "x").map { Int($0) }
        if parts.count == 1, let v = parts[0], v > 0 { return (v, v) }
        if parts.count == 2, let h = parts[0], let w = parts[1], h > 0, w > 0 { return (h, w) }
        throw ValidationError("--size must be S or HxW (got '\(s)')")
    }
}
