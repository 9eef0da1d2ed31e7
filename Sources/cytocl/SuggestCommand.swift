import ArgumentParser
import CytoCore
import CytoData
import CytoSelect
import Foundation

struct Suggest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suggest",
        abstract: "The images to label next from a pool of unlabelled crops: CSV of path, score, reason.",
        discussion: """
            Reads every image under --data (class folders or not), describes each without labels \
            (by default the stain colour and texture statistics of each cell, --embedding) \
            and prints the --count images the strategy picks. Images in --labels, and their \
            near-duplicates, are never suggested. With --model, the model's class probabilities \
            steer the choice (uncertainty, classes with few labels). The same inputs and --seed \
            give the same list. docs/selection.md explains the strategies and their measurements.
            """)

    @Option(name: .long, help: "Folder of images to choose from (any layout; sub-folders are read).")
    var data: String

    @Option(name: .long, help: "A path,label CSV of the images labelled so far (paths relative to --data or to the CSV's folder, or absolute).")
    var labels: String?

    @Option(name: .long, help: "A model trained on the labels so far (.safetensors); its input size sets the decoding size.")
    var model: String?

    @Option(name: .long, parsing: .unconditional, help: "How many images to suggest.")
    var count: Int

    @Option(name: .long, help: "How to choose.")
    var strategy: SelectionStrategy = .active

    @Option(name: .long, help: "The label-free description of the images.")
    var embedding: EmbeddingKind = .stain

    @Option(name: .long, help: "Decoding size without --model, e.g. 64x64 (default 64x64; with --model, its input size).")
    var size: String?

    @Option(name: .long, parsing: .unconditional, help: "Random seed (clustering, random picks).")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Size policy for images of another size.")
    var fit: FitPolicy = .pad

    @Flag(name: .long, help: "Leave out unreadable image files (says how many) instead of stopping.")
    var skipBadImages = false

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        let file = try model.map { try ModelFile.read(from: URL(fileURLWithPath: $0)) }
        let asked = try size.map(parseSize)
        if let file, let asked, asked != (file.spec.inputHeight, file.spec.inputWidth) {
            throw ValidationError(
                "--size \(size!) differs from the input size of --model \(model!) (\(file.spec.inputWidth)x\(file.spec.inputHeight)); leave --size out")
        }
        let (h, w) = file.map { ($0.spec.inputHeight, $0.spec.inputWidth) } ?? asked ?? (64, 64)
        let backend = try backendOptions.make()
        let pool = try offeringSkipBadImages { try SuggestionPool(root: data, height: h, width: w, fit: fit, skipBad: skipBadImages) }
        if pool.skipped > 0 { note("\(pool.skipped) unreadable image file\(pool.skipped == 1 ? "" : "s") left out (--skip-bad-images)") }
        let labelled = try labels.map { try pool.readLabels($0) } ?? [:]
        note("\(FileSystemPath.visible(data)): \(pool.count) image\(pool.count == 1 ? "" : "s"), \(labelled.count) labelled")
        if let file, let m = model {
            // A model trained on other classes steers the choice by classes nobody labels here.
            let unknown = Set(labelled.values).subtracting(file.classNames).sorted()
            if !unknown.isEmpty {
                note("warning: --model \(m) knows the classes \(file.classNames.joined(separator: ", ")), not \(unknown.joined(separator: ", ")) of --labels: its probabilities say nothing about those")
            }
        }
        let picks = try pool.suggest(
            labelled: labelled, model: file, strategy: strategy, embedding: embedding, count: count, seed: seed, backend: backend)
        if picks.isEmpty {
            note("nothing left to suggest: every image of the pool is labelled or a near-duplicate of a labelled one")
        } else if picks.count < count { note("only \(picks.count) image\(picks.count == 1 ? " is" : "s are") left to suggest") }
        var csv = CSVWriter(header: ["path", "score", "reason"])
        for p in picks { csv.append([FileSystemPath.display(p.path), CSVWriter.number(p.score), p.reason]) }
        print(csv.text, terminator: "")
        backendOptions.finish(backend)
    }
}
