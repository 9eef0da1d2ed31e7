import ArgumentParser
import CytoBackends
import CytoCore
import CytoData
import CytoSelect
import CytoSweep
import CytoTrain
import Foundation

/// `cytocl sweep`: the paper's cross-validated training-set-size study. A command group
/// whose default subcommand runs the sweep, so `cytocl sweep --protocol ...` works as before.
struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a cross-validation sweep (default), or show its status, or retry its failed and missing cells.",
        subcommands: [SweepRunCommand.self, SweepStatusCommand.self, SweepRetryCommand.self],
        defaultSubcommand: SweepRunCommand.self)
}

/// `cytocl sweep [run] --protocol P --data DIR --out SWEEP_DIR ...`
struct SweepRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run every (fold, training size) cell of a cross-validation protocol; resumable and shardable.",
        discussion: """
            Protocols: all-idb-binary, aml-binary, multiclass, custom (see docs/protocol.md).
            Each finished cell is written atomically to OUT/cells/fold<F>-size<S>.json; re-running the same
            command resumes (finished cells are skipped, interrupted ones redone). --shard I/N runs every N-th
            cell starting at I (0-based), so N processes can share one directory. Then: cytocl report OUT.
            Images are decoded once into a checksummed cache (DATA/.cytocl-cache, or --cache-dir; when DATA is not
            writable, $XDG_CACHE_HOME/cytocl/datasets/<folder>-<hash>, default ~/.cache); each cell
            copies out only its training and validation images and streams its test images.
            --sizes accepts `all` (every training image of a fold), e.g. 10:100:10,200,500,1000,all: balanced
            where the classes allow; otherwise the smaller class gives all it has and the larger fills the rest,
            and a size above a fold's whole training pool takes that pool (stated before training and in the report).
            --slurm writes OUT/slurm/sweep.sbatch (a job array, one task per shard) and submits it with sbatch;
            --slurm-args="--partition=gpu --time=4:00:00 --gres=gpu:1" passes options to sbatch; --dry-run only
            writes the script. --devices opencl:0.0*4,cpu or --jobs N runs cells concurrently (N per device with *N);
            without them the CPU backend runs one cell per core.
            --selection typical|uncertainty|active|uniform chooses each fold's training sets from its whole pool instead of
            the protocol's draw, each size extending the last (docs/selection.md); compare with cytocl report OUT --compare OTHER.
            See also: cytocl sweep status OUT, cytocl sweep retry OUT [--slurm].
            """)

    @Option(name: .long, help: "The cross-validation protocol (docs/protocol.md).")
    var `protocol`: SweepProtocolArgument

    @Option(name: .long, help: "Data set folder (any layout of `cytocl dataset`).")
    var data: String

    @Option(name: .long, help: "Sweep directory (created, or resumed).")
    var out: String

    @Option(
        name: .long,
        help: "Training sizes: a list 30,200, a range 10:200:10, `all`, or a mix 10:100:10,200,1000,all (default: the protocol's).")
    var sizes: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of cross-validation folds (default: the protocol's, 10).")
    var folds: Int?

    @OptionGroup var holdOut: HoldOutOptions

    @Option(name: .long, help: "Run only every N-th cell starting at I (0-based): I/N.")
    var shard: String?

    @Flag(name: .long, help: "Also save each cell's model (cells/fold<F>-size<S>.safetensors).")
    var saveModels = false

    @OptionGroup var network: NetworkOptions

    @Option(
        name: .long, parsing: .unconditional,
        help:
            "Re-initialise a cell with the next seed when its training loss is still at chance (ln classes ± 0.02) after 10 epochs, at most N times (default 0: off, as the paper)."
    )
    var restarts: Int?

    @Option(
        name: .long,
        help:
            "Folder of the decoded-image cache (default: DATA/.cytocl-cache, or $XDG_CACHE_HOME/cytocl/datasets/... when DATA is read-only)."
    )
    var cacheDir: String?

    @Flag(name: .long, help: "Rebuild the decoded-image cache even when it is current.")
    var rebuildCache = false

    @Option(name: .long, help: "Run only the cells listed in this file ('FOLD SIZE' per line; written by `sweep retry`).")
    var cellsFile: String?

    @Flag(name: .long, help: "Submit the sweep to Slurm as a job array (one task per shard) instead of running it here.")
    var slurm = false

    @Option(
        name: .long, parsing: .unconditional,
        help: "Options passed to sbatch, e.g. --slurm-args \"--partition=gpu --time=4:00:00 --gres=gpu:1\".")
    var slurmArgs: String?

    @Option(name: .long, parsing: .unconditional, help: "Number of Slurm array tasks (default: one per cell to run, at most 1000).")
    var tasks: Int?

    @Flag(name: .long, help: "With --slurm: write the sbatch script but do not submit it.")
    var dryRun = false

    @Option(
        name: .long,
        help:
            "Run cells concurrently on these devices, SELECTOR or SELECTOR*N for N cells at once on one device: e.g. opencl:0.0*4,opencl:0.1,cpu*2."
    )
    var devices: String?

    @Option(
        name: .long, parsing: .unconditional,
        help:
            "Run N cells concurrently on the CPU backend, threads split between them (default: one cell per core; 1: one cell on all cores)."
    )
    var jobs: Int?

    @Option(
        name: .long,
        help:
            "How training sets are chosen: random (the protocol's draw), or a strategy that picks each fold's sets from its whole training pool, each size extending the last (docs/selection.md)."
    )
    var selection: SelectionStrategy = .random

    @Option(name: .long, help: "The label-free description a --selection strategy measures distances in (default: stain).")
    var selectionEmbedding: EmbeddingKind?

    @Option(
        name: .long,
        help:
            "How a --selection strategy's cells train on picks with unequal classes: oversample (each epoch repeats the smaller classes' images up to the largest's count) or none (default: oversample)."
    )
    var selectionClassBalance: ClassBalance?

    @Option(
        name: .long,
        help: "The first set of --selection active, chosen without labels: typical (TypiClust), uniform (at random), distinct (the typical image of each of the embedding's most distinct clusters), probcover (the images whose neighbourhoods cover the most others) or pseudoclass (TypiClust within as many k-means groups as classes, equal picks per group) (default: typical).")
    var selectionColdStart: ColdStart?

    @Option(
        name: .long,
        help:
            "The picks of --selection active once a model exists: uncertain (clusters like the class with the fewest labels, typical and uncertain), typical (the same without the uncertainty), stratified (equal per predicted class, the typical image of each class's uncovered clusters), mixed (stratified, every second pick of a class uncertain and typical) sampled (equal per class, each at random among the images most like its class) or blend (half sampled, half uncertain) (default: blend).")
    var selectionRounds: ActiveRounds?

    @Option(name: .long, help: "The metric of every cell: roc_auc (two classes) or f1_weighted (default: the protocol's).")
    var metric: SweepMetric?

    @OptionGroup var training: TrainingOptions
    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var backendOptions: BackendOptions

    /// Every option is checked here, before anything is written: a bad value found after
    /// `sweep.json` was written (a bad --devices, --jobs 0, an unbalanced --slurm-args)
    /// used to leave the directory behind, and the corrected rerun was then refused as
    /// "made with other settings" or retried with the bad value from invocation.json.
    func validate() throws {
        let p = try makeProtocol()
        _ = try shardValue()
        if slurm && shard != nil { throw ValidationError("--slurm makes its own shards; leave out --shard") }
        if (dryRun || slurmArgs != nil || tasks != nil) && !slurm {
            throw ValidationError("--dry-run, --slurm-args and --tasks go with --slurm")
        }
        if let t = tasks, t < 1 { throw ValidationError("--tasks must be at least 1") }
        if let a = slurmArgs {
            do { _ = try Slurm.splitArguments(a) } catch { throw ValidationError("\(error)") }
        }
        _ = try workers()
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be at least 1") }
        _ = try dataOptions.nearDuplicateParameters()
        // The network's shape does not depend on the class count: check it before the data is read.
        _ = try spec(p, classes: 2)
    }

    /// `--devices` as backend selectors with their cell counts (nil without it).
    func workers() throws -> [BackendWorkers]? {
        guard let d = devices else { return nil }
        guard jobs == nil else { throw ValidationError("use either --devices or --jobs") }
        do { return try BackendWorkers.parseList(d) } catch { throw ValidationError("\(error)") }
    }

    /// The protocol with the options given on top.
    func makeProtocol() throws -> SweepProtocol {
        var p = `protocol`.value
        do {
            if let s = sizes { p.sizes = try parseSizes(s) }
            if let f = folds { p.folds = f }
            holdOut.apply(to: &p)
            if let m = metric { p.metric = m.rawValue }
            // The seed is the sweep's (fold assignment, cells' seeds), not the protocol's.
            p.training = try training.config(base: p.training, applyingSeed: false)
            if let r = restarts {
                guard (0...100).contains(r) else { throw ValidationError("--restarts must be between 0 and 100") }
                p.restarts = r > 0 ? r : nil
            }
        } catch let e as CytoError { throw ValidationError("\(e)") }
        return p
    }

    /// The network every cell trains: the paper's at the input size, with --conv and --dense.
    func spec(_ p: SweepProtocol, classes: Int) throws -> ModelSpec { try network.spec(p, classes: classes) }

    func shardValue() throws -> (index: Int, count: Int)? {
        do { return try shard.map(parseShard) } catch { throw ValidationError("\(error)") }
    }

    /// The model input (height, width): --input, or the protocol's.
    func inputSize(_ p: SweepProtocol) throws -> (Int, Int) { try network.inputSize(p) }

    /// The cells of `--cells-file` (nil without it).
    func listedCells() throws -> Set<SweepCell>? {
        guard let f = cellsFile else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: f)) } catch {
            throw RunError("--cells-file: \(describeFileError(error))")
        }
        let text: String
        do { text = try TextFile.decode(data) } catch { throw RunError("--cells-file \(f): \(error)") }
        do { return Set(try CellList.parse(text)) } catch { throw ValidationError("--cells-file \(f): \(error)") }
    }
}
