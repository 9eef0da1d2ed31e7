import ArgumentParser
import CytoBackends
import CytoCore
import CytoData
import CytoLabel
import CytoSelect
import Foundation

/// `cytocl label`: the local labelling page (CytoLabel). Parses and checks the options,
/// decodes the pool once, and serves until interrupted.
struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a local labelling page: suggested cells shown large, one key per label, retraining in the background.",
        discussion: """
            Open the printed address in a browser. Keys: 1..9 the class (in --classes order), u undo this tab's last \
            label, s skip. Every label is written to --labels at once (atomically); after every --batch labels the \
            paper network is retrained on the labels so far and the suggestions refreshed. The page listens on \
            127.0.0.1 only, unless --host says otherwise (anyone who can reach it can label). See docs/labelling.md.
            """)

    @Option(name: .long, help: "The pool: a folder of images (sub-folders too) to label.")
    var data: String

    @Option(name: .long, help: "The labels file (path,label CSV, paths relative to --data): read, then written after every label.")
    var labels: String

    @Option(name: .long, help: "The classes, comma-separated, 2 to 9: key 1 is the first.")
    var classes: String

    @Option(name: .long, help: "Address to listen on (default loopback only).")
    var host = "127.0.0.1"

    @Option(name: .long, parsing: .unconditional, help: "Port (0: any free port; the address is printed).")
    var port = 8765

    @Option(name: .long, parsing: .unconditional, help: "Retrain after this many new labels.")
    var batch = 10

    @Option(name: .long, parsing: .unconditional, help: "Suggestions fetched at a time.")
    var suggestions = 20

    @Option(name: .long, help: "Model input WxH (the paper network's smallest by default); the pool is decoded at this size.")
    var input = "190x190"

    @Option(name: .long, parsing: .unconditional, help: "Maximum epochs of each retraining.")
    var epochs = 30

    @Option(name: .long, help: "How suggestions are chosen (as in `cytocl suggest`).")
    var strategy: SelectionStrategy = .active

    @Option(name: .long, help: "The label-free description of the images behind the suggestions (as `cytocl suggest`).")
    var embedding: EmbeddingKind = .stain

    @Option(name: .long, parsing: .unconditional, help: "Random seed (initialisation, shuffling, suggestions).")
    var seed: UInt64 = 1

    @Flag(name: .long, help: "Leave out unreadable image files of the pool (says how many) instead of stopping.")
    var skipBadImages = false

    @OptionGroup var backendOptions: BackendOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000, got \(batch)") }
        guard (1...1000).contains(suggestions) else {
            throw ValidationError("--suggestions must be between 1 and 1000, got \(suggestions)")
        }
        guard (1...10_000).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 10000, got \(epochs)") }
        _ = try classNames()
        _ = try parseSize(input)
    }

    /// `--classes`, checked: 2 to 9 distinct names.
    func classNames() throws -> [String] {
        let names = try parseNameList(classes, option: "--classes")
        do {
            try DatasetIndex.requireDistinct(names, option: "--classes")
            try LabelsFile.requireSpellings(of: names, option: "--classes", in: [], file: labels)
        } catch { throw ValidationError("\(error)") }
        guard (2...9).contains(names.count) else {
            throw ValidationError("--classes: give 2 to 9 classes (one key each), got \(names.count)")
        }
        return names
    }

    func run() throws {
        let names = try classNames()
        let (h, w) = try parseSize(input)
        try ModelSpec.paper(height: h, width: w, classes: names.count).validate()
        let labelsURL = URL(fileURLWithPath: labels)
        try AtomicFile.preflight([labelsURL])
        // One backend now, to fail early on a bad --backend and say which it is; every
        // retraining makes its own on the worker thread.
        _ = try backendOptions.make()
        let (selector, threads, fastMath) = (backendOptions.backend, backendOptions.threads, backendOptions.fastMath)
        // A labels file the page would refuse is refused before the pool is decoded (minutes
        // for a large pool), not after; whether its paths are images of the pool is known later.
        // Worded as the page's own refusal (`LabelStore`).
        if let bytes = FileManager.default.contents(atPath: labelsURL.path) {
            let fix = "; fix the file: the page saves nothing until then"
            do {
                let rows = try LabelsFile.rows(text: try TextFile.decode(bytes), labelsFile: labelsURL.path)
                // `--classes Blast,other` on a file of `blast` labels wrote both spellings.
                do { try LabelsFile.requireSpellings(of: names, option: "--classes", in: rows, file: labelsURL.path) } catch {
                    throw RunError("\(error)")
                }
            } catch let e as TextFile.Failure {
                throw RunError("\(FileSystemPath.visible(labelsURL.path)): \(e)\(fix)")
            } catch let e as RunError { throw e } catch { throw RunError("\(error)\(fix)") }
        }
        note("decoding the pool \(FileSystemPath.visible(data)) at \(w)x\(h)…")
        // A pool of thousands of crops with one truncated file could not be labelled at
        // all: `suggest`'s --skip-bad-images, and its hint, here too.
        let pool = try offeringSkipBadImages { try SuggestionPool(root: data, height: h, width: w, skipBad: skipBadImages) }
        if pool.skipped > 0 { note("\(pool.skipped) unreadable image file\(pool.skipped == 1 ? "" : "s") left out (--skip-bad-images)") }
        var settings = LabelSettings(classes: names)
        settings.batch = batch; settings.suggestionCount = suggestions
        settings.height = h; settings.width = w
        settings.training.maxEpochs = epochs; settings.training.seed = seed
        let session = LabelSession(
            store: try LabelStore(file: labelsURL, pool: try LabelPool(folder: pool.root, ids: pool.ids)), settings: settings,
            source: PoolSuggestions(pool: pool, strategy: strategy, embedding: embedding, seed: seed),
            forecaster: PlanForecaster(
                spec: ModelSpec.paper(height: h, width: w, classes: names.count), training: settings.training, seed: seed),
            makeBackend: {
                try BackendSelection.make(selector, options: .init(fastMath: fastMath, threads: threads)).backend
            })
        note("\(pool.count) images in the pool; labels in \(labelsURL.path)")
        let host = self.host
        try LabelServer(session: session, host: host, port: port).runBlocking { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            FileHandle.standardOutput.write(Data("serving http://\(shown):\(port)/ (Ctrl-C stops)\n".utf8))
        }
    }
}
