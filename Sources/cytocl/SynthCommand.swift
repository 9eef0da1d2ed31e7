import ArgumentParser
import CytoCore
import CytoData
import Foundation

/// `cytocl synth`: draws a synthetic single-cell smear data set in one of the
/// distributed layouts, so the demo, the tests and the AML-scale benchmarks run
/// without the (non-redistributable) real sets.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Draw synthetic single-cell blood smear images in a dataset layout.",
        discussion: """
            all-idb: ImNNN_L.tif (L = 1 blast, 0 other), 257x257 uncompressed RGB TIFF, half blasts.
            aml: 15 class folders (BAS ... PMO) of .tiff, 400x400, in the proportions of
                 AML-Cytomorphology_LMU (exactly its counts for --count 18365).
            folders: PNGs in 6 class folders (basophil blast eosinophil lymphocyte monocyte neutrophil).
            """)

    @Option(name: .long, help: "Output folder: new or empty (created if needed).")
    var out: String

    /// The layouts `synth` can draw: `DatasetLayout` without `csv`, so `--help` lists
    /// only values it accepts.
    enum DrawnLayout: String, ExpressibleByArgument, CaseIterable {
        case allIDB = "all-idb", aml, folders
        var layout: DatasetLayout { DatasetLayout(rawValue: rawValue)! }
    }

    @Option(name: .long, help: "Layout to draw.")
    var layout: DrawnLayout = .allIDB

    @Option(name: .long, parsing: .unconditional, help: "Number of images.")
    var count: Int = 260

    @Option(name: .long, parsing: .unconditional, help: "Image side in pixels (default: 257 all-idb, 400 aml, 128 folders).")
    var size: Int?

    @Option(name: .long, parsing: .unconditional, help: "Random seed; the same seed gives the same images.")
    var seed: UInt64 = 1

    @Option(
        name: .long,
        help:
            "Add N near-duplicates: shifted, re-cropped, brightness- and colour-jittered copies of N images (as ALL-IDB2's overlapping photographs)."
    )
    var nearDuplicates: Int = 0

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Kinds of near-duplicate for --near-duplicates, taken in turn (comma-separated): shift, mirror, rot90, rot180, rot270, frame-filling, identical, look-alike.",
            discussion:
                "look-alike adds a decoy, not a near-duplicate: a cell of the same outline and nucleus shape on other surroundings, which detection must not group. Each file written is named on stderr with its kind (the ground truth)."
        ))
    var nearDuplicateCases: String = "shift"

    /// The parsed `--near-duplicate-cases`.
    var cases: [NearDuplicateCase] {
        get throws {
            try nearDuplicateCases.split(separator: ",").map { raw in
                let name = raw.trimmingCharacters(in: .whitespaces)
                guard let c = NearDuplicateCase(rawValue: name) else {
                    throw ValidationError(
                        "--near-duplicate-cases: unknown kind '\(name)' (use \(NearDuplicateCase.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                return c
            }
        }
    }

    /// Every option is checked before the first image is written, so a bad one never
    /// leaves a half-drawn folder behind.
    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        if let s = size, !(16...2048).contains(s) { throw ValidationError("--size must be between 16 and 2048, got \(s)") }
        guard nearDuplicates >= 0 else { throw ValidationError("--near-duplicates must not be negative, got \(nearDuplicates)") }
        guard nearDuplicates <= count else {
            throw ValidationError("--near-duplicates \(nearDuplicates) is more than the \(count) images of --count")
        }
        guard try !cases.isEmpty else { throw ValidationError("--near-duplicate-cases is empty") }
        try requireEmptyOutputFolder(out, option: "--out")
    }

    func run() throws {
        let l = layout.layout
        let start = Date()
        let bar = ProgressBar(title: "synth", total: count, plainInterval: 5)
        let report = try SyntheticCells.generate(
            into: URL(fileURLWithPath: out), layout: l, count: count, size: size,
            seed: seed
        ) { done, total in bar.update(done, of: total) }
        let pairs = try SyntheticCells.addNearDuplicates(to: report, count: nearDuplicates, seed: seed, cases: cases)
        for (a, b, c) in pairs {
            switch c {
            case .shift: note("near-duplicate: \(b) is a re-crop of \(a)")
            case .identical: note("near-duplicate: \(b) is a byte-copy of \(a)")
            case .frameFilling: note("near-duplicate: \(b) is a frame-filling-re-crop of \(a) (both magnified)")
            case .lookalike:
                note(
                    "near-duplicate decoy: \(b) is a look-alike of \(a) (a cell of the same outline on other surroundings; not a near-duplicate)"
                )
            default: note("near-duplicate: \(b) is a re-crop+\(c.rawValue) of \(a)")
            }
        }
        let secs = Date().timeIntervalSince(start)
        let classes = report.classCounts.filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        print(
            "wrote \(report.count + pairs.count) \(report.size)x\(report.size) images (\(l.rawValue)) to \(out) in \(String(format: "%.1f", secs)) s: \(classes)"
        )
    }
}

/// Refuses an output folder that already holds files: drawing into it would overwrite
/// some images and leave others, a mixed set that reads as one data set.
func requireEmptyOutputFolder(_ path: String, option: String) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
    guard isDir.boolValue else { throw ValidationError("\(option) \(path) is a file, not a folder") }
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    if !entries.isEmpty {
        throw ValidationError("\(option) \(path) is not empty (\(entries.count) entries); give a new or empty folder")
    }
}
