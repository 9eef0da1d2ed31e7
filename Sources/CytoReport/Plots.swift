import CytoTrain
import Foundation

/// Where a plot's legend goes.
public enum LegendPosition: Sendable { case topRight, topLeft, bottomRight, bottomLeft, outsideRight, none }

/// Size, labels and axis settings shared by all plots.
public struct PlotOptions: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var width: Double
    public var height: Double
    public var xScale: AxisScale
    /// Fixed x range; nil = from the data, widened to nice ticks.
    public var xRange: ClosedRange<Double>?
    /// Fixed y range; nil = from the data, widened to nice ticks.
    public var yRange: ClosedRange<Double>?
    public var legend: LegendPosition
    /// Tick-label size; axis labels are 1 px larger, the title 3 px larger.
    public var fontSize: Double

    public init(
        title: String = "", xLabel: String = "", yLabel: String = "", width: Double = 640, height: Double = 420,
        xScale: AxisScale = .linear, xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil,
        legend: LegendPosition = .topRight, fontSize: Double = 13
    ) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
        self.width = width; self.height = height
        self.xScale = xScale; self.xRange = xRange; self.yRange = yRange
        self.legend = legend; self.fontSize = fontSize
    }
}

/// One line of a line plot.
public struct LineSeries: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    /// nil = the palette colour of the series' index.
    public var color: String?
    public var dashed: Bool
    public var lineWidth: Double
    public init(name: String, x: [Double], y: [Double], color: String? = nil, dashed: Bool = false, lineWidth: Double = 2) {
        self.name = name; self.x = x; self.y = y; self.color = color; self.dashed = dashed; self.lineWidth = lineWidth
    }
    /// A series over 1, 2, 3, ... (e.g. per-epoch losses).
    public init(name: String, values: [Double], color: String? = nil, dashed: Bool = false) {
        self.init(name: name, x: values.indices.map { Double($0 + 1) }, y: values, color: color, dashed: dashed)
    }
}

/// Tukey box-plot statistics: quartiles by linear interpolation between order statistics
/// (NumPy's default, type 7), whiskers at the most extreme data within 1.5 IQR of the
/// box, everything beyond them an outlier (matplotlib's convention).
public struct BoxStats: Sendable, Equatable {
    public var count: Int
    public var min: Double, q1: Double, median: Double, q3: Double, max: Double
    public var mean: Double
    public var whiskerLow: Double, whiskerHigh: Double
    /// Values outside the whiskers, ascending.
    public var outliers: [Double]
    public var iqr: Double { q3 - q1 }

    /// nil when there are no finite values (NaNs are ignored).
    public init?(_ values: [Double], whiskerIQR: Double = 1.5) {
        let v = values.filter { $0.isFinite }.sorted()
        guard !v.isEmpty else { return nil }
        count = v.count
        min = v[0]; max = v[v.count - 1]
        mean = v.reduce(0, +) / Double(v.count)
        q1 = BoxStats.quantile(v, 0.25); median = BoxStats.quantile(v, 0.5); q3 = BoxStats.quantile(v, 0.75)
        let lo = q1 - whiskerIQR * (q3 - q1), hi = q3 + whiskerIQR * (q3 - q1)
        whiskerLow = v.first { $0 >= lo } ?? q1
        whiskerHigh = v.last { $0 <= hi } ?? q3
        outliers = v.filter { $0 < lo || $0 > hi }
    }

    /// Quantile `p` of ascending `sorted` values, linear interpolation (type 7).
    public static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let h = Double(sorted.count - 1) * p
        let lo = Int(h.rounded(.down)), hi = Swift.min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }
}

/// The values of one box, drawn at x = `position` (e.g. a training-set size).
public struct BoxGroup: Sendable {
    public var position: Double
    public var values: [Double]
    public init(position: Double, values: [Double]) { self.position = position; self.values = values }
}

/// A published value drawn beside the boxes (a diamond with optional ±s.d. bar).
public struct ReferencePoint: Sendable {
    public var x: Double, y: Double, sd: Double?
    public init(x: Double, y: Double, sd: Double? = nil) { self.x = x; self.y = y; self.sd = sd }
}

// MARK: - Axes

struct Axis {
    var lo: Double, hi: Double
    var scale: AxisScale
    var ticks: [Double]
    var labels: [String]

    /// Position of v in [0, 1] along the axis.
    func unit(_ v: Double) -> Double {
        switch scale {
        case .linear: return (v - lo) / (hi - lo)
        case .log10: return (log10(Swift.max(v, 1e-300)) - log10(lo)) / (log10(hi) - log10(lo))
        }
    }

    /// An axis over the data `values`, or over `fixed`; `pad` widens a log axis by that factor.
    static func make(
        _ values: [Double], scale: AxisScale, fixed: ClosedRange<Double>?, ticks explicit: [Double]? = nil,
        target: Int = 6, logPad: Double = 1, linearPad: Double = 0, margin: Double = 0
    ) -> Axis {
        let finite = values.filter { $0.isFinite && (scale == .linear || $0 > 0) }
        var lo = finite.min() ?? (scale == .log10 ? 1 : 0), hi = finite.max() ?? (scale == .log10 ? 10 : 1)
        switch scale {
        case .linear:
            lo -= linearPad; hi += linearPad
            if let f = fixed {
                let t = (explicit ?? Ticks.linear(f.lowerBound, f.upperBound, target: target))
                    .filter { $0 >= f.lowerBound - 1e-9 && $0 <= f.upperBound + 1e-9 }
                return Axis(lo: f.lowerBound, hi: f.upperBound, scale: .linear, ticks: t, labels: Ticks.labels(t))
            }
            if let e = explicit {
                let l = Swift.min(lo, e.min() ?? lo), h = Swift.max(hi, e.max() ?? hi)
                return Axis(lo: l, hi: h == l ? l + 1 : h, scale: .linear, ticks: e, labels: Ticks.labels(e))
            }
            let t = Ticks.linear(lo, hi, target: target)
            // `margin` keeps marks off the frame: the range grows by that fraction on both sides.
            let m = (t.last! - t.first!) * margin
            return Axis(lo: t.first! - m, hi: t.last! + m, scale: .linear, ticks: t, labels: Ticks.labels(t))
        case .log10:
            if let f = fixed, f.lowerBound > 0 { lo = f.lowerBound; hi = f.upperBound } else { lo /= logPad; hi *= logPad }
            if hi <= lo { hi = lo * 10 }
            let t = (explicit ?? Ticks.log10(lo, hi)).filter { $0 >= lo * (1 - 1e-9) && $0 <= hi * (1 + 1e-9) }
            return Axis(lo: lo, hi: hi, scale: .log10, ticks: t, labels: Ticks.labels(t))
        }
    }
}

/// The plot area and its two axes.
struct Frame {
    var left: Double, top: Double, right: Double, bottom: Double
    var x: Axis, y: Axis
    func px(_ v: Double) -> Double { left + x.unit(v) * (right - left) }
    func py(_ v: Double) -> Double { bottom - y.unit(v) * (bottom - top) }
    var plotWidth: Double { right - left }
    var plotHeight: Double { bottom - top }

    /// Margins that fit the tick labels, axis labels, title and an outside legend.
    static func layout(options o: PlotOptions, x: Axis, y: Axis, legendWidth: Double = 0) -> Frame {
        let yTickW = y.labels.map { textWidth($0, size: o.fontSize) }.max() ?? 20
        let left = 14 + (o.yLabel.isEmpty ? 0 : o.fontSize + 12) + yTickW + 8
        let top = o.title.isEmpty ? 16 : 16 + o.fontSize + 3 + 14
        let bottom = o.height - (o.fontSize + 14 + (o.xLabel.isEmpty ? 0 : o.fontSize + 12))
        let lastTickHalf = (x.labels.last.map { textWidth($0, size: o.fontSize) } ?? 0) / 2
        let right = o.width - Swift.max(18, lastTickHalf + 6) - (o.legend == .outsideRight ? legendWidth + 16 : 0)
        return Frame(left: left, top: top, right: right, bottom: bottom, x: x, y: y)
    }

    /// Grid, axes, tick labels, axis labels and the title.
    func draw(on c: inout SVGCanvas, options o: PlotOptions, xGrid: Bool = true, yGrid: Bool = true) {
        let fs = o.fontSize
        var lastRight = -Double.infinity
        for (t, l) in zip(x.ticks, x.labels) {
            let X = px(t)
            if xGrid { c.line(X, top, X, bottom, stroke: "#e3e3e3") }
            c.line(X, bottom, X, bottom + 5, stroke: "#444")
            // Skip a label that would overlap the previous one (the tick mark stays).
            let half = textWidth(l, size: fs) / 2
            if X - half < lastRight + 4 { continue }
            c.text(X, bottom + 7 + fs, l, size: fs, anchor: .middle)
            lastRight = X + half
        }
        for (t, l) in zip(y.ticks, y.labels) {
            let Y = py(t)
            if yGrid { c.line(left, Y, right, Y, stroke: "#e3e3e3") }
            c.line(left - 5, Y, left, Y, stroke: "#444")
            c.text(left - 8, Y, l, size: fs, anchor: .end, middle: true)
        }
        c.rect(left, top, right - left, bottom - top, stroke: "#444")
        if !o.xLabel.isEmpty {
            c.text((left + right) / 2, o.height - 10, o.xLabel, size: fs + 1, anchor: .middle)
        }
        if !o.yLabel.isEmpty {
            let x0 = 14 + fs / 2 + 4, y0 = (top + bottom) / 2
            c.text(x0, y0, o.yLabel, size: fs + 1, anchor: .middle, rotate: -90, middle: true)
        }
        if !o.title.isEmpty {
            c.text(o.width / 2, 16 + fs + 3, o.title, size: fs + 3, anchor: .middle, weight: "bold")
        }
    }
}

// MARK: - Legend

enum LegendSymbol {
    case line(color: String, dashed: Bool, width: Double)
    case patch(color: String, opacity: Double)
    case marker(MarkerShape, color: String)
}

struct Legend {
    var entries: [(String, LegendSymbol)]
    var fontSize: Double
    var rowHeight: Double { fontSize + 8 }
    var width: Double { 36 + (entries.map { textWidth($0.0, size: fontSize) }.max() ?? 0) + 10 }
    var height: Double { Double(entries.count) * rowHeight + 8 }

    func draw(on c: inout SVGCanvas, frame f: Frame, position: LegendPosition) {
        guard !entries.isEmpty, position != .none else { return }
        let w = width, h = height, pad = 8.0
        let x: Double, y: Double
        switch position {
        case .topRight: x = f.right - w - pad; y = f.top + pad
        case .topLeft: x = f.left + pad; y = f.top + pad
        case .bottomRight: x = f.right - w - pad; y = f.bottom - h - pad
        case .bottomLeft: x = f.left + pad; y = f.bottom - h - pad
        case .outsideRight: x = f.right + 16; y = f.top
        case .none: return
        }
        c.rect(x, y, w, h, fill: "#fff", stroke: "#bbb", opacity: 0.9)
        for (k, (label, sym)) in entries.enumerated() {
            let cy = y + 4 + rowHeight * (Double(k) + 0.5)
            switch sym {
            case .line(let color, let dashed, let width):
                c.line(x + 8, cy, x + 30, cy, stroke: color, width: width, dash: dashed ? "6 4" : nil)
            case .patch(let color, let opacity):
                c.rect(x + 8, cy - 6, 22, 12, fill: color, opacity: opacity)
            case .marker(let shape, let color):
                c.marker(shape, x + 19, cy, r: 4.5, fill: color)
            }
            c.text(x + 36, cy, label, size: fontSize, middle: true)
        }
    }
}

// MARK: - Plots

/// SVG plots for the report. Every function returns a self-contained `<svg>` document.
public enum Plots {

    /// Line plot with a legend (e.g. training and validation loss per epoch, Fig. 3a).
    public static func lines(_ series: [LineSeries], options o: PlotOptions) -> String {
        let xs = series.flatMap(\.x), ys = series.flatMap(\.y)
        let xAxis = Axis.make(xs, scale: o.xScale, fixed: o.xRange, target: 7)
        let yAxis = Axis.make(ys, scale: .linear, fixed: o.yRange, margin: 0.02)
        let legend = Legend(
            entries: series.enumerated().map { i, s in
                (s.name, .line(color: s.color ?? Palette.color(i), dashed: s.dashed, width: s.lineWidth))
            }, fontSize: o.fontSize)
        let f = Frame.layout(options: o, x: xAxis, y: yAxis, legendWidth: legend.width)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title.isEmpty ? nil : o.title)
        f.draw(on: &c, options: o)
        for (i, s) in series.enumerated() {
            let pts = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }.map { (f.px($0.0), f.py(clampY($0.1, f))) }
            c.polyline(pts, stroke: s.color ?? Palette.color(i), width: s.lineWidth, dash: s.dashed ? "6 4" : nil)
            if pts.count == 1 { c.circle(pts[0].0, pts[0].1, r: 3, fill: s.color ?? Palette.color(i)) }
        }
        legend.draw(on: &c, frame: f, position: o.legend)
        return c.svg
    }

    /// The mean ROC curve over folds with a shaded ±1 s.d. band and the chance diagonal
    /// (Fig. 3b). `folds` are drawn as thin grey lines when given.
    public static func roc(
        _ mean: Metrics.MeanROC, folds: [Metrics.ROCCurve] = [], curveLabel: String? = nil,
        options: PlotOptions = PlotOptions(
            title: "ROC", xLabel: "false positive rate",
            yLabel: "true positive rate", width: 480, height: 460,
            legend: .bottomRight)
    ) -> String {
        var o = options
        o.xRange = 0...1; o.yRange = 0...1; o.xScale = .linear
        let t = [0, 0.2, 0.4, 0.6, 0.8, 1.0]
        let xAxis = Axis.make([], scale: .linear, fixed: 0...1, ticks: t)
        let yAxis = Axis.make([], scale: .linear, fixed: 0...1, ticks: t)
        let label =
            curveLabel
            ?? "mean ROC (AUC \(mean.auc.meanWithSD()), \(mean.folds) fold\(mean.folds == 1 ? "" : "s"))"
        var entries: [(String, LegendSymbol)] = [(label, .line(color: Palette.color(0), dashed: false, width: 2.5))]
        if mean.folds >= 2 { entries.append(("± 1 s.d.", .patch(color: Palette.color(0), opacity: 0.2))) }
        if !folds.isEmpty { entries.append(("single folds", .line(color: "#999", dashed: false, width: 1))) }
        entries.append(("chance", .line(color: "#777", dashed: true, width: 1.5)))
        let legend = Legend(entries: entries, fontSize: o.fontSize - 1)
        let f = Frame.layout(options: o, x: xAxis, y: yAxis, legendWidth: legend.width)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title.isEmpty ? nil : o.title)
        f.draw(on: &c, options: o)
        c.line(f.px(0), f.py(0), f.px(1), f.py(1), stroke: "#777", width: 1.5, dash: "6 4")
        if mean.folds >= 2 {
            let up = zip(mean.fpr, mean.upperTPR).map { (f.px($0), f.py($1)) }
            let lo = zip(mean.fpr, mean.lowerTPR).map { (f.px($0), f.py($1)) }.reversed()
            c.polygon(up + lo, fill: Palette.color(0), opacity: 0.2)
        }
        for fc in folds where !fc.isEmpty {
            c.polyline(zip(fc.fpr, fc.tpr).map { (f.px($0), f.py($1)) }, stroke: "#999", width: 1)
        }
        c.polyline(zip(mean.fpr, mean.meanTPR).map { (f.px($0), f.py($1)) }, stroke: Palette.color(0), width: 2.5)
        legend.draw(on: &c, frame: f, position: o.legend)
        return c.svg
    }

    /// Box plots at numeric x positions (e.g. ROC-AUC per training-set size, Fig. 4a / 6),
    /// on a linear or log10 x axis, with optional published reference values.
    public static func boxes(
        _ groups: [BoxGroup], references: [ReferencePoint] = [], referenceLabel: String = "paper",
        seriesLabel: String? = nil, options o: PlotOptions
    ) -> String {
        let stats = groups.map { BoxStats($0.values) }
        let positions = groups.map(\.position)
        let xTicks: [Double]? = positions.count <= 12 ? positions.sorted() : nil
        let sortedPos = positions.sorted()
        var minGap = Double.infinity
        for (a, b) in zip(sortedPos, sortedPos.dropFirst()) where b > a {
            minGap = min(minGap, o.xScale == .log10 ? log10(b) - log10(a) : b - a)
        }
        let xAxis: Axis
        if o.xScale == .log10 {
            let pad = pow(10, minGap.isFinite ? min(max(minGap * 0.6, 0.08), 0.3) : 0.3)
            xAxis = Axis.make(positions + references.map(\.x), scale: .log10, fixed: o.xRange, ticks: xTicks, logPad: pad)
        } else {
            let pad = minGap.isFinite ? minGap * 0.6 : 1
            xAxis = Axis.make(
                positions + references.map(\.x), scale: .linear, fixed: o.xRange,
                ticks: xTicks, target: 7, linearPad: pad)
        }
        var yvals = stats.compactMap { $0 }.flatMap { [$0.min, $0.max] }
        yvals += references.flatMap { [$0.y - ($0.sd ?? 0), $0.y + ($0.sd ?? 0)] }
        let yAxis = Axis.make(yvals, scale: .linear, fixed: o.yRange, margin: 0.03)
        var entries: [(String, LegendSymbol)] = []
        if let seriesLabel { entries.append((seriesLabel, .patch(color: Palette.color(0), opacity: 0.35))) }
        if !references.isEmpty { entries.append((referenceLabel, .marker(.diamond, color: Palette.color(1)))) }
        let legend = Legend(entries: entries, fontSize: o.fontSize - 1)
        let f = Frame.layout(options: o, x: xAxis, y: yAxis, legendWidth: legend.width)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title.isEmpty ? nil : o.title)
        f.draw(on: &c, options: o, xGrid: false)
        // Box width: 60% of the smallest gap between boxes, at most 36 px.
        var gapPx = Double.infinity
        let px = sortedPos.map { f.px($0) }
        for (a, b) in zip(px, px.dropFirst()) where b > a { gapPx = min(gapPx, b - a) }
        let bw = min(36, gapPx.isFinite ? gapPx * 0.6 : 36)
        let blue = Palette.color(0), orange = Palette.color(3)
        for (g, s) in zip(groups, stats) {
            guard let s else { continue }
            let x = f.px(g.position)
            func Y(_ v: Double) -> Double { f.py(clampY(v, f)) }
            let tip =
                "x = \(fmt(g.position)): n = \(s.count), "
                + String(
                    format: "median %.4g, quartiles %.4g to %.4g, mean %.4g",
                    s.median, s.q1, s.q3, s.mean)
            c.line(x, Y(s.whiskerLow), x, Y(s.q1), stroke: "#333", width: 1.2)
            c.line(x, Y(s.q3), x, Y(s.whiskerHigh), stroke: "#333", width: 1.2)
            c.line(x - bw / 4, Y(s.whiskerLow), x + bw / 4, Y(s.whiskerLow), stroke: "#333", width: 1.2)
            c.line(x - bw / 4, Y(s.whiskerHigh), x + bw / 4, Y(s.whiskerHigh), stroke: "#333", width: 1.2)
            c.rect(
                x - bw / 2, Y(s.q3), bw, max(Y(s.q1) - Y(s.q3), 1), fill: blue, stroke: blue, strokeWidth: 1.2,
                opacity: 0.35, tooltip: tip)
            c.line(x - bw / 2, Y(s.median), x + bw / 2, Y(s.median), stroke: orange, width: 2.5)
            for v in s.outliers { c.circle(x, Y(v), r: 3, fill: "none", stroke: "#333") }
        }
        for r in references {
            let x = f.px(r.x) + bw * 0.5 + 6
            if let sd = r.sd, sd > 0 {
                c.line(x, f.py(clampY(r.y - sd, f)), x, f.py(clampY(r.y + sd, f)), stroke: Palette.color(1), width: 1.5)
            }
            c.marker(.diamond, x, f.py(clampY(r.y, f)), r: 5, fill: Palette.color(1), stroke: "#333")
        }
        legend.draw(on: &c, frame: f, position: o.legend)
        return c.svg
    }

    /// Scatter plot coloured (and, beyond 8 classes, shaped) by class with a legend of
    /// class names and counts, e.g. a t-SNE embedding (Fig. 5). `equalAspect` keeps one
    /// unit the same length on both axes.
    public static func scatter(
        x: [Double], y: [Double], classes: [Int], classNames: [String], equalAspect: Bool = true,
        pointRadius: Double = 3.2, options: PlotOptions
    ) -> String {
        precondition(x.count == y.count && x.count == classes.count, "scatter: x, y and classes must have the same length")
        var o = options
        let counts = classNames.indices.map { k in classes.filter { $0 == k }.count }
        let legend = Legend(
            entries: classNames.enumerated().map { k, n in
                ("\(n) (\(counts[k]))", .marker(Palette.marker(k), color: Palette.color(k)))
            }, fontSize: o.fontSize - 1)
        if o.legend != .none { o.legend = .outsideRight }
        var xr = o.xRange, yr = o.yRange
        let fx = x.filter(\.isFinite), fy = y.filter(\.isFinite)
        if equalAspect, xr == nil, yr == nil, let x0 = fx.min(), let x1 = fx.max(), let y0 = fy.min(), let y1 = fy.max() {
            // Provisional frame to learn the plot area's aspect, then widen the shorter range.
            let probe = Frame.layout(
                options: o, x: Axis.make(fx, scale: .linear, fixed: nil),
                y: Axis.make(fy, scale: .linear, fixed: nil), legendWidth: legend.width)
            let pw = probe.plotWidth, ph = probe.plotHeight
            var w = max(x1 - x0, 1e-9) * 1.08, h = max(y1 - y0, 1e-9) * 1.08
            if w / pw > h / ph { h = w / pw * ph } else { w = h / ph * pw }
            xr = ((x0 + x1) / 2 - w / 2)...((x0 + x1) / 2 + w / 2)
            yr = ((y0 + y1) / 2 - h / 2)...((y0 + y1) / 2 + h / 2)
        }
        let xAxis = Axis.make(fx, scale: .linear, fixed: xr, target: 7)
        let yAxis = Axis.make(fy, scale: .linear, fixed: yr)
        let f = Frame.layout(options: o, x: xAxis, y: yAxis, legendWidth: legend.width)
        var c = SVGCanvas(width: o.width, height: o.height, title: o.title.isEmpty ? nil : o.title)
        f.draw(on: &c, options: o)
        // Draw the largest classes first so small ones stay visible on top.
        let order = classes.indices.sorted {
            let a = classes[$0], b = classes[$1]
            let ca = a < counts.count ? counts[a] : 0, cb = b < counts.count ? counts[b] : 0
            return ca != cb ? ca > cb : $0 < $1
        }
        for i in order where x[i].isFinite && y[i].isFinite {
            let k = classes[i]
            c.marker(Palette.marker(k), f.px(x[i]), f.py(y[i]), r: pointRadius, fill: Palette.color(k), opacity: 0.75)
        }
        legend.draw(on: &c, frame: f, position: o.legend)
        return c.svg
    }

    /// Row-normalised confusion matrix (rows true, columns predicted) with the counts and
    /// row fractions in each cell and each row's support in its label (Fig. 7b).
    public static func confusion(
        _ m: [[Int]], classNames: [String],
        options: PlotOptions = PlotOptions(
            title: "confusion matrix", xLabel: "predicted class",
            yLabel: "true class")
    ) -> String {
        let k = m.count
        precondition(classNames.count == k && m.allSatisfy { $0.count == k }, "confusion: a k×k matrix and k class names")
        let o = options
        let fs = o.fontSize
        let supports = m.map { $0.reduce(0, +) }
        let rowLabels = zip(classNames, supports).map { "\($0) (n=\($1))" }
        let rowW = rowLabels.map { textWidth($0, size: fs) }.max() ?? 40
        let colW = classNames.map { textWidth($0, size: fs) }.max() ?? 20
        let cell = max(34, min(72, 480 / Double(max(k, 1))))
        let rotateCols = colW > cell - 6
        let colH = rotateCols ? colW * 0.66 + fs : fs + 4
        let left = 14 + fs + 12 + rowW + 10
        let top = (o.title.isEmpty ? 16 : 16 + fs + 3 + 14) + 4
        let gridW = cell * Double(k)
        let barX = left + gridW + 24
        let width = max(o.width, barX + 16 + 60)
        let height = top + gridW + 8 + colH + 14 + fs + 14
        var c = SVGCanvas(width: width, height: height, title: o.title.isEmpty ? nil : o.title)
        if !o.title.isEmpty { c.text(width / 2, 16 + fs + 3, o.title, size: fs + 3, anchor: .middle, weight: "bold") }
        for i in 0..<k {
            let frac = m[i].map { supports[i] > 0 ? Double($0) / Double(supports[i]) : 0 }
            for j in 0..<k {
                let x = left + Double(j) * cell, y = top + Double(i) * cell
                let tip = "true \(classNames[i]), predicted \(classNames[j]): \(m[i][j]) of \(supports[i])"
                c.rect(x, y, cell, cell, fill: Palette.sequential(frac[j]), stroke: "#fff", strokeWidth: 1, tooltip: tip)
                let ink = frac[j] > 0.5 ? "#fff" : "#222"
                c.text(
                    x + cell / 2, y + cell / 2 - fs * 0.45, "\(m[i][j])", size: fs + 1, anchor: .middle,
                    weight: "bold", fill: ink, middle: true)
                c.text(
                    x + cell / 2, y + cell / 2 + fs * 0.65, String(format: "%.2f", frac[j]), size: fs - 2,
                    anchor: .middle, fill: ink, middle: true)
            }
            c.text(left - 8, top + (Double(i) + 0.5) * cell, rowLabels[i], size: fs, anchor: .end, middle: true)
        }
        c.rect(left, top, gridW, gridW, stroke: "#444")
        for j in 0..<k {
            let x = left + (Double(j) + 0.5) * cell, y = top + gridW + 8
            if rotateCols {
                c.text(x + fs * 0.3, y + fs * 0.4, classNames[j], size: fs, anchor: .end, rotate: -45)
            } else {
                c.text(x, y + fs, classNames[j], size: fs, anchor: .middle)
            }
        }
        if !o.xLabel.isEmpty { c.text(left + gridW / 2, height - 12, o.xLabel, size: fs + 1, anchor: .middle) }
        if !o.yLabel.isEmpty {
            c.text(14 + fs / 2 + 4, top + gridW / 2, o.yLabel, size: fs + 1, anchor: .middle, rotate: -90, middle: true)
        }
        // Colour bar for the row fraction.
        let steps = 40
        for s in 0..<steps {
            let t0 = Double(s) / Double(steps)
            c.rect(
                barX, top + gridW * (1 - t0 - 1 / Double(steps)), 14, gridW / Double(steps) + 0.5,
                fill: Palette.sequential(t0 + 0.5 / Double(steps)))
        }
        c.rect(barX, top, 14, gridW, stroke: "#444")
        c.text(barX + 7, top + gridW + 8 + fs, "row fraction", size: fs - 2, anchor: .middle)
        for t in [0.0, 0.5, 1.0] {
            let y = top + gridW * (1 - t)
            c.line(barX + 14, y, barX + 18, y, stroke: "#444")
            c.text(barX + 21, y, String(format: "%.1f", t), size: fs - 1, middle: true)
        }
        return c.svg
    }

    static func clampY(_ v: Double, _ f: Frame) -> Double { min(max(v, f.y.lo), f.y.hi) }
}
