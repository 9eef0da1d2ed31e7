import CytoCore
import CytoTrain
import Foundation
import Synchronization

/// The progress of a running sweep: a total line (cells done, elapsed, ETA) and one
/// line per device with its current cell and epoch. Workers report from their own
/// threads, so the state lives behind a `Mutex`.
public final class SweepProgress: Sendable {
    private let state: Mutex<State>
    private let display: ProgressDisplay

    /// - Parameters: `devices`: one name per worker; `total`: cells this run handles;
    ///   `done`: how many of them were finished already; `display`: stderr's by default.
    public init(devices: [String], total: Int, done: Int, display: ProgressDisplay = ProgressDisplay(redrawInterval: 0.2, plainInterval: 10)) {
        state = Mutex(State(devices: devices, total: total, done: done))
        self.display = display
    }

    public func handle(worker w: Int, event: SweepEvent) {
        if case .cellSkipped = event { return }
        let finished: Bool = {
            if case .cellFinished = event { return true }
            return false
        }()
        let lines = state.withLock { s -> [String] in
            s.handle(worker: w, event: event)
            s.shownAsIs = finished
            return s.lines
        }
        // Off a terminal the block is printed only every 10 s: a failure gets its own line.
        if case .cellFailed(let c, let m) = event, !display.isTerminal {
            let device = state.withLock { $0.devices[w] }
            ProgressDisplay.write("\(device): \(c) failed: \(m)")
        }
        display.show(lines, force: finished)
    }

    /// Shows the final state, unless the last event (a finished cell) showed it already:
    /// off a terminal the last block was printed twice, a duplicate in every log.
    public func finish() {
        guard let lines = state.withLock({ $0.shownAsIs ? nil : $0.lines }) else { return }
        display.show(lines, force: true)
    }

    private struct State {
        let devices: [String]
        let total: Int
        var done: Int
        let startDone: Int
        var current: [String]
        let start = Date()
        /// Whether the lines were last shown (forced) as they are now.
        var shownAsIs = false

        init(devices: [String], total: Int, done: Int) {
            self.devices = devices; self.total = max(1, total); self.done = done; startDone = done
            current = devices.map { _ in "idle" }
        }

        mutating func handle(worker w: Int, event: SweepEvent) {
            switch event {
            case .cellStarted(let c, _, _): current[w] = "\(c): starting"
            case .epoch(let c, let r, let maxEpochs):
                var d = "\(c): epoch \(r.epoch)/\(maxEpochs) loss \(String(format: "%.3f", r.loss))"
                if let v = r.validationLoss { d += String(format: " val %.3f", v) }
                current[w] = d
            case .cellFinished(let rec):
                done += 1
                current[w] = "\(SweepCell(fold: rec.fold, size: rec.size)) done: \(rec.metric) \(String(format: "%.3f", rec.value))"
            case .cellFailed(let c, let m):
                current[w] = "\(c) FAILED: \(m.prefix(60))"
            case .cellSkipped: return
            }
        }

        var summary: String {
            let elapsed = Date().timeIntervalSince(start)
            let ran = done - startDone
            let eta = ran > 0 ? elapsed / Double(ran) * Double(total - done) : .nan
            return "sweep \(done)/\(total) cells, elapsed \(formatDuration(elapsed)), ETA \(ran > 0 ? formatDuration(eta) : "?")"
        }

        var lines: [String] { [summary] + zip(devices, current).map { "  [\($0.0)] \($0.1)" } }
    }
}
