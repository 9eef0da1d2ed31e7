import CytoCore
import CytoData
import CytoTrain
import CytoSweep
import Foundation

/// The report's fidelity section: for each detail of the protocol, what the paper says,
/// what the authors' published scripts (marrlab/ClassificationALL, Keras 2.0.8) did, what
/// this run did, and why they differ. The paper's and the scripts' facts are fixed text
/// (from docs/protocol.md); "this run" is read from the sweep's manifest and records.
public enum Fidelity {
    public struct Row: Sendable, Equatable {
        public var detail: String
        public var paper: String
        public var scripts: String
        public var thisRun: String
        /// Empty when this run follows the paper.
        public var deviation: String
    }

    /// The paper's protocol this sweep replicates, or nil for `custom`.
    enum Paper { case allBinary, amlBinary, multiclass }

    static func paper(_ name: String) -> Paper? {
        switch name {
        case "all-idb-binary": return .allBinary
        case "aml-binary": return .amlBinary
        case "multiclass": return .multiclass
        default: return nil
        }
    }

    /// How the optimizer's update is computed, in words.
    static func optimizerText(_ o: OptimizerConfig) -> String {
        var s =
            "\(o.kind.rawValue), learning rate \(formatShort(Double(o.learningRate)))"
            + (o.kind == .rmsprop ? ", rho \(formatShort(Double(o.rho)))" : "") + ", epsilon \(formatShort(Double(o.epsilon)))"
        switch (o.kind, o.form) {
        case (.rmsprop, .keras2): s += ", Keras 2.0.8 form: p −= lr·g / (√a + ε)"
        case (.rmsprop, .keras3): s += ", Keras 3 form: p −= lr·g / √(a + ε)"
        case (.adam, .keras2): s += ", Keras 2.0.8 form (ε 1e-8 outside the root)"
        case (.adam, .keras3): s += ", Keras 3 form"
        case (.sgd, _): break
        }
        return s
    }

    /// What the finished cells' records say they used (`SweepRecord.optimizer`), when it
    /// is not simply the manifest's setting.
    static func recordedOptimizers(_ records: [SweepRecord], manifest o: OptimizerConfig) -> String {
        let said = Set(records.map { $0.optimizer ?? "not recorded (written before the form was: Keras 3 form)" })
        if said.isEmpty || said == [o.summary] { return "" }
        return "; the cells' records say: " + said.sorted().joined(separator: " | ")
    }

    static func formatShort(_ v: Double) -> String {
        if v != 0 && (abs(v) < 1e-3 || abs(v) >= 1e5) { return String(format: "%.0e", v) }
        return String(format: "%g", v)
    }

    /// How the run sampled rotated images (`AugmentTransform`, CPU and OpenCL alike).
    static func augmentationSampler(_ sampler: AugmentSampler) -> String {
        switch sampler {
        case .nearest: return "rotation sampled nearest-neighbour about size/2 + 0.5 with edges replicated, as Keras 2.0.8"
        case .bilinear: return "rotation sampled bilinearly about the geometric centre, edges replicated"
        }
    }
    /// The deviation from Keras 2.0.8's sampler, or "" when the run used it.
    static func augmentationSamplerDeviation(_ sampler: AugmentSampler) -> String {
        sampler == .nearest
            ? ""
            : "bilinear sampling about the geometric centre (--augment-sampler bilinear) instead of Keras 2.0.8's "
                + "nearest-neighbour about size/2 + 0.5: smoother rotated images, a sub-pixel offset"
    }

    public static func rows(manifest m: SweepManifest, records: [SweepRecord]) -> [Row] {
        let p = m.protocolSettings
        let t = p.training
        let which = paper(p.name)
        var rows: [Row] = []
        func add(_ detail: String, _ paper: String, _ scripts: String, _ run: String, _ deviation: String) {
            rows.append(Row(detail: detail, paper: paper, scripts: scripts, thisRun: run, deviation: deviation))
        }

        // Data and duplicates.
        let nd = m.nearDuplicates
        var ndRun = "\(m.imageCount) images"
        if let nd {
            let groups = nd.groups.count, dropped = nd.dropped.count
            switch nd.policy {
            case .drop:
                ndRun +=
                    "; \(groups) near-duplicate group(s) found (similarity ≥ \(String(format: "%.2f", nd.parameters.threshold))), \(dropped) image(s) dropped, one of each group kept"
            case .group: ndRun += "; \(groups) near-duplicate group(s) kept whole, each in a single fold"
            case .off: ndRun += "; near-duplicates not looked for"
            }
        } else {
            ndRun += "; near-duplicates not looked for"
        }
        switch which {
        case .allBinary, .multiclass:
            add(
                "Duplicate cells", "10 duplicates removed from ALL-IDB2's 260 images, 250 kept",
                "the 10 removed files are the same cells in overlapping photographs (shifted, slightly different brightness and colour); only one pair of the 260 files is byte-identical",
                ndRun,
                nd?.policy == .drop ? "" : "near-duplicates are not removed: a cell can be in training and test of one fold unless grouped")
        case .amlBinary:
            add("Duplicate cells", "not discussed", "no duplicate removal", ndRun, "")
        case nil:
            add("Duplicate cells", "—", "—", ndRun, "")
        }

        // Folds and test sets.
        let testSizes = m.assignment.test.map(\.count)
        let testText =
            testSizes.isEmpty ? "–" : (testSizes.min() == testSizes.max() ? "\(testSizes[0])" : "\(testSizes.min()!)–\(testSizes.max()!)")
        let foldRun =
            "\(p.folds) fold\(p.folds == 1 ? "" : "s"), \(testText) test images per fold"
            + (p.testPerFold == nil ? ", every image tested exactly once" : ", balanced, no image tested twice")
        switch which {
        case .allBinary:
            add(
                "Folds and test sets", "tenfold; 25 test images per fold (12/13 per class), every image tested once",
                "the published slicing gives folds of 21 to 29 images: ten class-1 images are never tested, ten twice, and a few test images are also validation images",
                foldRun, p.folds == 10 ? "" : "\(p.folds) fold\(p.folds == 1 ? "" : "s") instead of 10 (--folds)")
        case .amlBinary:
            add(
                "Folds and test sets", "tenfold; a balanced test set of 600 images per fold", "as the paper", foldRun,
                p.folds == 10 && p.testPerFold == 600 ? "" : "fold count or test size changed (--folds / --test-per-fold)")
        case .multiclass:
            add(
                "Folds and test sets", "tenfold cross-validation", "folds from an unpublished spreadsheet",
                foldRun, "folds are drawn stratified with the sweep's seed, as the spreadsheet is not available")
        case nil:
            add("Folds and test sets", "—", "—", foldRun, "")
        }

        // Validation.
        let valRun =
            p.valPerFold.map { "\($0) images drawn from the next fold's test block (disjoint from the test set)" }
            ?? "the next fold's test block (disjoint from the test set)"
        switch which {
        case .allBinary:
            add(
                "Validation set", "the next fold's test block (25 images)",
                "the next fold's slice (overlapping the test set in a few folds, see above)", valRun,
                p.valPerFold == nil ? "" : "a subset of the next fold's block (--val-per-fold)")
        case .amlBinary:
            add(
                "Validation set", "not stated", "150 images drawn from the test fold itself", valRun,
                "validation is kept disjoint from test: choosing the checkpoint on test images would bias the test score upwards")
        case .multiclass:
            add("Validation set", "not stated", "from the spreadsheet's folds", valRun, "")
        case nil:
            add("Validation set", "—", "—", valRun, "")
        }

        // Training sizes and class balance.
        let sampled = Set(records.compactMap(\.sampling))
        let unbalanced = SweepReport.balanceNotes(manifest: m, records: records)
        let sizeRun =
            p.sizes.map { p.sizeLabel($0) }.joined(separator: ", ")
            + (p.balancePerClass ? " per class, balanced by repetition" : ", nested, half from each class")
            + (sampled.contains("stratified") ? "; some sizes stratified where a class was too small" : "")
            + (unbalanced.isEmpty
                ? ""
                : "; where a class's pool is short of half a size, it gives all it has and the other class fills the rest, "
                    + "capped at the whole pool: " + unbalanced.joined(separator: "; "))
        switch which {
        case .allBinary:
            add(
                "Training-set sizes", "10, 20, ..., 200, nested, half from each class",
                "the class split sums to 124/126 instead of 125/125",
                sizeRun,
                [
                    p.sizes == Array(stride(from: 10, through: 200, by: 10)) ? "" : "other sizes (--sizes)",
                    unbalancedDeviation(unbalanced),
                ].filter { !$0.isEmpty }.joined(separator: "; "))
        case .amlBinary:
            add(
                "Training-set sizes", "10..100 by 10, then 200; balanced; drawn at random",
                "one fixed random training set for all folds (not redrawn per fold); batches unshuffled (all non-blasts, then all blasts)",
                sizeRun + "; drawn per fold from that fold's pool, batches shuffled every epoch",
                "a training set per fold keeps training and test disjoint in every fold; shuffled batches as Keras' fit does by default"
                    + (unbalanced.isEmpty ? "" : "; " + unbalancedDeviation(unbalanced)))
        case .multiclass:
            add(
                "Training-set size", "each class augmented to 150 images",
                "keeps all originals and adds 150 − n augmented copies per class, then re-augments all 900 every epoch",
                sizeRun, "classes with more than 150 training images are subsampled to 150; repeats are augmented afresh every epoch")
        case nil:
            add("Training-set sizes", "—", "—", sizeRun, unbalancedDeviation(unbalanced))
        }

        // Optimizer.
        let optRun = optimizerText(t.optimizer) + ", batch \(t.batchSize)" + recordedOptimizers(records, manifest: t.optimizer)
        let keras3 =
            t.optimizer.form == .keras3
            ? "the Keras 3 form (--optimizer-form keras3) takes steps several times smaller for gradients below ~3e-4, so it trains differently"
            : ""
        func joined(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: "; ") }
        switch which {
        case .allBinary, .amlBinary:
            add(
                "Optimizer", "RMSprop, learning rate 0.001, rho 0.9, batch 5 (Keras 2.0.8)",
                "Keras 2.0.8 RMSprop: a = rho·a + (1 − rho)·g², p −= lr·g / (√a + 1e-8)", optRun,
                joined([
                    t.optimizer.kind == .rmsprop && t.optimizer.learningRate == 0.001 && t.batchSize == 5
                        ? "" : "optimizer, learning rate or batch changed",
                    keras3,
                ]))
        case .multiclass:
            add(
                "Optimizer", "Adam, learning rate 0.0001, batch 5 (Keras 2.0.8)", "Keras 2.0.8 Adam (epsilon 1e-8 outside the root)",
                optRun,
                joined([
                    t.optimizer.kind == .adam && t.optimizer.learningRate == 0.0001 && t.batchSize == 5
                        ? "" : "optimizer, learning rate or batch changed",
                    keras3,
                ]))
        case nil:
            add("Optimizer", "—", "—", optRun, "")
        }

        // Augmentation.
        let sampler = t.resolvedAugmentSampler
        let augRun =
            t.augment
            ? "random rotation 0..359° and horizontal/vertical flips on every training image, every epoch; " + augmentationSampler(sampler)
            : "off"
        switch which {
        case .allBinary:
            add(
                "Augmentation", "random rotation and flips",
                "the augmentation flag is 0 (off) in every published version; Keras samples nearest-neighbour (scipy order 0) about the centre size/2 + 0.5",
                augRun,
                t.augment
                    ? "follows the paper's text, not the published flag"
                        + (sampler == .nearest ? "" : "; " + augmentationSamplerDeviation(sampler))
                    : "augmentation off (--no-augment), as the published script")
        case .amlBinary:
            add("Augmentation", "none", "none", augRun, t.augment ? "augmentation on (--augment)" : "")
        case .multiclass:
            add(
                "Augmentation", "rotation and flips; training set balanced to 150 per class",
                "Keras 2.0.8 samples nearest-neighbour (scipy order 0) about the centre size/2 + 0.5", augRun,
                t.augment ? augmentationSamplerDeviation(sampler) : "augmentation off (--no-augment)")
        case nil:
            add("Augmentation", "—", "—", augRun, "")
        }

        // Stopping and tested weights.
        let stopRun =
            "at most \(t.maxEpochs) epochs, patience \(t.patience); the weights of the epoch with the lowest validation loss are tested"
        switch which {
        case .allBinary, .multiclass:
            add(
                "Early stopping, tested weights", "up to 500 epochs, patience 50; the checkpoint with the lowest validation loss is tested",
                "Keras EarlyStopping stops after 51 epochs without improvement; best checkpoint tested", stopRun,
                t.maxEpochs == 500 && t.patience == 50 ? "" : "epochs or patience changed (--epochs / --patience)")
        case .amlBinary:
            add(
                "Early stopping, tested weights", "up to 500 epochs, patience 50; the best checkpoint is tested",
                "the final (not the best) weights are tested", stopRun,
                "the best checkpoint is tested, as the paper says"
                    + (t.maxEpochs == 500 && t.patience == 50 ? "" : "; epochs or patience changed"))
        case nil:
            add("Early stopping, tested weights", "—", "—", stopRun, "")
        }

        // Restarts of networks dead from their initialisation.
        let restarted = records.filter { ($0.restarts ?? 0) > 0 }
        let collapsed = records.filter { $0.collapseReason != nil }.count
        let restartRun =
            ((p.restarts ?? 0) > 0
                ? "--restarts \(p.restarts!): a cell whose training loss is still within ±\(Collapse.lossTolerance) of ln \(m.classNames.count) "
                    + "after \(Collapse.restartCheckEpochs) epochs is re-initialised with the next seed; \(restarted.count) cell\(restarted.count == 1 ? "" : "s") restarted"
                : "none (every cell trains from its first initialisation)")
            + "; \(collapsed) cell\(collapsed == 1 ? "" : "s") never learned (the same output for every test image, or the loss at chance)"
        add(
            "Restarts of dead networks", which == nil ? "—" : "none: one initialisation per run",
            which == nil ? "—" : "none", restartRun,
            (p.restarts ?? 0) > 0
                ? "a network dead from its initialisation is begun again from the next seed (the paper keeps it)" : "")

        // Output and metric.
        let outRun = "\(m.spec.classes)-way softmax; metric \(p.metric == "roc_auc" ? "ROC-AUC" : "F1 weighted by class support")"
        switch which {
        case .amlBinary:
            add(
                "Output and metric", "softmax; ROC-AUC", "one sigmoid unit; ROC-AUC", outRun,
                "a 2-way softmax is equivalent to one sigmoid unit for ranking (ROC-AUC)")
        case .allBinary:
            add("Output and metric", "2-way softmax; ROC-AUC", "as the paper", outRun, "")
        case .multiclass:
            add("Output and metric", "softmax over the classes with at least 5 images; F1 weighted by support", "as the paper", outRun, "")
        case nil:
            add("Output and metric", "—", "—", outRun, "")
        }

        // Explanations.
        add(
            "Saliency and LRP (Fig. 4b)", "saliency maps and LRP-epsilon (epsilon 1) on the network without softmax",
            "computed for the non-blast output (index 0) for every image (iNNvestigate)",
            "the class explained is stated under each panel (default: the image's true class; `report --explain-class 0` as the scripts)",
            "")
        return rows
    }

    /// The deviation of sizes whose training sets could not be balanced (empty when all were).
    static func unbalancedDeviation(_ notes: [String]) -> String {
        notes.isEmpty
            ? ""
            : "\(notes.count) size\(notes.count == 1 ? " is" : "s are") not balanced in some folds: the data's classes are smaller "
                + "than the protocol assumes, and a size is never refused for it (the authors' own ALL-IDB2 split was 124/126)"
    }

    /// Adds the section to `page`.
    public static func add(to page: inout HTMLPage, manifest: SweepManifest, records: [SweepRecord]) {
        page.section("Fidelity to the paper")
        page.paragraph(
            "For each protocol detail: what the paper says, what the authors' published scripts (marrlab/ClassificationALL, "
                + "Keras 2.0.8) did, what this run did, and why it departs where it does.")
        let r = rows(manifest: manifest, records: records)
        page.table(
            header: ["detail", "paper", "authors' scripts", "this run", "deviation and reason"],
            rows: r.map { [$0.detail, $0.paper, $0.scripts, $0.thisRun, $0.deviation.isEmpty ? "none" : $0.deviation] })
        if let nd = manifest.nearDuplicates, !nd.groups.isEmpty {
            page.heading("Near-duplicate groups")
            page.preformatted(nd.listing)
        }
    }
}
