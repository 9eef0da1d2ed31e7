import CytoCore
import CytoData
import CytoTrain
import Foundation

/// One image the page should show next.
public struct LabelSuggestion: Sendable, Equatable, Codable {
    /// Path relative to the pool folder.
    public var path: String
    public var score: Double
    /// Why it was picked, in words (shown under the image).
    public var reason: String
    public init(path: String, score: Double, reason: String) { self.path = path; self.score = score; self.reason = reason }
}

/// Where the suggestions come from (in `cytocl label`: CytoSelect's pool). Called on the
/// session's worker thread, with the backend that thread owns.
public protocol SuggestionSource: Sendable {
    /// Up to `count` unlabelled images, most useful first. `labelled`: id → class name;
    /// `model`: the newest retrained model (nil before the first).
    func suggest(labelled: [String: String], model: ModelFile?, count: Int, backend: any Backend) throws -> [LabelSuggestion]
}

/// The forecast of how many more labels a target needs (in `cytocl label`: the planner
/// over the labels so far). Called on the worker thread after every retraining.
public protocol LabelForecaster: Sendable {
    /// One line for the page: "about N more labels to reach ROC-AUC 0.95 (90%: a-b)", or
    /// why there is no forecast yet.
    func forecast(images: LabeledImages, classNames: [String], backend: any Backend) throws -> String
}

/// What a labelling session does besides storing labels.
public struct LabelSettings: Sendable {
    /// The classes, in key order: key 1 is `classes[0]`.
    public var classes: [String]
    /// Retrain after this many new labels.
    public var batch = 10
    /// How many suggestions are fetched at a time.
    public var suggestionCount = 20
    /// Model input (the pool is decoded at this size too): the paper network's smallest.
    public var height = 190
    public var width = 190
    public var fit: FitPolicy = .pad
    /// The network: the paper's (tests use a smaller one).
    public var convFilters = ModelSpec.paper().convFilters
    public var denseUnits = ModelSpec.paper().denseUnits
    /// Training of every retrain (the paper network, the paper's optimizer).
    public var training: TrainingConfig = {
        var c = TrainingConfig()
        c.maxEpochs = 30; c.patience = 8
        return c
    }()

    public init(classes: [String]) { self.classes = classes }
}

/// The state of one labelling page: the labels file (`LabelStore`), the suggestions and
/// the model behind them, retrained in the background after every `batch` labels.
///
/// Retraining, forecasting and suggesting run on one worker thread at a time with a
/// backend made for that job (`makeBackend`), never on the server's threads: the page
/// keeps answering (and saving labels) while a model trains. Labels that arrive
/// meanwhile count towards the next retraining, which starts when this one ends.
public actor LabelSession {
    public let store: LabelStore
    public let settings: LabelSettings
    let source: any SuggestionSource
    let forecaster: (any LabelForecaster)?
    let makeBackend: @Sendable () throws -> any Backend
    private var suggestions: [LabelSuggestion] = []
    private var status = "finding the first suggestions…"
    private var forecastLine = "not enough labels yet to forecast"
    private var model: TrainedModel?
    private var newLabels = 0
    /// Per image, the labels the page's changes replaced: what an undo may restore.
    private var replaced: [String: Set<String>] = [:]
    private var working = false
    private var again = false
    /// Decoded labelled images at the model input, by id (decoded once).
    private var pixels: [String: [UInt8]] = [:]

    /// A retrained model, in pieces that may cross threads.
    struct TrainedModel: Sendable {
        var spec: ModelSpec
        var classNames: [String]
        var weights: [String: [Float]]
        var labels: Int
        var file: ModelFile { ModelFile(spec: spec, classNames: classNames, weights: weights) }
    }

    public init(
        store: LabelStore, settings: LabelSettings, source: any SuggestionSource, forecaster: (any LabelForecaster)?,
        makeBackend: @escaping @Sendable () throws -> any Backend
    ) {
        self.store = store; self.settings = settings; self.source = source; self.forecaster = forecaster
        self.makeBackend = makeBackend
    }

    /// Fetches the first suggestions (and trains a first model when the file already
    /// holds enough labels).
    public func start() { schedule() }

    /// The class a key names (`"1"` … `"9"`), or a message for the page.
    public func className(forKey key: String) throws -> String {
        let keys = settings.classes.enumerated().map { "\($0.offset + 1) \($0.element)" }.joined(separator: ", ")
        guard let k = Int(key), key.count == 1, (1...settings.classes.count).contains(k) else {
            throw LabelRequestError("no class on key '\(key)' (keys: \(keys); u undo, s skip)")
        }
        return settings.classes[k - 1]
    }

    /// Saves `label` for image `id`; returns its previous label (for undo).
    public func label(_ id: String, as label: String) throws -> LabelStore.Change {
        let change = try store.set(id, to: label)
        if let previous = change.previous { replaced[id, default: []].insert(previous) }
        newLabels += 1
        if newLabels >= settings.batch { schedule() }
        return change
    }

    /// Takes back a label this page set: `id` gets `previous` again if it is still `label`.
    public func undo(_ id: String, label: String, previous: String?) throws -> LabelStore.Change {
        // An undo restores no label or one the page replaced: `{"previous": "zzz"}` wrote
        // any text into the labels file as a class.
        if let previous, !settings.classes.contains(previous), !(replaced[id]?.contains(previous) ?? false) {
            throw LabelRequestError("cannot undo to '\(previous)': '\(id)' never had that label on this page")
        }
        let change = try store.set(id, to: previous, expecting: label)
        newLabels = max(0, newLabels - 1)
        return change
    }

    /// What the page shows: the next suggestions (labelled ones left out), the model's
    /// status, the forecast and the labels file's state.
    public func state() -> PageState {
        var notice: String?, problem: String?
        var labels: [String: String] = [:]
        do {
            let snapshot = try store.read()
            labels = snapshot.labels
            notice = snapshot.outsideEdit
            if !snapshot.outsidePool.isEmpty {
                problem =
                    "\(snapshot.outsidePool.count) row(s) of \(store.file.lastPathComponent) name files that are not images of the pool (kept; `cytocl train --labels` refuses them)"
            }
        } catch { problem = "\(error)" }
        // Labels of a class the page was not started with (a file begun with other
        // --classes) count in "labelled" but nowhere else, and no retraining uses them:
        // the page says so instead of showing counts that do not add up.
        let others = labels.values.filter { !settings.classes.contains($0) }
        if !others.isEmpty {
            let line =
                "\(others.count) label(s) of \(store.file.lastPathComponent) are of classes not in --classes (\(Set(others).sorted().joined(separator: ", "))): kept in the file, not trained on"
            problem = problem.map { $0 + "; " + line } ?? line
        }
        let open = suggestions.filter { labels[$0.path] == nil }
        // Running short (labels used up the list since the last round): fetch more. A list
        // that came back short (a nearly labelled pool) is not asked for again and again.
        if open.count < max(1, settings.suggestionCount / 2) && open.count < suggestions.count && !working { schedule() }
        var counts = [Int](repeating: 0, count: settings.classes.count)
        for l in labels.values { if let k = settings.classes.firstIndex(of: l) { counts[k] += 1 } }
        return PageState(
            classes: settings.classes, counts: counts, labelled: labels.count, suggestions: open, status: status,
            forecast: forecastLine, working: working, notice: notice, problem: problem)
    }

    /// Starts a job on the worker thread, or marks one to follow the running one.
    private func schedule() {
        if working { again = true; return }
        working = true
        Task { await self.runJobs() }
    }

    private func runJobs() async {
        repeat {
            again = false
            await runJob()
        } while again
        working = false
    }

    /// One round: retrain when `batch` new labels arrived (or none exists and enough
    /// labels do), refresh the suggestions with the newest model, then forecast.
    private func runJob() async {
        let labels: [String: String]
        do { labels = try store.read().labels } catch {
            status = "\(error)"
            return
        }
        let usable = labels.filter { settings.classes.contains($0.value) }
        let perClass = settings.classes.map { c in usable.values.filter { $0 == c }.count }
        let retrain = perClass.allSatisfy { $0 >= 2 } && (model == nil || newLabels >= settings.batch)
        if retrain {
            newLabels = 0
            status = "retraining on \(usable.count) labels…"
        } else if model == nil {
            let missing = zip(settings.classes, perClass).filter { $0.1 < 2 }.map(\.0)
            status = "no model yet: every class needs 2 labels (\(missing.joined(separator: ", ")) still short)"
        }
        // Decode the newly labelled images here (the decoder uses every core).
        let ids = usable.keys.sorted()
        if retrain {
            let fresh = ids.filter { pixels[$0] == nil }
            do {
                let paths = try fresh.map { try store.pool.resolve($0) }
                let items = paths.map { DatasetItem(path: $0, label: 0, className: "") }
                let decoded = try await onWorkerThread { [settings] in
                    try ImageLoader.load(items, height: settings.height, width: settings.width, fit: settings.fit, skipBad: true)
                }
                let stride = settings.height * settings.width * 3
                for (k, item) in decoded.items.enumerated() {
                    let id = fresh[paths.firstIndex(of: item.path)!]
                    pixels[id] = Array(decoded.pixels[(k * stride)..<((k + 1) * stride)])
                }
            } catch { status = "cannot decode the labelled images: \(error)" }
        }
        let trainIDs = ids.filter { pixels[$0] != nil }
        let images = LabeledImages(
            geometry: ImageGeometry(height: settings.height, width: settings.width),
            pixels: trainIDs.flatMap { pixels[$0]! },
            labels: trainIDs.map { settings.classes.firstIndex(of: usable[$0]!)! }, paths: trainIDs)
        let job = Job(
            retrain: retrain, images: images, labelled: labels, previous: model, settings: settings, source: source,
            makeBackend: makeBackend)
        let outcome = await onWorkerThreadCatching { try job.run() }
        switch outcome {
        case .success(let r):
            if let m = r.model { model = m; status = r.summary }
            suggestions = r.suggestions
            if r.suggestions.isEmpty { status = "no image left to suggest: every image of the pool is labelled" }
        case .failure(let e):
            status = (retrain ? "retraining failed: " : "cannot suggest: ") + "\(e)"
        }
        // The forecast comes after the new suggestions are shown: it trains a small sweep.
        guard retrain, case .success = outcome, let forecaster else { return }
        forecastLine = "forecasting from \(images.count) labels…"
        let (classNames, makeBackend) = (settings.classes, self.makeBackend)
        switch await onWorkerThreadCatching({ try forecaster.forecast(images: images, classNames: classNames, backend: makeBackend()) }) {
        case .success(let line): forecastLine = line
        case .failure(let e): forecastLine = "no forecast: \(e)"
        }
    }
}

/// What `/api/state` answers.
public struct PageState: Sendable, Codable, Equatable {
    public var classes: [String]
    /// Labels per class (in `classes` order).
    public var counts: [Int]
    public var labelled: Int
    public var suggestions: [LabelSuggestion]
    public var status: String
    public var forecast: String
    public var working: Bool
    /// Said once: the labels file changed outside the page (its rows are kept).
    public var notice: String?
    /// Shown while it lasts: the labels file cannot be read, or lists files outside the pool.
    public var problem: String?
}

/// One round of the worker: all of it runs on one thread with one backend.
struct Job: Sendable {
    var retrain: Bool
    var images: LabeledImages
    var labelled: [String: String]
    var previous: LabelSession.TrainedModel?
    var settings: LabelSettings
    var source: any SuggestionSource
    var makeBackend: @Sendable () throws -> any Backend

    struct Result: Sendable {
        var model: LabelSession.TrainedModel?
        var summary: String
        var suggestions: [LabelSuggestion]
    }

    func run() throws -> Result {
        let backend = try makeBackend()
        var model = previous
        var summary = ""
        if retrain {
            let spec = ModelSpec(
                inputHeight: settings.height, inputWidth: settings.width, convFilters: settings.convFilters,
                denseUnits: settings.denseUnits, classes: settings.classes.count)
            try spec.validate()
            let net = try Network(spec: spec, backend: backend, maxBatch: max(settings.training.batchSize, 32))
            net.initialize(seed: settings.training.seed)
            let result = try Trainer(network: net, config: settings.training).fit(train: images, validation: nil)
            if result.divergedWithoutModel { throw CytoError.invalidArgument(result.divergenceSummary!) }
            model = LabelSession.TrainedModel(
                spec: spec, classNames: settings.classes, weights: try net.weights(), labels: images.count)
            let best = result.history[max(0, result.bestEpoch - 1)]
            summary = String(
                format: "model trained on %d labels (%d epochs, training loss %.3f, accuracy %.2f)", images.count,
                result.history.count, best.loss, best.accuracy)
        }
        let picks = try source.suggest(
            labelled: labelled, model: model?.file, count: settings.suggestionCount, backend: backend)
        return Result(model: retrain ? model : nil, summary: summary, suggestions: picks)
    }
}

/// Runs `work` on a thread of its own (training and decoding block for seconds; the
/// server's threads must not), with a stack large enough for the decoders.
func onWorkerThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await onWorkerThreadCatching(work).get()
}

func onWorkerThreadCatching<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: Result { try work() }) }
        thread.stackSize = 16 << 20
        thread.start()
    }
}
