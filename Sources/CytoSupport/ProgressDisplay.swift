import Foundation
import Synchronization

/// Progress on stderr, the one display every long step uses (decoding, caching,
/// training, t-SNE, synthetic data, a sweep's devices): a block of lines redrawn in
/// place on a terminal, and plain lines now and then otherwise (a log file, a Slurm
/// job), so a log neither fills with redraws nor stays silent for an hour.
/// Workers report from their own threads: the drawing state is behind a `Mutex`.
public final class ProgressDisplay: Sendable {
    /// Whether stderr is a terminal (then the block is redrawn in place).
    public static let stderrIsTerminal = isatty(2) != 0

    public let isTerminal: Bool
    private let redrawInterval: TimeInterval
    private let plainInterval: TimeInterval
    private struct Marks {
        var lastDraw = Date.distantPast
        var lastPlain = Date.distantPast
        var drawnLines = 0
    }
    private let marks = Mutex(Marks())
    private let sink: @Sendable (String) -> Void

    /// - Parameters:
    ///   - redrawInterval: at most one redraw per this many seconds on a terminal.
    ///   - plainInterval: at most one plain print per this many seconds otherwise.
    ///   - sink: where the text goes (stderr; a test collects it).
    public init(
        redrawInterval: TimeInterval = 0.1, plainInterval: TimeInterval = 10, isTerminal: Bool = stderrIsTerminal,
        sink: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.redrawInterval = redrawInterval; self.plainInterval = plainInterval; self.isTerminal = isTerminal
        self.sink = sink
    }

    /// Shows `lines` (on a terminal) or `plain` (otherwise, default `lines`), unless the
    /// last showing was too recent; `force` shows them anyway (a step finished).
    public func show(_ lines: [String], plain: [String]? = nil, force: Bool = false) {
        marks.withLock { m in
            let now = Date()
            if isTerminal {
                guard force || now.timeIntervalSince(m.lastDraw) > redrawInterval else { return }
                m.lastDraw = now
                // Back to the first line of the block, then each line over its old text.
                var text = m.drawnLines > 0 ? "\u{1B}[\(m.drawnLines)A" : ""
                for l in lines { text += "\r" + l + "\u{1B}[K\n" }
                m.drawnLines = lines.count
                sink(text)
            } else if force || now.timeIntervalSince(m.lastPlain) > plainInterval {
                m.lastPlain = now
                sink((plain ?? lines).joined(separator: "\n") + "\n")
            }
        }
    }

    /// Writes one line to stderr, below the block.
    public static func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// `███···` for `fraction` (0...1) of `width` cells.
    public static func bar(_ fraction: Double, width: Int = 24) -> String {
        let filled = max(0, min(width, Int(fraction * Double(width))))
        return String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    }
}

/// A progress bar for one count (`done` of `total` images, epochs, iterations), with
/// the elapsed time and an estimate of the time left.
public final class ProgressBar: Sendable {
    public let total: Int
    public let title: String
    public let start = Date()
    private let display: ProgressDisplay

    public init(title: String, total: Int, plainInterval: TimeInterval = 10) {
        self.title = title; self.total = max(1, total)
        display = ProgressDisplay(redrawInterval: 0.1, plainInterval: plainInterval)
    }

    /// Shows `done` of `total`, with `detail` (e.g. the epoch's loss). The first and the
    /// last update are always shown.
    public func update(_ done: Int, _ detail: String = "") { update(done, of: total, detail) }

    /// `update` where the total is only known to the worker (a `ProgressHandler`'s).
    public func update(_ done: Int, of total: Int, _ detail: String = "") {
        let total = max(1, total)
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let fraction = min(1, Double(done) / Double(total))
        let detailText = detail.isEmpty ? "" : " \(detail)"
        display.show(
            ["\(title) \(ProgressDisplay.bar(fraction)) \(done)/\(total)\(detailText) ETA \(formatDuration(eta))"],
            plain: ["\(title) \(done)/\(total)\(detailText) elapsed \(formatDuration(elapsed)) ETA \(formatDuration(eta))"],
            force: done >= total || done == 1)
    }
}

/// `42s`, `3m05s`, `2h10m`; `?` for an unknown (infinite or NaN) duration.
public func formatDuration(_ s: Double) -> String {
    guard s.isFinite else { return "?" }
    if s < 60 { return String(format: "%.0fs", s) }
    if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
    return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
}
